//! API keys against moto, and local-api over HTTP: the authorizer, the route table, the
//! lambda_http request building and the handlers together. Run through `scripts/test`.

use functions::services::Services;
use integration_tests::fake_twilio::FakeTwilio;
use serde_json::{Value, json};
use shared::config::{StorageConfig, TwilioConfig};
use shared::model::{OrganizationId, PlatformSipUris, Region};
use shared::storage::api_keys::ApiKeyStore;
use shared::twilio::TwilioClient;
use std::sync::Arc;
use tools::local_api::{LocalApi, router};

struct Env {
    base: String,
    keys: ApiKeyStore,
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    kms_key_id: String,
    fake: FakeTwilio,
    http: reqwest::Client,
}

async fn start() -> Env {
    assert!(std::env::var("AWS_ENDPOINT_URL").is_ok(), "run through scripts/test, which starts moto");
    let aws = shared::tls::aws_sdk_config().await;
    let table = format!("local-{}", uuid::Uuid::new_v4().simple());
    let storage = StorageConfig {
        table_name: table.clone(),
        kms_key_id: format!("alias/local-{}", uuid::Uuid::new_v4().simple()),
    };
    // The same bootstrap local-api --bootstrap runs: table and key (with alias) are created.
    tools::bootstrap::bootstrap(&aws, &storage).await.unwrap();
    tools::bootstrap::bootstrap(&aws, &storage).await.expect("bootstrap is idempotent");
    let fake = FakeTwilio::start().await;
    let twilio = TwilioClient::new(&TwilioConfig::everywhere(&fake.base_url));
    let services = Services::new(
        &aws,
        &storage,
        twilio,
        Region::Us1,
        PlatformSipUris::parse("sip:sip.voice.example.com").unwrap(),
    );
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let keys = ApiKeyStore::new(dynamo.clone(), table.clone());
    let api = Arc::new(LocalApi { services, keys: keys.clone(), openapi: "{\"openapi\":\"3.1.0\"}" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(api)).await.unwrap() });
    let kms_key_id = storage.kms_key_id.clone();
    Env {
        base,
        keys,
        dynamo,
        table,
        kms_key_id,
        fake,
        http: shared::tls::client_builder().build().expect("an HTTP client"),
    }
}

async fn key_for(env: &Env, org: &str) -> String {
    env.keys.create(&OrganizationId::parse(org).unwrap(), Some("test")).await.unwrap().1.expose().to_owned()
}

async fn call(env: &Env, method: reqwest::Method, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = env.http.request(method, format!("{}{path}", env.base));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_keys_authorize_until_revoked_and_are_stored_only_as_digests() {
    let env = start().await;
    let org = OrganizationId::parse("org-keys").unwrap();
    let (info, key) = env.keys.create(&org, Some("ci")).await.unwrap();
    let authorized = env.keys.authorize(Some(&format!("Bearer {}", key.expose()))).await.unwrap().unwrap();
    assert_eq!((authorized.organization_id, authorized.key_id), (org.clone(), info.key_id.clone()));
    assert!(key.expose().starts_with(&info.prefix));

    let listed = env.keys.list(&org).await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&info));
    let table = format!("{:?}", env.dynamo.scan().table_name(&env.table).send().await.unwrap().items);
    assert!(!table.contains(key.expose()), "the key itself is never stored");

    let tampered = format!("Bearer {}x", &key.expose()[..key.expose().len() - 1]);
    for header in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Basic abc"),
        Some(tampered.as_str()),
        Some("Bearer tpk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        assert_eq!(env.keys.authorize(header).await.unwrap(), None, "{header:?}");
    }
    assert!(env.keys.revoke(&info.key_id).await.unwrap());
    assert_eq!(env.keys.authorize(Some(&format!("Bearer {}", key.expose()))).await.unwrap(), None);
    assert!(env.keys.list(&org).await.unwrap()[0].revoked);
    assert!(!env.keys.revoke("0000000000000000").await.unwrap());
}

#[tokio::test]
async fn local_api_serves_the_routes_behind_the_authorizer() {
    let env = start().await;
    let key_a = key_for(&env, "org-a").await;
    let key_b = key_for(&env, "org-b").await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let body = json!({"accountSid": sid, "authToken": token, "name": "Local"});

    let (status, _) = call(&env, reqwest::Method::POST, "/api/v1/providers/twilio", None, Some(body.clone())).await;
    assert_eq!(status, 401, "no key, no entry");
    let (status, _) =
        call(&env, reqwest::Method::POST, "/api/v1/providers/twilio", Some("tpk_bad"), Some(body.clone())).await;
    assert_eq!(status, 403);
    assert!(env.fake.trunks_of(&sid).is_empty());

    let (status, created) =
        call(&env, reqwest::Method::POST, "/api/v1/providers/twilio", Some(&key_a), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, got) =
        call(&env, reqwest::Method::GET, &format!("/api/v1/providers/twilio/{id}"), Some(&key_a), None).await;
    assert_eq!((status, &got), (200, &created));
    let (status, _) =
        call(&env, reqwest::Method::GET, &format!("/api/v1/providers/twilio/{id}"), Some(&key_b), None).await;
    assert_eq!(status, 404, "another organization's key sees nothing");
    let (status, page) = call(&env, reqwest::Method::GET, "/api/v1/providers?limit=5", Some(&key_a), None).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (status, problem) = call(&env, reqwest::Method::GET, "/api/v1/providers?limit=500", Some(&key_a), None).await;
    assert_eq!(status, 400);
    assert!(problem["errors"]["limit"].is_array());
    let (status, _) = call(&env, reqwest::Method::GET, "/api/v1/nothing-here", Some(&key_a), None).await;
    assert_eq!(status, 404);
    let (status, doc) = call(&env, reqwest::Method::GET, "/openapi.json", None, None).await;
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));
    let (status, _) = call(&env, reqwest::Method::DELETE, &format!("/api/v1/providers/{id}"), Some(&key_a), None).await;
    assert_eq!(status, 204);
    assert!(env.fake.trunks_of(&sid).is_empty());
}

/// What API Gateway answers itself, local-api answers exactly so: `application/json`
/// `{"message": …}` with an `apigw-requestid`, and the function never runs. (openapi.json
/// documents these answers on every operation.)
#[tokio::test]
async fn local_api_answers_as_api_gateway_where_api_gateway_answers() {
    let env = start().await;
    let key = key_for(&env, "org-gateway").await;
    let gateway = |authorization: Option<&str>, method: reqwest::Method, path: &str| {
        let mut request = env.http.request(method, format!("{}{path}", env.base));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body: Value = response.json().await.unwrap();
            assert_eq!(headers["content-type"], "application/json", "{status} {body}");
            assert!(headers.contains_key("apigw-requestid"), "{status}");
            (status, body)
        }
    };
    let bearer = format!("Bearer {key}");
    for (authorization, method, path, expected) in [
        // No identity source, or an empty one: 401 without calling the authorizer.
        (None, reqwest::Method::GET, "/api/v1/providers", (401, "Unauthorized")),
        (Some(""), reqwest::Method::POST, "/api/v1/providers/twilio", (401, "Unauthorized")),
        (Some("  "), reqwest::Method::GET, "/api/v1/providers", (401, "Unauthorized")),
        // The authorizer denies: 403.
        (Some("Bearer tpk_bad"), reqwest::Method::GET, "/api/v1/providers", (403, "Forbidden")),
        (Some("Basic abc"), reqwest::Method::DELETE, "/api/v1/providers/not-a-uuid", (403, "Forbidden")),
        // No route (path, or method on a path): 404 before any authorization.
        (Some(bearer.as_str()), reqwest::Method::GET, "/api/v1/nothing-here", (404, "Not Found")),
        (None, reqwest::Method::PUT, "/api/v1/providers", (404, "Not Found")),
        (Some(bearer.as_str()), reqwest::Method::PATCH, "/api/v1/providers/twilio", (404, "Not Found")),
    ] {
        let (status, body) = gateway(authorization, method.clone(), path).await;
        assert_eq!((status, &body), (expected.0, &json!({"message": expected.1})), "{method} {path} {authorization:?}");
    }
    // With the key, the function answers: its errors are problems.
    let response =
        env.http.get(format!("{}/api/v1/providers?limit=0", env.base)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

/// `admin sip-credential get`, run as operators run it: the call engine's view of a provider,
/// with exactly the password Twilio holds; an unknown provider is a message and exit 1.
#[tokio::test]
async fn admin_prints_the_sip_credential_twilio_holds() {
    let env = start().await;
    let key = key_for(&env, "org-admin").await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let created = json!({"accountSid": sid, "authToken": token, "name": "Admin check"});
    let (status, provider) =
        call(&env, reqwest::Method::POST, "/api/v1/providers/twilio", Some(&key), Some(created)).await;
    assert_eq!(status, 201, "{provider}");
    let id = provider["id"].as_str().unwrap();

    let admin = |provider_id: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_admin"))
            .args(["sip-credential", "get", "--organization-id", "org-admin", "--provider-id", provider_id])
            .env("TABLE_NAME", &env.table)
            .env("KMS_KEY_ID", &env.kms_key_id)
            .output()
            .unwrap()
    };
    let output = admin(id);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let list = env.fake.credential_lists_of(&sid).pop().unwrap();
    let username = answer["username"].as_str().unwrap();
    assert_eq!(answer["password"].as_str(), env.fake.sip_password(&list.sid, username).as_deref());
    assert_eq!(answer["trunkSid"], provider["trunkSid"]);
    assert_eq!(answer["terminationUri"], provider["terminationUri"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("audit") && !stderr.contains(answer["password"].as_str().unwrap()), "{stderr}");

    // During a rotation's overlap it shows both credentials, each as Twilio holds it.
    let path = format!("/api/v1/providers/{id}/sip-credential/rotate");
    let (status, rotated) = call(&env, reqwest::Method::POST, &path, Some(&key), None).await;
    assert_eq!(status, 200, "{rotated}");
    let output = admin(id);
    let both: Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    for credential in [&both, &both["previous"]] {
        let username = credential["username"].as_str().unwrap();
        assert_eq!(credential["password"].as_str(), env.fake.sip_password(&list.sid, username).as_deref(), "{both}");
    }
    assert_eq!(both["previous"]["username"], answer["username"]);

    let missing = admin(&uuid::Uuid::now_v7().to_string());
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ProviderNotFound"));
    assert!(missing.stdout.is_empty());
    assert!(env.fake.spec_violations().is_empty(), "{:#?}", env.fake.spec_violations());
}

/// A table created before the jobs index (key schema only) gets the index from bootstrap.
#[tokio::test]
async fn bootstrap_adds_the_jobs_index_to_a_table_created_before_it() {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    assert!(std::env::var("AWS_ENDPOINT_URL").is_ok(), "run through scripts/test, which starts moto");
    let aws = shared::tls::aws_sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let table = format!("local-{}", uuid::Uuid::new_v4().simple());
    let mut create = dynamo.create_table().table_name(&table).billing_mode(BillingMode::PayPerRequest);
    for (name, key_type) in [("pk", KeyType::Hash), ("sk", KeyType::Range)] {
        let attribute = AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S);
        create = create
            .attribute_definitions(attribute.build().unwrap())
            .key_schema(KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().unwrap());
    }
    create.send().await.unwrap();
    let storage = StorageConfig {
        table_name: table.clone(),
        kms_key_id: format!("alias/local-{}", uuid::Uuid::new_v4().simple()),
    };
    tools::bootstrap::bootstrap(&aws, &storage).await.unwrap();
    let described = dynamo.describe_table().table_name(&table).send().await.unwrap().table.unwrap();
    let indexes: Vec<&str> = described.global_secondary_indexes().iter().filter_map(|i| i.index_name()).collect();
    assert_eq!(indexes, [shared::storage::item::JOBS_INDEX]);
    assert!(!shared::storage::add_jobs_index(&dynamo, &table).await.unwrap(), "added once");
}
