//! The fault matrix: every Twilio step of create, delete, import and auth-token rotation under
//! {500, persistent 429, a single 429, a delay beyond the client timeout, a dropped
//! connection}, plus KMS and DynamoDB failures (through a failing proxy in front of moto).
//! After each, the fake Twilio and the table hold exactly what they held before (a failed
//! operation) or the full result (a successful one), never something in between, and a
//! failure is the documented problem+json.

use crate::harness::{Req, TestEnv, create_provider, random_token, status_and_body, table_snapshot, twilio_snapshot};
use functions::handlers::{create_twilio_provider, delete_provider, import_numbers, rotate_twilio_auth_token};
use integration_tests::fake_twilio::FaultAction;
use serde_json::json;
use std::time::Duration;

const ORG: &str = "org-faults";
/// Short enough to keep the matrix quick, long enough not to time out on a busy machine.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Cases run at once.
const CONCURRENCY: usize = 5;

fn faults() -> Vec<(&'static str, FaultAction, Option<u32>)> {
    vec![
        ("500", FaultAction::Fail { status: 500, code: 20500 }, None),
        ("persistent 429", FaultAction::RateLimit { retry_after: None }, None),
        ("single 429", FaultAction::RateLimit { retry_after: Some(0) }, Some(1)),
        ("delay beyond the timeout", FaultAction::Delay(Duration::from_millis(1500)), None),
        ("dropped connection", FaultAction::DropConnection, None),
    ]
}

/// Runs the cases a few at a time; a panic in any fails the test.
async fn run_cases(cases: impl Iterator<Item = impl std::future::Future<Output = ()>>) {
    use futures::StreamExt;
    futures::stream::iter(cases).buffer_unordered(CONCURRENCY).collect::<Vec<()>>().await;
}

fn assert_problem(response: &lambda_http::Response<lambda_http::Body>, case: &str) {
    assert_eq!(response.headers()["content-type"], "application/problem+json", "{case}");
    let (status, body) = status_and_body(response);
    assert_eq!(body["status"], status, "{case}: {body}");
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(), "{case}: {body}");
}

async fn create(env: &TestEnv, sid: &str, token: &str) -> lambda_http::Response<lambda_http::Body> {
    let body = json!({"accountSid": sid, "authToken": token, "name": "Faults"}).to_string();
    let req = Req::new("POST", "/api/v1/providers/twilio").org(ORG).body(&body).build();
    create_twilio_provider::handle(&env.services, req).await.unwrap()
}

/// A complete create: one trunk with the list attached, one credential, the records stored.
async fn assert_fully_created(env: &TestEnv, sid: &str, case: &str) {
    let trunks = env.fake.trunks_of(sid);
    let lists = env.fake.credential_lists_of(sid);
    assert_eq!((trunks.len(), lists.len(), env.fake.credentials_of(sid).len()), (1, 1, 1), "{case}");
    assert_eq!(env.fake.lists_attached_to(&trunks[0].sid), [lists[0].sid.clone()], "{case}");
    assert_eq!(env.item_count().await, 3, "{case}: provider, SIP credential, Account SID claim");
}

#[tokio::test]
async fn create_is_all_or_nothing_under_every_twilio_fault() {
    let steps =
        ["fetch_account", "create_trunk", "create_credential_list", "create_credential", "attach_credential_list"];
    let cases: Vec<_> = steps.iter().flat_map(|step| faults().into_iter().map(move |fault| (*step, fault))).collect();
    run_cases(cases.into_iter().map(|(step, (name, action, times))| async move {
        let case = format!("create, {step}, {name}");
        let env = TestEnv::with_request_timeout(CLIENT_TIMEOUT).await;
        let (sid, token) = env.fake.add_account("active", "Full");
        let (twilio_before, table_before) = (twilio_snapshot(&env, &sid), table_snapshot(&env).await);
        env.fake.inject(step, action, times);
        let response = create(&env, &sid, &token).await;
        if response.status() == 201 {
            assert_fully_created(&env, &sid, &case).await;
        } else {
            assert!(times.is_none(), "{case}: a single 429 must be retried, got {}", response.status());
            assert_problem(&response, &case);
            assert_eq!(twilio_snapshot(&env, &sid), twilio_before, "{case}: Twilio changed");
            assert_eq!(table_snapshot(&env).await, table_before, "{case}: the table changed");
        }
    }))
    .await;
}

#[tokio::test]
async fn create_leaves_nothing_when_kms_or_dynamodb_fail() {
    for target in ["TrentService.GenerateDataKey", "DynamoDB_20120810.TransactWriteItems"] {
        let (env, proxy) = TestEnv::with_aws_proxy(CLIENT_TIMEOUT).await;
        let (sid, token) = env.fake.add_account("active", "Full");
        let (twilio_before, table_before) = (twilio_snapshot(&env, &sid), table_snapshot(&env).await);
        proxy.fail(target, None);
        let response = create(&env, &sid, &token).await;
        assert_eq!(response.status(), 503, "{target}");
        assert_problem(&response, target);
        assert_eq!(twilio_snapshot(&env, &sid), twilio_before, "{target}: Twilio changed");
        assert_eq!(table_snapshot(&env).await, table_before, "{target}: the table changed");
    }
}

/// A provider with one imported number that had its own voice routing.
async fn provider_with_number(env: &TestEnv) -> (String, String, String) {
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    let number = env.fake.add_incoming_number(&sid, "+15550001000", Some("https://example.com/before"));
    let body = json!({ "phoneNumberSids": [number] }).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(ORG).param("id", &id).body(&body).build();
    assert_eq!(status_and_body(&import_numbers::handle(&env.services, req).await.unwrap()).1["successCount"], 1);
    (sid, id, number)
}

fn delete_request(id: &str) -> lambda_http::Request {
    Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", id).build()
}

async fn assert_fully_deleted(env: &TestEnv, sid: &str, number: &str, case: &str) {
    assert!(env.fake.trunks_of(sid).is_empty() && env.fake.credential_lists_of(sid).is_empty(), "{case}");
    assert!(env.fake.credentials_of(sid).is_empty(), "{case}");
    let n = env.fake.state().incoming_numbers[number].clone();
    assert_eq!(
        (n.trunk_sid, n.voice_url.as_deref()),
        (None, Some("https://example.com/before")),
        "{case}: number given back"
    );
    assert_eq!(env.item_count().await, 0, "{case}: records left");
}

#[tokio::test]
async fn delete_finishes_or_stays_resumable_under_every_twilio_fault() {
    let steps = [
        "detach_phone_number",
        "update_incoming_number",
        "detach_credential_list",
        "delete_trunk",
        "delete_credential_list",
    ];
    let cases: Vec<_> = steps.iter().flat_map(|step| faults().into_iter().map(move |fault| (*step, fault))).collect();
    run_cases(cases.into_iter().map(|(step, (name, action, times))| async move {
        let case = format!("delete, {step}, {name}");
        let env = TestEnv::with_request_timeout(CLIENT_TIMEOUT).await;
        let (sid, id, number) = provider_with_number(&env).await;
        env.fake.inject(step, action, times);
        let response = delete_provider::handle(&env.services, delete_request(&id)).await.unwrap();
        if response.status() != 204 {
            assert!(times.is_none(), "{case}: a single 429 must be retried");
            assert_problem(&response, &case);
            let record = env
                .services
                .store
                .get_provider(&shared::model::OrganizationId::parse(ORG).unwrap(), id.parse().unwrap())
                .await
                .unwrap();
            assert!(
                record.expect("the provider stays until Twilio is clean").deletion.is_some(),
                "{case}: marked as being deleted"
            );
            env.fake.clear_faults();
            let retry = delete_provider::handle(&env.services, delete_request(&id)).await.unwrap();
            assert_eq!(retry.status(), 204, "{case}: the retry finishes the delete");
        }
        assert_fully_deleted(&env, &sid, &number, &case).await;
    }))
    .await;
}

#[tokio::test]
async fn a_dynamodb_failure_at_the_end_of_a_delete_is_resumable() {
    let (env, proxy) = TestEnv::with_aws_proxy(CLIENT_TIMEOUT).await;
    let (sid, id, number) = provider_with_number(&env).await;
    proxy.fail("DynamoDB_20120810.TransactWriteItems", None);
    let response = delete_provider::handle(&env.services, delete_request(&id)).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_problem(&response, "delete, TransactWriteItems");
    proxy.clear();
    let retry = delete_provider::handle(&env.services, delete_request(&id)).await.unwrap();
    assert_eq!(retry.status(), 204);
    assert_fully_deleted(&env, &sid, &number, "delete after a DynamoDB failure").await;
}

/// DynamoDB throttles a batch write (a provider's items share one partition) and hands the
/// items back unprocessed, several times in a row: they are written after waits, and the
/// forced delete that writes them finishes.
#[tokio::test]
async fn batch_writes_dynamodb_throttles_are_retried_after_waits() {
    use integration_tests::aws_proxy::Failure;
    let (env, proxy) = TestEnv::with_aws_proxy(CLIENT_TIMEOUT).await;
    let (_, id, _) = provider_with_number(&env).await;
    env.fake.inject("update_incoming_number", FaultAction::Fail { status: 400, code: 20001 }, None);
    env.fake.inject("detach_phone_number", FaultAction::Fail { status: 400, code: 20001 }, None);
    proxy.fail_with("DynamoDB_20120810.BatchWriteItem", Failure::Unprocessed, Some(6));
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id).query("force", "true").build();
    let (status, body) = status_and_body(&delete_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    let org = shared::model::OrganizationId::parse(ORG).unwrap();
    let recorded = env.services.store.leftover_resources(&org, id.parse().unwrap()).await.unwrap();
    assert!(recorded.iter().any(|r| r.kind() == "trunkPhoneNumber"), "{recorded:?}");
    assert!(env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().is_none());
}

#[tokio::test]
async fn each_imported_number_is_all_or_nothing_under_every_fault() {
    let steps = ["fetch_incoming_number", "attach_phone_number"];
    let cases: Vec<_> = steps.iter().flat_map(|step| faults().into_iter().map(move |fault| (*step, fault))).collect();
    run_cases(cases.into_iter().map(|(step, (name, action, times))| async move {
        let case = format!("import, {step}, {name}");
        let env = TestEnv::with_request_timeout(CLIENT_TIMEOUT).await;
        let (sid, token) = env.fake.add_account("active", "Full");
        let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
        let number = env.fake.add_incoming_number(&sid, "+15550002000", Some("https://example.com/own"));
        let (twilio_before, table_before) = (twilio_snapshot(&env, &sid), table_snapshot(&env).await);
        env.fake.inject(step, action, times);
        let body = json!({ "phoneNumberSids": [number] }).to_string();
        let req = Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers")
            .org(ORG)
            .param("id", &id)
            .body(&body)
            .build();
        let (status, result) = status_and_body(&import_numbers::handle(&env.services, req).await.unwrap());
        assert_eq!(status, 200, "{case}: {result}");
        if result["successCount"] == 1 {
            let n = env.fake.state().incoming_numbers[&number].clone();
            assert_eq!(n.trunk_sid.as_deref(), env.fake.trunks_of(&sid).first().map(|t| t.sid.as_str()), "{case}");
            let records_before = table_before.iter().filter(|item| !item.contains(r#"entity=S("event")"#)).count();
            assert_eq!(env.item_count().await, records_before + 2, "{case}: number record and claim");
        } else {
            assert!(times.is_none(), "{case}: a single 429 must be retried: {result}");
            assert_eq!(result["errors"][0]["code"], "twilio_error", "{case}: {result}");
            assert_eq!(twilio_snapshot(&env, &sid), twilio_before, "{case}: Twilio changed");
            let mut after = table_snapshot(&env).await;
            let mut before = table_before.clone();
            // Only the provider's version may differ: compare without it.
            let strip = |rows: &mut Vec<String>| {
                rows.iter_mut().for_each(|r| {
                    *r = r
                        .split(' ')
                        .filter(|f| !f.starts_with("version=") && !f.starts_with("updatedAt="))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            };
            strip(&mut after);
            strip(&mut before);
            assert_eq!(after, before, "{case}: the table changed");
        }
    }))
    .await;
}

#[tokio::test]
async fn a_dynamodb_failure_after_attach_leaves_the_number_as_it_was() {
    let (env, proxy) = TestEnv::with_aws_proxy(CLIENT_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    let number = env.fake.add_incoming_number(&sid, "+15550003000", Some("https://example.com/own"));
    let twilio_before = twilio_snapshot(&env, &sid);
    proxy.fail("DynamoDB_20120810.TransactWriteItems", None);
    let body = json!({ "phoneNumberSids": [number] }).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(ORG).param("id", &id).body(&body).build();
    let (_, result) = status_and_body(&import_numbers::handle(&env.services, req).await.unwrap());
    assert_eq!(result["errors"][0]["code"], "storage_error", "{result}");
    assert_eq!(twilio_snapshot(&env, &sid), twilio_before);
}

async fn rotate(env: &TestEnv, id: &str, token: &str) -> lambda_http::Response<lambda_http::Body> {
    let body = json!({ "authToken": token }).to_string();
    let req =
        Req::new("PATCH", "/api/v1/providers/twilio/{id}/auth-token").org(ORG).param("id", id).body(&body).build();
    rotate_twilio_auth_token::handle(&env.services, req).await.unwrap()
}

#[tokio::test]
async fn rotation_changes_the_token_or_nothing_under_every_fault() {
    run_cases(faults().into_iter().map(|(name, action, times)| async move {
        let case = format!("rotate, fetch_account, {name}");
        let env = TestEnv::with_request_timeout(CLIENT_TIMEOUT).await;
        let (sid, token) = env.fake.add_account("active", "Full");
        let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
        let new_token = random_token();
        env.fake.set_auth_token(&sid, &new_token);
        let before = table_snapshot(&env).await;
        env.fake.inject("fetch_account", action, times);
        let response = rotate(&env, &id, &new_token).await;
        if response.status() == 200 {
            assert_ne!(table_snapshot(&env).await, before, "{case}");
        } else {
            assert!(times.is_none(), "{case}: a single 429 must be retried");
            assert_problem(&response, &case);
            assert_eq!(table_snapshot(&env).await, before, "{case}: the table changed");
        }
    }))
    .await;

    // The new credential is saved with its audit event, in one transaction.
    for target in ["TrentService.GenerateDataKey", "DynamoDB_20120810.TransactWriteItems"] {
        let (env, proxy) = TestEnv::with_aws_proxy(CLIENT_TIMEOUT).await;
        let (sid, token) = env.fake.add_account("active", "Full");
        let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
        let new_token = random_token();
        env.fake.set_auth_token(&sid, &new_token);
        let before = table_snapshot(&env).await;
        proxy.fail(target, None);
        let response = rotate(&env, &id, &new_token).await;
        assert_eq!(response.status(), 503, "{target}");
        assert_problem(&response, target);
        assert_eq!(table_snapshot(&env).await, before, "{target}: the table changed");
    }
}
