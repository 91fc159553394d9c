//! The integration-test environment: the real AWS SDK clients against moto (started by
//! `scripts/test`, found through the SDK's standard `AWS_ENDPOINT_URL`), a fresh table and KMS
//! key per test, and a fresh fake Twilio per test.

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use functions::services::Services;
use integration_tests::fake_twilio::FakeTwilio;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::config::{StorageConfig, TwilioConfig};
use shared::model::Region;
use shared::twilio::{RetryPolicy, TwilioClient};
use std::time::Duration;

pub struct TestEnv {
    pub fake: FakeTwilio,
    pub services: Services,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub table: String,
}

pub async fn aws_config() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the integration tests through scripts/test, which starts moto"
    );
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Creates a table shaped like the one in template.yaml.
pub async fn create_table(dynamo: &aws_sdk_dynamodb::Client, name: &str) {
    let attribute = |n: &str| {
        AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
    dynamo
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .expect("create table in moto");
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_request_timeout(TwilioClient::REQUEST_TIMEOUT).await
    }

    /// A Twilio client with a short timeout, for tests of slow Twilio answers.
    pub async fn with_request_timeout(timeout: Duration) -> Self {
        let aws = aws_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        let kms = aws_sdk_kms::Client::new(&aws);
        let table = format!("providers-{}", uuid::Uuid::new_v4().simple());
        create_table(&dynamo, &table).await;
        let key = kms.create_key().send().await.expect("create KMS key in moto");
        let key_id = key.key_metadata.expect("key metadata").key_id;
        let alias = format!("alias/providers-{}", uuid::Uuid::new_v4().simple());
        kms.create_alias().alias_name(&alias).target_key_id(&key_id).send().await.expect("create alias");

        let fake = FakeTwilio::start().await;
        let twilio_config =
            TwilioConfig { api_base_url: fake.base_url.clone(), trunking_base_url: fake.base_url.clone() };
        // Short waits between retries keep the tests quick; the policy is otherwise the real one.
        let retry = RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        let twilio = TwilioClient::with_limits(&twilio_config, timeout, retry);
        let storage = StorageConfig { table_name: table.clone(), kms_key_id: alias.clone() };
        let services = Services::new(&aws, &storage, twilio, Region::Us1);
        Self { fake, services, dynamo, kms, table }
    }

    /// Every item in the table, as JSON-ish debug text, for "no secret in the table" checks.
    pub async fn scan_table_text(&self) -> String {
        let items = self.dynamo.scan().table_name(&self.table).send().await.expect("scan").items.unwrap_or_default();
        format!("{items:?}")
    }

    pub async fn item_count(&self) -> usize {
        self.dynamo.scan().table_name(&self.table).send().await.expect("scan").items.unwrap_or_default().len()
    }
}

/// An API Gateway HTTP API (v2) event, parsed by lambda_http exactly as in Lambda.
pub fn request(method: &str, path: &str, organization_id: Option<&str>, body: Option<&str>) -> Request {
    request_with_headers(method, path, organization_id, body, json!({"content-type": "application/json"}))
}

pub fn request_with_headers(
    method: &str,
    path: &str,
    organization_id: Option<&str>,
    body: Option<&str>,
    headers: Value,
) -> Request {
    let authorizer = match organization_id {
        Some(org) => json!({"lambda": {"organizationId": org}}),
        None => Value::Null,
    };
    let event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "authorizer": authorizer,
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "tests"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "22/Nov/2026:06:00:00 +0000",
            "timeEpoch": 1795500000000i64
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API v2 event")
}

pub fn body_json(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body())
        .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", response.body()))
}

pub fn random_token() -> String {
    integration_tests::fake_twilio::new_sid("").to_lowercase()
}
