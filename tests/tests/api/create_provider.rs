//! `POST /api/v1/providers/twilio` against moto and the fake Twilio.

use crate::harness::{TestEnv, body_json, random_token, request, request_with_headers};
use functions::handlers::create_twilio_provider::handle;
use integration_tests::fake_twilio::FaultAction;
use serde_json::{Value, json};
use shared::crypto::{SecretKind, SecretOwner};
use shared::model::OrganizationId;
use std::time::Duration;

const ORG: &str = "org-acme";
const PATH: &str = "/api/v1/providers/twilio";

fn create_body(account_sid: &str, auth_token: &str) -> String {
    json!({"accountSid": account_sid, "authToken": auth_token, "name": "Main line", "supportsCallTransfer": true})
        .to_string()
}

async fn create(env: &TestEnv, org: &str, body: &str) -> (u16, Value, lambda_http::Response<lambda_http::Body>) {
    let response =
        handle(&env.services, request("POST", PATH, Some(org), Some(body))).await.expect("handler never fails");
    (response.status().as_u16(), body_json(&response), response)
}

/// The fake and the table hold nothing of a failed create.
async fn assert_nothing_left(env: &TestEnv, account_sid: &str) {
    assert!(env.fake.trunks_of(account_sid).is_empty(), "trunk left behind");
    assert!(env.fake.credential_lists_of(account_sid).is_empty(), "credential list left behind");
    assert!(env.fake.credentials_of(account_sid).is_empty(), "credential left behind");
    assert_eq!(env.item_count().await, 0, "records left in the table");
}

fn assert_problem(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected);
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem without {field}: {body}");
    }
}

#[tokio::test]
async fn creates_trunk_credential_list_and_credential_and_stores_them_encrypted() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let (status, body, response) = create(&env, ORG, &create_body(&sid, &token)).await;

    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(response.headers()["location"], format!("/api/v1/providers/twilio/{id}"));
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let mut fields: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "accountSid",
            "apiKeyMinted",
            "apiKeySid",
            "credentialType",
            "disasterRecoveryMethod",
            "disasterRecoveryUrl",
            "id",
            "lastVerifiedAt",
            "name",
            "phoneNumberCount",
            "providerType",
            "region",
            "secureTrunking",
            "supportsCallTransfer",
            "terminationUri",
            "trunkSid",
            "twilioRegion",
            "verificationDetails",
            "verificationStatus"
        ]
    );
    assert_eq!(body["providerType"], "twilio");
    assert_eq!(body["accountSid"], sid.as_str());
    assert_eq!(body["name"], "Main line");
    assert_eq!(body["verificationStatus"], "verified");
    assert_eq!(body["phoneNumberCount"], 0);
    assert_eq!(body["region"], "us1");
    assert_eq!(body["supportsCallTransfer"], true);
    let checks = body["verificationDetails"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["status"] == "passed" && c["checkName"].is_string() && c["timestamp"].is_string()));

    // Twilio holds exactly one trunk with the list attached, and one credential in that list.
    let trunks = env.fake.trunks_of(&sid);
    assert_eq!(trunks.len(), 1);
    let trunk = &trunks[0];
    assert_eq!(body["trunkSid"], trunk.sid.as_str());
    assert_eq!(trunk.transfer_mode, "enable-all");
    let label = trunk.domain_name.strip_suffix(".pstn.twilio.com").expect("a pstn.twilio.com domain");
    assert_eq!(body["terminationUri"], format!("sip:{label}.pstn.ashburn.twilio.com"));
    let lists = env.fake.credential_lists_of(&sid);
    assert_eq!(lists.len(), 1);
    assert_eq!(env.fake.lists_attached_to(&trunk.sid), [lists[0].sid.clone()]);
    let credentials = env.fake.credentials_of(&sid);
    assert_eq!(credentials.len(), 1);
    let password = credentials[0].password.clone();
    assert!(shared::model::SipPassword::is_acceptable(&password));

    // Neither the token nor the SIP password is in the table or the response in plaintext.
    let table = env.scan_table_text().await;
    assert!(!table.contains(&token) && !table.contains(&password));
    let response_text = body.to_string();
    assert!(!response_text.contains(&token) && !response_text.contains(&password));

    // Both decrypt with the right owner, and only with it.
    let org = OrganizationId::parse(ORG).unwrap();
    let provider_id = id.parse().unwrap();
    let record = env.services.store.get_provider(&org, provider_id).await.unwrap().expect("stored");
    let owner = SecretOwner { organization_id: org.clone(), provider_id };
    let opened = env.services.envelope.open(&owner, SecretKind::AuthToken, &record.credential.secret).await.unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), token);
    let sip = env.services.store.get_sip_credential(&org, provider_id).await.unwrap().expect("stored");
    assert_eq!(sip.credential_sid.as_str(), credentials[0].sid);
    let opened = env.services.envelope.open(&owner, SecretKind::SipPassword, &sip.password).await.unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), password);
    let stranger = SecretOwner { organization_id: OrganizationId::parse("org-other").unwrap(), provider_id };
    assert!(env.services.envelope.open(&stranger, SecretKind::AuthToken, &record.credential.secret).await.is_err());
    assert!(env.services.envelope.open(&owner, SecretKind::SipPassword, &record.credential.secret).await.is_err());
}

#[tokio::test]
async fn region_defaults_to_the_deployment_and_can_be_chosen() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let body = json!({"accountSid": sid, "authToken": token, "name": "Tokyo", "region": "jp1"}).to_string();
    let (status, body, _) = create(&env, ORG, &body).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["region"], "jp1");
    assert!(body["terminationUri"].as_str().unwrap().ends_with(".pstn.tokyo.twilio.com"));
    assert_eq!(body["supportsCallTransfer"], false);
    assert_eq!(env.fake.trunks_of(&sid)[0].transfer_mode, "disable-all");
}

#[tokio::test]
async fn invalid_bodies_name_every_failing_field_and_never_reach_twilio() {
    let env = TestEnv::new().await;
    let body = json!({"accountSid": "AC123", "authToken": "NOT-A-TOKEN", "name": "", "region": "mars", "supportsCallTransfer": "yes"});
    let (status, problem, response) = create(&env, ORG, &body.to_string()).await;
    assert_problem(status, &problem, 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let errors = problem["errors"].as_object().unwrap();
    for field in ["accountSid", "authToken", "name", "region", "supportsCallTransfer"] {
        assert!(errors.contains_key(field), "{field} not named: {problem}");
    }
    assert!(!problem.to_string().contains("NOT-A-TOKEN"));

    let (status, problem, _) = create(&env, ORG, "{}").await;
    assert_problem(status, &problem, 400);
    assert_eq!(problem["errors"].as_object().unwrap().len(), 3);

    let (status, problem, _) = create(&env, ORG, "{\"accountSid\": ").await;
    assert_problem(status, &problem, 400);
    let long_name =
        json!({"accountSid": format!("AC{}", "a".repeat(32)), "authToken": "a".repeat(32), "name": "n".repeat(101)});
    let (status, problem, _) = create(&env, ORG, &long_name.to_string()).await;
    assert_problem(status, &problem, 400);
    assert!(problem["errors"]["name"].is_array());
    assert!(env.fake.request_log().is_empty(), "Twilio was called for an invalid request");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_and_no_organization_is_401() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let text =
        request_with_headers("POST", PATH, Some(ORG), Some("accountSid=x"), json!({"content-type": "text/plain"}));
    let response = handle(&env.services, text).await.unwrap();
    assert_problem(response.status().as_u16(), &body_json(&response), 415);

    let anonymous = request("POST", PATH, None, Some(&create_body(&sid, &token)));
    let response = handle(&env.services, anonymous).await.unwrap();
    assert_problem(response.status().as_u16(), &body_json(&response), 401);
    assert!(env.fake.request_log().is_empty());
}

#[tokio::test]
async fn rejected_credentials_are_422_and_create_nothing() {
    let env = TestEnv::new().await;
    let (sid, _) = env.fake.add_account("active", "Full");
    let (status, problem, _) = create(&env, ORG, &create_body(&sid, &random_token())).await;
    assert_problem(status, &problem, 422);
    assert_eq!(problem["title"], "Twilio rejected the credentials");
    assert_nothing_left(&env, &sid).await;
}

#[tokio::test]
async fn a_suspended_account_is_422_saying_what_twilios_401_can_mean() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("suspended", "Full");
    let (status, problem, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_problem(status, &problem, 422);
    assert!(problem["detail"].as_str().unwrap().contains("suspended or closed"), "{problem}");
    assert_nothing_left(&env, &sid).await;
}

#[tokio::test]
async fn a_trial_account_is_created_with_a_warning() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Trial");
    let (status, body, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["verificationStatus"], "warning");
    let account_check =
        body["verificationDetails"].as_array().unwrap().iter().find(|c| c["checkName"] == "account").cloned();
    assert_eq!(account_check.unwrap()["status"], "warning");
}

#[tokio::test]
async fn a_failure_at_any_provisioning_step_rolls_back_everything() {
    for step in ["create_trunk", "create_credential_list", "create_credential", "attach_credential_list"] {
        let env = TestEnv::new().await;
        let (sid, token) = env.fake.add_account("active", "Full");
        env.fake.inject(step, FaultAction::Fail { status: 500, code: 20500 }, None);
        let (status, problem, _) = create(&env, ORG, &create_body(&sid, &token)).await;
        assert_problem(status, &problem, 502);
        assert_nothing_left(&env, &sid).await;
    }
}

#[tokio::test]
async fn a_timed_out_create_is_found_and_rolled_back() {
    for step in ["create_trunk", "create_credential_list"] {
        let env = TestEnv::with_request_timeout(Duration::from_millis(300)).await;
        let (sid, token) = env.fake.add_account("active", "Full");
        // Twilio does the work but answers after the client gave up.
        env.fake.inject(step, FaultAction::Delay(Duration::from_millis(600)), Some(1));
        let (status, problem, _) = create(&env, ORG, &create_body(&sid, &token)).await;
        assert_problem(status, &problem, 502);
        assert_nothing_left(&env, &sid).await;
    }
}

#[tokio::test]
async fn persistent_rate_limiting_is_503_with_retry_after_and_a_single_429_is_retried() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    env.fake.inject("create_credential", FaultAction::RateLimit { retry_after: None }, None);
    let (status, problem, response) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_problem(status, &problem, 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_nothing_left(&env, &sid).await;

    env.fake.clear_faults();
    env.fake.inject("create_trunk", FaultAction::RateLimit { retry_after: None }, Some(1));
    let (status, body, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_eq!(status, 201, "{body}");
}

/// A `Retry-After` of any size is clamped: a 429 asking for `u64::MAX` seconds after one that
/// was waited for neither overflows the wait nor is waited for; the caller is told 300 s.
#[tokio::test]
async fn a_huge_retry_after_is_clamped_and_not_waited_for() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    env.fake.inject("create_trunk", FaultAction::RateLimit { retry_after: Some(1) }, Some(1));
    env.fake.inject("create_trunk", FaultAction::RateLimit { retry_after: Some(u64::MAX) }, Some(1));
    let (status, problem, response) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_problem(status, &problem, 503);
    assert_eq!(response.headers()["retry-after"], "300");
    assert_nothing_left(&env, &sid).await;
}

#[tokio::test]
async fn kms_and_dynamodb_failures_roll_back_twilio() {
    // KMS: the configured key does not exist.
    let mut env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    env.services.envelope = shared::crypto::Envelope::new(env.kms.clone(), "alias/missing-key");
    let (status, problem, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_problem(status, &problem, 503);
    assert_nothing_left(&env, &sid).await;

    // DynamoDB: the table is gone.
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    env.dynamo.update_table().table_name(&env.table).deletion_protection_enabled(false).send().await.unwrap();
    env.dynamo.delete_table().table_name(&env.table).send().await.unwrap();
    let (status, problem, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_problem(status, &problem, 503);
    assert!(env.fake.trunks_of(&sid).is_empty() && env.fake.credential_lists_of(&sid).is_empty());
}

#[tokio::test]
async fn a_taken_domain_name_is_retried_with_a_new_label() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    env.fake.inject("create_trunk", FaultAction::Fail { status: 400, code: 21248 }, Some(1));
    let (status, body, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(env.fake.trunks_of(&sid).len(), 1);
    let attempts = env.fake.request_log().iter().filter(|r| r.step == "create_trunk").count();
    assert_eq!(attempts, 2);
}

#[tokio::test]
async fn an_account_sid_already_connected_is_409_before_touching_twilio() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let (status, _, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_eq!(status, 201);
    let (status, problem, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_problem(status, &problem, 409);
    assert_eq!(env.fake.trunks_of(&sid).len(), 1);
    assert_eq!(env.fake.request_log().iter().filter(|r| r.step == "create_trunk").count(), 1);
}

#[tokio::test]
async fn two_concurrent_creates_for_one_account_sid_yield_one_provider() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    // Slow the account check so both requests pass it before either stores.
    env.fake.inject("fetch_account", FaultAction::Delay(Duration::from_millis(200)), Some(2));
    let body = create_body(&sid, &token);
    let (a, b) = tokio::join!(create(&env, ORG, &body), create(&env, ORG, &body));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", a.1, b.1);
    assert_eq!(env.fake.trunks_of(&sid).len(), 1, "the loser's trunk was not rolled back");
    assert_eq!(env.fake.credential_lists_of(&sid).len(), 1);
    assert_eq!(env.fake.credentials_of(&sid).len(), 1);
}

/// Real DynamoDB cancels one of two overlapping transactions on the Account SID claim with
/// `TransactionConflict` (moto runs them one at a time): that is retried (the loser of a race
/// then finds the claim taken: 409), so a create that merely met another transaction is
/// stored, never answered 503.
#[tokio::test]
async fn a_create_whose_transaction_meets_another_is_retried() {
    use integration_tests::aws_proxy::Failure;
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    proxy.fail_with("DynamoDB_20120810.TransactWriteItems", Failure::TransactionConflict, Some(2));
    let (status, body, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(proxy.counts()["DynamoDB_20120810.TransactWriteItems"], 3, "two conflicts, then stored");
}

/// A transaction that DynamoDB committed but whose answer was lost (the SDK's retry then meets
/// its own items) is a stored provider: 201, and nothing in Twilio rolled back under it.
#[tokio::test]
async fn a_create_whose_stored_transaction_answered_an_error_is_created() {
    use integration_tests::aws_proxy::Failure;
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    proxy.fail_with("DynamoDB_20120810.TransactWriteItems", Failure::CommitThenFail, Some(1));
    let (status, body, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().parse().unwrap();
    let stored = env.services.store.get_provider(&OrganizationId::parse(ORG).unwrap(), id).await.unwrap();
    assert_eq!(stored.map(|p| p.trunk_sid.to_string()), body["trunkSid"].as_str().map(str::to_owned));
    assert_eq!(env.fake.trunks_of(&sid).len(), 1, "the trunk the record names is there");
    assert_eq!(env.fake.credential_lists_of(&sid).len(), 1);
    assert_eq!(env.fake.origination_urls_of(body["trunkSid"].as_str().unwrap()).len(), 1);
}

#[tokio::test]
async fn organizations_are_isolated() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let (status, body, _) = create(&env, "org-a", &create_body(&sid, &token)).await;
    assert_eq!(status, 201);
    let id = body["id"].as_str().unwrap().parse().unwrap();
    let other = OrganizationId::parse("org-b").unwrap();
    assert!(env.services.store.get_provider(&other, id).await.unwrap().is_none());
    assert!(env.services.store.get_sip_credential(&other, id).await.unwrap().is_none());
    // The same Twilio account may be connected by another organization.
    let (status, body, _) = create(&env, "org-b", &create_body(&sid, &token)).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_create_stops_at_the_invocation_deadline_and_still_rolls_back() {
    use lambda_http::RequestExt;
    let env = TestEnv::new().await; // the real 10 s client timeout
    let (sid, token) = env.fake.add_account("active", "Full");
    // Twilio creates the credential but answers far too late.
    env.fake.inject("create_credential", FaultAction::Delay(Duration::from_secs(30)), None);
    let mut context = lambda_http::Context::default();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    context.deadline = now_ms + 10_000;
    let request = request("POST", PATH, Some(ORG), Some(&create_body(&sid, &token))).with_lambda_context(context);
    let started = std::time::Instant::now();
    let response = handle(&env.services, request).await.unwrap();
    let elapsed = started.elapsed();
    // Provisioning gives up 8 s before the deadline, leaving the rest for the rollback.
    assert!(elapsed < Duration::from_secs(9), "answered after {elapsed:?}");
    let (status, problem) = (response.status().as_u16(), body_json(&response));
    assert_problem(status, &problem, 502);
    assert_nothing_left(&env, &sid).await;
}

#[tokio::test]
async fn what_a_rollback_could_not_remove_is_recorded_and_swept_later() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    env.fake.inject("attach_credential_list", FaultAction::Fail { status: 500, code: 20500 }, None);
    env.fake.inject("delete_trunk", FaultAction::Fail { status: 500, code: 20500 }, None);
    let (status, problem, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_problem(status, &problem, 502);
    assert_eq!(env.fake.trunks_of(&sid).len(), 1, "the trunk could not be deleted");
    assert!(env.fake.credential_lists_of(&sid).is_empty());
    let text = env.scan_table_text().await;
    assert!(text.contains("ORPHAN#") && !text.contains(&token), "recorded, with the token encrypted");

    // While Twilio still fails, the sweeper keeps the record; once it recovers, it clears it.
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!((swept.cleared, swept.remaining), (0, 1));
    env.fake.clear_faults();
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!((swept.cleared, swept.remaining), (1, 0));
    assert!(env.fake.trunks_of(&sid).is_empty());
    assert_eq!(env.item_count().await, 0);
}

/// The account first (nothing is created before the credentials are known good and the intent
/// is stored), then two rounds of creates.
#[tokio::test]
async fn create_takes_three_dependent_twilio_round_trips() {
    let env = TestEnv::new().await;
    env.fake.set_latency(std::time::Duration::from_millis(100));
    let (sid, token) = env.fake.add_account("active", "Full");
    let (status, body, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_eq!(status, 201, "{body}");
    let log = env.fake.request_log();
    assert_eq!(log.len(), 6, "account, trunk, list, credential, attachment, origination URL");
    assert_eq!(integration_tests::fake_twilio::longest_sequential_chain(&log), 3);
}

#[tokio::test]
async fn an_account_that_cannot_be_read_rolls_back_what_was_created_beside_it() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    env.fake.inject("fetch_account", FaultAction::Fail { status: 403, code: 20403 }, Some(1));
    let (status, problem, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_problem(status, &problem, 422);
    assert!(problem["detail"].as_str().unwrap().contains("reading the account"), "{problem}");
    assert_nothing_left(&env, &sid).await;
}

#[tokio::test]
async fn a_failed_origination_url_rolls_the_whole_create_back() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    env.fake.inject("create_origination_url", FaultAction::Fail { status: 500, code: 20500 }, None);
    let (status, body, _) = create(&env, ORG, &create_body(&sid, &token)).await;
    assert_eq!(status, 502, "{body}");
    let left = {
        let state = env.fake.state();
        state.trunks.len() + state.credential_lists.len() + state.origination_urls.len()
    };
    assert_eq!(left, 0, "nothing is left in Twilio");
    assert_eq!(env.item_count().await, 0);
}
