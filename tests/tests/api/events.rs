//! The `events/*.json` files users invoke the functions with, run through lambda_http's own
//! event parsing into the handlers.

use crate::harness::{TestEnv, body_json};
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
    env.fake.add_account_with("AC00000000000000000000000000000001", "0123456789abcdef0123456789abcdef", "active", "Full");
    let response = functions::create_twilio_provider::handle(&env.services, event("create-twilio-provider.json")).await.unwrap();
    let body = body_json(&response);
    assert_eq!(response.status(), 201, "{body}");
    assert_eq!(body["name"], "Demo trunk");
    assert_eq!(env.fake.trunks_of("AC00000000000000000000000000000001").len(), 1);
}
