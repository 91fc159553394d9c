//! Twilio's errors: its codes the service acts on, and one classification of every failure.

use crate::error::{Cause, chain};
use serde::Deserialize;
use std::time::Duration;

/// Twilio's error code for rejected credentials.
pub const CODE_AUTHENTICATION_FAILED: u32 = 20003;
/// Twilio's error code for "too many requests".
pub const CODE_TOO_MANY_REQUESTS: u32 = 20429;
/// Twilio's error code for a trunk domain name that is already taken.
pub const CODE_DOMAIN_NAME_TAKEN: u32 = 21248;

/// Twilio's error codes for account limits: SIP trunks (a Trial account holds one) and
/// credential lists.
pub const CODE_TRUNK_LIMIT: u32 = 21244;
pub const CODE_CREDENTIAL_LIST_LIMIT: u32 = 21239;
/// Twilio's error codes for a domain name that is invalid or already in use.
pub const CODE_DOMAIN_NAME_INVALID: u32 = 21232;
/// Twilio's "permission denied" code.
pub const CODE_PERMISSION_DENIED: u32 = 20403;
/// Twilio's answer (403) to test credentials for anything but buying numbers, sending messages
/// and making calls: "Resource not accessible with Test Account Credentials".
pub const CODE_TEST_CREDENTIALS: u32 = 20008;

/// What a Twilio error means for the caller: the one classification every handler matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioErrorKind {
    /// 401/20003: wrong token, or the account is suspended or closed.
    Rejected,
    /// 403: the credentials may not do this.
    Denied,
    /// 403/20008: the account's test credentials, which can manage nothing the service needs.
    TestCredentials,
    NotFound,
    /// An account limit (trunks, credential lists).
    LimitReached,
    /// Still 429 after the client's retries.
    RateLimited,
    /// Worth retrying later; nothing was changed (5xx to a read, a refused connection).
    Transient,
    /// A change that may or may not have been made (timeout, broken connection, 5xx).
    OutcomeUnknown,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    #[error("Twilio answered {status}{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Api { status: u16, code: Option<u32>, message: String },
    #[error("Twilio kept rate-limiting the request")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Twilio did not answer within {0:?}")]
    Timeout(Duration),
    /// No connection was made: Twilio never saw the request.
    #[error("could not reach Twilio: {}", chain(.0))]
    Connect(#[source] Cause),
    /// The connection failed after the request was sent: Twilio may have done the work.
    #[error("the connection to Twilio broke off: {}", chain(.0))]
    Interrupted(#[source] Cause),
    /// A 5xx to a request that creates or changes something: Twilio (or its edge) failed
    /// after receiving it, so it may have been done.
    #[error("Twilio answered {status} to a change; it may or may not have been made")]
    Unanswered { status: u16 },
    /// A change Twilio made (2xx) whose answer could not be read: what it made (its SID) is
    /// not known, so the caller finds it as it would after no answer.
    #[error("Twilio made the change, but its answer could not be read: {0}")]
    UnreadableChange(String),
    #[error("unexpected response from Twilio: {0}")]
    Decode(String),
}

impl TwilioError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Unanswered { status } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Worth trying again later: rate limiting, a timeout, a lost connection or a 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500,
            Self::RateLimited { .. }
            | Self::Timeout(_)
            | Self::Connect(_)
            | Self::Interrupted(_)
            | Self::Unanswered { .. }
            | Self::UnreadableChange(_) => true,
            Self::Decode(_) => false,
        }
    }

    /// Twilio may or may not have done what was asked, or did it without saying what it made
    /// (no answer arrived, or one that could not be read).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Interrupted(_) | Self::Unanswered { .. } | Self::UnreadableChange(_))
    }

    pub fn kind(&self) -> TwilioErrorKind {
        use TwilioErrorKind::*;
        if self.is_outcome_unknown() {
            return OutcomeUnknown;
        }
        match (self.status(), self.code()) {
            (_, Some(CODE_AUTHENTICATION_FAILED)) | (Some(401), _) => Rejected,
            (_, Some(CODE_TEST_CREDENTIALS)) => TestCredentials,
            (Some(403), _) | (_, Some(CODE_PERMISSION_DENIED)) => Denied,
            (_, Some(CODE_TRUNK_LIMIT | CODE_CREDENTIAL_LIST_LIMIT)) => LimitReached,
            (Some(404), _) => NotFound,
            _ if matches!(self, Self::RateLimited { .. }) => RateLimited,
            _ if self.is_transient() => Transient,
            _ => Other,
        }
    }

    /// Twilio refused the Account SID / Auth Token pair.
    pub fn is_authentication_failure(&self) -> bool {
        self.status() == Some(401) || self.code() == Some(CODE_AUTHENTICATION_FAILED)
    }
}

pub(super) fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "JSON of an unexpected shape",
        serde_json::error::Category::Eof => "truncated JSON",
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<u32>,
    #[serde(default)]
    message: Option<String>,
}

pub(super) async fn api_error(response: reqwest::Response) -> TwilioError {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody { code, message }) => {
            TwilioError::Api { status, code, message: message.unwrap_or_else(|| "no message".into()) }
        }
        Err(_) => {
            TwilioError::Api { status, code: None, message: "the error body was not Twilio's JSON error format".into() }
        }
    }
}
