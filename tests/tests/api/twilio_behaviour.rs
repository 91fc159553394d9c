//! Behaviour only the real Twilio shows, against the strict fake: the customer's number
//! routing kept and given back, global number claims, Twilio's errors told truthfully (401,
//! 403, account limits, 5xx after the change was made), no redirects, and background jobs that
//! stop asking Twilio with credentials it rejects. Every test also ends with the harness's
//! check that no request broke Twilio's spec.

use crate::harness::{Req, TestEnv, create_provider, random_token, status_and_body};
use functions::handlers::{
    create_twilio_provider, import_numbers, list_available_numbers, list_phone_numbers, remove_phone_number,
};
use integration_tests::fake_twilio::{FaultAction, VoiceConfig, new_sid};
use serde_json::{Value, json};

const ORG: &str = "org-twilio";

async fn import_as(env: &TestEnv, org: &str, id: &str, sids: &[&str]) -> Value {
    let body = json!({ "phoneNumberSids": sids }).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(org).param("id", id).body(&body).build();
    let (status, body) = status_and_body(&import_numbers::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    body
}

async fn listed(env: &TestEnv, id: &str) -> Vec<Value> {
    let req = Req::new("GET", "/api/v1/providers/twilio/{id}/phone-numbers").org(ORG).param("id", id).build();
    let (_, body) = status_and_body(&list_phone_numbers::handle(&env.services.store, req).await.unwrap());
    body["items"].as_array().unwrap().clone()
}

async fn remove(env: &TestEnv, id: &str, phone_number_sid: &str) -> Value {
    let number = listed(env, id).await.into_iter().find(|n| n["phoneNumberSid"] == phone_number_sid).unwrap();
    let req = Req::new("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
        .org(ORG)
        .param("id", id)
        .param("phoneNumberId", number["id"].as_str().unwrap())
        .build();
    let (status, body) = status_and_body(&remove_phone_number::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    body
}

fn number(env: &TestEnv, sid: &str) -> integration_tests::fake_twilio::IncomingNumber {
    env.fake.state().incoming_numbers[sid].clone()
}

/// The Twilio requests made since `from` in the fake's log, as step names.
fn steps_since(env: &TestEnv, from: usize) -> Vec<String> {
    env.fake.request_log()[from..].iter().map(|r| r.step.clone()).collect()
}

async fn setup(env: &TestEnv) -> (String, String, String) {
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    (sid, token, id)
}

#[tokio::test]
async fn the_whole_voice_configuration_round_trips_encrypted_and_masked() {
    let env = TestEnv::new().await;
    let (sid, _, id) = setup(&env).await;
    let secret_url = "https://hook-user:hook-pass-7731@hooks.example.com/voice?token=qs-secret-4410";
    let pn = env.fake.add_incoming_number(&sid, "+15550100001", Some(secret_url));
    let config = VoiceConfig {
        voice_method: "GET".into(),
        voice_fallback_url: Some("https://fallback.example.com/f?sig=fb-secret-9921".into()),
        voice_fallback_method: "GET".into(),
        status_callback: Some("https://status.example.com/cb".into()),
        status_callback_method: "GET".into(),
    };
    env.fake.state().incoming_numbers.get_mut(&pn).unwrap().voice_config = config.clone();
    let before = number(&env, &pn);

    let result = import_as(&env, ORG, &id, &[&pn]).await;
    let shown = result.to_string() + &listed(&env, &id).await[0].to_string();
    let table = env.scan_table_text().await;
    for secret in ["hook-pass-7731", "qs-secret-4410", "fb-secret-9921", "hook-user"] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
        assert!(!table.contains(secret), "{secret} stored in plain text");
    }
    let routing = &listed(&env, &id).await[0]["previousRouting"];
    assert_eq!(routing["voiceUrl"], "https://hooks.example.com/***?***", "{routing}");
    assert_eq!(routing["voiceMethod"], "GET");
    assert_eq!(routing["statusCallback"], "https://status.example.com/***");

    let removed = remove(&env, &id, &pn).await;
    assert_eq!(removed["restored"], true, "{removed}");
    let after = number(&env, &pn);
    assert_eq!(after.trunk_sid, None);
    assert_eq!((after.voice_url, after.voice_application_sid), (before.voice_url, before.voice_application_sid));
    assert_eq!(after.voice_config, config, "every voice setting is as it was");
}

#[tokio::test]
async fn an_application_comes_back_in_one_update() {
    let env = TestEnv::new().await;
    let (sid, _, id) = setup(&env).await;
    let pn = env.fake.add_incoming_number(&sid, "+15550100002", None);
    let app = env.fake.add_application(&sid);
    env.fake.state().incoming_numbers.get_mut(&pn).unwrap().voice_application_sid = Some(app.clone());
    import_as(&env, ORG, &id, &[&pn]).await;
    assert_eq!(number(&env, &pn).voice_application_sid, None, "Twilio drops the application on a trunk");
    let from = env.fake.request_log().len();
    assert_eq!(remove(&env, &id, &pn).await["restored"], true);
    let after = number(&env, &pn);
    assert_eq!((after.voice_application_sid.as_deref(), after.trunk_sid), (Some(app.as_str()), None));
    let steps = steps_since(&env, from);
    assert!(!steps.iter().any(|s| s == "detach_phone_number"), "one update, never without routing: {steps:?}");
}

#[tokio::test]
async fn a_number_on_the_customers_own_trunk_goes_back_to_it() {
    let env = TestEnv::new().await;
    let (sid, _, id) = setup(&env).await;
    let pn = env.fake.add_incoming_number(&sid, "+15550100003", None);
    let theirs = env.fake.add_trunk(&sid);
    env.fake.state().incoming_numbers.get_mut(&pn).unwrap().trunk_sid = Some(theirs.clone());

    let req = Req::new("GET", "/api/v1/providers/twilio/{id}/available-numbers").org(ORG).param("id", &id).build();
    let (_, available) = status_and_body(&list_available_numbers::handle(&env.services, req).await.unwrap());
    let item = available["items"].as_array().unwrap().iter().find(|n| n["phoneNumberSid"] == pn.as_str()).unwrap();
    assert_eq!((&item["voiceRoutingConfigured"], &item["trunkSid"]), (&json!(true), &json!(theirs)), "{item}");

    import_as(&env, ORG, &id, &[&pn]).await;
    assert_ne!(number(&env, &pn).trunk_sid.as_deref(), Some(theirs.as_str()));
    let from = env.fake.request_log().len();
    assert_eq!(remove(&env, &id, &pn).await["restored"], true);
    assert_eq!(number(&env, &pn).trunk_sid.as_deref(), Some(theirs.as_str()));
    assert!(!steps_since(&env, from).iter().any(|s| s == "detach_phone_number"), "moved back in one update");
}

/// The customer deleted the trunk or application a number had before import: Twilio refuses to
/// put it back there, so removal and delete take the number off the trunk and say so.
#[tokio::test]
async fn a_previous_trunk_or_application_deleted_since_import_is_not_given_back() {
    let env = TestEnv::new().await;
    let (sid, _, id) = setup(&env).await;
    let (their_trunk, their_app) = (env.fake.add_trunk(&sid), env.fake.add_application(&sid));
    let on_trunk = env.fake.add_incoming_number(&sid, "+15550100011", Some("https://example.com/old"));
    let on_app = env.fake.add_incoming_number(&sid, "+15550100012", None);
    let via_delete = env.fake.add_incoming_number(&sid, "+15550100013", None);
    {
        let mut state = env.fake.state();
        state.incoming_numbers.get_mut(&on_trunk).unwrap().trunk_sid = Some(their_trunk.clone());
        state.incoming_numbers.get_mut(&via_delete).unwrap().trunk_sid = Some(their_trunk.clone());
        state.incoming_numbers.get_mut(&on_app).unwrap().voice_application_sid = Some(their_app.clone());
    }
    import_as(&env, ORG, &id, &[&on_trunk, &on_app, &via_delete]).await;
    {
        let mut state = env.fake.state();
        state.trunks.remove(&their_trunk);
        state.applications.remove(&their_app);
    }
    for (pn, gone) in [(&on_trunk, &their_trunk), (&on_app, &their_app)] {
        let removed = remove(&env, &id, pn).await;
        assert_eq!(removed["restored"], false, "{removed}");
        let reason = removed["reason"].as_str().unwrap();
        assert!(reason.contains(gone.as_str()) && reason.contains("no longer in the account"), "{reason}");
        let after = number(&env, pn);
        assert_eq!((after.trunk_sid, after.voice_application_sid), (None, None), "off the platform's trunk");
    }
    assert_eq!(number(&env, &on_trunk).voice_url.as_deref(), Some("https://example.com/old"), "its URL routes it");

    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id).build();
    let (status, body) =
        status_and_body(&functions::handlers::delete_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 204, "the delete is not stuck on it: {body}");
    assert_eq!(number(&env, &via_delete).trunk_sid, None);
}

#[tokio::test]
async fn a_number_changed_after_import_is_left_as_the_customer_set_it() {
    let env = TestEnv::new().await;
    let (sid, _, id) = setup(&env).await;
    let moved = env.fake.add_incoming_number(&sid, "+15550100004", Some("https://example.com/old"));
    let rerouted = env.fake.add_incoming_number(&sid, "+15550100005", Some("https://example.com/old"));
    import_as(&env, ORG, &id, &[&moved, &rerouted]).await;
    let elsewhere = env.fake.add_trunk(&sid);
    let app = env.fake.add_application(&sid);
    {
        let mut state = env.fake.state();
        state.incoming_numbers.get_mut(&moved).unwrap().trunk_sid = Some(elsewhere.clone());
        let number = state.incoming_numbers.get_mut(&rerouted).unwrap();
        number.trunk_sid = None;
        number.voice_application_sid = Some(app.clone());
    }
    for (pn, expect_trunk, expect_app) in [(&moved, Some(&elsewhere), None), (&rerouted, None, Some(&app))] {
        let removed = remove(&env, &id, pn).await;
        assert_eq!(removed["restored"], false, "{removed}");
        assert!(removed["reason"].as_str().unwrap().contains("after import"), "{removed}");
        let after = number(&env, pn);
        assert_eq!((after.trunk_sid.as_ref(), after.voice_application_sid.as_ref()), (expect_trunk, expect_app));
    }
    assert!(listed(&env, &id).await.is_empty(), "the records are gone");
}

#[tokio::test]
async fn one_twilio_number_is_on_one_provider_anywhere() {
    let env = TestEnv::new().await;
    let (sid, token, first) = setup(&env).await;
    let pn = env.fake.add_incoming_number(&sid, "+15550100006", None);
    assert_eq!(import_as(&env, ORG, &first, &[&pn]).await["successCount"], 1);
    // Another organization connects the same Twilio account and tries to take the number.
    let second = create_provider(&env, "org-other", &sid, &token).await["id"].as_str().unwrap().to_owned();
    let result = import_as(&env, "org-other", &second, &[&pn]).await;
    assert_eq!(result["errors"][0]["code"], "already_imported", "{result}");
    assert!(!result.to_string().contains(ORG), "which organization holds it is not said: {result}");
    let trunks = env.fake.trunks_of(&sid);
    let first_trunk = trunks.iter().find(|t| number(&env, &pn).trunk_sid.as_deref() == Some(t.sid.as_str()));
    assert!(first_trunk.is_some(), "the number stays on the first provider's trunk");

    // An organization with another Twilio account learns nothing of the number: not its own.
    let (other_sid, other_token) = env.fake.add_account("active", "Full");
    let third = create_provider(&env, "org-third", &other_sid, &other_token).await["id"].as_str().unwrap().to_owned();
    let result = import_as(&env, "org-third", &third, &[&pn]).await;
    assert_eq!(result["errors"][0]["code"], "not_found", "{result}");
}

async fn create(env: &TestEnv, sid: &str, token: &str) -> (u16, Value) {
    let body = json!({"accountSid": sid, "authToken": token, "name": "Main line"}).to_string();
    let req = Req::new("POST", "/api/v1/providers/twilio").org(ORG).body(&body).build();
    status_and_body(&create_twilio_provider::handle(&env.services, req).await.unwrap())
}

async fn assert_nothing_left(env: &TestEnv, sid: &str) {
    let state_empty = {
        let state = env.fake.state();
        state.trunks.values().all(|t| t.account_sid != sid)
            && state.credential_lists.values().all(|l| l.account_sid != sid)
            && state.origination_urls.values().all(|o| o.account_sid != sid)
    };
    assert!(state_empty, "something was left in Twilio");
    assert_eq!(env.item_count().await, 0, "records left in the table");
}

#[tokio::test]
async fn suspended_denied_and_over_limit_creates_leave_nothing_and_say_why() {
    let env = TestEnv::new().await;
    let (suspended, token) = env.fake.add_account("suspended", "Full");
    let (status, problem) = create(&env, &suspended, &token).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("suspended or closed"), "{problem}");
    // The account fetch runs beside the first creates: all three are refused, nothing is made.
    assert!(env.fake.request_log().iter().all(|r| r.status == 401), "{:?}", env.fake.request_log());
    assert_nothing_left(&env, &suspended).await;

    let (sid, token) = env.fake.add_account("active", "Full");
    env.fake.inject("create_trunk", FaultAction::Fail { status: 403, code: 20403 }, Some(1));
    let (status, problem) = create(&env, &sid, &token).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("creating SIP trunks"), "{problem}");
    assert_nothing_left(&env, &sid).await;

    // A Trial account holds one trunk: the second create fails at the trunk and undoes the list.
    let (trial, token) = env.fake.add_account("active", "Trial");
    env.fake.state().trunks.insert(
        "TK00000000000000000000000000000077".into(),
        integration_tests::fake_twilio::Trunk {
            sid: "TK00000000000000000000000000000077".into(),
            account_sid: trial.clone(),
            friendly_name: "Customer's own".into(),
            domain_name: "customer-own.pstn.twilio.com".into(),
            transfer_mode: "disable-all".into(),
            secure: false,
            disaster_recovery_url: None,
            disaster_recovery_method: "POST".into(),
        },
    );
    let (status, problem) = create(&env, &trial, &token).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["type"], "/problems/twilio-limit-reached", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("Trial"), "{problem}");
    assert!(env.fake.credential_lists_of(&trial).is_empty(), "the credential list was rolled back");
    assert_eq!(env.fake.trunks_of(&trial).len(), 1, "the customer's own trunk is untouched");

    // 100 credential lists is the account's limit.
    let (full, token) = env.fake.add_account("active", "Full");
    for i in 0..100 {
        let list = integration_tests::fake_twilio::CredentialList {
            sid: new_sid("CL"),
            account_sid: full.clone(),
            friendly_name: format!("existing-{i}"),
        };
        env.fake.state().credential_lists.insert(list.sid.clone(), list);
    }
    let (status, problem) = create(&env, &full, &token).await;
    assert_eq!((status, problem["type"].as_str()), (422, Some("/problems/twilio-limit-reached")), "{problem}");
    assert!(env.fake.trunks_of(&full).is_empty(), "the trunk was rolled back");
}

/// Twilio made the change, but the caller cannot tell what it made: a 5xx after the work (a 502
/// or 503 from Twilio's edge included), or a 2xx whose body was cut short on the way.
#[tokio::test]
async fn a_change_twilio_made_without_a_readable_answer_is_undone() {
    let faults = [
        FaultAction::CommitThenFail { status: 500 },
        FaultAction::CommitThenFail { status: 502 },
        FaultAction::CommitThenFail { status: 503 },
        FaultAction::CommitThenTruncate,
    ];
    for step in [
        "create_trunk",
        "create_credential_list",
        "create_credential",
        "attach_credential_list",
        "create_origination_url",
    ] {
        for fault in &faults {
            let env = TestEnv::new().await;
            let (sid, token) = env.fake.add_account("active", "Full");
            env.fake.inject(step, fault.clone(), Some(1));
            let (answer, problem) = create(&env, &sid, &token).await;
            assert_eq!(answer, 502, "{step} {fault:?}: {problem}");
            assert_nothing_left(&env, &sid).await;
            assert!(env.fake.credentials_of(&sid).is_empty(), "{step} {fault:?}");
        }
    }
    // A number attached without a readable answer is taken back off the trunk.
    for fault in [FaultAction::CommitThenFail { status: 503 }, FaultAction::CommitThenTruncate] {
        let env = TestEnv::new().await;
        let (sid, _, id) = setup(&env).await;
        let pn = env.fake.add_incoming_number(&sid, "+15550100007", Some("https://example.com/v"));
        env.fake.inject("update_incoming_number", fault.clone(), Some(1));
        let result = import_as(&env, ORG, &id, &[&pn]).await;
        assert_eq!(result["failedCount"], 1, "{fault:?}: {result}");
        assert_eq!(number(&env, &pn).trunk_sid, None, "{fault:?}: undone");
        assert!(listed(&env, &id).await.is_empty(), "{fault:?}");
    }
}

#[tokio::test]
async fn redirects_from_twilio_are_never_followed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let elsewhere = {
        let hits = hits.clone();
        let app = axum::Router::new().fallback(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async { "{}" }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        address
    };
    let redirecting = {
        let target = format!("http://{elsewhere}/steal");
        let app = axum::Router::new().fallback(move || {
            let target = target.clone();
            async move { (axum::http::StatusCode::TEMPORARY_REDIRECT, [("location", target)], "") }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}")
    };
    let config = shared::config::TwilioConfig::everywhere(&redirecting);
    let client = shared::twilio::TwilioClient::new(&config);
    let creds = shared::model::TwilioCredentials {
        account_sid: shared::model::AccountSid::parse(&new_sid("AC").to_lowercase().replacen("ac", "AC", 1)).unwrap(),
        auth: shared::model::TwilioAuth::AuthToken(shared::model::AuthToken::parse(&random_token()).unwrap()),
        region: Default::default(),
    };
    let error = client.fetch_account(&creds).await.unwrap_err();
    assert_eq!(error.status(), Some(307), "{error}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the credentials never went to the other host");
}

#[tokio::test]
async fn jobs_stop_asking_twilio_with_credentials_it_rejects() {
    let env = TestEnv::new().await;
    let (sid, _, id) = setup(&env).await;
    env.fake.set_auth_token(&sid, &random_token());
    let first = functions::provider::reverify::run(&env.services).await.unwrap();
    assert_eq!((first.failed, first.held), (1, 0), "{first:?}");
    let from = env.fake.request_log().len();
    let second = functions::provider::reverify::run(&env.services).await.unwrap();
    assert_eq!((second.failed, second.held), (1, 1), "{second:?}");
    assert_eq!(env.fake.request_log().len(), from, "no Twilio request for a rejected account");
    drop(id);

    // A leftover whose credentials Twilio rejects is marked stuck once, then left alone.
    let (orphan_sid, orphan_token) = env.fake.add_account("active", "Full");
    env.fake.inject("delete_trunk", FaultAction::Fail { status: 500, code: 20500 }, None);
    env.fake.inject("create_credential", FaultAction::Fail { status: 400, code: 20001 }, Some(1));
    let (status, _) = create(&env, &orphan_sid, &orphan_token).await;
    assert_eq!(status, 502);
    env.fake.clear_faults();
    env.fake.set_auth_token(&orphan_sid, &random_token());
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.stuck, 1, "{swept:?}");
    let from = env.fake.request_log().len();
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!(swept.stuck, 1, "{swept:?}");
    assert_eq!(env.fake.request_log().len(), from, "a stuck leftover is not retried");
}

/// Two organizations connected to one Twilio account import the same number at once: the
/// number is reserved before Twilio is touched, so the loser never changes it and the winner's
/// import stands (it once undid the winner's attach on its way out).
#[tokio::test(flavor = "multi_thread")]
async fn of_two_imports_of_one_number_at_once_the_loser_never_touches_it() {
    let env = TestEnv::new().await;
    let (sid, token, first) = setup(&env).await;
    let second = create_provider(&env, "org-other", &sid, &token).await["id"].as_str().unwrap().to_owned();
    let pn = env.fake.add_incoming_number(&sid, "+15550100021", None);
    env.fake.inject("update_incoming_number", FaultAction::Delay(std::time::Duration::from_millis(300)), Some(1));
    let numbers = [pn.as_str()];
    let (a, b) = tokio::join!(import_as(&env, ORG, &first, &numbers), import_as(&env, "org-other", &second, &numbers));
    let outcomes = [a["successCount"].as_u64().unwrap(), b["successCount"].as_u64().unwrap()];
    assert_eq!(outcomes.iter().sum::<u64>(), 1, "one wins: {a} / {b}");
    let loser = if outcomes[0] == 1 { &b } else { &a };
    assert_eq!(loser["errors"][0]["code"], "already_imported", "{loser}");
    let attaches = env.fake.request_log().iter().filter(|r| r.step == "update_incoming_number").count();
    assert_eq!(attaches, 1, "the loser never attached it");
    let winner_trunk = env.fake.state().incoming_numbers[&pn].trunk_sid.clone();
    let (winner_org, winner_id) = if outcomes[0] == 1 { (ORG, &first) } else { ("org-other", &second) };
    let org = shared::model::OrganizationId::parse(winner_org).unwrap();
    let winner = env.services.store.get_provider(&org, winner_id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(winner_trunk.as_deref(), Some(winner.trunk_sid.as_str()), "on the winner's trunk");
}

/// A reservation whose import died midway lapses: the number can be imported again.
#[tokio::test]
async fn a_lapsed_reservation_frees_the_number() {
    let env = TestEnv::new().await;
    let (sid, _, id) = setup(&env).await;
    let pn = env.fake.add_incoming_number(&sid, "+15550100022", None);
    let sid_of = shared::model::PhoneNumberSid::parse(&pn).unwrap();
    let org = shared::model::OrganizationId::parse("org-gone").unwrap();
    env.services.store.reserve_number(&org, uuid::Uuid::now_v7(), &sid_of).await.unwrap();
    assert_eq!(import_as(&env, ORG, &id, &[&pn]).await["errors"][0]["code"], "already_imported");
    // The reservation's time passes.
    env.dynamo
        .update_item()
        .table_name(&env.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("PNCLAIM#{pn}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("PNCLAIM".into()))
        .update_expression("SET pendingUntil = :past")
        .expression_attribute_values(":past", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(import_as(&env, ORG, &id, &[&pn]).await["successCount"], 1);
}

/// What only a real account shows, told as what it is: test credentials (403, 20008), a Trial
/// account's limits, a number that cannot take calls.
#[tokio::test]
async fn test_credentials_trial_limits_and_numbers_without_voice_are_told_as_such() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Trial");
    let test_token = random_token();
    env.fake.set_test_auth_token(&sid, &test_token);
    let body = json!({"accountSid": sid, "authToken": test_token, "name": "Test creds"}).to_string();
    let response = functions::handlers::create_twilio_provider::handle(
        &env.services,
        crate::harness::request("POST", "/api/v1/providers/twilio", Some(ORG), Some(&body)),
    )
    .await
    .unwrap();
    let (status, problem) = status_and_body(&response);
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["title"], "These are Twilio test credentials", "{problem}");
    assert!(!problem["detail"].as_str().unwrap().contains("suspended"), "not told as a suspended account: {problem}");
    assert!(env.fake.trunks_of(&sid).is_empty());

    // A Trial account is connected, with its limits said at create and at import.
    let provider = create_provider(&env, ORG, &sid, &token).await;
    let account = provider["verificationDetails"].as_array().unwrap().iter().find(|c| c["checkName"] == "account");
    let account = account.unwrap();
    assert_eq!(account["status"], "warning");
    assert!(account["message"].as_str().unwrap().contains("one phone number"), "{account}");
    let id = provider["id"].as_str().unwrap();
    let voice = env.fake.add_incoming_number(&sid, "+15550700001", None);
    let fax_only = env.fake.add_incoming_number(&sid, "+15550700002", None);
    env.fake.state().incoming_numbers.get_mut(&fax_only).unwrap().voice = false;
    let result = import_as(&env, ORG, id, &[&voice, &fax_only]).await;
    assert_eq!(result["successCount"], 1, "{result}");
    assert_eq!(result["errors"][0]["phoneNumberSid"], fax_only.as_str());
    assert_eq!(result["errors"][0]["code"], "not_voice_capable", "{result}");
    assert!(result["warnings"][0].as_str().unwrap().contains("verified numbers"), "{result}");
    assert_eq!(env.fake.state().incoming_numbers[&fax_only].trunk_sid, None, "left as it was");
}
