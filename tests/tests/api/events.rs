//! The `events/*.json` files users invoke the functions with, run through lambda_http's own
//! event parsing into the handlers.

use crate::harness::{TestEnv, body_json};
use integration_tests::fake_twilio::{DEMO_API_KEY_SECRET, DEMO_API_KEY_SID};
use std::path::Path;

fn event(name: &str) -> lambda_http::Request {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name} is not a valid event: {e}"))
}

#[tokio::test]
async fn create_twilio_provider_event_creates_a_provider() {
    let env = TestEnv::new().await;
    // The event carries the sandbox's demo credentials (see the fake-twilio binary).
    env.fake.add_account_with(
        "AC00000000000000000000000000000001",
        "0123456789abcdef0123456789abcdef",
        "active",
        "Full",
    );
    let response =
        functions::handlers::create_twilio_provider::handle(&env.services, event("create-twilio-provider.json"))
            .await
            .unwrap();
    let body = body_json(&response);
    assert_eq!(response.status(), 201, "{body}");
    assert_eq!(body["name"], "Demo trunk");
    assert_eq!(env.fake.trunks_of("AC00000000000000000000000000000001").len(), 1);
}

/// The id the events' path parameters carry; tests swap in a provider that exists.
const EVENT_PROVIDER_ID: &str = "01936f5e-8f1c-7a3b-9d2e-4f5a6b7c8d9e";
const EVENT_NUMBER_ID: &str = "01936f60-1a2b-7c3d-8e4f-5a6b7c8d9e0f";

fn event_for(name: &str, provider_id: &str) -> lambda_http::Request {
    event_with(name, &[(EVENT_PROVIDER_ID, provider_id)])
}

/// An event with the fixed ids it carries swapped for ones that exist.
fn event_with(name: &str, swaps: &[(&str, &str)]) -> lambda_http::Request {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in swaps {
        text = text.replace(from, to);
    }
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name} is not a valid event: {e}"))
}

#[tokio::test]
async fn lifecycle_events_reach_their_handlers() {
    use functions::handlers::*;
    let env = TestEnv::new().await;
    let sid = "AC00000000000000000000000000000001";
    env.fake.add_account_with(sid, "0123456789abcdef0123456789abcdef", "active", "Full");
    let created =
        functions::handlers::create_twilio_provider::handle(&env.services, event("create-twilio-provider.json"))
            .await
            .unwrap();
    let id = body_json(&created)["id"].as_str().unwrap().to_owned();
    let store = &env.services.store;

    let response = get_twilio_provider::handle(store, event_for("get-twilio-provider.json", &id)).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body());
    let response = get_provider::handle(store, event_for("get-provider.json", &id)).await.unwrap();
    assert_eq!(response.status(), 200);
    let response = list_providers::handle(store, event_for("list-providers.json", &id)).await.unwrap();
    assert_eq!(body_json(&response)["items"].as_array().unwrap().len(), 1);
    let response =
        update_twilio_provider::handle(&env.services, event_for("update-twilio-provider.json", &id)).await.unwrap();
    assert_eq!(body_json(&response)["region"], "ie1");
    let response =
        rotate_twilio_auth_token::handle(&env.services, event_for("rotate-twilio-auth-token.json", &id)).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body());
    // The event's demo API key (see the fake-twilio binary), then the token again.
    env.fake.add_api_key_with(DEMO_API_KEY_SID, DEMO_API_KEY_SECRET, sid, false);
    let response =
        Box::pin(replace_twilio_credentials::handle(&env.services, event_for("replace-twilio-credentials.json", &id)))
            .await
            .unwrap();
    assert_eq!(body_json(&response)["credentialType"], "api_key", "{:?}", response.body());
    let response =
        Box::pin(rotate_twilio_auth_token::handle(&env.services, event_for("rotate-twilio-auth-token.json", &id)))
            .await
            .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body());

    env.fake.add_incoming_number_with_sid("PN00000000000000000000000000000001", sid, "+15005550006", None);
    let response =
        list_available_numbers::handle(&env.services, event_for("list-available-numbers.json", &id)).await.unwrap();
    assert_eq!(body_json(&response)["items"].as_array().unwrap().len(), 1);
    let response = import_numbers::handle(&env.services, event_for("import-numbers.json", &id)).await.unwrap();
    assert_eq!(body_json(&response)["successCount"], 1, "{:?}", response.body());
    let response = list_phone_numbers::handle(store, event_for("list-phone-numbers.json", &id)).await.unwrap();
    let number_id = body_json(&response)["items"][0]["id"].as_str().unwrap().to_owned();
    let remove = event_with("remove-phone-number.json", &[(EVENT_PROVIDER_ID, &id), (EVENT_NUMBER_ID, &number_id)]);
    assert_eq!(remove_phone_number::handle(&env.services, remove).await.unwrap().status(), 200);

    let response = verify_provider::handle(&env.services, event_for("verify-provider.json", &id)).await.unwrap();
    assert_eq!(body_json(&response)["status"], "verified", "{:?}", response.body());
    let response = repair_provider::handle(&env.services, event_for("repair-provider.json", &id)).await.unwrap();
    assert_eq!(body_json(&response)["verification"]["status"], "verified", "{:?}", response.body());
    let response =
        rotate_sip_credential::handle(&env.services, event_for("rotate-sip-credential.json", &id)).await.unwrap();
    let rotated = body_json(&response);
    assert_eq!(response.status(), 200, "{rotated}");
    assert!(rotated["previous"]["expiresAt"].is_string(), "{rotated}");
    let response =
        finish_sip_credential_rotation::handle(&env.services, event_for("finish-sip-credential-rotation.json", &id))
            .await
            .unwrap();
    let finished = body_json(&response);
    assert_eq!(finished["previous"], serde_json::Value::Null, "{finished}");
    assert_eq!(finished["current"], rotated["current"], "{finished}");
    // The scheduled job's event (the schedule's input) and a jobs-queue event for the provider.
    let read = |name: &str| -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap().replace(EVENT_PROVIDER_ID, &id)).unwrap()
    };
    assert_eq!(plan_jobs::job_of(&read("plan-jobs.json")).unwrap(), (shared::queue::Job::Reverify, None));
    let worked = run_jobs::handle(&env.services, &read("run-jobs.json")).await;
    assert_eq!(worked, serde_json::json!({"batchItemFailures": []}));
    assert_eq!(functions::provider::reverify::run(&env.services).await.unwrap().verified, 1);

    let response = delete_provider::handle(&env.services, event_for("delete-provider.json", &id)).await.unwrap();
    assert_eq!(response.status(), 204);
}
