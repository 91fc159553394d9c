//! The one error type every handler returns. It maps to an RFC 9457 problem+json
//! response; an internal cause is logged but never shown to the caller.

use http::{Response, StatusCode};
use serde::Serialize;
use std::collections::BTreeMap;

/// Every failing field, each with all of its messages.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not well-formed JSON, a parameter is malformed, or similar.
    #[error("{0}")]
    BadRequest(String),
    /// 400: the request is well-formed but fields break the rules.
    #[error("the request has invalid fields")]
    Validation(FieldErrors),
    /// 401: the authorizer context names no organization.
    #[error("the request carries no organization; it must come through the API's authorizer")]
    Unauthorized,
    /// 404: missing, or owned by another organization (indistinguishable on purpose).
    #[error("{0}")]
    NotFound(String),
    /// 409
    #[error("{0}")]
    Conflict(String),
    /// 413
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 422: understood, but Twilio refuses it (credentials rejected, account not active, …).
    #[error("{detail}")]
    Unprocessable { title: &'static str, detail: String },
    /// 422: the Idempotency-Key was used with a different request.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// 422: a stored secret cannot be decrypted (copied between records, or the key changed).
    #[error("{0}")]
    StoredSecretUnusable(String),
    /// 422: a limit of the customer's Twilio account (trunks, credential lists) stops the
    /// request; what it created has been rolled back.
    #[error("{detail}")]
    TwilioLimitReached { detail: String },
    /// 502: Twilio failed; whatever the request created has been rolled back.
    #[error("{detail}")]
    TwilioFailed {
        detail: String,
        #[source]
        cause: Option<BoxedError>,
    },
    /// 503: Twilio kept rate-limiting after bounded retries.
    #[error("{detail}")]
    TwilioRateLimited { detail: String, retry_after_secs: u64 },
    /// 503: KMS or DynamoDB failed; nothing was kept. The cause is logged, never returned.
    #[error("the service's storage or key service is unavailable; nothing was changed, retry later")]
    Unavailable(#[source] BoxedError),
    /// 500: a bug. The cause is logged, never returned.
    #[error("internal error")]
    Internal(#[source] BoxedError),
}

/// The RFC 9457 body.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Every failing field with its messages (validation failures only), the first
    /// [`MAX_NAMED_FIELDS`] in field order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<std::collections::HashMap<String, Vec<String>>>))]
    pub errors: Option<FieldErrors>,
    /// How many more fields failed than `errors` lists.
    #[serde(rename = "errorsOmitted", skip_serializing_if = "Option::is_none")]
    pub errors_omitted: Option<usize>,
}

/// The most failing fields one 400 names: a body of thousands of mistakes (a 256 KiB object of
/// unknown fields, say) still gets an answer of a few KB, which says how many it left out.
pub const MAX_NAMED_FIELDS: usize = 50;

impl ApiError {
    pub fn internal(cause: impl Into<BoxedError>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn unavailable(cause: impl Into<BoxedError>) -> Self {
        Self::Unavailable(cause.into())
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }

    /// Both results, or every mistake of both: a request names all its mistakes at once (a bad
    /// path id and a bad body field, say; or a bad path id and a body that is not JSON, under
    /// `body`). Any other error is answered as it comes.
    pub fn both<A, B>(a: Result<A, ApiError>, b: Result<B, ApiError>) -> Result<(A, B), ApiError> {
        match (a, b) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            (Err(Self::Validation(mut first)), Err(Self::Validation(second))) => {
                for (field, messages) in second {
                    first.entry(field).or_default().extend(messages);
                }
                Err(Self::Validation(first))
            }
            (Err(Self::Validation(mut fields)), Err(body)) | (Err(body), Err(Self::Validation(mut fields)))
                if body.is_about_the_body() =>
            {
                fields.entry("body".to_owned()).or_default().push(body.to_string());
                Err(Self::Validation(fields))
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// A body that could not be read as a request at all (not JSON, too large, another type).
    fn is_about_the_body(&self) -> bool {
        matches!(self, Self::BadRequest(_) | Self::PayloadTooLarge { .. } | Self::UnsupportedMediaType)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. }
            | Self::TwilioLimitReached { .. }
            | Self::IdempotencyKeyReused(_)
            | Self::StoredSecretUnusable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TwilioFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::TwilioRateLimited { .. } | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable identifier for the kind of problem, documented in the README.
    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("bad-request", "Bad request"),
            Self::Validation(_) => ("validation-error", "Your request has invalid fields"),
            Self::Unauthorized => ("unauthorized", "Unauthorized"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::PayloadTooLarge { .. } => ("payload-too-large", "Request body too large"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::Unprocessable { title, .. } => ("twilio-rejected", title),
            Self::TwilioLimitReached { .. } => ("twilio-limit-reached", "Twilio account limit reached"),
            Self::IdempotencyKeyReused(_) => ("idempotency-key-reused", "Idempotency-Key reused"),
            Self::StoredSecretUnusable(_) => ("stored-secret-unusable", "Stored credentials are unusable"),
            Self::TwilioFailed { .. } => ("twilio-error", "Twilio request failed"),
            Self::TwilioRateLimited { .. } => ("twilio-rate-limited", "Twilio is rate-limiting requests"),
            Self::Unavailable(_) => ("service-unavailable", "Service temporarily unavailable"),
            Self::Internal(_) => ("internal-error", "Internal server error"),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let omitted = match self {
            Self::Validation(errors) => errors.len().saturating_sub(MAX_NAMED_FIELDS),
            _ => 0,
        };
        let detail = match self {
            Self::Internal(_) => "An unexpected error occurred. It has been logged; please retry later.".to_owned(),
            Self::Validation(errors) => {
                let fields: Vec<&str> = errors.keys().take(MAX_NAMED_FIELDS).map(String::as_str).collect();
                match omitted {
                    0 => format!("Invalid fields: {}.", fields.join(", ")),
                    more => format!("Invalid fields: {}, and {more} more.", fields.join(", ")),
                }
            }
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: self.status().as_u16(),
            detail,
            errors: match self {
                Self::Validation(errors) => {
                    Some(errors.iter().take(MAX_NAMED_FIELDS).map(|(k, v)| (k.clone(), v.clone())).collect())
                }
                _ => None,
            },
            errors_omitted: (omitted > 0).then_some(omitted),
        }
    }

    /// Logs the error (with its internal cause, for server-side failures) and renders it.
    pub fn into_response(self) -> Response<String> {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, cause = ?error_chain(&self), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), error = %self, "request rejected");
        }
        let problem = self.to_problem();
        let mut builder = Response::builder()
            .status(status)
            .header("content-type", "application/problem+json")
            .header("cache-control", "no-store");
        if let Self::TwilioRateLimited { retry_after_secs, .. } = &self {
            builder = builder.header("retry-after", retry_after_secs.to_string());
        }
        let body = serde_json::to_string(&problem).expect("a problem always serializes");
        builder.body(body).expect("static headers are valid")
    }
}

/// Storage failures: a paging token the API did not issue is the caller's mistake; anything
/// else the store reports unexpectedly means nothing was kept (handlers match the outcomes
/// they expect, such as a version conflict, before this applies).
impl From<crate::storage::StoreError> for ApiError {
    fn from(e: crate::storage::StoreError) -> Self {
        match e {
            crate::storage::StoreError::BadPageToken => {
                Self::validation("nextToken", "is not a token this API returned for this listing")
            }
            other => Self::unavailable(other),
        }
    }
}

/// Key service failures; a secret that cannot be opened is matched where it is opened, to say
/// which secret and how to replace it.
impl From<crate::crypto::CryptoError> for ApiError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::unavailable(e)
    }
}

/// A lower error kept as the cause of one of this crate's errors: its `source()` chain stays
/// for the log line that walks it ([`ApiError`]'s), while its text and Debug are the chain's
/// messages only. Built from what holds no secret in its text: reqwest's error without its URL
/// (which names the Account SID, resource SIDs and page tokens), an AWS SDK error, a message.
#[derive(thiserror::Error)]
#[error(transparent)]
pub struct Cause(BoxedError);

impl Cause {
    /// A cause that is only a message.
    pub fn message(text: impl Into<String>) -> Self {
        Self(text.into().into())
    }

    /// An AWS SDK error (its Debug holds the raw response; only its messages are kept in view).
    pub fn sdk(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

impl From<reqwest::Error> for Cause {
    fn from(e: reqwest::Error) -> Self {
        Self(Box::new(e.without_url()))
    }
}

/// Inner errors' Debug can hold what their text leaves out (addresses, raw responses).
impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Cause").field(&chain(self)).finish()
    }
}

/// An error and its causes as one line, `error: cause: cause`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The chain of causes, for the log line of a server-side failure.
fn error_chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut chain = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        chain.push(cause.to_string());
        next = cause.source();
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inner error whose Debug holds what its text leaves out, with a cause of its own.
    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Leaky {
        address: &'static str,
        #[source]
        cause: std::io::Error,
    }

    #[test]
    fn a_cause_keeps_its_chain_and_shows_only_its_messages() {
        let inner = Leaky { address: "10.1.2.3:443", cause: std::io::Error::other("connection reset") };
        let cause = Cause::sdk(inner);
        let shown = format!("{cause} | {cause:?}");
        assert!(!shown.contains("10.1.2.3"), "{shown}");
        assert_eq!(chain(&cause), "request failed: connection reset");
        let error = ApiError::unavailable(cause);
        assert_eq!(error_chain(&error), ["request failed", "connection reset"]);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let response = ApiError::internal("dynamodb said: table xyz missing").into_response();
        assert_eq!(response.status(), 500);
        let body = response.body();
        assert!(!body.contains("xyz"), "{body}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }

    #[test]
    fn thousands_of_failing_fields_are_capped_and_counted() {
        let errors: FieldErrors =
            (0..10_000).map(|i| (format!("field{i:05}"), vec!["is not a field".into()])).collect();
        let problem = ApiError::Validation(errors).to_problem();
        assert_eq!(problem.errors.as_ref().map(|e| e.len()), Some(MAX_NAMED_FIELDS));
        assert_eq!(problem.errors_omitted, Some(10_000 - MAX_NAMED_FIELDS));
        assert!(problem.detail.ends_with(&format!("field00049, and {} more.", 10_000 - MAX_NAMED_FIELDS)));
        assert!(serde_json::to_string(&problem).unwrap().len() < 8 * 1024);
    }

    #[test]
    fn validation_errors_name_every_field() {
        let mut errors = FieldErrors::new();
        errors.insert("accountSid".into(), vec!["bad".into()]);
        errors.insert("name".into(), vec!["required".into()]);
        let problem = ApiError::Validation(errors).to_problem();
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["status"], 400);
        assert_eq!(json["errors"]["accountSid"][0], "bad");
        assert_eq!(json["errors"]["name"][0], "required");
    }

    #[test]
    fn rate_limited_carries_retry_after() {
        let response = ApiError::TwilioRateLimited { detail: "slow down".into(), retry_after_secs: 7 }.into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "7");
    }
}
