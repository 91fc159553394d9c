//! One HTTPS stack for every outbound call: the AWS SDK clients and the Twilio client go through reqwest on rustls
//! (ring), with one TLS configuration built once per process. Why: docs/decisions/outbound-tls-stack.md.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// The process's one TLS client configuration: compiled-in roots, ring crypto.
static TLS: LazyLock<rustls::ClientConfig> = LazyLock::new(|| {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
});

/// A reqwest builder on the shared TLS configuration; callers add their timeouts and policies.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().use_preconfigured_tls(TLS.clone())
}

/// The AWS SDK configuration the tools and tests load: the standard provider chains (region,
/// credentials, `AWS_ENDPOINT_URL*`), with [`aws_http_client`] as the HTTP client.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws_http_client())
        .timeout_config(aws_timeouts());
    empty_settings_unset(loader.load().await)
}

/// The AWS SDK configuration a function loads: as [`aws_sdk_config`], with the region and the
/// credentials from the environment only. Lambda sets them there (`AWS_REGION`; the execution
/// role's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); building the rest
/// of the default chains (profiles, SSO, web identity with its STS client, an IMDS client for
/// the region) cost ~0.35 ms of every cold start for providers a function never uses.
///
/// The loader's future is boxed: it is ~11 KB, and inline it would make every function's `main`
/// future that large, copied on the stack at start-up (see `functions/src/lib.rs`).
pub async fn function_sdk_config() -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws_http_client())
        .timeout_config(aws_timeouts())
        .region(aws_config::environment::EnvironmentVariableRegionProvider::new())
        .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    empty_settings_unset(Box::pin(loader.load()).await)
}

/// Every AWS call's limits: a connection in 3 s, each read and each attempt in 10 s (DynamoDB,
/// KMS and SQS answer in milliseconds; a stalled connection or a throttled call that hangs is
/// then retried or failed by the SDK, inside a function's 29 s, instead of holding it to
/// Lambda's timeout, which ends it before it can record what it leaves behind).
pub fn aws_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(10))
        .build()
}

/// The configuration with every per-service setting from the environment that is set but
/// empty counted as unset. `sam local` gives a template variable that resolves to no value
/// (`AWS_ENDPOINT_URL` when the stack's `AwsEndpointUrl` is empty) as an empty string, and the
/// SDK's clients take an empty `AWS_ENDPOINT_URL` as their endpoint and panic on every call.
fn empty_settings_unset(config: aws_config::SdkConfig) -> aws_config::SdkConfig {
    config.to_builder().service_config(NonEmptySettings(config)).build()
}

/// The environment's per-service settings (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`, …)
/// as the loaded configuration reads them, less the empty ones.
#[derive(Debug)]
struct NonEmptySettings(aws_config::SdkConfig);

impl LoadServiceConfig for NonEmptySettings {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        self.0.service_config()?.load_config(key).filter(|value| !value.is_empty())
    }
}

/// The AWS SDK's HTTP client, on the shared HTTPS stack.
pub fn aws_http_client() -> SharedHttpClient {
    SharedHttpClient::new(AwsHttpClient::default())
}

/// One reqwest client per distinct timeout settings the SDK asks for (in practice one).
#[derive(Debug, Default)]
struct AwsHttpClient {
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for AwsHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, connector)) = connectors.iter().find(|(t, _)| *t == timeouts) {
            return connector.clone();
        }
        let mut builder = client_builder();
        if let Some(connect) = timeouts.0 {
            builder = builder.connect_timeout(connect);
        }
        if let Some(read) = timeouts.1 {
            builder = builder.read_timeout(read);
        }
        let http = builder
            // The SDK signs every request for its endpoint; a redirect is an error it handles.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client configuration is static and valid");
        let connector = SharedHttpConnector::new(AwsConnector { http });
        connectors.push((timeouts, connector.clone()));
        connector
    }
}

#[derive(Debug)]
struct AwsConnector {
    http: reqwest::Client,
}

impl HttpConnector for AwsConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        HttpConnectorFuture::new(async move {
            let request = request.try_into_http1x().map_err(|e| ConnectorError::other(e.into(), None))?;
            let mut request = reqwest::Request::try_from(request.map(request_body))
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            // No call outlives the deadline of the work that makes it (a handler's, which keeps
            // back the time to record what it leaves and answer; what it then records runs
            // under the handler's outer deadline): read here, where the call is awaited.
            if let Some(left) = crate::deadline::remaining() {
                if left.is_zero() {
                    return Err(ConnectorError::timeout("the deadline has passed; not sent".into()));
                }
                *request.timeout_mut() = Some(request.timeout().map_or(left, |timeout| left.min(*timeout)));
            }
            let response = http.execute(request).await.map_err(connector_error)?;
            let response = http::Response::from(response).map(SdkBody::from_body_1_x);
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The SDK's request bodies are in memory for every API used here; a streaming one is wrapped.
fn request_body(body: SdkBody) -> reqwest::Body {
    match body.bytes() {
        Some(bytes) => reqwest::Body::from(bytes.to_vec()),
        None => reqwest::Body::wrap(body),
    }
}

/// Classifies a transport failure the way the SDK's retry strategy expects: timeouts and I/O
/// (refused, reset, dropped mid-response) are transient; anything else is not retried.
fn connector_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector() -> SharedHttpConnector {
        let components = aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder::for_tests()
            .build()
            .expect("test components");
        let settings = HttpConnectorSettings::builder().connect_timeout(Duration::from_secs(1)).build();
        AwsHttpClient::default().http_connector(&settings, &components)
    }

    fn post(url: &str) -> HttpRequest {
        let request = http::Request::post(url).body(SdkBody::from("{}")).expect("request");
        HttpRequest::try_from(request).expect("request")
    }

    /// Both loaders give every AWS client connect, read and attempt timeouts (the SDK sets
    /// none of the last two by itself: a stalled call would wait for Lambda's timeout).
    #[tokio::test]
    async fn every_aws_client_has_connect_read_and_attempt_timeouts() {
        for config in [aws_sdk_config().await, function_sdk_config().await] {
            let timeouts = config.timeout_config().expect("a timeout configuration");
            assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(3)));
            assert_eq!(timeouts.read_timeout(), Some(Duration::from_secs(10)));
            assert_eq!(timeouts.operation_attempt_timeout(), Some(Duration::from_secs(10)));
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_the_sdk_retries() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let error = connector().call(post(&format!("http://{address}/"))).await.expect_err("refused");
        assert!(error.is_io(), "{error:?}");
    }

    /// An AWS call ends by the current deadline: a server that never answers does not hold it
    /// past it (the client's own read timeout would, for 10 s), and past the deadline nothing
    /// is sent.
    #[tokio::test]
    async fn an_aws_call_ends_by_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket); // accepted, never answered
            }
        });
        let deadline = Some(std::time::Instant::now() + Duration::from_millis(300));
        let call = crate::deadline::within(deadline, connector().call(post(&format!("http://{address}/"))));
        let error = tokio::time::timeout(Duration::from_secs(5), call).await.expect("ended by the deadline");
        assert!(error.expect_err("no answer").is_timeout());
        let passed = Some(std::time::Instant::now());
        let error = crate::deadline::within(passed, connector().call(post(&format!("http://{address}/")))).await;
        assert!(error.expect_err("not sent").is_timeout());
    }

    #[tokio::test]
    async fn a_response_comes_back_with_its_status_headers_and_body() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0; 4096];
            let n = socket.read(&mut request).await.expect("read");
            let reply = "HTTP/1.1 400 Bad Request\r\nx-amzn-requestid: r1\r\ncontent-length: 2\r\n\r\nno";
            socket.write_all(reply.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let response = connector().call(post(&format!("http://{address}/path"))).await.expect("response");
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("r1"));
        let body = aws_smithy_types::byte_stream::ByteStream::new(response.into_body()).collect().await.expect("body");
        assert_eq!(body.into_bytes().as_ref(), b"no");
        let request = server.await.expect("server");
        assert!(request.starts_with("POST /path HTTP/1.1"), "{request}");
        assert!(request.ends_with("{}"), "the body is sent: {request}");
    }

    #[test]
    fn the_tls_configuration_is_built_from_the_compiled_in_roots() {
        assert_eq!(TLS.alpn_protocols.len(), 0);
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        assert!(client_builder().build().is_ok(), "reqwest takes the shared rustls configuration");
    }
}
