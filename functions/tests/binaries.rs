//! Every function binary, started as Lambda starts it: under a local Runtime API, with its
//! configuration in the environment (pointed at moto and the fake Twilio), fed its
//! `events/*.json` file. Each must boot, read its config, parse the real event shape and
//! answer. Run through `scripts/test`, which starts moto.

use integration_tests::fake_twilio::{DEMO_API_KEY_SECRET, DEMO_API_KEY_SID, FakeTwilio};
use integration_tests::runtime_api::{Outcome, RuntimeApi, lambda_environment};
use serde_json::Value;
use shared::model::OrganizationId;
use shared::storage::api_keys::ApiKeyStore;
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
    deletion_queue: String,
    jobs_queue: String,
    fake: FakeTwilio,
}

impl Setup {
    /// A fresh table, KMS key, queues and fake Twilio (moto started by scripts/test).
    async fn new() -> (Self, aws_sdk_dynamodb::Client) {
        assert!(std::env::var("AWS_ENDPOINT_URL").is_ok(), "run through scripts/test, which starts moto");
        let aws = shared::tls::aws_sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        let kms = aws_sdk_kms::Client::new(&aws);
        let table = format!("binaries-{}", uuid::Uuid::new_v4().simple());
        shared::storage::create_table(&dynamo, &table).await.unwrap();
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        let key_alias = format!("alias/binaries-{}", uuid::Uuid::new_v4().simple());
        kms.create_alias().alias_name(&key_alias).target_key_id(&key).send().await.unwrap();
        let setup = Self {
            table,
            key_alias,
            deletion_queue: new_queue(&aws).await,
            jobs_queue: new_queue(&aws).await,
            fake: FakeTwilio::start().await,
        };
        (setup, dynamo)
    }
}

/// A fresh SQS queue in moto.
async fn new_queue(aws: &aws_config::SdkConfig) -> String {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let name = format!("deletions-{}", uuid::Uuid::new_v4().simple());
    sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap()
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
    match run_once(setup, binary, event).await {
        Outcome::Response(response) => response,
        Outcome::Error(error) => panic!("{binary} answered with an error: {error}"),
    }
}

/// Like [`invoke`], for an invocation that must end in a function error.
async fn invoke_expecting_error(setup: &Setup, binary: &str, event: Value) -> Value {
    match run_once(setup, binary, event).await {
        Outcome::Error(error) => error,
        Outcome::Response(response) => panic!("{binary} answered instead of failing: {response}"),
    }
}

/// The binary with its configuration as the template gives it, under the Runtime API at `address`.
fn function_command(setup: &Setup, binary: &str, address: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary_path(binary));
    command
        .envs(lambda_environment(address, binary))
        .env("TABLE_NAME", &setup.table)
        .env("KMS_KEY_ID", &setup.key_alias)
        .env("TWILIO_API_BASE_URL", &setup.fake.base_url)
        .env("TWILIO_TRUNKING_BASE_URL", &setup.fake.base_url)
        .env("PLATFORM_SIP_URI", "sip:sip.voice.example.com")
        .env("DELETION_QUEUE_URL", &setup.deletion_queue)
        .env("JOBS_QUEUE_URL", &setup.jobs_queue);
    command
}

async fn run_once(setup: &Setup, binary: &str, event: Value) -> Outcome {
    run_with(setup, binary, event, &[]).await
}

/// Like [`run_once`], with more environment variables.
async fn run_with(setup: &Setup, binary: &str, event: Value, env: &[(&str, &str)]) -> Outcome {
    let runtime = RuntimeApi::start().await;
    let mut child = function_command(setup, binary, &runtime.address)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    let outcome = runtime.invoke(event, Duration::from_secs(30)).await;
    child.kill().await.ok();
    outcome.unwrap_or_else(|e| panic!("{binary}: {e}"))
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
    let (setup, dynamo) = Setup::new().await;
    let (fake, table) = (&setup.fake, setup.table.clone());
    fake.add_account_with(DEMO_SID, DEMO_TOKEN, "active", "Full");
    fake.add_api_key_with(DEMO_API_KEY_SID, DEMO_API_KEY_SECRET, DEMO_SID, false);
    fake.add_incoming_number_with_sid("PN00000000000000000000000000000001", DEMO_SID, "+15005550006", None);

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
        ("replace-twilio-credentials", "replace-twilio-credentials.json", 200),
        ("rotate-twilio-auth-token", "rotate-twilio-auth-token.json", 200),
        ("list-available-numbers", "list-available-numbers.json", 200),
        ("import-numbers", "import-numbers.json", 200),
        ("verify-provider", "verify-provider.json", 200),
        ("repair-provider", "repair-provider.json", 200),
        ("rotate-sip-credential", "rotate-sip-credential.json", 200),
        ("finish-sip-credential-rotation", "finish-sip-credential-rotation.json", 200),
        ("list-provider-events", "list-provider-events.json", 200),
        ("list-events", "list-events.json", 200),
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
    assert_eq!(http_status(&removed), 200, "{removed}");
    assert_eq!(http_body(&removed)["restored"], true, "{removed}");

    // The call engine's read: exactly the password Twilio holds for the trunk's SIP user.
    let credential = invoke(&setup, "get-sip-credential", event("get-sip-credential.json", &with_id)).await;
    let (list_sid, username) = {
        let state = setup.fake.state();
        let credential = state.credentials.values().next().expect("one SIP credential").clone();
        (credential.credential_list_sid, credential.username)
    };
    assert_eq!(credential["username"], username.as_str(), "{credential}");
    assert_eq!(credential["password"].as_str(), setup.fake.sip_password(&list_sid, &username).as_deref());
    assert!(credential["terminationUri"].as_str().unwrap().starts_with("sip:"), "{credential}");
    let unknown = [(EVENT_PROVIDER_ID, "01936f5e-0000-7000-8000-000000000000")];
    let error = invoke_expecting_error(&setup, "get-sip-credential", event("get-sip-credential.json", &unknown)).await;
    assert_eq!(error["errorType"], "ProviderNotFound", "{error}");

    let planned = invoke(&setup, "plan-jobs", event("plan-jobs.json", &[])).await;
    assert_eq!(planned, serde_json::json!({"job": "reverify", "planned": 1}), "{planned}");
    let worked = invoke(&setup, "run-jobs", event("run-jobs.json", &with_id)).await;
    assert_eq!(worked, serde_json::json!({"batchItemFailures": []}), "{worked}");

    let keys = ApiKeyStore::new(dynamo.clone(), table.clone());
    let (_, api_key) = keys.create(&OrganizationId::parse("org-demo").unwrap(), None).await.unwrap();
    let allowed = invoke(&setup, "authorizer", event("authorizer.json", &[(EVENT_API_KEY, api_key.expose())])).await;
    let key_id = api_key.expose().split('_').nth(1).unwrap();
    assert_eq!(
        allowed,
        serde_json::json!({"isAuthorized": true, "context": {"organizationId": "org-demo", "apiKeyId": key_id}})
    );
    let denied = invoke(&setup, "authorizer", event("authorizer.json", &[])).await;
    assert_eq!(denied["isAuthorized"], false);

    // The deletion queue's consumer: a message for a provider being deleted (a DELETE that ran
    // out of time marked it) finishes the delete.
    let store = shared::storage::ProviderStore::new(dynamo.clone(), table.clone());
    let org = OrganizationId::parse("org-demo").unwrap();
    let mut deleting = store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    deleting.deletion = Some(shared::storage::DeletionState {
        started_at: shared::time::Timestamp::now(),
        last_error: None,
        numbers_from: None,
        forced: false,
    });
    deleting.version += 1;
    store.replace_provider(&deleting, None).await.unwrap();
    let continued = invoke(&setup, "continue-deletions", event("continue-deletions.json", &with_id)).await;
    assert_eq!(continued, serde_json::json!({"batchItemFailures": []}), "{continued}");
    let gone = invoke(&setup, "get-provider", event("get-provider.json", &with_id)).await;
    assert_eq!(http_status(&gone), 404, "continue-deletions finished the delete: {gone}");
    let violations = setup.fake.spec_violations();
    assert!(violations.is_empty(), "requests broke Twilio's spec: {violations:#?}");
}

/// `sam local` gives a template variable that resolves to no value as an empty string (the
/// stack's `AwsEndpointUrl` left empty): an empty endpoint setting counts as unset, where the
/// SDK took it as the endpoint and panicked on every call.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_endpoint_setting_counts_as_unset() {
    let (setup, _) = Setup::new().await;
    let empty = [("AWS_ENDPOINT_URL_DYNAMODB", ""), ("AWS_ENDPOINT_URL_KMS", "")];
    let outcome = run_with(&setup, "get-provider", event("get-provider.json", &[]), &empty).await;
    let Outcome::Response(response) = outcome else { panic!("get-provider failed: {outcome:?}") };
    assert_eq!(http_status(&response), 404, "read the table at AWS_ENDPOINT_URL: {response}");
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

/// Starts the binary with the given log settings, invokes it once, and returns the outcome
/// and everything it wrote to stdout and stderr.
async fn run_logged(setup: &Setup, binary: &str, event: Value, log_env: (&str, &str)) -> (Outcome, String) {
    let runtime = RuntimeApi::start().await;
    let mut child = function_command(setup, binary, &runtime.address)
        .env_remove("RUST_LOG")
        .env_remove("AWS_LAMBDA_LOG_LEVEL")
        .env(log_env.0, log_env.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    // Drained as it is written: at TRACE the output outgrows a pipe's buffer.
    let drain = |stream: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
        tokio::spawn(async move {
            let mut bytes = Vec::new();
            if let Some(mut stream) = stream {
                tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut bytes).await.ok();
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let outcome = runtime.invoke(event, Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{binary}: {e}"));
    child.kill().await.ok();
    let (stdout, stderr) = (stdout.await.unwrap(), stderr.await.unwrap());
    let text = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    (outcome, text)
}

/// Every log line of an API request names who asked: the authorizer's organization and API
/// key id (a span around the handler), as the access log does.
#[tokio::test(flavor = "multi_thread")]
async fn every_log_line_of_a_request_names_the_api_key_id() {
    let (setup, _) = Setup::new().await;
    let (_, logs) = run_logged(&setup, "get-provider", event("get-provider.json", &[]), ("RUST_LOG", "info")).await;
    let line = logs.lines().find(|l| l.contains("request rejected")).expect("the 404 is logged");
    assert!(line.contains("0123456789abcdef") && line.contains("org-demo"), "{line}");
}

/// Every read of a SIP password is audited whatever the function's log level: at FATAL, where
/// Lambda and the subscriber drop every ordinary line, the audit line is still written.
#[tokio::test(flavor = "multi_thread")]
async fn sip_credential_reads_are_audited_at_every_log_level() {
    let (setup, _) = Setup::new().await;
    let unknown = "01936f5e-0000-7000-8000-000000000000";
    let read = event("get-sip-credential.json", &[(EVENT_PROVIDER_ID, unknown)]);
    let (_, logs) = run_logged(&setup, "get-sip-credential", read, ("AWS_LAMBDA_LOG_LEVEL", "FATAL")).await;
    let line = logs.lines().find(|l| l.contains(r#""audit":"sip-credential-read""#)).expect("an audit line");
    let line: Value = serde_json::from_str(line).unwrap();
    assert_eq!((&line["level"], &line["providerId"]), (&"FATAL".into(), &unknown.into()), "{line}");
    assert_eq!((&line["organizationId"], &line["outcome"]), (&"org-demo".into(), &"ProviderNotFound".into()));
}

/// The forms a secret could be written in: as is, and in base64 (standard and URL-safe).
fn leaked_forms(secret: &str) -> Vec<String> {
    use base64::Engine;
    vec![
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    ]
}

/// As deployed, with TRACE asked for either way: every binary fed its event with a real auth
/// token and API key logs plenty, but never the token or the key (the Lambda runtime's own
/// raw-event logging is held back whatever the level).
#[tokio::test(flavor = "multi_thread")]
async fn no_binary_logs_a_token_or_an_api_key_at_trace() {
    let (setup, dynamo) = Setup::new().await;
    let (fake, table) = (&setup.fake, setup.table.clone());
    let (token, new_token) = (integration_tests::fake_twilio::new_sid("").to_lowercase(), DEMO_TOKEN.to_owned());
    fake.add_account_with(DEMO_SID, &token, "active", "Full");
    fake.add_api_key_with(DEMO_API_KEY_SID, DEMO_API_KEY_SECRET, DEMO_SID, false);
    fake.add_incoming_number_with_sid("PN00000000000000000000000000000001", DEMO_SID, "+15005550006", None);
    let keys = ApiKeyStore::new(dynamo.clone(), table.clone());
    let (_, api_key) = keys.create(&OrganizationId::parse("org-demo").unwrap(), None).await.unwrap();
    let api_key = api_key.expose().to_owned();

    for log_env in [("RUST_LOG", "trace"), ("AWS_LAMBDA_LOG_LEVEL", "TRACE")] {
        // The create event carries the token; every HTTP event carries the API key.
        let bearer = format!("Bearer {api_key}");
        let create = event("create-twilio-provider.json", &[(DEMO_TOKEN, &token), ("Bearer <api key>", &bearer)]);
        let (outcome, mut logs) = run_logged(&setup, "create-twilio-provider", create, log_env).await;
        let Outcome::Response(created) = outcome else { panic!("create failed: {logs}") };
        assert_eq!(http_status(&created), 201, "{created}");
        let id = http_body(&created)["id"].as_str().unwrap().to_owned();
        assert!(logs.lines().count() > 20, "TRACE was on ({log_env:?}): {logs}");
        // Metrics are written from the code as CloudWatch Embedded Metric Format lines.
        let emf = logs.lines().find(|l| l.contains("\"ProvidersCreated\"")).expect("an EMF line for the create");
        let emf: Value = serde_json::from_str(emf).unwrap();
        assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "TwilioProviderService", "{emf}");
        let sip_password = setup.fake.credentials_of(DEMO_SID).pop().expect("a SIP credential").password;

        let swaps = [(EVENT_PROVIDER_ID, id.as_str()), ("Bearer <api key>", bearer.as_str())];
        let mut binaries: Vec<(&str, Value)> = [
            "get-twilio-provider",
            "get-provider",
            "list-providers",
            "update-twilio-provider",
            "replace-twilio-credentials",
            "list-available-numbers",
            "import-numbers",
            "list-phone-numbers",
            "list-provider-events",
            "list-events",
            "verify-provider",
            "repair-provider",
            "rotate-sip-credential",
            "finish-sip-credential-rotation",
        ]
        .into_iter()
        .map(|binary| (binary, event(&format!("{binary}.json"), &swaps)))
        .collect();
        // The rotation's body names the token the account has by then.
        let rotate = event("rotate-twilio-auth-token.json", &swaps);
        binaries.push(("get-sip-credential", event("get-sip-credential.json", &swaps)));
        binaries.push(("authorizer", event("authorizer.json", &[(EVENT_API_KEY, &api_key)])));
        binaries.push(("plan-jobs", event("plan-jobs.json", &[])));
        binaries.push(("run-jobs", event("run-jobs.json", &swaps)));
        binaries.push((
            "continue-deletions",
            event("continue-deletions.json", &[(EVENT_PROVIDER_ID, "01936f5e-0000-7000-8000-00000000beef")]),
        ));
        for (binary, event) in binaries {
            let (_, output) = run_logged(&setup, binary, event, log_env).await;
            logs.push_str(&output);
        }
        // Every SIP password the account has held: the first and the rotation's.
        let mut sip_passwords: Vec<String> =
            setup.fake.credentials_of(DEMO_SID).into_iter().map(|c| c.password).collect();
        sip_passwords.push(sip_password);
        setup.fake.set_auth_token(DEMO_SID, &new_token);
        let (_, output) = run_logged(&setup, "rotate-twilio-auth-token", rotate, log_env).await;
        logs.push_str(&output);
        let (_, output) = run_logged(&setup, "delete-provider", event("delete-provider.json", &swaps), log_env).await;
        logs.push_str(&output);
        setup.fake.set_auth_token(DEMO_SID, &token);

        let key_basic = format!("{DEMO_API_KEY_SID}:{DEMO_API_KEY_SECRET}");
        for secret in [&token, &new_token, &api_key, &DEMO_API_KEY_SECRET.to_owned(), &key_basic]
            .into_iter()
            .chain(&sip_passwords)
        {
            for form in leaked_forms(secret) {
                assert!(!logs.contains(&form), "a secret was logged with {log_env:?}");
            }
        }
    }
}
