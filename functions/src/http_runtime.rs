//! Runs an API function as `lambda_http::run` does, with one difference: the raw query string
//! API Gateway passes on as the client sent it can hold bytes the `http` crate refuses in a URI
//! (`"`, `<`, `>`, space, controls), and lambda_http then panics building the request (it
//! appends the query to the URI as it is; the path it encodes itself), which API Gateway
//! answers with a 500 for the client's own mistake. Such bytes are percent-encoded first. The
//! query parameters decode to the same values, so the handler sees what was sent and answers
//! it (400 for a bad `nextToken="x"`, say).

use lambda_http::lambda_runtime::{self, Diagnostic, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::{Service, ServiceExt};
use lambda_http::{Adapter, Error, IntoResponse, Request};

/// `lambda_http::run`, with the raw query string made safe to parse first.
pub async fn run<'a, R, S, E>(handler: S) -> Result<(), Error>
where
    S: Service<Request, Response = R, Error = E>,
    S::Future: Send + 'a,
    R: IntoResponse,
    E: std::fmt::Debug + Into<Diagnostic>,
{
    lambda_runtime::run(Adapter::from(handler).map_request(escape_raw_query)).await
}

/// The event with its raw query string percent-encoded where a URI may not hold the bytes.
pub fn escape_raw_query(mut event: LambdaEvent<LambdaRequest>) -> LambdaEvent<LambdaRequest> {
    if let LambdaRequest::ApiGatewayV2(request) = &mut event.payload
        && let Some(query) = request.raw_query_string.as_mut()
        && !query.bytes().all(allowed_in_query)
    {
        use std::fmt::Write;
        let mut escaped = String::with_capacity(query.len() + 8);
        for b in query.bytes() {
            if allowed_in_query(b) {
                escaped.push(char::from(b));
            } else {
                let _ = write!(escaped, "%{b:02X}");
            }
        }
        *query = escaped;
    }
    event
}

/// What the `http` crate takes in a query as it is (the URL standard's query state, ASCII
/// only: other bytes are encoded too, which decodes to the same text); `#` would end the
/// query there.
fn allowed_in_query(b: u8) -> bool {
    matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_with_query(query: &str) -> LambdaEvent<LambdaRequest> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/list-providers.json"))
            .expect("the list-providers event");
        let mut json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        json["rawQueryString"] = query.into();
        let payload: LambdaRequest = serde_json::from_value(json).expect("an API Gateway event");
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    /// Without escaping, lambda_http cannot build the request (it panics); with it, the
    /// parameters keep the values the client sent.
    #[test]
    fn a_query_with_bytes_a_uri_refuses_still_becomes_a_request() {
        let raw = r#"limit=5&nextToken="a b<c>"#;
        let unescaped = std::panic::catch_unwind(|| Request::from(event_with_query(raw).payload));
        assert!(unescaped.is_err(), "lambda_http builds this request itself now: the escaping can go");
        let request: Request = escape_raw_query(event_with_query(raw)).payload.into();
        use lambda_http::RequestExt;
        let params = request.query_string_parameters_ref().expect("parameters");
        assert_eq!(params.first("nextToken"), Some(r#""a b<c>"#));
        assert_eq!(params.first("limit"), Some("5"));
        assert_eq!(request.uri().query(), Some("limit=5&nextToken=%22a%20b%3Cc%3E"));
    }

    #[test]
    fn a_clean_query_is_left_as_it_is() {
        let query = "limit=5&nextToken=abc%2Bdef";
        let request: Request = escape_raw_query(event_with_query(query)).payload.into();
        assert_eq!(request.uri().query(), Some(query));
    }
}
