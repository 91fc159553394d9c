//! A proxy in front of moto that fails chosen AWS operations: how tests give DynamoDB or KMS a
//! failure at one precise step without touching production code. Point the SDK at it through
//! the standard `AWS_ENDPOINT_URL`-style endpoint configuration.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

/// How an injected failure answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A 500 (`InternalServerError`, or `KMSInternalException` for KMS).
    ServerError,
    /// What DynamoDB answers a transaction that met another one on the same item: a 400
    /// `TransactionCanceledException` whose reasons say `TransactionConflict`.
    TransactionConflict,
    /// What DynamoDB answers a read of an index it is still building after UpdateTable (or a
    /// stack update) added it: a 400 `ValidationException`.
    IndexBackfilling,
    /// What DynamoDB answers a `BatchWriteItem` it throttled: a 200 that hands every item back
    /// as `UnprocessedItems`.
    Unprocessed,
    /// The request reaches moto and is done, but the answer is a 500: a write whose outcome the
    /// caller cannot know (an answer lost on the way, a timeout after the commit).
    CommitThenFail,
    /// The request never reaches moto and is never answered: the caller dies waiting (a
    /// Lambda killed at its timeout).
    Hang,
}

/// Fail requests to `target` (whose body holds `needle`, when given) `remaining` times
/// (None: always).
struct Rule {
    target: String,
    needle: Option<String>,
    failure: Failure,
    remaining: Option<u32>,
}

#[derive(Default)]
struct Rules {
    failures: Vec<Rule>,
    /// Requests seen, by X-Amz-Target.
    counts: std::collections::BTreeMap<String, usize>,
    /// The IAM actions the requests seen needed.
    actions: std::collections::BTreeSet<String>,
}

#[derive(Clone)]
pub struct AwsProxy {
    pub endpoint: String,
    rules: Arc<Mutex<Rules>>,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    rules: Arc<Mutex<Rules>>,
}

impl AwsProxy {
    pub async fn start(upstream: &str) -> Self {
        let rules = Arc::new(Mutex::new(Rules::default()));
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: shared::tls::client_builder().build().expect("an HTTP client"),
            rules: rules.clone(),
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind AWS proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("AWS proxy") });
        Self { endpoint, rules }
    }

    /// Requests seen since the last reset, by operation (`X-Amz-Target`).
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        self.rules.lock().expect("lock").counts.clone()
    }

    /// The IAM actions (`dynamodb:GetItem`, `kms:Decrypt`, …) the requests since the last
    /// call needed, as AWS would authorize them; moto authorizes nothing.
    pub fn take_actions(&self) -> std::collections::BTreeSet<String> {
        std::mem::take(&mut self.rules.lock().expect("lock").actions)
    }

    pub fn reset_counts(&self) {
        self.rules.lock().expect("lock").counts.clear();
    }

    /// Removes every failure rule.
    pub fn clear(&self) {
        self.rules.lock().expect("lock").failures.clear();
    }

    /// Fails the operation (an `X-Amz-Target` such as `DynamoDB_20120810.TransactWriteItems`
    /// or `TrentService.GenerateDataKey`, or an action as [`AwsProxy::take_actions`] names it)
    /// with a 500, `times` times or always.
    pub fn fail(&self, target: &str, times: Option<u32>) {
        self.fail_with(target, Failure::ServerError, times);
    }

    pub fn fail_with(&self, target: &str, failure: Failure, times: Option<u32>) {
        let rule = Rule { target: target.to_owned(), needle: None, failure, remaining: times };
        self.rules.lock().expect("lock").failures.push(rule);
    }

    /// As [`AwsProxy::fail_with`], only requests whose body holds `needle` (one `PutItem` among
    /// others, say).
    pub fn fail_when(&self, target: &str, needle: &str, failure: Failure, times: Option<u32>) {
        let rule = Rule { target: target.to_owned(), needle: Some(needle.to_owned()), failure, remaining: times };
        self.rules.lock().expect("lock").failures.push(rule);
    }
}

/// The IAM actions AWS checks for a request: its operation's, except that a transaction is
/// authorized item by item (a `Put` needs `dynamodb:PutItem`, and so on) and an SQS batch by
/// its single action (`SendMessageBatch` needs `sqs:SendMessage`). A Query or Scan of an index
/// is authorized on the index's own ARN: it is named `dynamodb:Scan on index NAME`.
fn iam_actions(target: &str, body: &[u8]) -> Vec<String> {
    let Some((service, operation)) = target.split_once('.') else { return Vec::new() };
    let prefix = match service {
        "DynamoDB_20120810" => "dynamodb",
        "TrentService" => "kms",
        "AmazonSQS" => "sqs",
        other => panic!("an AWS service the proxy does not know: {other}"),
    };
    match operation {
        "TransactWriteItems" => {
            let request: serde_json::Value = serde_json::from_slice(body).expect("a JSON transaction");
            let items = request["TransactItems"].as_array().expect("TransactItems");
            let item_action = |item: &serde_json::Value| {
                let kind = item.as_object().and_then(|o| o.keys().next().cloned()).expect("an item kind");
                match kind.as_str() {
                    "ConditionCheck" => "dynamodb:ConditionCheckItem".to_owned(),
                    kind => format!("dynamodb:{kind}Item"),
                }
            };
            items.iter().map(item_action).collect()
        }
        "TransactGetItems" => vec!["dynamodb:GetItem".to_owned()],
        operation if prefix == "sqs" && operation.ends_with("Batch") => {
            vec![format!("sqs:{}", operation.trim_end_matches("Batch"))]
        }
        "Query" | "Scan" => {
            let request: serde_json::Value = serde_json::from_slice(body).expect("a JSON request");
            match request["IndexName"].as_str() {
                Some(index) => vec![format!("dynamodb:{operation} on index {index}")],
                None => vec![format!("dynamodb:{operation}")],
            }
        }
        operation => vec![format!("{prefix}:{operation}")],
    }
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let fail = {
        let mut rules = state.rules.lock().expect("lock");
        *rules.counts.entry(target.clone()).or_default() += 1;
        let actions = iam_actions(&target, &body);
        // A rule names an operation (`DynamoDB_20120810.Scan`) or an action as the proxy names
        // it (`dynamodb:Scan on index NAME`).
        let holds = |needle: &str| body.windows(needle.len()).any(|w| w == needle.as_bytes());
        let position = rules.failures.iter().position(|rule| {
            (rule.target == target || actions.contains(&rule.target)) && rule.needle.as_deref().is_none_or(holds)
        });
        rules.actions.extend(actions);
        match position {
            Some(index) => {
                let failure = rules.failures[index].failure;
                match &mut rules.failures[index].remaining {
                    Some(1) => {
                        rules.failures.remove(index);
                    }
                    Some(n) => *n -= 1,
                    None => {}
                }
                Some(failure)
            }
            None => None,
        }
    };
    let json = [("content-type", "application/x-amz-json-1.0")];
    match fail {
        Some(Failure::Hang) => return std::future::pending().await,
        Some(Failure::ServerError) => {
            let kind = if target.starts_with("TrentService") { "KMSInternalException" } else { "InternalServerError" };
            let body = serde_json::json!({"__type": kind, "message": "injected failure"}).to_string();
            return (StatusCode::INTERNAL_SERVER_ERROR, json, body).into_response();
        }
        Some(Failure::TransactionConflict) => {
            // DynamoDB gives one reason per item; the conflict is on the first.
            let items = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|request| request["TransactItems"].as_array().map(Vec::len))
                .unwrap_or(1);
            let reasons: Vec<_> = (0..items)
                .map(|i| match i {
                    0 => serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}),
                    _ => serde_json::json!({"Code": "None"}),
                })
                .collect();
            let body = serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
                "CancellationReasons": reasons,
            })
            .to_string();
            return (StatusCode::BAD_REQUEST, json, body).into_response();
        }
        Some(Failure::Unprocessed) => {
            let request: serde_json::Value = serde_json::from_slice(&body).expect("a JSON batch");
            let body = serde_json::json!({"UnprocessedItems": request["RequestItems"]}).to_string();
            return (StatusCode::OK, json, body).into_response();
        }
        Some(Failure::IndexBackfilling) => {
            let body = serde_json::json!({
                "__type": "com.amazon.coral.validate#ValidationException",
                "message": "Cannot read from backfilling global secondary index: ScheduledJobs",
            })
            .to_string();
            return (StatusCode::BAD_REQUEST, json, body).into_response();
        }
        Some(Failure::CommitThenFail) | None => {}
    }
    let url = format!("{}{}", state.upstream, uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut request = state.client.request(method, url).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answered = request.send().await;
    if fail == Some(Failure::CommitThenFail) {
        let body = serde_json::json!({"__type": "InternalServerError", "message": "injected failure after the commit"});
        return (StatusCode::INTERNAL_SERVER_ERROR, json, body.to_string()).into_response();
    }
    match answered {
        Ok(upstream) => {
            let status = upstream.status();
            let headers = upstream.headers().clone();
            let bytes = upstream.bytes().await.unwrap_or_default();
            let mut response = Response::new(axum::body::Body::from(bytes));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != "transfer-encoding" && name != "content-length" && name != "connection" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
