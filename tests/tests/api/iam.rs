//! Each function's AWS calls are allowed by its own policy in template.yaml. moto authorizes
//! nothing, so an action missing from a policy would only show in AWS (a number import that
//! can never seal its voice URLs, a sweep that cannot clear). Here every function runs its
//! paths through the AWS proxy, which names the IAM action each request needs, and the
//! actions seen are held to the policy of the binary that would make them.

use crate::harness::{Req, TestEnv, create_provider, random_token, status_and_body};
use functions::handlers::*;
use functions::provider::sip_credential::SipCredentialReader;
use integration_tests::aws_proxy::AwsProxy;
use integration_tests::fake_twilio::FaultAction;
use lambda_http::RequestExt;
use serde_json::{Value, json};
use shared::model::OrganizationId;
use shared::queue::Queue;
use shared::storage::api_keys::ApiKeyStore;
use shared::storage::{Change, Intent, IntentKey, NewResources};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use yaml_rust2::{Yaml, YamlLoader};

const ORG: &str = "org-iam";

/// The IAM actions each binary was seen to need.
struct Seen<'a> {
    proxy: &'a AwsProxy,
    actions: BTreeMap<String, BTreeSet<String>>,
}

impl Seen<'_> {
    /// Everything the proxy saw since the last call was `binary`'s.
    fn by(&mut self, binary: &str) {
        self.actions.entry(binary.to_owned()).or_default().extend(self.proxy.take_actions());
    }
}

/// Each function's binary and the IAM actions its policies allow, from template.yaml. An
/// action allowed on an index's ARN (`${ProvidersTable.Arn}/index/NAME`) is named as the proxy
/// names it: `dynamodb:Scan on index NAME`.
fn template_policies() -> BTreeMap<String, BTreeSet<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).expect("read template.yaml");
    let template = YamlLoader::load_from_str(&text).expect("template.yaml is YAML").remove(0);
    let resources = template["Resources"].as_hash().expect("Resources");
    // The key's use is granted in its key policy, to the functions' roles by name.
    let key_statements: Vec<Yaml> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::KMS::Key"))
        .flat_map(|key| key["Properties"]["KeyPolicy"]["Statement"].as_vec().cloned().unwrap_or_default())
        .collect();
    let functions = resources.iter().filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"));
    functions
        .map(|(logical_id, function)| {
            let binary = function["Metadata"]["BuildProperties"]["Binary"].as_str().expect("a Binary").to_owned();
            let role = format!("{}Role.Arn", logical_id.as_str().expect("a logical id"));
            let key_use =
                key_statements.iter().filter(|s| s["Principal"]["AWS"].as_str() == Some(role.as_str())).cloned();
            let statements = function["Properties"]["Policies"]
                .as_vec()
                .into_iter()
                .flatten()
                .flat_map(|policy| policy["Statement"].as_vec().cloned().unwrap_or_default())
                .chain(key_use);
            let actions = statements
                .filter(|s| s["Effect"].as_str() == Some("Allow"))
                .flat_map(|s| {
                    let actions: Vec<String> = match &s["Action"] {
                        Yaml::String(action) => vec![action.clone()],
                        Yaml::Array(actions) => actions.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
                        other => panic!("{binary}: an Action that is neither a string nor a list: {other:?}"),
                    };
                    // `!Sub "…"` and `!GetAtt …` are read as their strings.
                    let text = |r: &Yaml| r.as_str().map_or_else(|| format!("{r:?}"), str::to_owned);
                    let resources: Vec<String> = match &s["Resource"] {
                        Yaml::Array(resources) => resources.iter().map(text).collect(),
                        resource => vec![text(resource)],
                    };
                    let on = |action: &String| -> Vec<String> {
                        resources
                            .iter()
                            .map(|resource| match resource.split_once("/index/") {
                                Some((_, index)) => format!("{action} on index {index}"),
                                None => action.clone(),
                            })
                            .collect()
                    };
                    actions.iter().flat_map(on).collect::<Vec<_>>()
                })
                .collect();
            (binary, actions)
        })
        .collect()
}

/// Runs `binary`'s handler. Each handler's future is boxed, as is every large one this test
/// awaits: in a debug build their states would otherwise overflow the test thread's stack.
async fn http(env: &TestEnv, req: Req, handler: &str) -> (u16, Value) {
    let request = req.org(ORG).build();
    let response = match handler {
        "create-twilio-provider" => Box::pin(create_twilio_provider::handle(&env.services, request)).await,
        "get-twilio-provider" => Box::pin(get_twilio_provider::handle(&env.services.store, request)).await,
        "get-provider" => Box::pin(get_provider::handle(&env.services.store, request)).await,
        "list-providers" => Box::pin(list_providers::handle(&env.services.store, request)).await,
        "update-twilio-provider" => Box::pin(update_twilio_provider::handle(&env.services, request)).await,
        "rotate-twilio-auth-token" => Box::pin(rotate_twilio_auth_token::handle(&env.services, request)).await,
        "replace-twilio-credentials" => Box::pin(replace_twilio_credentials::handle(&env.services, request)).await,
        "list-available-numbers" => Box::pin(list_available_numbers::handle(&env.services, request)).await,
        "import-numbers" => Box::pin(import_numbers::handle(&env.services, request)).await,
        "list-phone-numbers" => Box::pin(list_phone_numbers::handle(&env.services.store, request)).await,
        "list-provider-events" => Box::pin(list_events::handle_provider(&env.services.store, request)).await,
        "list-events" => Box::pin(list_events::handle(&env.services.store, request)).await,
        "remove-phone-number" => Box::pin(remove_phone_number::handle(&env.services, request)).await,
        "verify-provider" => Box::pin(verify_provider::handle(&env.services, request)).await,
        "repair-provider" => Box::pin(repair_provider::handle(&env.services, request)).await,
        "rotate-sip-credential" => Box::pin(rotate_sip_credential::handle(&env.services, request)).await,
        "finish-sip-credential-rotation" => {
            Box::pin(finish_sip_credential_rotation::handle(&env.services, request)).await
        }
        other => panic!("no HTTP handler {other}"),
    };
    status_and_body(&response.expect("handlers answer every request"))
}

async fn import(env: &TestEnv, id: &str, numbers: &[&str]) -> Value {
    let body = json!({"phoneNumberSids": numbers}).to_string();
    let req = Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").param("id", id).body(&body);
    let (status, result) = http(env, req, "import-numbers").await;
    assert_eq!(status, 200, "{result}");
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn every_aws_call_a_function_makes_is_allowed_by_its_policy_in_the_template() {
    Box::pin(exercise_every_function()).await;
}

async fn exercise_every_function() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let mut seen = Seen { proxy: &proxy, actions: BTreeMap::new() };
    seen.proxy.take_actions();
    let org = OrganizationId::parse(ORG).unwrap();

    // The authorizer, with a key made as `admin` makes it (not through the service's policy).
    let admin_keys = ApiKeyStore::new(env.dynamo.clone(), env.table.clone());
    let (_, key) = Box::pin(admin_keys.create(&org, None)).await.unwrap();
    let keys = ApiKeyStore::new(aws_sdk_dynamodb::Client::new(&env.service_aws), env.table.clone());
    let bearer = format!("Bearer {}", key.expose());
    assert!(Box::pin(authorizer::authorize(&keys, Some(&bearer))).await.unwrap().is_authorized);
    seen.by("authorizer");

    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = Box::pin(create_provider(&env, ORG, &sid, &token)).await;
    seen.by("create-twilio-provider");
    let id = provider["id"].as_str().unwrap().to_owned();
    let with_id = |method: &str, path: &str| Req::new(method, path).param("id", &id);

    for (binary, req) in [
        ("get-twilio-provider", with_id("GET", "/api/v1/providers/twilio/{id}")),
        ("get-provider", with_id("GET", "/api/v1/providers/{id}")),
        ("list-providers", Req::new("GET", "/api/v1/providers")),
        ("list-available-numbers", with_id("GET", "/api/v1/providers/twilio/{id}/available-numbers")),
        ("verify-provider", with_id("POST", "/api/v1/providers/{id}/verify")),
    ] {
        let (status, body) = http(&env, req, binary).await;
        assert_eq!(status, 200, "{binary}: {body}");
        seen.by(binary);
    }
    let update = json!({"supportsCallTransfer": true}).to_string();
    let (status, body) =
        http(&env, with_id("PUT", "/api/v1/providers/twilio/{id}").body(&update), "update-twilio-provider").await;
    assert_eq!(status, 200, "{body}");
    seen.by("update-twilio-provider");
    let new_token = random_token();
    env.fake.set_auth_token(&sid, &new_token);
    let rotate = json!({"authToken": new_token}).to_string();
    let req = with_id("PATCH", "/api/v1/providers/twilio/{id}/auth-token").body(&rotate);
    let (status, body) = http(&env, req, "rotate-twilio-auth-token").await;
    assert_eq!(status, 200, "{body}");
    seen.by("rotate-twilio-auth-token");
    // From here on the provider works with an API key.
    let (key_sid, key_secret) = env.fake.add_api_key(&sid, false);
    let replace = json!({"apiKeySid": key_sid, "apiKeySecret": key_secret}).to_string();
    let req = with_id("PATCH", "/api/v1/providers/{id}/credentials").body(&replace);
    let (status, body) = http(&env, req, "replace-twilio-credentials").await;
    assert_eq!(status, 200, "{body}");
    seen.by("replace-twilio-credentials");

    // Import: a number with voice URLs (sealed with a new data key), and one whose attach can
    // be neither stored nor undone (recorded for the sweeper).
    let with_urls = env.fake.add_incoming_number(&sid, "+15550700001", Some("https://example.com/voice"));
    let plain = env.fake.add_incoming_number(&sid, "+15550700002", None);
    let result = import(&env, &id, &[&with_urls, &plain]).await;
    assert_eq!(result["successCount"], 2, "{result}");
    let stuck = env.fake.add_incoming_number(&sid, "+15550700003", None);
    proxy.fail("DynamoDB_20120810.TransactWriteItems", None);
    env.fake.inject("detach_phone_number", FaultAction::Fail { status: 500, code: 20500 }, None);
    assert_eq!(import(&env, &id, &[&stuck]).await["failedCount"], 1);
    proxy.clear();
    env.fake.clear_faults();
    seen.by("import-numbers");

    let (status, listed) =
        http(&env, with_id("GET", "/api/v1/providers/twilio/{id}/phone-numbers"), "list-phone-numbers").await;
    assert_eq!(status, 200, "{listed}");
    seen.by("list-phone-numbers");
    let sealed = listed["items"].as_array().unwrap().iter().find(|n| n["phoneNumberSid"] == with_urls.as_str());
    let number_id = sealed.expect("the imported number is listed")["id"].as_str().unwrap();
    let req = with_id("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
        .param("phoneNumberId", number_id);
    let (status, body) = http(&env, req, "remove-phone-number").await;
    assert_eq!(status, 200, "{body}");
    seen.by("remove-phone-number");

    // Repair rebuilds a trunk the customer deleted, with a new SIP credential.
    let trunk = provider["trunkSid"].as_str().unwrap();
    env.fake.state().trunks.remove(trunk);
    let (status, body) = http(&env, with_id("POST", "/api/v1/providers/{id}/repair"), "repair-provider").await;
    assert_eq!(status, 200, "{body}");
    seen.by("repair-provider");

    // SIP credential rotation: one finished by hand, then one left to expire at once, for the
    // hourly job to finish below.
    let rotate = |overlap: u64| {
        with_id("POST", "/api/v1/providers/{id}/sip-credential/rotate")
            .header("idempotency-key", &format!("rotate-{overlap}-{}", uuid::Uuid::new_v4()))
            .body(&json!({"overlapSeconds": overlap}).to_string())
    };
    let (status, body) = http(&env, rotate(3600), "rotate-sip-credential").await;
    assert_eq!(status, 200, "{body}");
    seen.by("rotate-sip-credential");
    let finish = with_id("POST", "/api/v1/providers/{id}/sip-credential/rotate/finish");
    let (status, body) = http(&env, finish, "finish-sip-credential-rotation").await;
    assert_eq!(status, 200, "{body}");
    seen.by("finish-sip-credential-rotation");
    let (status, body) = http(&env, rotate(0), "rotate-sip-credential").await;
    assert_eq!(status, 200, "{body}");
    seen.by("rotate-sip-credential");

    let reader = SipCredentialReader { store: env.services.store.clone(), envelope: env.services.envelope.clone() };
    Box::pin(get_sip_credential::handle(
        &reader,
        lambda_http::lambda_runtime::LambdaEvent::new(
            json!({"organizationId": ORG, "providerId": id}),
            lambda_http::lambda_runtime::Context::default(),
        ),
    ))
    .await
    .unwrap();
    seen.by("get-sip-credential");
    let (status, body) = http(&env, with_id("GET", "/api/v1/providers/{id}/events"), "list-provider-events").await;
    assert_eq!(status, 200, "{body}");
    seen.by("list-provider-events");
    let (status, body) = http(&env, Req::new("GET", "/api/v1/events").query("providerId", &id), "list-events").await;
    assert_eq!(status, 200, "{body}");
    seen.by("list-events");

    // Intents of work that died long ago, one of each kind, for the sweep to resolve.
    let provider_id: uuid::Uuid = id.parse().unwrap();
    let record = env.services.store.get_provider(&org, provider_id).await.unwrap().unwrap();
    let numbers = env.services.store.all_numbers(&org, provider_id).await.unwrap();
    let plain_number = numbers.iter().find(|n| n.phone_number_sid.as_str() == plain).expect("imported");
    let attached = env.fake.add_incoming_number(&sid, "+15550700004", None);
    let changes = [
        Change::Removal { number_id: plain_number.id },
        Change::Attach {
            trunk_sid: record.trunk_sid.clone(),
            number_sid: shared::model::PhoneNumberSid::parse(&attached).unwrap(),
            previous_routing: shared::model::VoiceRouting::default(),
            previous_routing_sealed: None,
            reservation: uuid::Uuid::now_v7(),
        },
        Change::NewResources(NewResources { list_names: vec!["voice-ai-never-made".into()], ..Default::default() }),
    ];
    for change in changes {
        let key = IntentKey::new(org.clone(), provider_id);
        let mut intent =
            Intent::now(key, record.account_sid.clone(), record.twilio_region, record.credential.clone(), change);
        intent.written_at -= 24 * 60 * 60;
        env.services.store.record_intent(&intent).await.unwrap();
    }
    proxy.take_actions();

    // The scheduled jobs: planned onto a queue, then worked (the sweep clears the leftover
    // the import recorded, and resolves the intents).
    let jobs_queue = env
        .sqs
        .create_queue()
        .queue_name(format!("jobs-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue = Queue::new(aws_sdk_sqs::Client::new(&env.service_aws), &jobs_queue);
    for job in ["reverify", "sweep-orphans"] {
        Box::pin(plan_jobs::handle(&env.services.store, &queue, &json!({ "job": job }))).await.unwrap();
        seen.by("plan-jobs");
        let received =
            env.sqs.receive_message().queue_url(&jobs_queue).max_number_of_messages(10).send().await.unwrap();
        let records: Vec<Value> = received
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| json!({"messageId": m.message_id, "body": m.body, "eventSource": "aws:sqs"}))
            .collect();
        assert!(!records.is_empty(), "{job} planned nothing");
        let answer = Box::pin(run_jobs::handle(&env.services, &json!({ "Records": records }))).await;
        assert_eq!(answer, json!({"batchItemFailures": []}), "{job}");
        seen.by("run-jobs");
    }
    assert!(env.services.store.leftover_resources(&org, id.parse().unwrap()).await.unwrap().is_empty());
    assert!(env.services.store.intents_of(&org, provider_id).await.unwrap().is_empty(), "every intent resolved");

    // Delete: one that outlasts its invocation (continued through the deletion queue), and a
    // forced one that records what it leaves.
    for i in 0..5 {
        let phone = format!("+1555071{i:04}");
        let trunk = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap().trunk_sid;
        integration_tests::seed::imported_number(
            &env.fake,
            &env.services.store,
            &org,
            id.parse().unwrap(),
            &sid,
            trunk.as_str(),
            &phone,
        )
        .await;
    }
    proxy.take_actions();
    // Less time than a delete keeps back to hand over: it answers 202 and queues the rest.
    let mut request = Req::new("DELETE", "/api/v1/providers/{id}").param("id", &id).org(ORG).build();
    let mut context = lambda_http::Context::default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    context.deadline = (now + Duration::from_millis(1500)).as_millis() as u64;
    request = request.with_lambda_context(context);
    let (status, body) = status_and_body(&Box::pin(delete_provider::handle(&env.services, request)).await.unwrap());
    assert_eq!(status, 202, "{body}");
    seen.by("delete-provider");
    Box::pin(env.drain_deletions(Duration::from_secs(10))).await;
    seen.by("continue-deletions");

    let (sid, token) = env.fake.add_account("active", "Full");
    let forced = Box::pin(create_provider(&env, ORG, &sid, &token)).await["id"].as_str().unwrap().to_owned();
    proxy.take_actions();
    env.fake.inject("delete_trunk", FaultAction::Fail { status: 500, code: 20500 }, None);
    let req = Req::new("DELETE", "/api/v1/providers/{id}").param("id", &forced).query("force", "true").org(ORG);
    let (status, body) = status_and_body(&Box::pin(delete_provider::handle(&env.services, req.build())).await.unwrap());
    assert_eq!(status, 200, "{body}");
    seen.by("delete-provider");

    let policies = template_policies();
    let unexercised: Vec<&String> = policies.keys().filter(|binary| !seen.actions.contains_key(*binary)).collect();
    assert!(unexercised.is_empty(), "functions this test does not run: {unexercised:?}");
    let mut missing = Vec::new();
    for (binary, actions) in &seen.actions {
        let allowed = policies.get(binary).unwrap_or_else(|| panic!("{binary} is not a function of the template"));
        missing.extend(actions.difference(allowed).map(|action| format!("{binary} needs {action}")));
    }
    assert!(missing.is_empty(), "template.yaml policies lack: {missing:#?}");
}
