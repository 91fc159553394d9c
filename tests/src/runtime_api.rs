//! A local implementation of the Lambda Runtime API (what `sam local invoke` provides, without
//! Docker): a function binary started with `AWS_LAMBDA_RUNTIME_API` pointing here polls
//! `next`, receives the queued event and posts its response or error.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc, oneshot};

/// What the function answered.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    /// A function error (`/invocation/{id}/error`) or an init error.
    Error(Value),
}

struct Shared {
    events: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<oneshot::Sender<Outcome>>>,
    /// When the function first polled `next`: the end of its cold start.
    first_poll: std::sync::Mutex<Option<Instant>>,
    /// Each invocation's deadline is this far from when the function receives it (its timeout).
    time_limit: std::sync::Mutex<Duration>,
}

pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    queue: mpsc::UnboundedSender<(String, Value)>,
    shared: Arc<Shared>,
    init_error: Mutex<Option<oneshot::Receiver<Outcome>>>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (queue, events) = mpsc::unbounded_channel();
        let (init_tx, init_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(events),
            waiting: Mutex::new(HashMap::new()),
            init_error: Mutex::new(Some(init_tx)),
            first_poll: std::sync::Mutex::new(None),
            time_limit: std::sync::Mutex::new(Duration::from_secs(30)),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind runtime API");
        let address = listener.local_addr().expect("local addr").to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.expect("runtime API server") });
        Self { address, queue, shared, init_error: Mutex::new(Some(init_rx)) }
    }

    /// Queues an event and waits for the function's answer (or its init error).
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Outcome, String> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().await.insert(id.clone(), tx);
        self.queue.send((id, event)).map_err(|_| "runtime API stopped".to_owned())?;
        let mut init = self.init_error.lock().await;

        match init.as_mut() {
            Some(init_rx) => tokio::select! {
                outcome = rx => outcome.map_err(|_| "no answer".to_owned()),
                init_outcome = init_rx => {
                    *init = None;
                    init_outcome.map_err(|_| "no answer".to_owned())
                }
                () = tokio::time::sleep(timeout) => Err(format!("no answer within {timeout:?}")),
            },
            None => tokio::time::timeout(timeout, rx)
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
                .map_err(|_| "no answer".to_owned()),
        }
    }

    /// The function's timeout: each invocation's deadline is this far from its start (30 s unless
    /// set).
    pub fn set_time_limit(&self, time_limit: Duration) {
        *self.shared.time_limit.lock().expect("lock") = time_limit;
    }

    /// When the function first asked for an event, if it has.
    pub fn first_poll(&self) -> Option<Instant> {
        *self.shared.first_poll.lock().expect("lock")
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_poll.lock().expect("lock").get_or_insert_with(Instant::now);
    let Some((id, event)) = shared.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let time_limit = *shared.time_limit.lock().expect("lock");
    let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default() + time_limit;
    (
        StatusCode::OK,
        [
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:local".to_owned()),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        event.to_string(),
    )
        .into_response()
}

fn parse(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    if let Some(tx) = shared.waiting.lock().await.remove(&id) {
        let _ = tx.send(Outcome::Response(parse(&body)));
    }
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    if let Some(tx) = shared.waiting.lock().await.remove(&id) {
        let _ = tx.send(Outcome::Error(parse(&body)));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Some(tx) = shared.init_error.lock().await.take() {
        let _ = tx.send(Outcome::Error(parse(&body)));
    }
    StatusCode::ACCEPTED
}

/// The environment Lambda gives every function, pointed at a runtime API.
pub fn lambda_environment(runtime_api: &str, function_name: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/local"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}
