//! The integration-test environment: the real AWS SDK clients against moto (started by
//! `scripts/test`, found through the SDK's standard `AWS_ENDPOINT_URL`), a fresh table and KMS
//! key per test, and a fresh fake Twilio per test.

use functions::services::Services;
use integration_tests::aws_proxy::AwsProxy;
use integration_tests::fake_twilio::FakeTwilio;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::config::{RegionHosts, StorageConfig, TwilioConfig};
use shared::model::{PlatformSipUris, Region};
use shared::twilio::{RetryPolicy, TwilioClient};
use std::time::Duration;

pub struct TestEnv {
    /// Twilio's US1 Region, where every provider is unless a test says otherwise.
    pub fake: FakeTwilio,
    /// Twilio's IE1 and AU1 Regions, each a fake of its own.
    pub fake_ie1: FakeTwilio,
    pub fake_au1: FakeTwilio,
    pub services: Services,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// The AWS configuration the service's clients use (through the proxy, when there is one).
    pub service_aws: aws_config::SdkConfig,
    pub table: String,
    /// The deletion queue the service continues deletes through.
    pub deletion_queue: String,
}

pub async fn aws_config() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the integration tests through scripts/test, which starts moto"
    );
    shared::tls::aws_sdk_config().await
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_request_timeout(TwilioClient::REQUEST_TIMEOUT).await
    }

    /// A Twilio client with a short timeout, for tests of slow Twilio answers.
    pub async fn with_request_timeout(timeout: Duration) -> Self {
        Self::build(timeout, None).await
    }

    /// The service's AWS clients go through a proxy that can fail chosen operations; the
    /// test's own clients talk to moto directly.
    pub async fn with_aws_proxy(timeout: Duration) -> (Self, AwsProxy) {
        let upstream = std::env::var("AWS_ENDPOINT_URL").expect("run through scripts/test");
        let proxy = AwsProxy::start(&upstream).await;
        (Self::build(timeout, Some(&proxy.endpoint)).await, proxy)
    }

    async fn build(timeout: Duration, service_endpoint: Option<&str>) -> Self {
        let aws = aws_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        let kms = aws_sdk_kms::Client::new(&aws);
        let table = format!("providers-{}", uuid::Uuid::new_v4().simple());
        shared::storage::create_table(&dynamo, &table).await.expect("create table in moto");
        let key = kms.create_key().send().await.expect("create KMS key in moto");
        let key_id = key.key_metadata.expect("key metadata").key_id;
        let alias = format!("alias/providers-{}", uuid::Uuid::new_v4().simple());
        kms.create_alias().alias_name(&alias).target_key_id(&key_id).send().await.expect("create alias");

        let fake = FakeTwilio::start().await;
        let (fake_ie1, fake_au1) = (FakeTwilio::start_in("ie1").await, FakeTwilio::start_in("au1").await);
        let hosts = |fake: &FakeTwilio| RegionHosts {
            api_base_url: fake.base_url.clone(),
            trunking_base_url: fake.base_url.clone(),
            routes_base_url: fake.base_url.clone(),
        };
        let twilio_config = TwilioConfig { us1: hosts(&fake), ie1: hosts(&fake_ie1), au1: hosts(&fake_au1) };
        // Short waits between retries keep the tests quick; the policy is otherwise the real one.
        let retry = RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        let twilio = TwilioClient::with_limits(&twilio_config, timeout, retry);
        let storage = StorageConfig { table_name: table.clone(), kms_key_id: alias.clone() };
        let service_aws = match service_endpoint {
            // The environment's AWS_ENDPOINT_URL would win over a plain endpoint_url; drop it.
            Some(endpoint) => aws.to_builder().endpoint_url(endpoint).service_config(NoEnvironmentConfig).build(),
            None => aws.clone(),
        };
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let queue_name = format!("deletions-{}", uuid::Uuid::new_v4().simple());
        let deletion_queue = sqs
            .create_queue()
            .queue_name(queue_name)
            .send()
            .await
            .expect("create SQS queue in moto")
            .queue_url
            .unwrap();
        let deletions = shared::queue::Queue::new(aws_sdk_sqs::Client::new(&service_aws), &deletion_queue);
        let services =
            Services::new(&service_aws, &storage, twilio, Region::Us1, platform_sip_uris()).with_deletions(deletions);
        Self { fake, fake_ie1, fake_au1, services, dynamo, kms, sqs, service_aws, table, deletion_queue }
    }

    /// Every item in the table, as JSON-ish debug text, for "no secret in the table" checks.
    pub async fn scan_table_text(&self) -> String {
        let items = self.dynamo.scan().table_name(&self.table).send().await.expect("scan").items.unwrap_or_default();
        format!("{items:?}")
    }

    /// Runs the deletion queue's consumer, as SQS would invoke it (one message per invocation,
    /// each with `budget` of time), until the queue is empty. Returns the invocations it took.
    pub async fn drain_deletions(&self, budget: Duration) -> usize {
        let mut invocations = 0;
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.deletion_queue)
                .max_number_of_messages(1)
                .send()
                .await
                .expect("receive from SQS");
            let Some(message) = received.messages.and_then(|m| m.into_iter().next()) else { return invocations };
            invocations += 1;
            assert!(invocations < 1000, "the deletion never finishes");
            let event =
                json!({"Records": [{"messageId": message.message_id, "body": message.body, "eventSource": "aws:sqs"}]});
            let deadline = Some(std::time::Instant::now() + budget);
            let answer = shared::deadline::within(
                deadline,
                functions::handlers::continue_deletions::handle(&self.services, &event),
            )
            .await;
            assert_eq!(answer["batchItemFailures"], json!([]), "a delete step failed");
            self.sqs
                .delete_message()
                .queue_url(&self.deletion_queue)
                .receipt_handle(message.receipt_handle.unwrap())
                .send()
                .await
                .expect("delete from SQS");
        }
    }

    /// Items of organizations and their numbers: what a provider leaves behind. The jobs
    /// index's backfill progress, which a planner run writes once per table, is not one.
    /// The table's records, audit events aside (they outlive their provider by design).
    pub async fn item_count(&self) -> usize {
        let backfill = shared::storage::item::jobs_index_backfill_key();
        let items = self.dynamo.scan().table_name(&self.table).send().await.expect("scan").items.unwrap_or_default();
        let event = aws_sdk_dynamodb::types::AttributeValue::S("event".into());
        items.iter().filter(|item| item.get("pk") != backfill.get("pk") && item.get("entity") != Some(&event)).count()
    }
}

/// Every test ends by asserting that the service sent Twilio nothing its spec forbids.
impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let violations: Vec<String> =
                [&self.fake, &self.fake_ie1, &self.fake_au1].iter().flat_map(|fake| fake.spec_violations()).collect();
            assert!(violations.is_empty(), "requests broke Twilio's spec: {violations:#?}");
        }
    }
}

/// The platform SIP ingress every test service is configured with.
pub const PLATFORM_SIP_URI: &str = "sip:sip.voice.example.com";

pub fn platform_sip_uris() -> PlatformSipUris {
    PlatformSipUris::parse(PLATFORM_SIP_URI).expect("valid SIP URIs")
}

/// An API Gateway HTTP API (v2) event, parsed by lambda_http exactly as in Lambda.
pub fn request(method: &str, path: &str, organization_id: Option<&str>, body: Option<&str>) -> Request {
    Req::new(method, path).org_opt(organization_id).body_opt(body).build()
}

pub fn request_with_headers(
    method: &str,
    path: &str,
    organization_id: Option<&str>,
    body: Option<&str>,
    headers: Value,
) -> Request {
    let mut req = Req::new(method, path).org_opt(organization_id).body_opt(body);
    req.headers = headers;
    req.build()
}

/// A builder for HTTP API v2 events.
pub struct Req {
    method: String,
    path: String,
    route: String,
    org: Option<String>,
    /// The id of the API key the authorizer let the request in with.
    api_key_id: Option<String>,
    body: Option<String>,
    headers: Value,
    path_params: serde_json::Map<String, Value>,
    query: Vec<(String, String)>,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            route: path.into(),
            org: None,
            api_key_id: None,
            body: None,
            headers: json!({"content-type": "application/json"}),
            path_params: Default::default(),
            query: Vec::new(),
        }
    }

    pub fn org(mut self, org: &str) -> Self {
        self.org = Some(org.into());
        self
    }

    pub fn api_key(mut self, id: &str) -> Self {
        self.api_key_id = Some(id.into());
        self
    }

    pub fn org_opt(mut self, org: Option<&str>) -> Self {
        self.org = org.map(str::to_owned);
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn body_opt(mut self, body: Option<&str>) -> Self {
        self.body = body.map(str::to_owned);
        self
    }

    /// Sets a path parameter and substitutes it into the path (the route keeps `{name}`).
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.path = self.path.replace(&format!("{{{name}}}"), value);
        self.path_params.insert(name.into(), json!(value));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers[name] = json!(value);
        self
    }

    pub fn headers(mut self, headers: Value) -> Self {
        self.headers = headers;
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    pub fn build(self) -> Request {
        let authorizer = match (&self.org, &self.api_key_id) {
            (Some(org), Some(key)) => json!({"lambda": {"organizationId": org, "apiKeyId": key}}),
            (Some(org), None) => json!({"lambda": {"organizationId": org}}),
            (None, _) => Value::Null,
        };
        let raw_query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let query_params: serde_json::Map<String, Value> =
            self.query.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let route_key = format!("{} {}", self.method, self.route);
        let event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": self.path,
            "rawQueryString": raw_query.join("&"),
            "headers": self.headers,
            "queryStringParameters": if query_params.is_empty() { Value::Null } else { Value::Object(query_params) },
            "pathParameters": if self.path_params.is_empty() { Value::Null } else { Value::Object(self.path_params) },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "authorizer": authorizer,
                "domainName": "api.example.com",
                "domainPrefix": "api",
                "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "tests"},
                "requestId": uuid::Uuid::new_v4().to_string(),
                "routeKey": route_key,
                "stage": "$default",
                "time": "22/Nov/2026:06:00:00 +0000",
                "timeEpoch": 1795500000000i64
            },
            "body": self.body,
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API v2 event")
    }
}

pub fn body_json(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body())
        .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", response.body()))
}

pub fn random_token() -> String {
    integration_tests::fake_twilio::new_sid("").to_lowercase()
}

/// Creates a provider through the create handler and returns its JSON.
pub async fn create_provider(env: &TestEnv, org: &str, account_sid: &str, auth_token: &str) -> Value {
    let body = json!({"accountSid": account_sid, "authToken": auth_token, "name": "Main line"}).to_string();
    let response = functions::handlers::create_twilio_provider::handle(
        &env.services,
        request("POST", "/api/v1/providers/twilio", Some(org), Some(&body)),
    )
    .await
    .expect("handler never fails");
    let json = body_json(&response);
    assert_eq!(response.status(), 201, "{json}");
    json
}

/// A status and JSON body (Null when the body is empty).
pub fn status_and_body(response: &Response<Body>) -> (u16, Value) {
    let body = if response.body().is_empty() { Value::Null } else { body_json(response) };
    (response.status().as_u16(), body)
}

#[derive(Debug)]
struct NoEnvironmentConfig;

impl aws_types::service_config::LoadServiceConfig for NoEnvironmentConfig {
    fn load_config(&self, _key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        None
    }
}

/// An attribute value with map keys sorted, so snapshots compare.
fn render(value: &aws_sdk_dynamodb::types::AttributeValue) -> String {
    use aws_sdk_dynamodb::types::AttributeValue;
    match value {
        AttributeValue::M(map) => {
            let mut fields: Vec<String> = map.iter().map(|(k, v)| format!("{k}:{}", render(v))).collect();
            fields.sort();
            format!("{{{}}}", fields.join(","))
        }
        AttributeValue::L(list) => format!("[{}]", list.iter().map(render).collect::<Vec<_>>().join(",")),
        other => format!("{other:?}"),
    }
}

/// Everything the fake Twilio holds for an account, in a comparable form.
pub fn twilio_snapshot(env: &TestEnv, account_sid: &str) -> String {
    let state = env.fake.state();
    let trunks: Vec<String> = state
        .trunks
        .values()
        .filter(|t| t.account_sid == account_sid)
        .map(|t| format!("{} {} {}", t.sid, t.domain_name, t.transfer_mode))
        .collect();
    let lists: Vec<&str> =
        state.credential_lists.values().filter(|l| l.account_sid == account_sid).map(|l| l.sid.as_str()).collect();
    let credentials: Vec<&str> =
        state.credentials.values().filter(|c| c.account_sid == account_sid).map(|c| c.sid.as_str()).collect();
    let numbers: Vec<String> = state
        .incoming_numbers
        .values()
        .filter(|n| n.account_sid == account_sid)
        .map(|n| format!("{} {:?} {:?} {:?}", n.sid, n.trunk_sid, n.voice_url, n.voice_application_sid))
        .collect();
    format!(
        "trunks={trunks:?} lists={lists:?} credentials={credentials:?} attached={:?} numbers={numbers:?}",
        state.trunk_credential_lists
    )
}

/// Every item of the table, sorted, in a comparable form.
pub async fn table_snapshot(env: &TestEnv) -> Vec<String> {
    let items = env
        .dynamo
        .scan()
        .table_name(&env.table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default();
    let mut rendered: Vec<String> = items
        .iter()
        .map(|item| {
            let mut fields: Vec<String> = item.iter().map(|(k, v)| format!("{k}={}", render(v))).collect();
            fields.sort();
            fields.join(" ")
        })
        .collect();
    rendered.sort();
    rendered
}
