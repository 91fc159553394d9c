//! Twilio and the table kept in step when a write fails half-way: an update's transfer mode,
//! and a number whose attach cannot be undone.

use crate::harness::{Req, TestEnv, create_provider, status_and_body};
use functions::handlers::{import_numbers, update_twilio_provider, verify_provider};
use integration_tests::fake_twilio::FaultAction;
use serde_json::json;
use shared::model::OrganizationId;

const ORG: &str = "org-compensation";

async fn put(env: &TestEnv, id: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let req = Req::new("PUT", "/api/v1/providers/twilio/{id}").org(ORG).param("id", id).body(&body.to_string()).build();
    status_and_body(&update_twilio_provider::handle(&env.services, req).await.unwrap())
}

#[tokio::test]
async fn a_transfer_change_that_cannot_be_saved_is_put_back_in_twilio() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(&env, ORG, &sid, &token).await;
    let (id, trunk) = (provider["id"].as_str().unwrap(), provider["trunkSid"].as_str().unwrap());
    proxy.fail("DynamoDB_20120810.PutItem", None);
    let (status, body) = put(&env, id, json!({"supportsCallTransfer": true})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(env.fake.state().trunks[trunk].transfer_mode, "disable-all", "Twilio was put back");
}

#[tokio::test]
async fn the_same_transfer_value_is_applied_again_when_verification_saw_the_trunk_differ() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(&env, ORG, &sid, &token).await;
    let (id, trunk) = (provider["id"].as_str().unwrap(), provider["trunkSid"].as_str().unwrap());
    env.fake.state().trunks.get_mut(trunk).unwrap().transfer_mode = "enable-all".into();
    let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", id).build();
    let (_, verified) = status_and_body(&verify_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(verified["status"], "warning", "{verified}");
    let (status, body) = put(&env, id, json!({"supportsCallTransfer": false})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.fake.state().trunks[trunk].transfer_mode, "disable-all");
}

/// Numbers whose attach can be neither stored nor undone are recorded for the sweeper with the
/// routing they had: once Twilio recovers, each goes back to the customer's own trunk, its
/// application, or (with neither) off the trunk. One imported again meanwhile is left alone.
#[tokio::test]
async fn a_number_whose_attach_cannot_be_undone_is_given_back_by_the_sweeper() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    let (their_trunk, their_app) = (env.fake.add_trunk(&sid), env.fake.add_application(&sid));
    let plain = env.fake.add_incoming_number(&sid, "+15550400001", None);
    let on_trunk = env.fake.add_incoming_number(&sid, "+15550400002", Some("https://example.com/v?token=x"));
    let on_app = env.fake.add_incoming_number(&sid, "+15550400003", None);
    let again = env.fake.add_incoming_number(&sid, "+15550400004", None);
    {
        let mut state = env.fake.state();
        state.incoming_numbers.get_mut(&on_trunk).unwrap().trunk_sid = Some(their_trunk.clone());
        state.incoming_numbers.get_mut(&on_app).unwrap().voice_application_sid = Some(their_app.clone());
    }
    proxy.fail("DynamoDB_20120810.TransactWriteItems", None);
    // Every way back fails (the attach itself, an update to the provider's trunk, works).
    let put_backs = [
        "detach_phone_number".to_owned(),
        format!("update_incoming_number TrunkSid={their_trunk}"),
        format!("update_incoming_number VoiceApplicationSid={their_app}"),
    ];
    for step in &put_backs {
        env.fake.inject(step, FaultAction::Fail { status: 500, code: 20500 }, None);
    }
    let body = json!({"phoneNumberSids": [plain, on_trunk, on_app, again]}).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(ORG).param("id", &id).body(&body).build();
    let (status, result) = status_and_body(&import_numbers::handle(&env.services, req).await.unwrap());
    assert_eq!((status, result["failedCount"].as_u64()), (200, Some(4)), "{result}");
    let org = OrganizationId::parse(ORG).unwrap();
    let recorded = env.services.store.leftover_resources(&org, id.parse().unwrap()).await.unwrap();
    assert_eq!(recorded.len(), 4, "every number recorded, none overwriting another: {recorded:?}");
    assert!(recorded.iter().all(|r| r.kind() == "trunkPhoneNumber"), "{recorded:?}");

    // Twilio recovers; the customer takes one number off the trunk and imports it again.
    proxy.clear();
    env.fake.clear_faults();
    env.fake.state().incoming_numbers.get_mut(&again).unwrap().trunk_sid = None;
    let body = json!({"phoneNumberSids": [again]}).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(ORG).param("id", &id).body(&body).build();
    let (_, result) = status_and_body(&import_numbers::handle(&env.services, req).await.unwrap());
    assert_eq!(result["successCount"], 1, "{result}");

    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.cleared, 1, "{swept:?}");
    let (numbers, our_trunk) = {
        let state = env.fake.state();
        (state.incoming_numbers.clone(), state.trunks.values().find(|t| t.sid != their_trunk).unwrap().sid.clone())
    };
    let routing = |pn: &str| (numbers[pn].trunk_sid.clone(), numbers[pn].voice_application_sid.clone());
    assert_eq!(routing(&plain), (None, None));
    assert_eq!(routing(&on_trunk), (Some(their_trunk.clone()), None), "back on the customer's trunk");
    assert_eq!(routing(&on_app), (None, Some(their_app.clone())), "its application back");
    assert_eq!(routing(&again), (Some(our_trunk), None), "imported again: left on the trunk");
    assert!(env.services.store.leftover_resources(&org, id.parse().unwrap()).await.unwrap().is_empty());
}

/// A leftover of a live provider stuck because the customer rotated the token in Twilio is
/// swept with the provider's new token once it is rotated here too.
#[tokio::test]
async fn a_leftover_stuck_on_a_rotated_token_is_swept_after_rotation() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    let pn = env.fake.add_incoming_number(&sid, "+15550400011", None);
    proxy.fail("DynamoDB_20120810.TransactWriteItems", None);
    env.fake.inject("detach_phone_number", FaultAction::Fail { status: 500, code: 20500 }, None);
    let body = json!({"phoneNumberSids": [pn]}).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(ORG).param("id", &id).body(&body).build();
    let (_, result) = status_and_body(&import_numbers::handle(&env.services, req).await.unwrap());
    assert_eq!(result["failedCount"], 1, "{result}");
    proxy.clear();
    env.fake.clear_faults();

    let new_token = crate::harness::random_token();
    env.fake.set_auth_token(&sid, &new_token);
    assert_eq!(functions::provider::sweep::run(&env.services, None).await.unwrap().stuck, 1);
    let body = json!({"authToken": new_token}).to_string();
    let req =
        Req::new("PATCH", "/api/v1/providers/twilio/{id}/auth-token").org(ORG).param("id", &id).body(&body).build();
    let (status, body) =
        status_and_body(&functions::handlers::rotate_twilio_auth_token::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.cleared, 1, "{swept:?}");
    assert_eq!(env.fake.state().incoming_numbers[&pn].trunk_sid, None);
}

/// A new account's provider: its Account SID, id and trunk.
async fn new_provider(env: &TestEnv) -> (String, String, String) {
    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(env, ORG, &sid, &token).await;
    (sid, provider["id"].as_str().unwrap().to_owned(), provider["trunkSid"].as_str().unwrap().to_owned())
}

/// Imports one number into `org`'s provider `id`, which must succeed.
async fn import_one(env: &TestEnv, org: &str, id: &str, number: &str) {
    let body = json!({"phoneNumberSids": [number]}).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(org).param("id", id).body(&body).build();
    assert_eq!(status_and_body(&import_numbers::handle(&env.services, req).await.unwrap()).1["successCount"], 1);
}

/// A number's transaction that DynamoDB committed but answered an error (the retry then meets
/// its own claim) is an import: the number stays on the trunk with its record and the count.
#[tokio::test]
async fn a_number_whose_stored_transaction_answered_an_error_is_imported() {
    use integration_tests::aws_proxy::Failure;
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, id, trunk) = new_provider(&env).await;
    let pn = env.fake.add_incoming_number(&sid, "+15550400021", None);
    proxy.fail_with("DynamoDB_20120810.TransactWriteItems", Failure::CommitThenFail, Some(1));
    import_one(&env, ORG, &id, &pn).await;
    assert_eq!(env.fake.state().incoming_numbers[&pn].trunk_sid.as_deref(), Some(trunk.as_str()));
    let org = OrganizationId::parse(ORG).unwrap();
    let provider = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(provider.phone_number_count, 1);
    assert_eq!(env.services.store.all_numbers(&org, provider.id).await.unwrap().len(), 1);
}

/// A provider force-deleted while the number it imported (which had the customer's
/// application) could not be given back: the number and the trunk are left for the sweeper.
/// Returns the trunk, the application and the number.
async fn force_deleted_with_a_number_left(env: &TestEnv, phone: &str) -> (String, String, String) {
    let (sid, id, trunk) = new_provider(env).await;
    let app = env.fake.add_application(&sid);
    let pn = env.fake.add_incoming_number(&sid, phone, None);
    env.fake.state().incoming_numbers.get_mut(&pn).unwrap().voice_application_sid = Some(app.clone());
    import_one(env, ORG, &id, &pn).await;
    env.fake.inject("update_incoming_number", FaultAction::Fail { status: 400, code: 20001 }, None);
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id).query("force", "true").build();
    let (status, body) =
        status_and_body(&functions::handlers::delete_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    env.fake.clear_faults();
    (trunk, app, pn)
}

/// A forced delete leaves a number (it had the customer's application) with the trunk: while
/// the number cannot be given back, the sweeper leaves the trunk alone (deleting it would take
/// the number off with no routing); once it can, the number gets its application back and the
/// trunk goes.
#[tokio::test]
async fn the_sweeper_gives_numbers_back_before_it_deletes_their_trunk() {
    let env = TestEnv::new().await;
    let (trunk, app, pn) = force_deleted_with_a_number_left(&env, "+15550400021").await;
    // The number still cannot be given back.
    env.fake.inject("update_incoming_number", FaultAction::Fail { status: 400, code: 20001 }, None);
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.remaining, 1, "{swept:?}");
    assert!(env.fake.state().trunks.contains_key(&trunk), "the trunk waits for its number");

    env.fake.clear_faults();
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.cleared, 1, "{swept:?}");
    let state = env.fake.state();
    assert_eq!(
        state.incoming_numbers[&pn].voice_application_sid.as_deref(),
        Some(app.as_str()),
        "its application back"
    );
    assert!(!state.trunks.contains_key(&trunk), "then the trunk went");
}

/// A leftover record of the earlier format (one item listing every resource) is rewritten one
/// item per resource by the sweeper, and swept.
#[tokio::test]
async fn a_leftover_record_of_the_earlier_format_is_migrated_and_swept() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let trunk = env.fake.add_trunk(&sid);
    // A number the record lists that was imported again since (by another provider, on its trunk).
    let again = env.fake.add_incoming_number(&sid, "+15550400041", None);
    let other = create_provider(&env, "org-again", &sid, &token).await;
    import_one(&env, "org-again", other["id"].as_str().unwrap(), &again).await;
    let (org, provider_id) = (OrganizationId::parse(ORG).unwrap(), uuid::Uuid::now_v7());
    let owner = shared::crypto::SecretOwner { organization_id: org.clone(), provider_id };
    let key = env.services.envelope.generate_data_key(&owner).await.unwrap();
    let sealed = key.seal(shared::crypto::SecretKind::AuthToken, &token);
    let entry = |kind: &str, sid: &str| {
        AttributeValue::M(HashMap::from([
            ("kind".to_owned(), AttributeValue::S(kind.into())),
            ("sid".to_owned(), AttributeValue::S(sid.into())),
        ]))
    };
    let other_trunk = other["trunkSid"].as_str().unwrap().to_owned();
    let resources = vec![entry("trunk", &trunk), entry("trunkPhoneNumber", &format!("{other_trunk}/{again}"))];
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let item = HashMap::from([
        ("pk".to_owned(), s(&format!("ORG#{ORG}"))),
        ("sk".to_owned(), s(&format!("ORPHAN#{provider_id}"))),
        ("entity".to_owned(), s("orphan")),
        ("organizationId".to_owned(), s(ORG)),
        ("providerId".to_owned(), s(&provider_id.to_string())),
        ("accountSid".to_owned(), s(&sid)),
        ("createdAt".to_owned(), s("2026-11-01T00:00:00Z")),
        ("authToken".to_owned(), shared::storage::item::secret(&sealed)),
        ("resources".to_owned(), AttributeValue::L(resources)),
    ]);
    env.dynamo.put_item().table_name(&env.table).set_item(Some(item)).send().await.unwrap();

    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.cleared, 1, "{swept:?}");
    assert!(!env.fake.state().trunks.contains_key(&trunk), "the trunk was removed");
    assert_eq!(
        env.fake.state().incoming_numbers[&again].trunk_sid.as_deref(),
        Some(other_trunk.as_str()),
        "imported again: left on its trunk"
    );
    let left = env.services.store.leftover_resources(&org, provider_id).await.unwrap();
    assert!(left.is_empty(), "the record of the earlier format is gone: {left:?}");
}

/// A number stuck on a token Twilio rejected keeps holding its trunk on later passes (the
/// trunk is not deleted under it), and a number whose import is under way (reserved) is
/// looked at again later, its trunk kept meanwhile.
#[tokio::test]
async fn numbers_stuck_or_being_imported_keep_their_trunk() {
    let env = TestEnv::new().await;
    let (trunk, _, pn) = force_deleted_with_a_number_left(&env, "+15550400031").await;

    // Twilio rejects the number's give-back once as if the token were refused: stuck on it.
    env.fake.inject("update_incoming_number", FaultAction::Fail { status: 401, code: 20003 }, Some(1));
    assert_eq!(functions::provider::sweep::run(&env.services, None).await.unwrap().stuck, 1);
    assert_eq!(
        functions::provider::sweep::run(&env.services, None).await.unwrap().stuck,
        1,
        "not retried on that token"
    );
    assert!(env.fake.state().trunks.contains_key(&trunk), "the stuck number still holds its trunk");
    assert_eq!(env.fake.state().incoming_numbers[&pn].trunk_sid.as_deref(), Some(trunk.as_str()));

    // Another provider's import of a leftover number is under way: it waits, and so does its trunk.
    let (sid2, id2, trunk2) = new_provider(&env).await;
    let pn2 = env.fake.add_incoming_number(&sid2, "+15550400032", None);
    import_one(&env, ORG, &id2, &pn2).await;
    env.fake.inject("detach_phone_number", FaultAction::Fail { status: 500, code: 20500 }, None);
    env.fake.inject("delete_trunk", FaultAction::Fail { status: 500, code: 20500 }, None);
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id2).query("force", "true").build();
    assert_eq!(functions::handlers::delete_provider::handle(&env.services, req).await.unwrap().status(), 200);
    env.fake.clear_faults();
    let sid_of = shared::model::PhoneNumberSid::parse(&pn2).unwrap();
    let org = OrganizationId::parse("org-other").unwrap();
    env.services.store.reserve_number(&org, uuid::Uuid::now_v7(), &sid_of).await.unwrap();
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!((swept.remaining, swept.stuck), (1, 1), "waiting, not failed: {swept:?}");
    assert!(env.fake.state().trunks.contains_key(&trunk2), "the trunk waits while the number is being imported");
    let ours = OrganizationId::parse(ORG).unwrap();
    let leftovers = env.services.store.leftover_resources(&ours, id2.parse().unwrap()).await.unwrap();
    assert!(leftovers.iter().any(|r| r.kind() == "trunkPhoneNumber"), "the number is still a leftover: {leftovers:?}");
}

/// A leftover number whose own provider is still being deleted (its claim still held by that
/// provider) is not taken for "imported again": it stays a leftover and its trunk stays.
#[tokio::test]
async fn a_number_still_claimed_by_its_deleting_provider_stays_a_leftover() {
    let env = TestEnv::new().await;
    let (sid, id, trunk) = new_provider(&env).await;
    let pn = env.fake.add_incoming_number(&sid, "+15550400051", None);
    import_one(&env, ORG, &id, &pn).await;
    // A delete that stops midway: the provider is marked deleting, the number still recorded.
    env.fake.inject("detach_phone_number", FaultAction::Fail { status: 500, code: 20500 }, None);
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id).build();
    assert_eq!(functions::handlers::delete_provider::handle(&env.services, req).await.unwrap().status(), 502);
    let org = OrganizationId::parse(ORG).unwrap();
    let record = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    let numbers = env.services.store.all_numbers(&org, record.id).await.unwrap();
    let number_sid = numbers[0].phone_number_sid.clone();
    let leftovers = [
        shared::twilio::TwilioResource::TrunkPhoneNumber { trunk_sid: record.trunk_sid.clone(), number_sid },
        shared::twilio::TwilioResource::Trunk { trunk_sid: record.trunk_sid.clone() },
    ];
    functions::provider::cleanup::record_for_sweeper(&env.services, &record, &leftovers, &numbers).await.unwrap();
    env.fake.clear_faults();

    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.remaining, 1, "{swept:?}");
    assert!(env.fake.state().trunks.contains_key(&trunk), "the trunk stays under the number");
    assert_eq!(env.fake.state().incoming_numbers[&pn].trunk_sid.as_deref(), Some(trunk.as_str()));
    assert_eq!(env.services.store.leftover_resources(&org, record.id).await.unwrap().len(), 2, "still leftovers");
}

/// The sweeper forgets (or marks stuck) only the recording of a leftover it read: the same
/// resource recorded again since (a new failed undo, say) stays for the next pass.
#[tokio::test]
async fn a_leftover_recorded_again_is_not_forgotten_with_the_old_one() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    let org = OrganizationId::parse(ORG).unwrap();
    let record = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    let trunk = shared::twilio::TwilioResource::Trunk { trunk_sid: record.trunk_sid.clone() };
    let record_it =
        || functions::provider::cleanup::record_for_sweeper(&env.services, &record, std::slice::from_ref(&trunk), &[]);
    record_it().await.unwrap();
    let read = env.services.store.leftovers_of(&org, record.id).await.unwrap().remove(0).unwrap();
    record_it().await.unwrap();
    env.services.store.forget_leftover(&read).await.unwrap();
    let mut stuck = read.clone();
    stuck.stuck = Some(("rejected".into(), record.credential.secret.clone()));
    env.services.store.mark_leftover_stuck(&stuck).await.unwrap();
    let now = env.services.store.leftovers_of(&org, record.id).await.unwrap().remove(0).unwrap();
    assert_ne!(now.record_id, read.record_id, "the newer recording stays");
    assert!(now.stuck.is_none(), "and is not marked with the old one's state");
    env.services.store.forget_leftover(&now).await.unwrap();
    assert!(env.services.store.leftover_resources(&org, record.id).await.unwrap().is_empty());
}

/// A forced delete leaves hundreds of numbers: the sweeper gives them back a few at a time,
/// forgets each as soon as it is back, and stops starting them when its time runs short, so a
/// pass that cannot finish still makes progress the next pass keeps; the trunk waits for the
/// last number.
#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_gives_back_many_numbers_across_passes() {
    let env = TestEnv::new().await;
    let (sid, id, trunk) = new_provider(&env).await;
    let org = OrganizationId::parse(ORG).unwrap();
    let provider_id: uuid::Uuid = id.parse().unwrap();
    for i in 0..300 {
        let phone = format!("+1555090{i:04}");
        integration_tests::seed::imported_number(
            &env.fake,
            &env.services.store,
            &org,
            provider_id,
            &sid,
            &trunk,
            &phone,
        )
        .await;
    }
    for step in ["update_incoming_number", "detach_phone_number"] {
        env.fake.inject(step, FaultAction::Fail { status: 400, code: 20001 }, None);
    }
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id).query("force", "true").build();
    let (status, body) =
        status_and_body(&functions::handlers::delete_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    env.fake.clear_faults();
    let left_numbers = |recorded: &[shared::twilio::TwilioResource]| {
        recorded.iter().filter(|r| r.kind() == "trunkPhoneNumber").count()
    };
    assert_eq!(left_numbers(&env.services.store.leftover_resources(&org, provider_id).await.unwrap()), 300);

    // A pass with less time than the numbers take.
    env.fake.set_latency(std::time::Duration::from_millis(40));
    let started = std::time::Instant::now();
    let deadline = Some(started + std::time::Duration::from_secs(7));
    let outcome = shared::deadline::within(
        deadline,
        functions::provider::sweep::sweep_one(&env.services, &org, provider_id, None),
    )
    .await
    .unwrap();
    assert_eq!(outcome, functions::provider::sweep::Outcome::Remaining);
    // Lambda ends the invocation at its deadline: the pass must be over by then.
    assert!(started.elapsed() < std::time::Duration::from_secs(7), "the pass took {:?}", started.elapsed());
    let after_one = left_numbers(&env.services.store.leftover_resources(&org, provider_id).await.unwrap());
    assert!(after_one > 0 && after_one < 300, "{after_one} numbers left after a short pass");
    assert!(env.fake.state().trunks.contains_key(&trunk), "the trunk waits for its numbers");

    env.fake.set_latency(std::time::Duration::ZERO);
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.cleared, 1, "{swept:?}");
    assert!(env.services.store.leftover_resources(&org, provider_id).await.unwrap().is_empty());
    assert!(!env.fake.state().trunks.contains_key(&trunk));
    let state = env.fake.state();
    assert!(state.incoming_numbers.values().filter(|n| n.account_sid == sid).all(|n| n.trunk_sid.is_none()));
}

/// Past the invocation's deadline, removal does not wait to retry what Twilio cannot be asked
/// any more: what is left comes back at once, for the caller to record in the time it kept.
#[tokio::test]
async fn removal_past_the_deadline_does_not_wait_to_retry() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(&env, ORG, &sid, &token).await;
    let org = OrganizationId::parse(ORG).unwrap();
    let id: uuid::Uuid = provider["id"].as_str().unwrap().parse().unwrap();
    let record = env.services.store.get_provider(&org, id).await.unwrap().unwrap();
    let creds = shared::model::TwilioCredentials {
        account_sid: record.account_sid.clone(),
        auth: shared::model::TwilioAuth::AuthToken(shared::model::AuthToken::parse(&token).unwrap()),
        region: Default::default(),
    };
    let resources = [
        shared::twilio::TwilioResource::Trunk { trunk_sid: record.trunk_sid.clone() },
        shared::twilio::TwilioResource::CredentialList { list_sid: record.credential_list_sid.clone() },
    ];
    let started = std::time::Instant::now();
    let left = shared::deadline::within(
        Some(started),
        functions::provider::cleanup::remove_resources(&env.services.twilio, &creds, &resources),
    )
    .await;
    assert_eq!(left.len(), 2);
    assert!(started.elapsed() < std::time::Duration::from_millis(200), "waited {:?}", started.elapsed());
}
