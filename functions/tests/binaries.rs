//! Every function binary, started as Lambda starts it: under a local Runtime API, with its
//! configuration in the environment (pointed at moto and the fake Twilio), fed its
//! `events/*.json` file. Each must boot, read its config, parse the real event shape and
//! answer. Run through `scripts/test`, which starts moto.

use integration_tests::fake_twilio::FakeTwilio;
use integration_tests::runtime_api::{Outcome, RuntimeApi, lambda_environment};
use serde_json::Value;
use shared::api_keys::ApiKeyStore;
use shared::model::OrganizationId;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const DEMO_SID: &str = "AC00000000000000000000000000000001";
const DEMO_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const EVENT_PROVIDER_ID: &str = "01936f5e-8f1c-7a3b-9d2e-4f5a6b7c8d9e";
const EVENT_NUMBER_ID: &str = "01936f60-1a2b-7c3d-8e4f-5a6b7c8d9e0f";
const EVENT_API_KEY: &str = "tpk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

struct Setup {
    table: String,
    key_alias: String,
    fake: FakeTwilio,
}

fn event(name: &str, swaps: &[(&str, &str)]) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (from, to) in swaps {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).unwrap()
}

/// Starts the binary under a fresh runtime API, invokes it once, and stops it.
async fn invoke(setup: &Setup, binary: &str, event: Value) -> Value {
    let runtime = RuntimeApi::start().await;
    let mut child = tokio::process::Command::new(binary_path(binary))
        .envs(lambda_environment(&runtime.address, binary))
        .env("TABLE_NAME", &setup.table)
        .env("KMS_KEY_ID", &setup.key_alias)
        .env("TWILIO_API_BASE_URL", &setup.fake.base_url)
        .env("TWILIO_TRUNKING_BASE_URL", &setup.fake.base_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    let outcome = runtime.invoke(event, Duration::from_secs(30)).await;
    child.kill().await.ok();
    match outcome {
        Ok(Outcome::Response(response)) => response,
        Ok(Outcome::Error(error)) => panic!("{binary} answered with an error: {error}"),
        Err(e) => panic!("{binary}: {e}"),
    }
}

fn binary_path(name: &str) -> std::path::PathBuf {
    // Cargo builds every [[bin]] of this package for its integration tests.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    dir.join(name)
}

fn http_status(response: &Value) -> u64 {
    response["statusCode"].as_u64().unwrap_or_else(|| panic!("not an HTTP API response: {response}"))
}

fn http_body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_function_binary_boots_and_answers_its_event() {
    assert!(std::env::var("AWS_ENDPOINT_URL").is_ok(), "run through scripts/test, which starts moto");
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let kms = aws_sdk_kms::Client::new(&aws);
    let table = format!("binaries-{}", uuid::Uuid::new_v4().simple());
    shared::store::create_table(&dynamo, &table).await.unwrap();
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let key_alias = format!("alias/binaries-{}", uuid::Uuid::new_v4().simple());
    kms.create_alias().alias_name(&key_alias).target_key_id(&key).send().await.unwrap();
    let fake = FakeTwilio::start().await;
    fake.add_account_with(DEMO_SID, DEMO_TOKEN, "active", "Full");
    fake.add_incoming_number_with_sid("PN00000000000000000000000000000001", DEMO_SID, "+15005550006", None);
    let setup = Setup { table: table.clone(), key_alias, fake };

    let created = invoke(&setup, "create-twilio-provider", event("create-twilio-provider.json", &[])).await;
    assert_eq!(http_status(&created), 201, "{created}");
    let id = http_body(&created)["id"].as_str().unwrap().to_owned();
    let with_id = [(EVENT_PROVIDER_ID, id.as_str())];

    let cases = [
        ("get-twilio-provider", "get-twilio-provider.json", 200),
        ("get-provider", "get-provider.json", 200),
        ("list-providers", "list-providers.json", 200),
        ("update-twilio-provider", "update-twilio-provider.json", 200),
        ("rotate-twilio-auth-token", "rotate-twilio-auth-token.json", 200),
        ("list-available-numbers", "list-available-numbers.json", 200),
        ("import-numbers", "import-numbers.json", 200),
        ("verify-provider", "verify-provider.json", 200),
    ];
    for (binary, file, status) in cases {
        let response = invoke(&setup, binary, event(file, &with_id)).await;
        assert_eq!(http_status(&response), status, "{binary}: {response}");
    }
    let numbers = invoke(&setup, "list-phone-numbers", event("list-phone-numbers.json", &with_id)).await;
    let number_id = http_body(&numbers)["items"][0]["id"].as_str().unwrap().to_owned();
    let removed = invoke(
        &setup,
        "remove-phone-number",
        event("remove-phone-number.json", &[(EVENT_PROVIDER_ID, &id), (EVENT_NUMBER_ID, &number_id)]),
    )
    .await;
    assert_eq!(http_status(&removed), 204, "{removed}");

    let summary = invoke(&setup, "reverify-providers", event("reverify-providers.json", &[])).await;
    assert_eq!(summary["verification"]["verified"], 1, "{summary}");

    let keys = ApiKeyStore::new(dynamo.clone(), table.clone());
    let (_, api_key) = keys.create(&OrganizationId::parse("org-demo").unwrap(), None).await.unwrap();
    let allowed = invoke(&setup, "authorizer", event("authorizer.json", &[(EVENT_API_KEY, api_key.expose())])).await;
    assert_eq!(allowed, serde_json::json!({"isAuthorized": true, "context": {"organizationId": "org-demo"}}));
    let denied = invoke(&setup, "authorizer", event("authorizer.json", &[])).await;
    assert_eq!(denied["isAuthorized"], false);

    let deleted = invoke(&setup, "delete-provider", event("delete-provider.json", &with_id)).await;
    assert_eq!(http_status(&deleted), 204, "{deleted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_without_its_configuration_stops_at_init_naming_what_is_missing() {
    let runtime = RuntimeApi::start().await;
    let child = tokio::process::Command::new(binary_path("create-twilio-provider"))
        .envs(lambda_environment(&runtime.address, "create-twilio-provider"))
        .env_remove("TABLE_NAME")
        .env_remove("KMS_KEY_ID")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.expect("exits").unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TABLE_NAME"), "{stderr}");
    assert!(runtime.first_poll().is_none(), "it never asked for an event");
}
