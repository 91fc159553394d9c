//! The whole API on localhost. Each HTTP request goes through the same authorizer logic, is
//! turned into the API Gateway HTTP API (v2) event a function receives in AWS (route key,
//! path parameters, authorizer context), parsed by lambda_http, and handed to the same
//! handler code: local behaviour is production behaviour.

use axum::body::{Body as AxumBody, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use functions::routes::match_route;
use functions::services::Services;
use lambda_http::Body;
use serde_json::{Value, json};
use shared::storage::api_keys::ApiKeyStore;
use std::sync::Arc;
use std::time::Instant;

pub struct LocalApi {
    pub services: Services,
    pub keys: ApiKeyStore,
    /// The OpenAPI document served at `/openapi.json`.
    pub openapi: &'static str,
}

pub fn router(api: Arc<LocalApi>) -> axum::Router {
    axum::Router::new().fallback(serve).with_state(api)
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail});
    (status, [("content-type", "application/problem+json")], body.to_string()).into_response()
}

/// The functions' `Timeout` in template.yaml (API Gateway waits at most 30 s).
pub const INVOCATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(29);

/// The Lambda context an invocation gets: its request id and the deadline the template gives
/// it, so deadlines, 202s and compensation behave locally as deployed.
fn invocation_context(request_id: &str) -> lambda_http::Context {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut context = lambda_http::Context::default();
    context.request_id = request_id.to_owned();
    context.deadline = (now + INVOCATION_TIMEOUT).as_millis() as u64;
    context
}

/// An answer API Gateway (HTTP API) gives itself, without the function: `application/json`
/// `{"message": "<reason phrase>"}`, with its `apigw-requestid` header.
fn gateway_answer(status: StatusCode, request_id: &str) -> Response {
    let body = json!({"message": status.canonical_reason().unwrap_or("Error")});
    let mut response = (status, [("content-type", "application/json")], body.to_string()).into_response();
    response.headers_mut().insert("apigw-requestid", request_id.parse().expect("a UUID is a valid header value"));
    response
}

async fn serve(
    State(api): State<Arc<LocalApi>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let path = uri.path().to_owned();
    if method == Method::GET && path == "/openapi.json" {
        return (StatusCode::OK, [("content-type", "application/json")], api.openapi).into_response();
    }
    let Some((route, params)) = match_route(method.as_str(), &path) else {
        // API Gateway routes before it authorizes: no route, 404 {"message":"Not Found"}.
        log_request(&request_id, method.as_str(), "-", 404, started, None);
        return gateway_answer(StatusCode::NOT_FOUND, &request_id);
    };
    let route_key = format!("{} {}", route.method, route.path);

    // API Gateway runs the authorizer first; a denied request never reaches the function.
    let authorization = headers.get("authorization").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if authorization.as_deref().is_none_or(|value| value.trim().is_empty()) {
        // API Gateway answers 401 {"message":"Unauthorized"} without calling the authorizer when
        // the identity source ($request.header.Authorization) is missing or empty.
        log_request(&request_id, method.as_str(), &route_key, 401, started, None);
        return gateway_answer(StatusCode::UNAUTHORIZED, &request_id);
    }
    let decision = match functions::handlers::authorizer::authorize(&api.keys, authorization.as_deref()).await {
        Ok(decision) => decision,
        // What API Gateway answers when the authorizer fails.
        Err(_) => {
            log_request(&request_id, method.as_str(), &route_key, 500, started, None);
            return gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, &request_id);
        }
    };
    if !decision.is_authorized {
        log_request(&request_id, method.as_str(), &route_key, 403, started, None);
        // API Gateway answers a denied simple-response authorizer with 403 {"message":"Forbidden"}.
        return gateway_answer(StatusCode::FORBIDDEN, &request_id);
    }
    let organization_id = decision.context["organizationId"].as_str().map(str::to_owned);

    let event = http_api_event(&request_id, &method, &uri, &headers, &body, &route_key, &params, &decision.context);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(e) => {
            log_request(&request_id, method.as_str(), &route_key, 400, started, organization_id.as_deref());
            return problem(
                StatusCode::BAD_REQUEST,
                "Bad request",
                &format!("The request cannot be represented as an API Gateway event: {e}"),
            );
        }
    };
    let request = lambda_http::RequestExt::with_lambda_context(request, invocation_context(&request_id));
    let response = match route.endpoint.call(&api.services, request).await {
        Ok(response) => response,
        Err(e) => {
            // What API Gateway does when the function itself fails: 500 {"message":"Internal Server Error"}.
            tracing::error!(error = %e, "handler failed");
            log_request(&request_id, method.as_str(), &route_key, 500, started, organization_id.as_deref());
            return gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, &request_id);
        }
    };
    let status = response.status();
    log_request(&request_id, method.as_str(), &route_key, status.as_u16(), started, organization_id.as_deref());
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Text(text) => text.into_bytes(),
        Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    let mut out = Response::new(AxumBody::from(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out.headers_mut().insert("apigw-requestid", request_id.parse().expect("a UUID is a valid header value"));
    out
}

/// The HTTP API payload 2.0 event for a request.
#[allow(clippy::too_many_arguments)]
fn http_api_event(
    request_id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    route_key: &str,
    params: &[(String, String)],
    authorizer_context: &Value,
) -> Value {
    let mut header_map = serde_json::Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        // API Gateway joins repeated headers with commas.
        match header_map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                header_map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let query = uri.query().unwrap_or("");
    let mut query_params = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_decode(s);
        query_params.insert(decode(name), Value::String(decode(value)));
    }
    let path_params: serde_json::Map<String, Value> =
        params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(base64::engine::general_purpose::STANDARD.encode(body)), true),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": uri.path(),
        "rawQueryString": query,
        "headers": header_map,
        "queryStringParameters": if query_params.is_empty() { Value::Null } else { Value::Object(query_params) },
        "pathParameters": if path_params.is_empty() { Value::Null } else { Value::Object(path_params) },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": {"lambda": authorizer_context},
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method.as_str(), "path": uri.path(), "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("")},
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": "",
            "timeEpoch": now.as_millis() as i64
        },
        "body": body,
        "isBase64Encoded": is_base64
    })
}

/// Query-string decoding (`%XX` and `+`), as API Gateway does for `queryStringParameters`.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One JSON line per request: never a header or body, so never a secret.
fn log_request(
    request_id: &str,
    method: &str,
    route: &str,
    status: u16,
    started: Instant,
    organization_id: Option<&str>,
) {
    let line = json!({
        "time": shared::time::Timestamp::now().to_string(),
        "requestId": request_id,
        "method": method,
        "route": route,
        "status": status,
        "latencyMs": started.elapsed().as_secs_f64() * 1000.0,
        "organizationId": organization_id,
    });
    println!("{line}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn invocations_get_the_templates_deadline() {
        let context = super::invocation_context("req-1");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let left = context.deadline.saturating_sub(now);
        assert!((28_000..=29_000).contains(&left), "{left} ms left");
        assert_eq!(context.request_id, "req-1");
    }

    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
