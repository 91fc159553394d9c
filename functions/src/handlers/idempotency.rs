//! The `Idempotency-Key` header on requests that create things: the same request with the same key within 24 hours
//! answers the first response again. Why: docs/decisions/idempotency-what-is-kept.md.

use crate::gateway::organization_id;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::model::OrganizationId;
use shared::request::MAX_BODY_BYTES;
use shared::storage::idempotency::{Claim, IdempotencyStore, StoredResponse, digest};
use std::future::Future;
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";

fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// 1 to 255 printable ASCII characters.
fn parse_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(HEADER) else { return Ok(None) };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(ApiError::validation("Idempotency-Key", "must be 1 to 255 printable ASCII characters"));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Parses the request, then runs `handler` on it under the request's idempotency key, if it
/// has one. A bad key and a bad request are named together, and a request that does not parse
/// never claims its key.
pub async fn idempotent<T, P, F, Fut>(
    store: &IdempotencyStore,
    request: &Request,
    parse: P,
    handler: F,
) -> Result<Response<Body>, ApiError>
where
    P: FnOnce(&Request) -> Result<T, ApiError>,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let (key, parsed) = ApiError::both(parse_key(request), parse(request))?;
    let Some(key) = key else { return handler(parsed).await };
    let org = organization_id(request)?;
    let body = body_bytes(request);
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    let request_digest = digest(&[request.method().as_str().as_bytes(), request.uri().path().as_bytes(), body]);
    match store.claim(&org, &key, &request_digest).await? {
        Claim::Proceed => {}
        Claim::Replay(stored) => {
            shared::metrics::count("IdempotentReplays", &[]);
            return Ok(replay(stored));
        }
        Claim::InFlight => {
            return Err(ApiError::Conflict(
                "A request with this Idempotency-Key is still in progress; retry when it has finished.".into(),
            ));
        }
        Claim::Mismatch => {
            return Err(ApiError::IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request; use a new key for a new request."
                    .into(),
            ));
        }
    }
    let response = handler(parsed).await.unwrap_or_else(crate::gateway::problem_response);
    if !kept(response.status()) {
        if let Err(e) = store.forget(&org, &key).await {
            tracing::error!(error = %e, "could not forget an idempotency key");
        }
    } else {
        let stored = StoredResponse {
            status: response.status().as_u16(),
            content_type: header(&response, "content-type").unwrap_or_else(|| "application/json".into()),
            body: String::from_utf8_lossy(response.body()).into_owned(),
            location: header(&response, "location"),
        };
        store_response(store, &org, &key, &request_digest, &stored).await;
    }
    Ok(response)
}

/// How often storing a response is tried (each try is the SDK's own three attempts), and the
/// wait before the next.
const STORE_TRIES: u32 = 3;
const STORE_RETRY_WAIT: Duration = Duration::from_millis(200);

/// Stores the response for the key, trying again while the deadline allows: unstored, the key
/// reads as in flight until its lock lapses (a retry then gets 409), and after that the
/// request runs again (a create then meets its own provider: 409, not its 201).
async fn store_response(
    store: &IdempotencyStore,
    org: &OrganizationId,
    key: &str,
    request_digest: &str,
    stored: &StoredResponse,
) {
    for attempt in 1..=STORE_TRIES {
        match store.complete(org, key, request_digest, stored).await {
            Ok(()) => return,
            Err(e) => {
                let wait = STORE_RETRY_WAIT * attempt;
                let in_time = shared::deadline::remaining().is_none_or(|left| left > wait);
                if attempt == STORE_TRIES || !in_time {
                    tracing::error!(error = %e, attempt, "could not store the response for an idempotency key");
                    return;
                }
                tracing::warn!(error = %e, attempt, "storing the response for an idempotency key failed; trying again");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Whether a response is what the request came to (replayed for its key), rather than a request
/// not taken or not finished.
fn kept(status: StatusCode) -> bool {
    status.is_success() || matches!(status, StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY)
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn replay(stored: StoredResponse) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
        .header("content-type", stored.content_type)
        .header("cache-control", "no-store")
        .header("idempotent-replayed", "true");
    if let Some(location) = stored.location {
        builder = builder.header("location", location);
    }
    builder.body(Body::from(stored.body)).expect("stored headers are valid")
}
