//! `Idempotency-Key` on create and import-numbers.

use crate::harness::{Req, TestEnv, create_provider, status_and_body};
use functions::handlers::{create_twilio_provider, import_numbers};
use integration_tests::aws_proxy::Failure;
use integration_tests::fake_twilio::FaultAction;
use serde_json::{Value, json};
use std::time::Duration;

const ORG: &str = "org-idem";
const PATH: &str = "/api/v1/providers/twilio";

async fn create(env: &TestEnv, org: &str, key: Option<&str>, body: &Value) -> lambda_http::Response<lambda_http::Body> {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(key) = key {
        headers["idempotency-key"] = json!(key);
    }
    let req = crate::harness::request_with_headers("POST", PATH, Some(org), Some(&body.to_string()), headers);
    Box::pin(create_twilio_provider::handle(&env.services, req)).await.unwrap()
}

fn creates_seen(env: &TestEnv) -> usize {
    env.fake.request_log().iter().filter(|r| r.step == "create_trunk").count()
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_response_without_touching_twilio() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let body = json!({"accountSid": sid, "authToken": token, "name": "Once"});
    let first = create(&env, ORG, Some("key-1"), &body).await;
    assert_eq!(first.status(), 201);
    let calls = env.fake.request_log().len();
    let second = create(&env, ORG, Some("key-1"), &body).await;
    assert_eq!(second.status(), 201);
    assert_eq!(second.body(), first.body());
    assert_eq!(second.headers()["location"], first.headers()["location"]);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(env.fake.request_log().len(), calls, "Twilio was not called again");
    assert_eq!(env.fake.trunks_of(&sid).len(), 1);

    // A different body under the same key is refused; another organization has its own keys.
    let different = json!({"accountSid": sid, "authToken": token, "name": "Other"});
    let (status, problem) = status_and_body(&create(&env, ORG, Some("key-1"), &different).await);
    assert_eq!(status, 422, "{problem}");
    // A request with mistakes is answered for them, under any key.
    let (status, problem) = status_and_body(&create(&env, ORG, Some("key-1"), &json!({"name": "other"})).await);
    assert_eq!(status, 400, "{problem}");
    let (other_sid, other_token) = env.fake.add_account("active", "Full");
    let other = json!({"accountSid": other_sid, "authToken": other_token, "name": "Theirs"});
    assert_eq!(create(&env, "org-other", Some("key-1"), &other).await.status(), 201);
}

/// Storing the response is tried again when it fails (here four times in a row, more than the
/// SDK's own three attempts): the same request again replays the 201, where it answered 409
/// (still in flight) and, once the lock lapsed, 409 again (the account is taken by itself).
#[tokio::test]
async fn a_response_whose_storing_failed_is_stored_on_a_later_try_and_replayed() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let body = json!({"accountSid": sid, "authToken": token, "name": "Stored late"});
    let completed = r#""state":{"S":"done"}"#;
    proxy.fail_when("DynamoDB_20120810.PutItem", completed, Failure::ServerError, Some(4));
    let first = create(&env, ORG, Some("key-late"), &body).await;
    assert_eq!(first.status(), 201);
    let second = create(&env, ORG, Some("key-late"), &body).await;
    assert_eq!(
        (second.status(), second.headers().get("idempotent-replayed")),
        (first.status(), Some(&"true".parse().unwrap()))
    );
    assert_eq!(second.body(), first.body());
}

#[tokio::test]
async fn a_request_in_flight_is_409_and_a_failed_one_can_be_retried() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let body = json!({"accountSid": sid, "authToken": token, "name": "Slow"});
    env.fake.inject("create_trunk", FaultAction::Delay(Duration::from_millis(400)), Some(1));
    let second = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        create(&env, ORG, Some("key-2"), &body).await
    };
    let (first, second) = tokio::join!(create(&env, ORG, Some("key-2"), &body), second);
    assert_eq!(first.status(), 201);
    assert_eq!(second.status(), 409);
    assert_eq!(creates_seen(&env), 1);

    // A 502 forgets the key: the retry runs for real.
    let (sid, token) = env.fake.add_account("active", "Full");
    let body = json!({"accountSid": sid, "authToken": token, "name": "Retry"});
    env.fake.inject("create_credential_list", FaultAction::Fail { status: 500, code: 20500 }, Some(1));
    assert_eq!(create(&env, ORG, Some("key-3"), &body).await.status(), 502);
    let retry = create(&env, ORG, Some("key-3"), &body).await;
    assert_eq!(retry.status(), 201);
    assert!(!retry.headers().contains_key("idempotent-replayed"));
}

/// A request with a mistake in it did nothing: corrected, it runs under the same key.
#[tokio::test]
async fn a_rejected_request_keeps_nothing_under_its_key() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let typo = json!({"accountSid": sid, "authToken": token, "name": ""});
    assert_eq!(create(&env, ORG, Some("key-typo"), &typo).await.status(), 400);
    let fixed = json!({"accountSid": sid, "authToken": token, "name": "Fixed"});
    let created = create(&env, ORG, Some("key-typo"), &fixed).await;
    assert_eq!(created.status(), 201, "{:?}", created.body());
    assert!(!created.headers().contains_key("idempotent-replayed"));
}

#[tokio::test]
async fn invalid_keys_are_400() {
    let env = TestEnv::new().await;
    let body = json!({"name": "x"});
    for key in ["", &"k".repeat(256), "tab\there", "ünïcode"] {
        let mut headers = json!({"content-type": "application/json"});
        headers["idempotency-key"] = json!(key);
        let req = crate::harness::request_with_headers("POST", PATH, Some(ORG), Some(&body.to_string()), headers);
        let (status, problem) = status_and_body(&create_twilio_provider::handle(&env.services, req).await.unwrap());
        assert_eq!(status, 400, "{key:?}: {problem}");
        let named: Vec<&str> = problem["errors"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(named, ["Idempotency-Key", "accountSid", "authToken"], "the body's mistakes too: {problem}");
    }
}

#[tokio::test]
async fn import_numbers_replays_without_attaching_again() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    let number = env.fake.add_incoming_number(&sid, "+15550004000", None);
    let body = json!({ "phoneNumberSids": [number] }).to_string();
    let import = || {
        let mut req = Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers")
            .org(ORG)
            .param("id", &id)
            .body(&body)
            .build();
        req.headers_mut().insert("idempotency-key", "import-1".parse().unwrap());
        import_numbers::handle(&env.services, req)
    };
    let first = import().await.unwrap();
    let second = import().await.unwrap();
    assert_eq!(first.body(), second.body());
    assert_eq!(status_and_body(&second).1["successCount"], 1);
    let attaches = env.fake.request_log().iter().filter(|r| r.step == "update_incoming_number").count();
    assert_eq!(attaches, 1);
}
