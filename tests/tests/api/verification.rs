//! Verification against the fake Twilio with drift injected, and the hourly job.

use crate::harness::{Req, TestEnv, create_provider, random_token, status_and_body};
use functions::handlers::{import_numbers, verify_provider};
use functions::provider::reverify;
use serde_json::{Value, json};
use shared::model::OrganizationId;

const ORG: &str = "org-acme";

struct Provider {
    sid: String,
    id: String,
    trunk_sid: String,
}

async fn setup(env: &TestEnv, org: &str, account_type: &str) -> Provider {
    let (sid, token) = env.fake.add_account("active", account_type);
    let provider = create_provider(env, org, &sid, &token).await;
    Provider {
        trunk_sid: provider["trunkSid"].as_str().unwrap().to_owned(),
        id: provider["id"].as_str().unwrap().to_owned(),
        sid,
    }
}

async fn verify(env: &TestEnv, org: &str, id: &str) -> (u16, Value) {
    let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(org).param("id", id).build();
    status_and_body(&verify_provider::handle(&env.services, req).await.unwrap())
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["checkName"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {body}"))
}

/// The stored verification fields equal the response.
async fn assert_stored_matches(env: &TestEnv, org: &str, id: &str, body: &Value) {
    let record = env
        .services
        .store
        .get_provider(&OrganizationId::parse(org).unwrap(), id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(serde_json::to_value(record.verification_status).unwrap(), body["status"]);
    assert_eq!(record.last_verified_at.as_ref().map(|at| at.as_str()), body["lastVerifiedAt"].as_str());
    assert_eq!(serde_json::to_value(record.verification_details.unwrap()).unwrap(), body["checks"]);
}

#[tokio::test]
async fn a_healthy_provider_verifies_and_every_check_is_reported() {
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    let (status, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "verified", "{body}");
    let names: Vec<&str> =
        body["checks"].as_array().unwrap().iter().map(|c| c["checkName"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "credentials",
            "account",
            "permissions",
            "trunk",
            "secureTrunking",
            "credentialList",
            "origination",
            "phoneNumbers"
        ]
    );
    assert_stored_matches(&env, ORG, &p.id, &body).await;

    let (status, _) = verify(&env, "org-other", &p.id).await;
    assert_eq!(status, 404);
    let (status, _) = verify(&env, ORG, "nope").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_revoked_token_fails_credentials_and_skips_the_rest() {
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    env.fake.set_auth_token(&p.sid, &random_token());
    let (status, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "failed");
    assert_eq!(check(&body, "credentials")["status"], "failed");
    assert!(check(&body, "credentials")["message"].as_str().unwrap().contains("/credentials"));
    // Twilio's 401 does not say whether the token is wrong or the account suspended: both say so.
    assert_eq!(check(&body, "account")["status"], "failed");
    assert!(check(&body, "account")["message"].as_str().unwrap().contains("suspended or closed"));
    for name in ["permissions", "trunk", "credentialList", "origination", "phoneNumbers"] {
        assert!(check(&body, name)["message"].as_str().unwrap().starts_with("Skipped"), "{name}");
    }
    assert_stored_matches(&env, ORG, &p.id, &body).await;
}

#[tokio::test]
async fn account_status_and_type_drive_the_account_check() {
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    env.fake.set_account_status(&p.sid, "suspended");
    let (_, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(body["status"], "failed");
    assert_eq!(check(&body, "account")["status"], "failed");
    assert!(check(&body, "account")["message"].as_str().unwrap().contains("suspended"));

    let trial = setup(&env, ORG, "Trial").await;
    let (_, body) = verify(&env, ORG, &trial.id).await;
    assert_eq!(body["status"], "warning", "{body}");
    assert_eq!(check(&body, "account")["status"], "warning");
    assert_stored_matches(&env, ORG, &trial.id, &body).await;
}

#[tokio::test]
async fn trunk_drift_is_found() {
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    // TransferMode changed behind our back: a warning.
    env.fake.state().trunks.get_mut(&p.trunk_sid).unwrap().transfer_mode = "enable-all".into();
    let (_, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(body["status"], "warning", "{body}");
    assert_eq!(check(&body, "trunk")["status"], "warning");
    assert_eq!(check(&body, "trunk")["details"]["transferMode"], "enable-all");

    // Trunk deleted: failed.
    env.fake.state().trunks.remove(&p.trunk_sid);
    let (_, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(body["status"], "failed");
    assert_eq!(check(&body, "trunk")["status"], "failed");
    assert!(check(&body, "trunk")["message"].as_str().unwrap().contains("deleted"));
    assert_stored_matches(&env, ORG, &p.id, &body).await;
}

#[tokio::test]
async fn a_detached_credential_list_fails() {
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    env.fake.state().trunk_credential_lists.clear();
    let (_, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(body["status"], "failed");
    assert_eq!(check(&body, "credentialList")["status"], "failed");
    assert!(check(&body, "credentialList")["message"].as_str().unwrap().contains("not attached"));
    assert_eq!(check(&body, "trunk")["status"], "passed");
}

#[tokio::test]
async fn a_detached_number_warns_and_is_listed() {
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    let kept = env.fake.add_incoming_number(&p.sid, "+15550000100", None);
    let lost = env.fake.add_incoming_number(&p.sid, "+15550000101", None);
    let body = json!({"phoneNumberSids": [kept, lost]}).to_string();
    let req = Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers")
        .org(ORG)
        .param("id", &p.id)
        .body(&body)
        .build();
    assert_eq!(status_and_body(&import_numbers::handle(&env.services, req).await.unwrap()).1["successCount"], 2);
    let (_, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(check(&body, "phoneNumbers")["status"], "passed", "{body}");

    env.fake.state().incoming_numbers.get_mut(&lost).unwrap().trunk_sid = None;
    let (_, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(body["status"], "warning");
    let numbers = check(&body, "phoneNumbers");
    assert_eq!(numbers["status"], "warning");
    let detached: Vec<&str> = numbers["details"]["detached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["phoneNumberSid"].as_str().unwrap())
        .collect();
    assert_eq!(detached, [lost.as_str()]);
    assert_stored_matches(&env, ORG, &p.id, &body).await;
}

#[tokio::test]
async fn the_hourly_job_verifies_every_organization_despite_one_failing_provider() {
    let env = TestEnv::new().await;
    let healthy = setup(&env, "org-a", "Full").await;
    let trial = setup(&env, "org-b", "Trial").await;
    let drifted = setup(&env, "org-c", "Full").await;
    let broken = setup(&env, "org-c", "Full").await;
    env.fake.state().trunks.remove(&drifted.trunk_sid);
    // The broken provider's stored token cannot be decrypted any more.
    env.dynamo
        .update_item()
        .table_name(&env.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("ORG#org-c".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(format!("PROVIDER#{}", broken.id)))
        .update_expression("SET authToken.nonce = :n")
        .expression_attribute_values(":n", aws_sdk_dynamodb::types::AttributeValue::B(vec![0u8; 12].into()))
        .send()
        .await
        .unwrap();

    let summary = reverify::run(&env.services).await.unwrap();
    assert_eq!(
        summary,
        reverify::Summary { verified: 1, warning: 1, failed: 1, errors: 1, skipped: 0, held: 0, stale: 0, changed: 1 },
        "{summary:?}"
    );
    let stored = |org: &str, id: &str| {
        let store = env.services.store.clone();
        let (org, id) = (OrganizationId::parse(org).unwrap(), id.parse().unwrap());
        async move { store.get_provider(&org, id).await.unwrap().unwrap() }
    };
    assert_eq!(stored("org-a", &healthy.id).await.verification_status, shared::model::VerificationStatus::Verified);
    assert_eq!(stored("org-b", &trial.id).await.verification_status, shared::model::VerificationStatus::Warning);
    let drifted_record = stored("org-c", &drifted.id).await;
    assert_eq!(drifted_record.verification_status, shared::model::VerificationStatus::Failed);
    assert!(
        drifted_record.verification_details.unwrap().iter().any(|c| c.check_name == shared::model::CheckName::Trunk)
    );
}

/// Each resource is read once, the permissions check derives from those reads, and a paid
/// account's type is known from the last check: five Twilio requests for a healthy provider
/// with numbers.
#[tokio::test]
async fn a_healthy_provider_with_numbers_costs_five_twilio_requests() {
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    let number = env.fake.add_incoming_number(&p.sid, "+15550500001", None);
    let body = json!({"phoneNumberSids": [number]}).to_string();
    let req = Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers")
        .org(ORG)
        .param("id", &p.id)
        .body(&body)
        .build();
    assert_eq!(status_and_body(&import_numbers::handle(&env.services, req).await.unwrap()).0, 200);
    let before = env.fake.request_log().len();
    let (_, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(body["status"], "verified", "{body}");
    let steps: Vec<String> = env.fake.request_log()[before..].iter().map(|r| r.step.clone()).collect();
    assert_eq!(steps.len(), 5, "{steps:?}");
    assert!(!steps.iter().any(|s| s == "fetch_account"), "{steps:?}");

    // A Trial account is read each time (an upgrade must be noticed).
    let trial = setup(&env, ORG, "Trial").await;
    let before = env.fake.request_log().len();
    verify(&env, ORG, &trial.id).await;
    let steps: Vec<String> = env.fake.request_log()[before..].iter().map(|r| r.step.clone()).collect();
    assert!(steps.iter().any(|s| s == "fetch_account"), "{steps:?}");
}

/// The customer rotates the token in Twilio and here while a verification with the old one is
/// under way: the rotation's passing result stays, not the stale "credentials rejected" (which
/// would also make the hourly job hold the provider).
#[tokio::test(flavor = "multi_thread")]
async fn a_verification_with_a_token_rotated_meanwhile_never_overwrites_the_rotation() {
    use integration_tests::fake_twilio::FaultAction;
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    let new_token = random_token();
    env.fake.set_auth_token(&p.sid, &new_token);
    // The verification's first read is answered late (Twilio refuses the old token at once).
    env.fake.inject("fetch_trunk", FaultAction::Delay(std::time::Duration::from_millis(500)), Some(1));
    let verifying = {
        let (services, id) = (env.services.clone(), p.id.clone());
        tokio::spawn(async move {
            let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", &id).build();
            status_and_body(&verify_provider::handle(&services, req).await.unwrap())
        })
    };
    env.fake.until_faults_taken().await;
    let body = json!({"authToken": new_token}).to_string();
    let req =
        Req::new("PATCH", "/api/v1/providers/twilio/{id}/auth-token").org(ORG).param("id", &p.id).body(&body).build();
    let (status, rotated) =
        status_and_body(&functions::handlers::rotate_twilio_auth_token::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{rotated}");
    let (status, verified) = verifying.await.unwrap();
    assert_eq!(status, 200, "{verified}");
    assert_eq!(check(&verified, "credentials")["status"], "passed", "the newer result is answered: {verified}");
    let org = OrganizationId::parse(ORG).unwrap();
    let stored = env.services.store.get_provider(&org, p.id.parse().unwrap()).await.unwrap().unwrap();
    use shared::model::{CheckName, CheckStatus};
    let credentials = stored.verification_details.unwrap().into_iter().find(|c| c.check_name == CheckName::Credentials);
    assert_eq!(credentials.map(|c| c.status), Some(CheckStatus::Passed), "the rotation's result stays");
    let run = reverify::run(&env.services).await.unwrap();
    assert_eq!(run.held, 0, "the hourly job does not hold the provider: {run:?}");
}

/// A trunk Twilio fails to answer for is not reported as deleted: the checks on it say it
/// could not be read.
#[tokio::test]
async fn a_trunk_that_could_not_be_read_is_not_reported_deleted() {
    use integration_tests::fake_twilio::FaultAction;
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    env.fake.inject("fetch_trunk", FaultAction::Fail { status: 500, code: 20500 }, None);
    let (_, body) = verify(&env, ORG, &p.id).await;
    let text = body.to_string();
    assert!(!text.contains("deleted"), "{body}");
    let skipped: Vec<&Value> =
        body["checks"].as_array().unwrap().iter().filter(|c| c["details"]["skipped"] == true).collect();
    assert_eq!(skipped.len(), 4, "{body}");
    assert!(skipped.iter().all(|c| c["message"].as_str().unwrap().contains("could not be read")), "{body}");
}

/// A paid account's trunk read answered 403 (Twilio's answer for a suspended or closed
/// account as well as for a missing permission) proves nothing about the account: it is read,
/// and the answer, not a derived "active", is reported.
#[tokio::test]
async fn a_denied_trunk_read_does_not_pass_the_account_check_unread() {
    use integration_tests::fake_twilio::FaultAction;
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    let (_, body) = verify(&env, ORG, &p.id).await;
    assert_eq!(body["status"], "verified", "{body}");
    let denied = FaultAction::Fail { status: 403, code: 20403 };
    env.fake.inject("fetch_trunk", denied.clone(), None);
    env.fake.inject("fetch_account", denied, None);
    let before = env.fake.request_log().len();
    let (_, body) = verify(&env, ORG, &p.id).await;
    let steps: Vec<String> = env.fake.request_log()[before..].iter().map(|r| r.step.clone()).collect();
    assert!(steps.iter().any(|s| s == "fetch_account"), "the account is read: {steps:?}");
    assert_ne!(check(&body, "account")["status"], "passed", "{body}");
    assert!(!body.to_string().contains("account is active"), "{body}");
    let permissions = check(&body, "permissions");
    assert_eq!(permissions["status"], "failed", "{body}");
    assert!(permissions["message"].as_str().unwrap().contains("suspended or closed"), "{body}");
}

/// A verification the invocation's deadline cut short is not stored (what Twilio was not
/// asked says nothing about the provider): 503, and the stored result stays.
#[tokio::test]
async fn a_verification_cut_short_by_the_deadline_is_not_stored() {
    use integration_tests::fake_twilio::FaultAction;
    use lambda_http::RequestExt;
    let env = TestEnv::new().await;
    let p = setup(&env, ORG, "Full").await;
    let org = OrganizationId::parse(ORG).unwrap();
    let before = env.services.store.get_provider(&org, p.id.parse().unwrap()).await.unwrap().unwrap();
    env.fake.inject("fetch_trunk", FaultAction::Delay(std::time::Duration::from_secs(3)), None);
    let mut context = lambda_http::Context::default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    context.deadline = (now + std::time::Duration::from_millis(2500)).as_millis() as u64;
    let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", &p.id).build();
    let (status, body) =
        status_and_body(&verify_provider::handle(&env.services, req.with_lambda_context(context)).await.unwrap());
    assert_eq!(status, 503, "{body}");
    let after = env.services.store.get_provider(&org, p.id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (after.verification_status, after.last_verified_at, after.version),
        (before.verification_status, before.last_verified_at, before.version)
    );
}
