//! Deletes that finish at any size: bounded concurrency, progress kept per number, a 202 and
//! the deletion queue when time runs short, a rotated token to unstick a delete, and a forced
//! delete that records what it leaves for the orphan sweeper.

use crate::harness::{Req, TestEnv, create_provider, random_token, status_and_body};
use functions::handlers::{delete_provider, get_provider, rotate_twilio_auth_token};
use integration_tests::fake_twilio::FaultAction;
use integration_tests::seed;
use lambda_http::RequestExt;
use serde_json::{Value, json};
use shared::model::OrganizationId;
use std::time::Duration;

const ORG: &str = "org-delete";

/// `n` numbers imported onto the provider's trunk, as import leaves them (seeded directly:
/// the import path has its own tests).
async fn seed_numbers(env: &TestEnv, sid: &str, id: &str, trunk_sid: &str, n: usize) -> Vec<String> {
    let org = OrganizationId::parse(ORG).unwrap();
    let mut sids = Vec::new();
    for i in 0..n {
        let phone = format!("+1555300{i:04}");
        let provider_id = id.parse().unwrap();
        let pn = seed::imported_number(&env.fake, &env.services.store, &org, provider_id, sid, trunk_sid, &phone).await;
        sids.push(pn);
    }
    sids
}

/// A provider with `n` numbers on its trunk: its Account SID, id and numbers.
async fn provider_with_numbers(env: &TestEnv, n: usize) -> (String, String, Vec<String>) {
    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(env, ORG, &sid, &token).await;
    let (id, trunk) = (provider["id"].as_str().unwrap().to_owned(), provider["trunkSid"].as_str().unwrap());
    let numbers = seed_numbers(env, &sid, &id, trunk, n).await;
    (sid, id, numbers)
}

/// A DELETE as API Gateway invokes it, with `budget` left before the invocation's deadline.
async fn delete(env: &TestEnv, id: &str, query: Option<(&str, &str)>, budget: Option<Duration>) -> (u16, Value) {
    let mut req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", id);
    if let Some((name, value)) = query {
        req = req.query(name, value);
    }
    let mut request = req.build();
    if let Some(budget) = budget {
        let mut context = lambda_http::Context::default();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        context.deadline = (now + budget).as_millis() as u64;
        request = request.with_lambda_context(context);
    }
    status_and_body(&delete_provider::handle(&env.services, request).await.unwrap())
}

async fn get(env: &TestEnv, id: &str) -> (u16, Value) {
    let req = Req::new("GET", "/api/v1/providers/{id}").org(ORG).param("id", id).build();
    status_and_body(&get_provider::handle(&env.services.store, req).await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_with_1000_numbers_is_deleted_completely() {
    let env = TestEnv::new().await;
    let (_, id, numbers) = provider_with_numbers(&env, 1000).await;
    let id = id.as_str();
    // Twilio's latency makes 1000 numbers outlast one invocation.
    env.fake.set_latency(Duration::from_millis(15));

    let (status, body) = delete(&env, id, None, Some(Duration::from_secs(6))).await;
    assert_eq!(status, 202, "{body}");
    let remaining = body["deletion"]["remainingNumbers"].as_u64().unwrap();
    assert!(remaining > 0 && remaining < 1000, "progress was made and kept: {body}");
    let (status, shown) = get(&env, id).await;
    assert_eq!(status, 200);
    assert_eq!(shown["deletion"]["remainingNumbers"], remaining, "GET shows the progress");

    // DELETE again continues too.
    let (status, body) = delete(&env, id, None, Some(Duration::from_secs(5))).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["deletion"]["remainingNumbers"].as_u64().unwrap() < remaining);

    // The queue finishes it without the caller.
    let invocations = env.drain_deletions(Duration::from_secs(6)).await;
    assert!(invocations >= 1, "the deletion queue carried the rest");
    assert_eq!(get(&env, id).await.0, 404);
    assert_eq!(env.item_count().await, 0, "every record is gone");
    let state = env.fake.state();
    assert!(state.trunks.is_empty() && state.credential_lists.is_empty());
    for pn in &numbers {
        let number = &state.incoming_numbers[pn];
        assert_eq!(
            (number.trunk_sid.as_deref(), number.voice_url.as_deref()),
            (None, Some("https://example.com/voice"))
        );
    }
}

#[tokio::test]
async fn a_delete_stuck_on_a_rotated_token_continues_after_rotation() {
    let env = TestEnv::new().await;
    let (sid, id, _) = provider_with_numbers(&env, 3).await;
    let id = id.as_str();
    let new_token = random_token();
    env.fake.set_auth_token(&sid, &new_token);
    let (status, body) = delete(&env, id, None, None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains(&format!("/api/v1/providers/{id}/credentials")), "{body}");
    let shown = get(&env, id).await.1;
    assert_eq!(shown["deletion"]["status"], "deleting");
    assert!(shown["deletion"]["lastError"].as_str().unwrap().contains("PATCH .../credentials"), "{shown}");

    let body = json!({"authToken": new_token}).to_string();
    let req =
        Req::new("PATCH", "/api/v1/providers/twilio/{id}/auth-token").org(ORG).param("id", id).body(&body).build();
    let (status, body) = status_and_body(&rotate_twilio_auth_token::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "rotation is allowed while deleting: {body}");
    let (status, body) = delete(&env, id, None, None).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(env.item_count().await, 0);
}

#[tokio::test]
async fn a_forced_delete_records_what_it_leaves_for_the_sweeper() {
    let env = TestEnv::new().await;
    let (sid, id, _) = provider_with_numbers(&env, 2).await;
    let id = id.as_str();
    env.fake.inject("delete_trunk", FaultAction::Fail { status: 500, code: 20500 }, None);
    let (status, body) = delete(&env, id, Some(("force", "true")), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["leftBehind"].as_array().unwrap().iter().any(|l| l["kind"] == "trunk"), "{body}");
    assert_eq!(get(&env, id).await.0, 404);
    let org = OrganizationId::parse(ORG).unwrap();
    let recorded = env.services.store.leftover_resources(&org, id.parse().unwrap()).await.unwrap();
    assert!(recorded.iter().any(|r| r.kind() == "trunk"), "recorded for the sweeper: {recorded:?}");

    env.fake.clear_faults();
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.cleared, 1, "{swept:?}");
    assert!(env.fake.trunks_of(&sid).is_empty() && env.fake.credential_lists_of(&sid).is_empty());
}

/// A forced delete that outlasts its invocation stays forced in the steps that continue it:
/// when Twilio then rejects the stored token, the provider is still removed, and every number
/// still on the trunk is recorded for the sweeper with the trunk's resources.
#[tokio::test(flavor = "multi_thread")]
async fn a_forced_delete_continued_from_the_queue_stays_forced() {
    let env = TestEnv::new().await;
    let (sid, id, _) = provider_with_numbers(&env, 300).await;
    let id = id.as_str();
    env.fake.set_latency(Duration::from_millis(40));
    let (status, body) = delete(&env, id, Some(("force", "true")), Some(Duration::from_secs(6))).await;
    assert_eq!(status, 202, "{body}");
    let remaining = body["deletion"]["remainingNumbers"].as_u64().unwrap();
    assert!(remaining > 0 && remaining < 300, "some numbers were given back first: {body}");

    // The customer changes the token in Twilio before the queue continues the delete.
    env.fake.set_auth_token(&sid, &random_token());
    env.fake.set_latency(Duration::ZERO);
    env.drain_deletions(Duration::from_secs(6)).await;
    assert_eq!(get(&env, id).await.0, 404, "removed, as forced");
    let org = OrganizationId::parse(ORG).unwrap();
    let recorded = env.services.store.leftover_resources(&org, id.parse().unwrap()).await.unwrap();
    let numbers = recorded.iter().filter(|r| r.kind() == "trunkPhoneNumber").count();
    assert_eq!(numbers as u64, remaining, "every number still on the trunk is recorded");
    assert!(recorded.iter().any(|r| r.kind() == "trunk"), "{recorded:?}");
}

/// Numbers that fail are passed over by the steps that continue a delete, so it reaches the
/// end of the numbers, records why it stopped (a bounded summary) and stops: the last step is
/// dropped, not delivered again to start the whole pass over.
#[tokio::test(flavor = "multi_thread")]
async fn a_delete_whose_numbers_fail_ends_with_the_reason_instead_of_going_round() {
    let env = TestEnv::new().await;
    let (_, id, _) = provider_with_numbers(&env, 300).await;
    let id = id.as_str();
    for step in ["fetch_incoming_number", "update_incoming_number", "detach_phone_number"] {
        env.fake.inject(step, FaultAction::Fail { status: 500, code: 20500 }, None);
    }
    env.fake.set_latency(Duration::from_millis(20));
    let (status, body) = delete(&env, id, None, Some(Duration::from_secs(5))).await;
    assert_eq!(status, 202, "{body}");

    // The queue's steps, as continue-deletions runs them (none fails for SQS to deliver
    // again), until none is queued.
    let steps = env.drain_deletions(Duration::from_secs(7)).await;
    assert!(steps <= 20, "the delete goes round its failing numbers: {steps} steps");
    let (_, shown) = get(&env, id).await;
    let last_error = shown["deletion"]["lastError"].as_str().unwrap_or_else(|| panic!("{shown}"));
    assert!(last_error.contains("500"), "says what Twilio answered: {last_error}");
    assert!(last_error.contains("300 numbers are not yet given back"), "{last_error}");
    assert!(last_error.len() < 4000, "bounded: {} bytes", last_error.len());
    assert_eq!(env.fake.state().trunks.len(), 1, "the trunk stays while numbers are on it");
}

/// A forced delete whose stored token cannot be opened (copied from another provider) leaves
/// everything to the sweeper, the trunk and the credential list too, and says so.
#[tokio::test]
async fn a_forced_delete_with_an_unusable_token_records_the_trunk_for_the_sweeper() {
    let env = TestEnv::new().await;
    let org = OrganizationId::parse(ORG).unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (sid, token) = env.fake.add_account("active", "Full");
        ids.push(create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    let other = env.services.store.get_provider(&org, ids[1]).await.unwrap().unwrap();
    let mut record = env.services.store.get_provider(&org, ids[0]).await.unwrap().unwrap();
    record.credential = other.credential.clone();
    record.version += 1;
    env.services.store.replace_provider(&record, None).await.unwrap();

    let (status, body) = delete(&env, &ids[0].to_string(), Some(("force", "true")), None).await;
    assert_eq!(status, 200, "{body}");
    let kinds: Vec<&str> = body["leftBehind"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"trunk") && kinds.contains(&"credentialList"), "{body}");
    assert_eq!(body["leftBehindCount"], kinds.len(), "{body}");
    let recorded = env.services.store.leftover_resources(&org, ids[0]).await.unwrap();
    assert!(recorded.iter().any(|r| r.kind() == "trunk"), "recorded for the sweeper: {recorded:?}");
    assert!(env.fake.state().trunks.contains_key(record.trunk_sid.as_str()));
}

/// A forced delete goes a page of numbers at a time, each page recorded for the sweeper and
/// then forgotten, with its time checked before each: short of time it answers 202 and the
/// deletion queue continues from the rest, whatever the number count (before, it recorded and
/// forgot every number in one go, however long that took).
#[tokio::test(flavor = "multi_thread")]
async fn a_forced_delete_of_many_numbers_goes_a_page_at_a_time_through_the_queue() {
    let env = TestEnv::new().await;
    let org = OrganizationId::parse(ORG).unwrap();
    let (sid, id, numbers) = provider_with_numbers(&env, 250).await;
    let provider_id: uuid::Uuid = id.parse().unwrap();
    // A token that cannot be opened: the forced delete leaves every number to the sweeper.
    let (other_sid, other_token) = env.fake.add_account("active", "Full");
    let other = create_provider(&env, ORG, &other_sid, &other_token).await["id"].as_str().unwrap().parse().unwrap();
    let other = env.services.store.get_provider(&org, other).await.unwrap().unwrap();
    let mut record = env.services.store.get_provider(&org, provider_id).await.unwrap().unwrap();
    record.credential = other.credential.clone();
    record.version += 1;
    env.services.store.replace_provider(&record, None).await.unwrap();

    // Less time than a step keeps back: nothing is started, the queue takes it.
    let (status, body) = delete(&env, &id, Some(("force", "true")), Some(Duration::from_secs(2))).await;
    assert_eq!(status, 202, "not handed to the queue: {}", body["leftBehindCount"]);
    let invocations = env.drain_deletions(Duration::from_millis(3500)).await;
    assert!(invocations >= 1, "continued from the queue");
    assert_eq!(get(&env, &id).await.0, 404, "removed, as forced");
    let recorded = env.services.store.leftover_resources(&org, provider_id).await.unwrap();
    let recorded_numbers: Vec<String> = recorded
        .iter()
        .filter_map(|r| match r {
            shared::twilio::TwilioResource::TrunkPhoneNumber { number_sid, .. } => Some(number_sid.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(recorded_numbers.len(), numbers.len(), "every number recorded once");
    assert!(numbers.iter().all(|n| recorded_numbers.contains(n)));
    assert!(recorded.iter().any(|r| r.kind() == "trunk"), "the trunk stays with its numbers: {recorded:?}");
    assert!(env.services.store.all_numbers(&org, provider_id).await.unwrap().is_empty(), "records forgotten");
    let claim = shared::model::PhoneNumberSid::parse(&numbers[0]).unwrap();
    assert_eq!(env.services.store.number_claim(&claim).await.unwrap(), shared::storage::NumberClaim::Free);
    assert!(env.fake.state().trunks.contains_key(record.trunk_sid.as_str()), "left for the sweeper: {sid}");
}

/// The deletion queue's consumer as SQS invokes it, with one message.
async fn consume(env: &TestEnv, message: Value) -> Value {
    let event = json!({"Records": [{"messageId": "m-1", "body": message.to_string(), "eventSource": "aws:sqs"}]});
    functions::handlers::continue_deletions::handle(&env.services, &event).await
}

/// A message on the deletion queue starts nothing and forces nothing: for a provider the table
/// does not mark as being deleted it is dropped, and a delete in progress is forced only when
/// its record says so, whatever a message claims.
#[tokio::test(flavor = "multi_thread")]
async fn the_queue_continues_only_deletes_in_progress_and_forces_only_what_the_record_forces() {
    let env = TestEnv::new().await;
    let (sid, id, _) = provider_with_numbers(&env, 1).await;
    let message = json!({"organizationId": ORG, "providerId": id, "force": true});
    let calls = env.fake.request_log().len();
    assert_eq!(consume(&env, message.clone()).await, json!({"batchItemFailures": []}));
    assert_eq!(get(&env, &id).await.0, 200, "a provider not being deleted stays");
    assert_eq!(env.fake.request_log().len(), calls, "Twilio was not touched");

    // A plain delete that could not give a number back is in progress, unforced.
    env.fake.inject("detach_phone_number", FaultAction::Fail { status: 500, code: 20500 }, None);
    let (status, body) = delete(&env, &id, None, None).await;
    assert_eq!(status, 502, "{body}");
    consume(&env, message).await;
    let (status, body) = get(&env, &id).await;
    assert_eq!((status, &body["deletion"]["status"]), (200, &json!("deleting")), "not forced by a message: {body}");
    assert!(!env.fake.trunks_of(&sid).is_empty());
}

/// The records go only as they were read: a provider changed meanwhile (a rotated token, say)
/// is not deleted unseen, and the forced or plain delete reads it again.
#[tokio::test]
async fn a_provider_changed_since_it_was_read_is_not_deleted() {
    let env = TestEnv::new().await;
    let (_, id, _) = provider_with_numbers(&env, 0).await;
    let org = OrganizationId::parse(ORG).unwrap();
    let read = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    let mut changed = read.clone();
    changed.name = "Changed meanwhile".into();
    changed.version += 1;
    env.services.store.replace_provider(&changed, None).await.unwrap();
    let stale = env
        .services
        .store
        .delete_provider(
            &read,
            &shared::audit::AuditEvent::new(&read.organization_id, read.id, shared::audit::Action::Deleted),
        )
        .await;
    assert!(matches!(stale, Err(shared::storage::StoreError::VersionConflict)), "{stale:?}");
    assert_eq!(get(&env, &id).await.0, 200);
    assert_eq!(delete(&env, &id, None, None).await.0, 204);
}
