//! Runs an API function as `lambda_http::run` does, with one difference: the request's URI is made buildable first.
//! Why: docs/decisions/buildable-request-uris.md.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::http::{HeaderValue, Uri, header::HOST};
use lambda_http::lambda_runtime::{self, Diagnostic, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::{Service, ServiceExt};
use lambda_http::{Adapter, Error, IntoResponse, Request};

/// `lambda_http::run`, with the event made buildable first and every log line of a request
/// naming who asked ([`Spanned`]).
pub async fn run<'a, R, S, E>(handler: S) -> Result<(), Error>
where
    S: Service<Request, Response = R, Error = E>,
    S::Future: Send + 'a,
    R: IntoResponse,
    E: std::fmt::Debug + Into<Diagnostic>,
{
    lambda_runtime::run(Adapter::from(Spanned(handler)).map_request(make_buildable)).await
}

/// The handler inside a `request` span with the authorizer's organization and API key id
/// (never the key), so that every log line of the request says who asked.
struct Spanned<S>(S);

impl<S: Service<Request>> Service<Request> for Spanned<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        use tracing::Instrument;
        let span = request_span(&request);
        self.0.call(request).instrument(span)
    }
}

/// The span of one API request: who asked, as the authorizer said.
fn request_span(request: &Request) -> tracing::Span {
    let field = |name: &str| crate::gateway::authorizer_field(request, name);
    tracing::info_span!("request", organization_id = field("organizationId"), api_key_id = field("apiKeyId"))
}

/// The event with its raw query string, host and scheme made such that lambda_http can build
/// the request from them.
pub fn make_buildable(mut event: LambdaEvent<LambdaRequest>) -> LambdaEvent<LambdaRequest> {
    if let LambdaRequest::ApiGatewayV2(request) = &mut event.payload {
        escape_raw_query(request);
        keep_buildable_origin(request);
    }
    event
}

/// The raw query string percent-encoded where a URI may not hold the bytes.
fn escape_raw_query(request: &mut ApiGatewayV2httpRequest) {
    if let Some(query) = request.raw_query_string.as_mut()
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
}

/// What the `http` crate takes in a query as it is (the URL standard's query state, ASCII
/// only: other bytes are encoded too, which decodes to the same text); `#` would end the
/// query there.
fn allowed_in_query(b: u8) -> bool {
    matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E)
}

/// `X-Forwarded-Proto` http or https (else https), and a `Host` (else API Gateway's domain
/// name, else none) that lambda_http's `{scheme}://{host}{path}` can be parsed from.
fn keep_buildable_origin(request: &mut ApiGatewayV2httpRequest) {
    const PROTO: &str = "x-forwarded-proto";
    let headers = &mut request.headers;
    let scheme = match headers.get(PROTO).map(HeaderValue::to_str) {
        None | Some(Ok("https")) => "https",
        Some(Ok("http")) => "http",
        Some(_) => {
            headers.insert(PROTO, HeaderValue::from_static("https"));
            "https"
        }
    };
    if headers.get(HOST).is_some_and(|host| !host.to_str().is_ok_and(|host| buildable(scheme, host))) {
        headers.remove(HOST);
    }
    if headers.get(HOST).is_none()
        && request.request_context.domain_name.as_deref().is_some_and(|d| !buildable(scheme, d))
    {
        request.request_context.domain_name = None;
    }
}

/// Whether lambda_http can build a URI with this scheme and host: it parses them as a URL and
/// then the URL's text as a URI, and panics where either fails.
fn buildable(scheme: &str, host: &str) -> bool {
    url::Url::parse(&format!("{scheme}://{host}/")).is_ok_and(|url| url.as_str().parse::<Uri>().is_ok())
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
        let request: Request = make_buildable(event_with_query(raw)).payload.into();
        use lambda_http::RequestExt;
        let params = request.query_string_parameters_ref().expect("parameters");
        assert_eq!(params.first("nextToken"), Some(r#""a b<c>"#));
        assert_eq!(params.first("limit"), Some("5"));
        assert_eq!(request.uri().query(), Some("limit=5&nextToken=%22a%20b%3Cc%3E"));
    }

    fn event_with_headers(headers: &[(&str, &str)]) -> LambdaEvent<LambdaRequest> {
        let mut event = event_with_query("");
        if let LambdaRequest::ApiGatewayV2(request) = &mut event.payload {
            for (name, value) in headers {
                let name = lambda_http::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
                request.headers.insert(name, HeaderValue::from_str(value).expect("a header value"));
            }
        }
        event
    }

    /// A hostile `Host` or `X-Forwarded-Proto` (lambda_http panics building the URI from it)
    /// still becomes a request; a usable pair is left as it is.
    #[test]
    fn a_host_or_scheme_no_uri_can_hold_still_becomes_a_request() {
        for headers in [
            [("host", "999.1.1.1"), ("x-forwarded-proto", "https")],
            [("host", "api.example.com:99999"), ("x-forwarded-proto", "https")],
            [("host", "a{b}.example.com"), ("x-forwarded-proto", "https")],
            [("host", "api.example.com"), ("x-forwarded-proto", "1 bad")],
            [("host", "api.example.com"), ("x-forwarded-proto", "ht tp")],
        ] {
            let unguarded = std::panic::catch_unwind(|| Request::from(event_with_headers(&headers).payload));
            assert!(unguarded.is_err(), "lambda_http builds {headers:?} itself now: the guard can go");
            let request: Request = make_buildable(event_with_headers(&headers)).payload.into();
            assert_eq!(request.uri().path(), "/api/v1/providers", "{headers:?}");
        }
        let request: Request =
            make_buildable(event_with_headers(&[("host", "api.example.com:8443"), ("x-forwarded-proto", "http")]))
                .payload
                .into();
        assert_eq!(request.uri().to_string(), "http://api.example.com:8443/api/v1/providers");
    }

    #[test]
    fn a_clean_query_is_left_as_it_is() {
        let query = "limit=5&nextToken=abc%2Bdef";
        let request: Request = make_buildable(event_with_query(query)).payload.into();
        assert_eq!(request.uri().query(), Some(query));
    }
}
