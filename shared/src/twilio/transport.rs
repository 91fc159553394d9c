//! How a request reaches Twilio: the connection pool, retries within the deadline and
//! Twilio's `Retry-After`, paging, and a metric per request.

use super::error::{api_error, classify};
use super::{TwilioClient, TwilioError, TwilioErrorKind, TwilioResource};
use crate::model::TwilioCredentials;
use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};

/// How often and how long to retry. Only requests that are safe to repeat are retried: any
/// request after a 429 or a connection failure (nothing was processed), and idempotent ones
/// (GET, DELETE) after a timeout or a 5xx.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The most time all the waits of one request may add up to.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            budget: Duration::from_secs(5),
        }
    }
}

/// The HTTP client and its connection pool, started afresh when no request was sent for
/// `stale_after` by the wall clock. Lambda freezes a function between invocations, and a
/// server closes a connection that idles long enough; the close arrives while the process is
/// frozen, so on thaw the pool still offers the connection, and a POST written to it fails
/// after it may have been sent: an "outcome unknown" and a needless rollback. The wall clock
/// is read because it keeps counting across a freeze, which the pool's own idle timer (60 s,
/// on the monotonic clock) need not. Twilio does not document how long it keeps an idle
/// connection; 15 s keeps the pool within one burst of requests, and costs a TLS handshake
/// after a pause.
#[derive(Debug, Clone)]
pub(super) struct Pool {
    current: std::sync::Arc<std::sync::Mutex<(reqwest::Client, std::time::SystemTime)>>,
    request_timeout: Duration,
    stale_after: Duration,
}

impl Pool {
    pub(super) const STALE_AFTER: Duration = Duration::from_secs(15);

    pub(super) fn new(request_timeout: Duration, stale_after: Duration) -> Self {
        let current = (Self::build(request_timeout), std::time::SystemTime::now());
        Self { current: std::sync::Arc::new(std::sync::Mutex::new(current)), request_timeout, stale_after }
    }

    fn build(request_timeout: Duration) -> reqwest::Client {
        crate::tls::client_builder()
            .connect_timeout(TwilioClient::CONNECT_TIMEOUT.min(request_timeout))
            .timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("twilio-provider-service/", env!("CARGO_PKG_VERSION")))
            // Credentials go to the configured hosts only: a 3xx is an error, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client configuration is static and valid")
    }

    /// The client to send with now: a fresh one (no pooled connections) after a pause.
    fn client(&self) -> reqwest::Client {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = std::time::SystemTime::now();
        // A clock set back counts as a pause too.
        if now.duration_since(current.1).map_or(true, |idle| idle > self.stale_after) {
            current.0 = Self::build(self.request_timeout);
        }
        current.1 = now;
        current.0.clone()
    }
}

/// GET and DELETE: sending one again changes nothing more (a POST creates or changes).
pub(super) fn is_idempotent(method: &Method) -> bool {
    method == Method::GET || method == Method::DELETE
}

/// An unsuccessful answer as an error, and whether to try again: a 429 after Twilio's
/// `Retry-After` (or a backoff), a 5xx only when the request is idempotent.
async fn refusal(response: reqwest::Response, idempotent: bool) -> (TwilioError, Retry) {
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = retry_after_header(&response);
        (TwilioError::RateLimited { retry_after }, retry_after.map_or(Retry::Backoff, Retry::After))
    } else if status.is_server_error() && !idempotent {
        (TwilioError::Unanswered { status: status.as_u16() }, Retry::Stop)
    } else {
        let retry = if idempotent && status.is_server_error() { Retry::Backoff } else { Retry::Stop };
        (api_error(response).await, retry)
    }
}

/// What to do after a failed attempt.
pub(super) enum Retry {
    /// Give up: the error is the answer.
    Stop,
    /// Try again after an exponential backoff with jitter.
    Backoff,
    /// Try again after the time Twilio asked for (`Retry-After`).
    After(Duration),
}

/// `TwilioRequests` (by operation and outcome) and `TwilioLatency` for a finished request.
pub(super) fn record_request(method: &Method, url: &str, outcome: &str, started: Instant) {
    let operation = operation_of(method, url);
    let dimensions = [("Operation", operation.as_str()), ("Outcome", outcome)];
    crate::metrics::count("TwilioRequests", &dimensions);
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    crate::metrics::emit("TwilioLatency", elapsed, crate::metrics::Unit::Milliseconds, &dimensions[..1]);
}

/// An operation's name from its request: the path with SIDs replaced, without the account
/// prefix and query (`POST Trunks/{Sid}/PhoneNumbers`): a small, fixed set of values.
pub(super) fn operation_of(method: &Method, url: &str) -> String {
    let path = reqwest::Url::parse(url).map(|u| u.path().to_owned()).unwrap_or_default();
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .skip_while(|s| matches!(*s, "v1" | "2010-04-01" | "Accounts") || (s.starts_with("AC") && s.len() == 34))
        .collect();
    let named: Vec<&str> = segments
        .iter()
        .map(|s| {
            let stem = s.strip_suffix(".json").unwrap_or(s);
            let sid = stem.len() == 34
                && stem[..2].bytes().all(|b| b.is_ascii_uppercase())
                && stem[2..].bytes().all(|b| b.is_ascii_hexdigit());
            if sid { "{Sid}" } else { stem }
        })
        .collect();
    format!("{method} {}", named.join("/"))
}

pub(super) fn outcome_of(error: &TwilioError) -> &'static str {
    match error.kind() {
        TwilioErrorKind::Rejected => "rejected",
        TwilioErrorKind::Denied => "denied",
        TwilioErrorKind::TestCredentials => "test-credentials",
        TwilioErrorKind::NotFound => "not-found",
        TwilioErrorKind::LimitReached => "limit-reached",
        TwilioErrorKind::RateLimited => "rate-limited",
        TwilioErrorKind::Transient => "transient",
        TwilioErrorKind::OutcomeUnknown => "outcome-unknown",
        TwilioErrorKind::Other => "error",
    }
}

/// The path and query of a link that is either a path or an absolute URL.
pub(super) fn path_and_query(link: &str) -> Option<String> {
    if link.starts_with('/') {
        return Some(link.to_owned());
    }
    let url = reqwest::Url::parse(link).ok()?;
    Some(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    })
}

/// The longest wait a `Retry-After` can ask for here; longer ones are taken as this. It is
/// past every retry budget and deadline (so not waited for), and it is what a caller is told
/// to wait at most, not a value of Twilio's that could be absurd (`u64::MAX` seconds).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub(super) fn retry_after_header(response: &reqwest::Response) -> Option<Duration> {
    retry_after(response.headers().get("retry-after")?.to_str().ok()?, std::time::SystemTime::now())
}

/// A `Retry-After` value (seconds, or an HTTP date) as a wait from `now`, at most
/// [`MAX_RETRY_AFTER`]; a date already past is no wait.
pub(super) fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

impl TwilioClient {
    /// Removes a resource the service created; already gone (404) counts as removed.
    pub async fn remove(&self, creds: &TwilioCredentials, resource: &TwilioResource) -> Result<(), TwilioError> {
        let result = match resource {
            TwilioResource::Trunk { trunk_sid } => self.delete_trunk(creds, trunk_sid).await,
            TwilioResource::CredentialList { list_sid } => self.delete_credential_list(creds, list_sid).await,
            TwilioResource::TrunkCredentialList { trunk_sid, list_sid } => {
                self.detach_credential_list(creds, trunk_sid, list_sid).await
            }
            TwilioResource::Credential { list_sid, credential_sid } => {
                self.delete_credential(creds, list_sid, credential_sid).await
            }
            TwilioResource::TrunkPhoneNumber { trunk_sid, number_sid } => {
                self.detach_phone_number(creds, trunk_sid, number_sid).await
            }
        };
        match result {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Follows Twilio's paging: `next_page_uri` (2010 API, a path) or `meta.next_page_url`
    /// (v1 APIs, an absolute URL). Only the path and query of a next-page link are used, joined
    /// to the configured base URL, so credentials are never sent to another host.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        creds: &TwilioCredentials,
        first_page_url: String,
        key: &str,
        max_items: usize,
    ) -> Result<Vec<T>, TwilioError> {
        let base = self.base_of(&first_page_url).to_owned();
        let mut items = Vec::new();
        let mut next = Some(first_page_url);
        while let Some(url) = next.take() {
            let mut page: serde_json::Map<String, serde_json::Value> = self.json(creds, Method::GET, url, &[]).await?;
            let batch = match page.remove(key) {
                Some(value) => serde_json::from_value::<Vec<T>>(value)
                    .map_err(|e| TwilioError::Decode(format!("list {key}: {}", classify(&e))))?,
                None => return Err(TwilioError::Decode(format!("the page has no {key} list"))),
            };
            items.extend(batch);
            if items.len() >= max_items {
                items.truncate(max_items);
                break;
            }
            let link = page
                .get("next_page_uri")
                .or_else(|| page.get("meta").and_then(|meta| meta.get("next_page_url")))
                .and_then(serde_json::Value::as_str);
            next = link.and_then(path_and_query).map(|path| format!("{base}{path}"));
        }
        Ok(items)
    }

    pub(super) async fn json<T: DeserializeOwned>(
        &self,
        creds: &TwilioCredentials,
        method: Method,
        url: String,
        form: &[(&str, &str)],
    ) -> Result<T, TwilioError> {
        let changes = !is_idempotent(&method);
        let response = self.send(creds, method, &url, form).await?;
        let read = match response.bytes().await {
            // The error names the shape, never the body: an account body carries the auth token.
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                TwilioError::Decode(format!("{} at line {} column {}", classify(&e), e.line(), e.column()))
            }),
            Err(e) => Err(self.transport_error(e)),
        };
        match read {
            Err(TwilioError::Decode(detail)) if changes => Err(TwilioError::UnreadableChange(detail)),
            other => other,
        }
    }

    pub(super) async fn no_content(
        &self,
        creds: &TwilioCredentials,
        method: Method,
        url: String,
    ) -> Result<(), TwilioError> {
        self.send(creds, method, &url, &[]).await.map(drop)
    }

    /// Sends with retries; returns a successful response or the error Twilio gave. Reads the
    /// current deadline ([`crate::deadline::within`], a task-local the handlers set from the
    /// Lambda invocation's): no attempt or wait goes past it.
    pub(super) async fn send(
        &self,
        creds: &TwilioCredentials,
        method: Method,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::Response, TwilioError> {
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = crate::deadline::remaining();
            if left.is_some_and(|left| left.is_zero()) {
                return Err(TwilioError::Timeout(self.request_timeout));
            }
            let (error, retry) = match self.attempt(creds, &method, url, form, left, attempt).await {
                Ok(response) => {
                    tracing::debug!(%method, url, status = response.status().as_u16(), attempt, elapsed_ms = started.elapsed().as_millis() as u64, "twilio request");
                    record_request(&method, url, "ok", started);
                    return Ok(response);
                }
                Err(failure) => failure,
            };
            let delay = match retry {
                Retry::Stop => {
                    record_request(&method, url, outcome_of(&error), started);
                    return Err(error);
                }
                Retry::Backoff => self.backoff(attempt),
                Retry::After(delay) => delay,
            };
            let past_deadline = crate::deadline::remaining().is_some_and(|left| delay >= left);
            if attempt >= self.retry.max_attempts || waited.saturating_add(delay) > self.retry.budget || past_deadline {
                record_request(&method, url, outcome_of(&error), started);
                return Err(error);
            }
            waited += delay;
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt, within `left` of the deadline: the response, or the error and whether to
    /// try again.
    async fn attempt(
        &self,
        creds: &TwilioCredentials,
        method: &Method,
        url: &str,
        form: &[(&str, &str)],
        left: Option<Duration>,
        attempt: u32,
    ) -> Result<reqwest::Response, (TwilioError, Retry)> {
        let idempotent = is_idempotent(method);
        let (username, password) = creds.basic_auth();
        let mut request = self.http.client().request(method.clone(), url).basic_auth(username, Some(password));
        if let Some(left) = left.filter(|left| *left < self.request_timeout) {
            request = request.timeout(left);
        }
        if !form.is_empty() {
            request = request.form(form);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => Ok(response),
            Ok(response) => {
                tracing::debug!(%method, url, status = response.status().as_u16(), attempt, "twilio request failed");
                Err(refusal(response, idempotent).await)
            }
            Err(e) => {
                tracing::debug!(%method, url, attempt, error = %e, "twilio request did not complete");
                // A refused connection never reached Twilio; anything later might have.
                let error = self.transport_error(e);
                let retryable = matches!(error, TwilioError::Connect(_)) || (idempotent && error.is_outcome_unknown());
                Err((error, if retryable { Retry::Backoff } else { Retry::Stop }))
            }
        }
    }

    /// Exponential backoff with full jitter.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.retry.base_delay.saturating_mul(1 << attempt.min(16)).min(self.retry.max_delay);
        let millis = cap.as_millis() as u64;
        Duration::from_millis(if millis == 0 { 0 } else { rand::rng().random_range(0..=millis) })
    }

    pub(super) fn transport_error(&self, e: reqwest::Error) -> TwilioError {
        if e.is_timeout() {
            TwilioError::Timeout(self.request_timeout)
        } else if e.is_decode() {
            TwilioError::Decode("the response body could not be read".into())
        } else if e.is_connect() {
            TwilioError::Connect(e.into())
        } else {
            TwilioError::Interrupted(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TwilioConfig;

    #[test]
    fn backoff_stays_within_the_cap() {
        let config = TwilioConfig::everywhere("http://127.0.0.1:9");
        let client = TwilioClient::new(&config);
        for attempt in 1..20 {
            assert!(client.backoff(attempt) <= client.retry.max_delay);
        }
    }

    /// Any `Retry-After`, in seconds up to `u64::MAX` or as a date however far ahead, is a
    /// wait of at most [`MAX_RETRY_AFTER`]; a date past is no wait; anything else is none.
    #[test]
    fn retry_after_is_clamped_whatever_twilio_sends() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&u64::MAX.to_string(), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), Some(MAX_RETRY_AFTER));
        let soon = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&soon, now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }

    /// A transport error says what failed, never the URL (Account SID, resource SIDs, page
    /// tokens): it reaches responses, stored errors and logs.
    #[tokio::test]
    async fn transport_errors_carry_no_url() {
        let config = TwilioConfig::everywhere("http://127.0.0.1:9");
        let client = TwilioClient::new(&config);
        let sid = format!("AC{}", "d".repeat(32));
        let creds = crate::model::TwilioCredentials {
            account_sid: crate::model::AccountSid::parse(&sid).unwrap(),
            auth: crate::model::TwilioAuth::AuthToken(crate::model::AuthToken::parse(&"e".repeat(32)).unwrap()),
            region: Default::default(),
        };
        let error = client.fetch_account(&creds).await.expect_err("nothing listens on port 9");
        let text = format!("{error} {error:?}");
        assert!(matches!(error, TwilioError::Connect(_)), "{text}");
        assert!(!text.contains(&sid) && !text.contains("127.0.0.1"), "{text}");
        // The causes stay errors, for the log line that walks them.
        let cause = std::error::Error::source(&error).expect("the transport failure is kept as the cause");
        assert!(cause.source().is_some(), "{text}");
    }

    /// A server that closes a keep-alive connection once it has idled `idle`, when the next
    /// request arrives on it (as a close that reached a frozen process looks on thaw); it
    /// answers every other request `{}`. Returns its base URL and how many connections it took.
    async fn closing_idle_server(idle: Duration) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut answered: Option<Instant> = None;
                    let mut buffer = vec![0u8; 8192];
                    loop {
                        let Ok(read) = socket.read(&mut buffer).await else { return };
                        if read == 0 || answered.is_some_and(|at| at.elapsed() > idle) {
                            return; // closed without an answer
                        }
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        socket.write_all(answer.as_bytes()).await.unwrap();
                        answered = Some(Instant::now());
                    }
                });
            }
        });
        (base, connections)
    }

    /// After a pause longer than the pool keeps connections for, a POST goes out on a new
    /// connection: on the pooled one, which the server closed meanwhile, it would fail after
    /// it may have been sent (outcome unknown), and POSTs are not retried.
    #[tokio::test]
    async fn a_post_after_a_pause_does_not_go_out_on_a_stale_connection() {
        let (base, connections) = closing_idle_server(Duration::from_millis(1500)).await;
        let config = TwilioConfig::everywhere(&base);
        let client = TwilioClient::new(&config).with_stale_connections_after(Duration::from_secs(1));
        let creds = crate::model::TwilioCredentials {
            account_sid: crate::model::AccountSid::parse(&format!("AC{}", "d".repeat(32))).unwrap(),
            auth: crate::model::TwilioAuth::AuthToken(crate::model::AuthToken::parse(&"e".repeat(32)).unwrap()),
            region: Default::default(),
        };
        let url = format!("{base}/v1/Trunks");
        client.send(&creds, Method::POST, &url, &[("FriendlyName", "a")]).await.expect("the first POST");
        client.send(&creds, Method::POST, &url, &[("FriendlyName", "b")]).await.expect("a POST right after");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1, "kept alive within a burst");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        client.send(&creds, Method::POST, &url, &[("FriendlyName", "c")]).await.expect("a POST after a pause");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn operations_are_named_without_sids() {
        let sid = format!("AC{}", "a".repeat(32));
        let url =
            format!("https://api.twilio.com/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers/PN{}.json", "b".repeat(32));
        assert_eq!(operation_of(&Method::POST, &url), "POST IncomingPhoneNumbers/{Sid}");
        let url = format!("https://trunking.twilio.com/v1/Trunks/TK{}/PhoneNumbers?PageSize=100", "c".repeat(32));
        assert_eq!(operation_of(&Method::GET, &url), "GET Trunks/{Sid}/PhoneNumbers");
    }

    #[test]
    fn next_pages_are_asked_of_the_host_the_first_page_came_from() {
        let hosts = |region: &str| crate::config::RegionHosts {
            api_base_url: format!("https://api.{region}.example"),
            trunking_base_url: format!("https://trunking.{region}.example"),
            routes_base_url: format!("https://routes.{region}.example"),
        };
        let client =
            TwilioClient::new(&TwilioConfig { us1: hosts("us1"), ie1: hosts("dublin.ie1"), au1: hosts("sydney.au1") });
        assert_eq!(
            client.base_of("https://api.dublin.ie1.example/2010-04-01/Accounts/AC1.json"),
            "https://api.dublin.ie1.example"
        );
        assert_eq!(
            client.base_of("https://trunking.sydney.au1.example/v1/Trunks"),
            "https://trunking.sydney.au1.example"
        );
        assert_eq!(client.base_of("https://api.us1.example/2010-04-01"), "https://api.us1.example");
        assert_eq!(client.base_of("https://elsewhere.example/v1"), "");
    }

    #[test]
    fn next_page_links_keep_only_path_and_query() {
        assert_eq!(path_and_query("https://evil.example/v1/Trunks?Page=1").as_deref(), Some("/v1/Trunks?Page=1"));
        assert_eq!(
            path_and_query("/2010-04-01/Accounts/AC1/X.json?Page=2").as_deref(),
            Some("/2010-04-01/Accounts/AC1/X.json?Page=2")
        );
    }

    #[test]
    fn authentication_failures_are_recognised() {
        assert!(
            TwilioError::Api { status: 401, code: Some(20003), message: String::new() }.is_authentication_failure()
        );
        assert!(
            !TwilioError::Api { status: 404, code: Some(20404), message: String::new() }.is_authentication_failure()
        );
    }
}
