//! Twilio errors as the caller sees them: one mapping from [`TwilioErrorKind`] to a problem,
//! used by every handler.

use shared::ApiError;
use shared::model::{AccountSid, ApiKeySid, TwilioCredentials, TwilioRegion};
use shared::storage::ProviderRecord;
use shared::twilio::{CODE_CREDENTIAL_LIST_LIMIT, CODE_TRUNK_LIMIT, TwilioError, TwilioErrorKind};

/// What Twilio's 401/20003 means: Twilio does not say which of these it is.
pub const REJECTED: &str =
    "Twilio rejected the Account SID and Auth Token: the token may be wrong, or the account suspended or closed.";

/// What Twilio's 403/20403 means besides a missing permission (Twilio's own reading of it).
pub const DENIED_OR_SUSPENDED: &str = "Twilio also answers this for a suspended or closed account: if the account is, reactivate it in the Twilio Console.";

/// What Twilio's 401 (20003) can mean for these credentials: a key names its SID, since a key
/// deleted in the Console is the usual cause.
pub fn rejected_text(creds: &TwilioCredentials) -> String {
    rejected_text_of(&creds.account_sid, creds.api_key_sid())
}

/// As [`rejected_text`], for a provider's stored credential.
pub fn rejected_of(record: &ProviderRecord) -> String {
    rejected_text_of(&record.account_sid, record.credential.api_key.as_ref().map(|key| &key.sid))
}

fn rejected_text_of(account_sid: &AccountSid, key: Option<&ApiKeySid>) -> String {
    match key {
        None => REJECTED.to_owned(),
        Some(sid) => format!(
            "Twilio rejected API key {sid} of account {account_sid}: the key may have been deleted (Twilio Console, API keys & tokens), its secret may be wrong, or the account suspended or closed."
        ),
    }
}

/// How to set working credentials on provider `id`.
pub fn set_credentials_hint(id: impl std::fmt::Display) -> String {
    format!(
        "Set working credentials with PATCH /api/v1/providers/{id}/credentials (an Auth Token, or an API key with its secret)."
    )
}

/// 422 for credentials Twilio rejects, with what to do.
pub fn rejected(creds: &TwilioCredentials, what_to_do: &str) -> ApiError {
    ApiError::Unprocessable {
        title: "Twilio rejected the credentials",
        detail: format!("{} {what_to_do}", rejected_text(creds)),
    }
}

/// 422 for credentials Twilio rejects in a Twilio Region: a token is valid in its own Region
/// only, so a rejection may mean the account's token belongs to another one.
pub fn rejected_in(creds: &TwilioCredentials, what_to_do: &str) -> ApiError {
    let region = creds.region;
    let others: Vec<&str> = TwilioRegion::ALL.iter().filter(|r| **r != region).map(|r| r.as_str()).collect();
    ApiError::Unprocessable {
        title: "Twilio rejected the credentials",
        detail: format!(
            "{} They were tried in Twilio Region {region} (twilioRegion): an Auth Token or API key is valid only in the Region it was made in, so one of the account's {} Region is rejected here; send twilioRegion with that Region. {what_to_do}",
            rejected_text(creds),
            others.join(" or ")
        ),
    }
}

/// 422 for the account's test credentials: Twilio answers them 403 (20008) for everything
/// the service does.
pub fn test_credentials() -> ApiError {
    ApiError::Unprocessable {
        title: "These are Twilio test credentials",
        detail: "Twilio answered that these are the account's test credentials (error 20008), which cannot read the account or manage SIP trunks. Use the live Account SID and Auth Token (Twilio Console, Account Info), not the Test Credentials.".to_owned(),
    }
}

/// A Twilio failure while doing `operation` (a gerund phrase: "creating SIP trunks").
/// Rejected credentials and denied permissions are 422, account limits 422
/// `/problems/twilio-limit-reached`, rate limiting 503, anything else 502.
pub fn twilio_problem(operation: &str, e: TwilioError) -> ApiError {
    match e.kind() {
        TwilioErrorKind::Rejected => ApiError::Unprocessable {
            title: "Twilio rejected the credentials",
            detail: format!(
                "Twilio rejected the credentials while {operation}: the Auth Token or API key may be wrong or deleted, or the account suspended or closed. Check them in the Twilio Console, and that the account is active, then try again."
            ),
        },
        TwilioErrorKind::TestCredentials => test_credentials(),
        TwilioErrorKind::Denied => ApiError::Unprocessable {
            title: "Twilio denied the request",
            detail: format!(
                "Twilio denied these credentials permission for {operation} ({e}). Use credentials that may manage Elastic SIP Trunking, credential lists and phone numbers. {DENIED_OR_SUSPENDED}"
            ),
        },
        TwilioErrorKind::LimitReached => {
            let limit = match e.code() {
                Some(CODE_TRUNK_LIMIT) => {
                    "the account's limit on SIP trunks (a Trial account holds only one). Delete unused trunks in the Twilio Console, or upgrade the account"
                }
                Some(CODE_CREDENTIAL_LIST_LIMIT) => {
                    "the account's limit on credential lists. Delete unused credential lists in the Twilio Console"
                }
                _ => "a limit of the account. Free up resources in the Twilio Console, or upgrade the account",
            };
            ApiError::TwilioLimitReached {
                detail: format!("Twilio refused {operation}: the request would exceed {limit}, then try again."),
            }
        }
        TwilioErrorKind::RateLimited => ApiError::TwilioRateLimited {
            detail: format!("Twilio kept rate-limiting {operation}; nothing was changed. Retry later."),
            retry_after_secs: match e {
                TwilioError::RateLimited { retry_after } => retry_after.map(|d| d.as_secs().max(1)).unwrap_or(5),
                _ => 5,
            },
        },
        _ => ApiError::TwilioFailed {
            detail: format!("Twilio failed while {operation}: {e}. Nothing was changed."),
            cause: Some(Box::new(e)),
        },
    }
}
