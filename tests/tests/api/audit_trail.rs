//! The audit trail: every change made for a provider, and every read of its SIP password, is
//! an event written with the change; the trail reads back newest first, filtered and paged,
//! outlives the provider, and never holds a secret.

use crate::harness::{Req, TestEnv, status_and_body};
use functions::provider::sip_credential::SipCredentialReader;
use functions::routes::Endpoint;
use serde_json::{Value, json};
use shared::audit::fingerprint;

const ORG: &str = "org-trail";
const KEY: &str = "key-alice";

/// Calls an endpoint as the API key `KEY` of `ORG`.
async fn call(env: &TestEnv, endpoint: Endpoint, req: Req) -> (u16, Value) {
    let response = Box::pin(endpoint.call(&env.services, req.org(ORG).api_key(KEY).build())).await.unwrap();
    status_and_body(&response)
}

fn ok(outcome: (u16, Value), what: &str) -> Value {
    assert!((200..300).contains(&outcome.0), "{what}: {}", outcome.1);
    outcome.1
}

/// Every event of the provider, newest first, read page by page (`limit` at a time).
async fn trail(env: &TestEnv, id: &str, limit: usize, filter: &[(&str, &str)]) -> Vec<Value> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = Req::new("GET", "/api/v1/events").query("providerId", id).query("limit", &limit.to_string());
        for (name, value) in filter {
            req = req.query(name, value);
        }
        if let Some(token) = &token {
            req = req.query("nextToken", token);
        }
        let page = ok(call(env, Endpoint::ListEvents, req).await, "list events");
        events.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => return events,
        }
    }
}

fn actions(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["action"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_lifecycle_reads_back_in_order_and_outlives_the_provider() {
    Box::pin(whole_lifecycle()).await;
}

async fn whole_lifecycle() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let body = json!({"accountSid": sid, "authToken": token, "name": "Trail"}).to_string();
    let created = ok(
        call(&env, Endpoint::CreateTwilioProvider, Req::new("POST", "/api/v1/providers/twilio").body(&body)).await,
        "create",
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let with_id = |method: &str, path: &str| Req::new(method, path).param("id", &id);

    let rename = json!({"name": "Trail 2"}).to_string();
    ok(
        call(&env, Endpoint::UpdateTwilioProvider, with_id("PUT", "/api/v1/providers/twilio/{id}").body(&rename)).await,
        "update",
    );
    let (key_sid, key_secret) = env.fake.add_api_key(&sid, false);
    let key = json!({"apiKeySid": key_sid, "apiKeySecret": key_secret}).to_string();
    ok(
        call(
            &env,
            Endpoint::ReplaceTwilioCredentials,
            with_id("PATCH", "/api/v1/providers/{id}/credentials").body(&key),
        )
        .await,
        "credentials",
    );
    let number = env.fake.add_incoming_number(&sid, "+15550009000", Some("https://example.com/voice"));
    let import = json!({"phoneNumberSids": [number]}).to_string();
    ok(
        call(
            &env,
            Endpoint::ImportNumbers,
            with_id("POST", "/api/v1/providers/twilio/{id}/import-numbers").body(&import),
        )
        .await,
        "import",
    );
    ok(call(&env, Endpoint::VerifyProvider, with_id("POST", "/api/v1/providers/{id}/verify")).await, "verify");
    // Drift for the repair to put right: the trunk's origination URL is deleted in the Console.
    env.fake.state().origination_urls.clear();
    let repaired =
        ok(call(&env, Endpoint::RepairProvider, with_id("POST", "/api/v1/providers/{id}/repair")).await, "repair");
    let rotate = json!({"overlapSeconds": 600}).to_string();
    ok(
        call(
            &env,
            Endpoint::RotateSipCredential,
            with_id("POST", "/api/v1/providers/{id}/sip-credential/rotate").body(&rotate),
        )
        .await,
        "rotate",
    );
    ok(
        call(
            &env,
            Endpoint::FinishSipCredentialRotation,
            with_id("POST", "/api/v1/providers/{id}/sip-credential/rotate/finish"),
        )
        .await,
        "finish",
    );
    let reader = SipCredentialReader { store: env.services.store.clone(), envelope: env.services.envelope.clone() };
    let read = Box::pin(functions::handlers::get_sip_credential::handle(
        &reader,
        lambda_http::lambda_runtime::LambdaEvent::new(
            json!({"organizationId": ORG, "providerId": id}),
            Default::default(),
        ),
    ))
    .await
    .unwrap();
    let numbers = ok(
        call(&env, Endpoint::ListPhoneNumbers, with_id("GET", "/api/v1/providers/twilio/{id}/phone-numbers")).await,
        "numbers",
    );
    let number_id = numbers["items"][0]["id"].as_str().unwrap().to_owned();
    let remove = with_id("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
        .param("phoneNumberId", &number_id);
    ok(call(&env, Endpoint::RemovePhoneNumber, remove).await, "remove");
    // Read while the provider exists: the same trail through both listings.
    let before_delete =
        ok(call(&env, Endpoint::ListProviderEvents, with_id("GET", "/api/v1/providers/{id}/events")).await, "events");
    assert_eq!(before_delete["items"].as_array().unwrap().len(), 10, "{before_delete}");
    let (status, _) = call(&env, Endpoint::DeleteProvider, with_id("DELETE", "/api/v1/providers/{id}")).await;
    assert_eq!(status, 204);

    // Gone: its own listing is a 404, the organization's listing still has the trail.
    let (status, _) = call(&env, Endpoint::ListProviderEvents, with_id("GET", "/api/v1/providers/{id}/events")).await;
    assert_eq!(status, 404);
    let events = Box::pin(trail(&env, &id, 100, &[])).await;
    assert_eq!(
        actions(&events),
        [
            "deleted",
            "delete-started",
            "remove-number",
            "sip-credential-read",
            "sip-credential-rotate-finish",
            "sip-credential-rotate",
            "repair",
            "verify",
            "import",
            "rotate-credentials",
            "update",
            "create"
        ],
        "{events:#?}"
    );
    // Newest first, by time.
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");
    // Who asked: the API key's id; the call engine for the read.
    for event in &events {
        let expected = if event["action"] == "sip-credential-read" {
            json!({"kind": "call-engine"})
        } else {
            json!({"kind": "api-key", "id": KEY})
        };
        assert_eq!(event["actor"], expected, "{event}");
        assert_eq!(event["providerId"], id.as_str());
    }
    let by_action = |action: &str| events.iter().find(|e| e["action"] == action).unwrap().clone();
    // What each touched, and the fingerprints of the secrets involved (never the values).
    let create = by_action("create");
    assert!(create["twilioSids"].as_array().unwrap().contains(&created["trunkSid"]), "{create}");
    assert_eq!(create["secretFingerprints"]["authToken"], fingerprint(&token));
    let first_password = env.fake.credentials_of(&sid);
    assert!(create["secretFingerprints"]["sipPassword"].as_str().unwrap().starts_with("sha256:"));
    let rotated = by_action("rotate-credentials");
    assert_eq!(rotated["secretFingerprints"]["apiKeySecret"], fingerprint(&key_secret));
    assert!(rotated["twilioSids"].as_array().unwrap().contains(&json!(key_sid)));
    assert_eq!(by_action("import")["twilioSids"][0], number.as_str());
    assert_eq!(by_action("verify")["outcome"], "verified");
    let repair = by_action("repair");
    assert!(repair["detail"].as_str().unwrap().contains("OriginationUrl"), "{repair} after {repaired}");
    let rotation = by_action("sip-credential-rotate");
    assert_eq!(rotation["secretFingerprints"]["sipPassword"], fingerprint(read.password.expose()));
    assert_eq!(by_action("remove-number")["outcome"], "restored");
    assert!(by_action("deleted")["twilioSids"].as_array().unwrap().contains(&created["trunkSid"]));
    let text = serde_json::to_string(&events).unwrap();
    let mut secrets = vec![token.clone(), key_secret.clone(), read.password.expose().to_owned()];
    secrets.extend(first_password.into_iter().map(|c| c.password));
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret is in the trail");
    }

    // Filtered by action, by time, and paged two at a time: the same events.
    assert_eq!(actions(&Box::pin(trail(&env, &id, 100, &[("action", "import")])).await), ["import"]);
    assert_eq!(Box::pin(trail(&env, &id, 2, &[])).await, events);
    let first = events.last().unwrap()["at"].as_str().unwrap().to_owned();
    assert_eq!(Box::pin(trail(&env, &id, 100, &[("since", &first)])).await.len(), events.len());
    assert!(Box::pin(trail(&env, &id, 100, &[("until", "2000-01-01T00:00:00Z")])).await.is_empty());
    assert!(Box::pin(trail(&env, &id, 100, &[("since", "2999-01-01T00:00:00Z")])).await.is_empty());

    // Another organization sees none of it.
    let other = Req::new("GET", "/api/v1/events").query("providerId", &id).org("org-other").build();
    let (status, page) = status_and_body(&Endpoint::ListEvents.call(&env.services, other).await.unwrap());
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 0), "{page}");

    // Kept for the retention period through DynamoDB's TTL.
    let now = shared::time::unix_now();
    let table = env.scan_table_text().await;
    assert!(table.contains("expiresAt"));
    let scanned = env
        .services
        .store
        .list_events(
            &shared::model::OrganizationId::parse(ORG).unwrap(),
            id.parse().unwrap(),
            &Default::default(),
            100,
            None,
        )
        .await
        .unwrap();
    assert_eq!(scanned.0.len(), events.len());
    let _ = now;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_organization_s_provider_events_are_a_404_and_bad_queries_name_each_parameter() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let body = json!({"accountSid": sid, "authToken": token, "name": "Trail"}).to_string();
    let created = ok(
        call(&env, Endpoint::CreateTwilioProvider, Req::new("POST", "/api/v1/providers/twilio").body(&body)).await,
        "create",
    );
    let id = created["id"].as_str().unwrap();
    let intruder = Req::new("GET", "/api/v1/providers/{id}/events").param("id", id).org("org-other").build();
    let (status, _) = status_and_body(&Endpoint::ListProviderEvents.call(&env.services, intruder).await.unwrap());
    assert_eq!(status, 404);

    let req = Req::new("GET", "/api/v1/providers/{id}/events")
        .param("id", id)
        .query("action", "explode")
        .query("since", "yesterday")
        .query("limit", "0");
    let (status, problem) = call(&env, Endpoint::ListProviderEvents, req).await;
    assert_eq!(status, 400, "{problem}");
    for name in ["action", "since", "limit"] {
        assert!(problem["errors"].get(name).is_some(), "{name} not named: {problem}");
    }
    let req = Req::new("GET", "/api/v1/providers/{id}/events")
        .param("id", id)
        .query("since", "2026-12-02T00:00:00Z")
        .query("until", "2026-12-01T00:00:00Z");
    let (status, problem) = call(&env, Endpoint::ListProviderEvents, req).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["errors"].get("until").is_some(), "{problem}");
    let (status, problem) = call(&env, Endpoint::ListEvents, Req::new("GET", "/api/v1/events")).await;
    assert_eq!(status, 400);
    assert!(problem["errors"].get("providerId").is_some(), "{problem}");
    // A token of the same provider's listing with other times would start outside this
    // listing's range: refused like any other token it did not issue.
    let first = Req::new("GET", "/api/v1/events").query("providerId", id).query("limit", "1");
    let token = call(&env, Endpoint::ListEvents, first).await.1["nextToken"].as_str().map(str::to_owned);
    let req = Req::new("GET", "/api/v1/events")
        .query("providerId", id)
        .query("until", "2000-01-01T00:00:00Z")
        .query("nextToken", token.as_deref().expect("a page of one event goes on"));
    let (status, problem) = call(&env, Endpoint::ListEvents, req).await;
    assert_eq!(status, 400, "{problem}");
    // A page token of another listing is refused.
    let other_token = "bm90LWEtdG9rZW4";
    let req = Req::new("GET", "/api/v1/events").query("providerId", id).query("nextToken", other_token);
    assert_eq!(call(&env, Endpoint::ListEvents, req).await.0, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_that_fails_to_store_leaves_no_event() {
    let (env, proxy) = TestEnv::with_aws_proxy(std::time::Duration::from_secs(5)).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let body = json!({"accountSid": sid, "authToken": token, "name": "Trail"}).to_string();
    let created = ok(
        call(&env, Endpoint::CreateTwilioProvider, Req::new("POST", "/api/v1/providers/twilio").body(&body)).await,
        "create",
    );
    let id = created["id"].as_str().unwrap().to_owned();
    proxy.fail("DynamoDB_20120810.TransactWriteItems", None);
    let rename = json!({"name": "Never"}).to_string();
    let (status, _) = call(
        &env,
        Endpoint::UpdateTwilioProvider,
        Req::new("PUT", "/api/v1/providers/twilio/{id}").param("id", &id).body(&rename),
    )
    .await;
    assert!(status >= 500, "the update failed");
    proxy.clear();
    assert_eq!(
        actions(&Box::pin(trail(&env, &id, 100, &[])).await),
        ["create"],
        "no event of an update that did not happen"
    );
    let (_, provider) =
        call(&env, Endpoint::GetTwilioProvider, Req::new("GET", "/api/v1/providers/twilio/{id}").param("id", &id))
            .await;
    assert_eq!(provider["name"], "Trail");
}
