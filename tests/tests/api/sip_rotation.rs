//! The generated SIP credential: what the call engine reads, and rotating it without dropping
//! a call (both credentials work in Twilio through the overlap and the call engine is given
//! both, the finish removes the old one, nothing is left behind when a step fails).

use crate::harness::{Req, TestEnv, create_provider, status_and_body};
use functions::handlers::get_sip_credential::handle as read_sip_credential;
use functions::handlers::{
    delete_provider, finish_sip_credential_rotation, repair_provider, rotate_sip_credential, verify_provider,
};
use functions::provider::sip_credential::SipCredentialReader;
use integration_tests::fake_twilio::FaultAction;
use serde_json::{Value, json};
use shared::model::OrganizationId;
use uuid::Uuid;

const ORG: &str = "org-sip-rotation";

async fn rotate(env: &TestEnv, id: &str, body: Option<&str>) -> (u16, Value) {
    let req = Req::new("POST", "/api/v1/providers/{id}/sip-credential/rotate").org(ORG).param("id", id).body_opt(body);
    status_and_body(&rotate_sip_credential::handle(&env.services, req.build()).await.unwrap())
}

async fn finish(env: &TestEnv, id: &str) -> (u16, Value) {
    let req = Req::new("POST", "/api/v1/providers/{id}/sip-credential/rotate/finish").org(ORG).param("id", id);
    status_and_body(&finish_sip_credential_rotation::handle(&env.services, req.build()).await.unwrap())
}

/// What the call engine reads.
async fn engine_reads(env: &TestEnv, id: &str) -> Value {
    let reader = SipCredentialReader { store: env.services.store.clone(), envelope: env.services.envelope.clone() };
    let event = lambda_http::lambda_runtime::LambdaEvent::new(
        json!({"organizationId": ORG, "providerId": id}),
        lambda_http::lambda_runtime::Context::default(),
    );
    serde_json::to_value(read_sip_credential(&reader, event).await.unwrap()).unwrap()
}

async fn verify(env: &TestEnv, id: &str) -> Value {
    let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", id);
    let (status, body) = status_and_body(&verify_provider::handle(&env.services, req.build()).await.unwrap());
    assert_eq!(status, 200, "{body}");
    body
}

fn check(verification: &Value, name: &str) -> Value {
    verification["checks"].as_array().unwrap().iter().find(|c| c["checkName"] == name).unwrap().clone()
}

/// The usernames in the provider's credential list, and each one's password in Twilio.
fn listed(env: &TestEnv, list_sid: &str) -> std::collections::BTreeMap<String, String> {
    let state = env.fake.state();
    let credentials = state.credentials.values().filter(|c| c.credential_list_sid == list_sid);
    credentials.map(|c| (c.username.clone(), c.password.clone())).collect()
}

async fn provider(env: &TestEnv) -> (String, String, String) {
    let (sid, token) = env.fake.add_account("active", "Full");
    let created = create_provider(env, ORG, &sid, &token).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let org = OrganizationId::parse(ORG).unwrap();
    let record = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    (sid, id, record.credential_list_sid.to_string())
}

#[tokio::test]
async fn both_credentials_work_through_the_overlap_and_the_finish_removes_the_old_one() {
    let env = TestEnv::new().await;
    let (_, id, list) = provider(&env).await;
    let before = engine_reads(&env, &id).await;
    assert!(before.get("previous").is_none(), "{before}");

    let (status, rotated) = rotate(&env, &id, None).await;
    assert_eq!(status, 200, "{rotated}");
    let text = rotated.to_string();
    assert!(!text.contains("password") && !text.contains(before["password"].as_str().unwrap()), "{rotated}");
    assert_eq!(rotated["previous"]["username"], before["username"], "{rotated}");
    let new_user = rotated["current"]["username"].as_str().unwrap().to_owned();
    assert_ne!(new_user, before["username"].as_str().unwrap());
    assert!(new_user.len() <= 32, "Twilio's limit: {new_user}");
    let expires = shared::time::Timestamp::parse(rotated["previous"]["expiresAt"].as_str().unwrap()).unwrap();
    let overlap = expires.unix_seconds() - shared::time::Timestamp::now().unix_seconds();
    assert!((3590..=3600).contains(&overlap), "the default overlap is an hour: {overlap}");

    // Twilio accepts both; the engine is given both, each with the password Twilio holds.
    let in_twilio = listed(&env, &list);
    assert_eq!(in_twilio.len(), 2, "{in_twilio:?}");
    let during = engine_reads(&env, &id).await;
    assert_eq!(during["username"], new_user.as_str());
    assert_eq!(during["password"].as_str(), in_twilio.get(&new_user).map(String::as_str));
    assert_eq!(during["previous"]["username"], before["username"]);
    assert_eq!(during["previous"]["password"], before["password"]);
    assert_eq!(during["previous"]["expiresAt"], rotated["previous"]["expiresAt"]);
    let verification = verify(&env, &id).await;
    assert_eq!(verification["status"], "verified", "{verification}");
    assert_eq!(check(&verification, "credentialList")["details"]["previous"]["username"], before["username"]);

    // One rotation at a time.
    let (status, problem) = rotate(&env, &id, None).await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("rotate/finish"), "{problem}");

    let (status, finished) = finish(&env, &id).await;
    assert_eq!(status, 200, "{finished}");
    assert_eq!(finished["previous"], Value::Null);
    assert_eq!(finished["current"], rotated["current"]);
    assert_eq!(listed(&env, &list).into_keys().collect::<Vec<_>>(), [new_user.as_str()]);
    assert!(engine_reads(&env, &id).await.get("previous").is_none());
    // Finishing again changes nothing.
    let (status, again) = finish(&env, &id).await;
    assert_eq!((status, &again), (200, &finished));
    assert_eq!(verify(&env, &id).await["status"], "verified");
    // And the next rotation replaces the new one.
    let (status, next) = rotate(&env, &id, Some(r#"{"overlapSeconds": 60}"#)).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["previous"]["username"], new_user.as_str());
}

#[tokio::test]
async fn rotation_requests_are_checked_and_scoped_to_the_organization() {
    let env = TestEnv::new().await;
    let (_, id, list) = provider(&env).await;
    for (body, field) in [
        (r#"{"overlapSeconds": 86401}"#, "overlapSeconds"),
        (r#"{"overlapSeconds": -1}"#, "overlapSeconds"),
        (r#"{"overlapSeconds": "3600"}"#, "overlapSeconds"),
        (r#"{"overlapSeconds": 1.5}"#, "overlapSeconds"),
        (r#"{"overlap": 60}"#, "overlap"),
    ] {
        let (status, problem) = rotate(&env, &id, Some(body)).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert!(problem["errors"][field].is_array(), "{body}: {problem}");
    }
    let other = Req::new("POST", "/api/v1/providers/{id}/sip-credential/rotate").org("org-other").param("id", &id);
    let (status, _) = status_and_body(&rotate_sip_credential::handle(&env.services, other.build()).await.unwrap());
    assert_eq!(status, 404);
    let other =
        Req::new("POST", "/api/v1/providers/{id}/sip-credential/rotate/finish").org("org-other").param("id", &id);
    let (status, _) =
        status_and_body(&finish_sip_credential_rotation::handle(&env.services, other.build()).await.unwrap());
    assert_eq!(status, 404);
    let (status, _) = rotate(&env, &Uuid::now_v7().to_string(), None).await;
    assert_eq!(status, 404);
    assert_eq!(listed(&env, &list).len(), 1, "nothing was added");
    let (status, body) = rotate(&env, &id, Some(r#"{"overlapSeconds": 86400.0}"#)).await;
    assert_eq!(status, 200, "{body}");
    let expires = shared::time::Timestamp::parse(body["previous"]["expiresAt"].as_str().unwrap()).unwrap();
    assert!(expires.unix_seconds() - shared::time::Timestamp::now().unix_seconds() > 86_000, "{body}");
}

#[tokio::test]
async fn a_repeated_idempotency_key_rotates_once() {
    let env = TestEnv::new().await;
    let (_, id, list) = provider(&env).await;
    let request = || {
        Req::new("POST", "/api/v1/providers/{id}/sip-credential/rotate")
            .org(ORG)
            .param("id", &id)
            .header("idempotency-key", "rotate-once")
            .build()
    };
    let (status, first) = status_and_body(&rotate_sip_credential::handle(&env.services, request()).await.unwrap());
    assert_eq!(status, 200, "{first}");
    let replayed = rotate_sip_credential::handle(&env.services, request()).await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(status_and_body(&replayed), (200, first));
    assert_eq!(listed(&env, &list).len(), 2);
}

#[tokio::test]
async fn the_hourly_job_finishes_an_overlap_that_has_ended() {
    let env = TestEnv::new().await;
    let (_, id, list) = provider(&env).await;
    let (_, ongoing, ongoing_list) = provider(&env).await;
    let (status, rotated) = rotate(&env, &id, Some(r#"{"overlapSeconds": 0}"#)).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotate(&env, &ongoing, None).await.0, 200);
    // Expired: the engine no longer picks the old one up, though Twilio still has it.
    assert!(engine_reads(&env, &id).await.get("previous").is_none());
    assert_eq!(listed(&env, &list).len(), 2);

    let summary = functions::provider::reverify::run(&env.services).await.unwrap();
    assert_eq!(summary.verified, 2, "{summary:?}");
    let new_user = rotated["current"]["username"].as_str().unwrap();
    assert_eq!(listed(&env, &list).into_keys().collect::<Vec<_>>(), [new_user]);
    let org = OrganizationId::parse(ORG).unwrap();
    let stored = env.services.store.get_sip_credential(&org, id.parse().unwrap()).await.unwrap().unwrap();
    assert!(stored.previous.is_none());
    // A rotation still in its overlap is left as it is.
    assert_eq!(listed(&env, &ongoing_list).len(), 2);
    assert!(engine_reads(&env, &ongoing).await["previous"].is_object());
}

/// A rotation whose write answers an error that does not say it failed leaves its new
/// credential to its intent: stored, the intent is gone and the credential is current; not
/// stored, the sweeper removes it. Either way the record never names a credential Twilio lacks.
#[tokio::test]
async fn a_rotation_whose_write_fails_leaves_its_new_credential_to_the_sweeper() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (_, id, list) = provider(&env).await;
    let before = engine_reads(&env, &id).await;
    proxy.fail("DynamoDB_20120810.TransactWriteItems", None);
    let (status, problem) = rotate(&env, &id, None).await;
    proxy.clear();
    assert_eq!(status, 503, "{problem}");
    let after = engine_reads(&env, &id).await;
    assert_eq!((&after["username"], &after["password"]), (&before["username"], &before["password"]));
    assert_eq!(listed(&env, &list).len(), 2, "the new credential waits for the sweeper");
    let org = OrganizationId::parse(ORG).unwrap();
    let provider_id: Uuid = id.parse().unwrap();
    assert_eq!(env.services.store.intents_of(&org, provider_id).await.unwrap().len(), 1);
    let swept = functions::provider::sweep::run(&env.services, Some(std::time::Duration::ZERO)).await.unwrap();
    assert_eq!((swept.remaining, swept.pending, swept.stuck), (0, 0, 0), "{swept:?}");
    assert_eq!(listed(&env, &list).into_keys().collect::<Vec<_>>(), [before["username"].as_str().unwrap()]);
    assert!(env.services.store.intents_of(&org, provider_id).await.unwrap().is_empty());
    assert_eq!(engine_reads(&env, &id).await["password"], before["password"]);

    // Twilio refusing the new credential (a definite answer: nothing for the sweeper) changes
    // nothing either.
    env.fake.inject("create_credential", FaultAction::Fail { status: 400, code: 21201 }, None);
    let (status, problem) = rotate(&env, &id, None).await;
    env.fake.clear_faults();
    assert_eq!(status, 502, "{problem}");
    assert_eq!(listed(&env, &list).len(), 1);
    assert!(env.services.store.intents_of(&org, provider_id).await.unwrap().is_empty());
    assert_eq!(rotate(&env, &id, None).await.0, 200, "the provider can still rotate");
}

/// A rotation whose stored credential changed while Twilio made the new one (the condition of
/// its write failed, certainly) takes the new credential back at once.
#[tokio::test]
async fn a_rotation_that_lost_to_another_change_takes_its_new_credential_back() {
    let env = TestEnv::new().await;
    let (_, id, list) = provider(&env).await;
    let org = OrganizationId::parse(ORG).unwrap();
    let provider_id: Uuid = id.parse().unwrap();
    let stored = env.services.store.get_sip_credential(&org, provider_id).await.unwrap().unwrap();
    env.fake.inject("create_credential", FaultAction::Delay(std::time::Duration::from_millis(800)), Some(1));
    let rotation = rotate(&env, &id, None);
    let meanwhile = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // Another writer (the table edited by hand, say) stores a different current credential.
        let mut other = stored.clone();
        other.credential_sid = shared::model::CredentialSid::parse(&format!("CR{}", "e".repeat(32))).unwrap();
        let key = shared::storage::IntentKey::new(org.clone(), provider_id);
        env.services
            .store
            .rotate_sip_credential(
                &org,
                &other,
                &stored.credential_sid,
                &key,
                &shared::audit::AuditEvent::new(&org, provider_id, shared::audit::Action::SipCredentialRotate),
            )
            .await
            .unwrap();
    };
    let ((status, problem), ()) = tokio::join!(rotation, meanwhile);
    assert_eq!(status, 409, "{problem}");
    assert_eq!(listed(&env, &list).into_keys().collect::<Vec<_>>(), [stored.username.as_str()]);
    assert!(env.services.store.intents_of(&org, provider_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_finish_that_fails_after_twilio_is_completed_by_the_next_one() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (_, id, list) = provider(&env).await;
    let (_, rotated) = rotate(&env, &id, None).await;
    // The forget is a transaction with its audit event.
    proxy.fail("DynamoDB_20120810.TransactWriteItems", None);
    let (status, problem) = finish(&env, &id).await;
    proxy.clear();
    assert_eq!(status, 503, "{problem}");
    // Twilio no longer has the old credential; the table still names it.
    let new_user = rotated["current"]["username"].as_str().unwrap();
    assert_eq!(listed(&env, &list).into_keys().collect::<Vec<_>>(), [new_user]);
    let warned = check(&verify(&env, &id).await, "credentialList");
    assert_eq!(warned["status"], "warning", "{warned}");
    assert!(warned["message"].as_str().unwrap().contains("Finish the rotation"), "{warned}");

    let (status, finished) = finish(&env, &id).await;
    assert_eq!(status, 200, "{finished}");
    assert_eq!(finished["previous"], Value::Null);
    assert_eq!(verify(&env, &id).await["status"], "verified");

    // Twilio failing the removal keeps the rotation as it was, to be finished later.
    let (_, rotated) = rotate(&env, &id, None).await;
    env.fake.inject("delete_credential", FaultAction::Fail { status: 500, code: 20500 }, None);
    let (status, problem) = finish(&env, &id).await;
    env.fake.clear_faults();
    assert_eq!(status, 502, "{problem}");
    assert_eq!(engine_reads(&env, &id).await["previous"]["username"], rotated["previous"]["username"]);
    assert_eq!(finish(&env, &id).await.0, 200);
    assert_eq!(listed(&env, &list).len(), 1);
}

#[tokio::test]
async fn an_unknown_credential_in_the_list_is_reported_and_removed_by_repair() {
    let env = TestEnv::new().await;
    let (sid, id, list) = provider(&env).await;
    let (_, rotated) = rotate(&env, &id, None).await;
    // Someone adds a SIP user to the provider's list by hand.
    let org = OrganizationId::parse(ORG).unwrap();
    let record = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    let creds = functions::provider::record::stored_credentials(&env.services, &record).await.unwrap();
    let intruder = env
        .services
        .twilio
        .create_credential(&creds, &record.credential_list_sid, "intruder", &shared::model::SipPassword::generate())
        .await
        .unwrap();
    let warned = check(&verify(&env, &id).await, "credentialList");
    assert_eq!(warned["status"], "warning", "{warned}");
    assert!(warned["message"].as_str().unwrap().contains(intruder.sid.as_str()), "{warned}");

    let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id);
    let (status, repaired) = status_and_body(&repair_provider::handle(&env.services, req.build()).await.unwrap());
    assert_eq!(status, 200, "{repaired}");
    let action = repaired["actions"].as_array().unwrap().iter().find(|a| a["action"] == "removeUnknownSipCredentials");
    assert_eq!(action.unwrap()["result"], "done", "{repaired}");
    assert_eq!(repaired["verification"]["status"], "verified", "{repaired}");
    // The current and the previous credential stay: calls with either keep working.
    let mut users: Vec<String> = listed(&env, &list).into_keys().collect();
    users.sort();
    let mut expected = vec![
        rotated["current"]["username"].as_str().unwrap().to_owned(),
        rotated["previous"]["username"].as_str().unwrap().to_owned(),
    ];
    expected.sort();
    assert_eq!(users, expected);
    assert_eq!(env.fake.credentials_of(&sid).len(), 2);
}

/// A repair that replaces a deleted SIP credential answers and stores the verification of the
/// provider as it left it (the new credential), keeps a rotation's previous credential, and a
/// verify right after agrees.
#[tokio::test]
async fn a_repaired_sip_credential_is_what_the_repair_verifies_and_the_overlap_survives_it() {
    let env = TestEnv::new().await;
    let (_, id, list) = provider(&env).await;
    let (_, rotated) = rotate(&env, &id, None).await;
    let current = rotated["current"]["credentialSid"].as_str().unwrap().to_owned();
    env.fake.state().credentials.remove(&current);
    let failed = check(&verify(&env, &id).await, "credentialList");
    assert_eq!(failed["status"], "failed", "{failed}");

    let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id);
    let (status, repaired) = status_and_body(&repair_provider::handle(&env.services, req.build()).await.unwrap());
    assert_eq!(status, 200, "{repaired}");
    assert_eq!(repaired["verification"]["status"], "verified", "{repaired}");
    assert!(!repaired["verification"].to_string().contains(&current), "{repaired}");
    let stored = crate::harness::body_json(
        &functions::handlers::get_provider::handle(
            &env.services.store,
            Req::new("GET", "/api/v1/providers/{id}").org(ORG).param("id", &id).build(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(stored["verificationStatus"], "verified", "{stored}");
    assert_eq!(verify(&env, &id).await["status"], "verified");

    let engine = engine_reads(&env, &id).await;
    let in_twilio = listed(&env, &list);
    assert_eq!(engine["password"].as_str(), in_twilio.get(engine["username"].as_str().unwrap()).map(String::as_str));
    assert_eq!(engine["previous"]["username"], rotated["previous"]["username"], "{engine}");
    assert_eq!(in_twilio.len(), 2, "{in_twilio:?}");
}

/// The call engine's read of a provider: the credential, or the name of the error it gets.
async fn engine_read(env: &TestEnv, payload: Value) -> Result<Value, (String, String)> {
    let reader = SipCredentialReader { store: env.services.store.clone(), envelope: env.services.envelope.clone() };
    let event = lambda_http::lambda_runtime::LambdaEvent::new(payload, lambda_http::lambda_runtime::Context::default());
    read_sip_credential(&reader, event)
        .await
        .map(|credential| serde_json::to_value(credential).unwrap())
        .map_err(|e| (e.error_type().to_owned(), e.to_string()))
}

#[tokio::test]
async fn the_call_engine_gets_exactly_the_password_twilio_holds() {
    let env = TestEnv::new().await;
    let (_, id, list_sid) = provider(&env).await;
    let record = env.services.store.get_provider(&OrganizationId::parse(ORG).unwrap(), id.parse().unwrap()).await;
    let record = record.unwrap().unwrap();
    let credential = engine_reads(&env, &id).await;
    let username = credential["username"].as_str().unwrap();
    let twilio_password = env.fake.sip_password(&list_sid, username).expect("Twilio holds the user");
    assert_eq!(credential["password"], twilio_password.as_str());
    assert_eq!(credential["trunkSid"], record.trunk_sid.as_str());
    assert_eq!(credential["terminationUri"], record.termination_uri.as_str());
    assert_eq!(credential["providerId"], id.as_str());

    // Tenancy and absence look the same; a bad event is named, never a panic.
    let other = engine_read(&env, json!({"organizationId": "org-other", "providerId": id})).await;
    assert_eq!(other.unwrap_err().0, "ProviderNotFound");
    let (bad, message) = engine_read(&env, json!({"providerId": 7})).await.unwrap_err();
    assert_eq!(bad, "InvalidRequest");
    assert!(message.contains("organizationId"), "{message}");

    // Being deleted: no longer handed out.
    env.fake.inject("delete_trunk", FaultAction::Fail { status: 500, code: 20500 }, None);
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id).build();
    let (status, _) = status_and_body(&delete_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 502);
    let deleting = engine_read(&env, json!({"organizationId": ORG, "providerId": id})).await;
    assert_eq!(deleting.unwrap_err().0, "ProviderBeingDeleted");
}
