//! Twilio errors as the caller sees them: one mapping from [`TwilioErrorKind`] to a problem,
//! used by every handler.

use shared::ApiError;
use shared::model::TwilioRegion;
use shared::twilio::{CODE_CREDENTIAL_LIST_LIMIT, CODE_TRUNK_LIMIT, TwilioError, TwilioErrorKind};

/// What Twilio's 401/20003 means: Twilio does not say which of these it is.
pub const REJECTED: &str =
    "Twilio rejected the Account SID and Auth Token: the token may be wrong, or the account suspended or closed.";

/// What Twilio's 403/20403 means besides a missing permission (Twilio's own reading of it).
pub const DENIED_OR_SUSPENDED: &str = "Twilio also answers this for a suspended or closed account: if the account is, reactivate it in the Twilio Console.";

/// 422 for credentials Twilio rejects, with what to do.
pub fn rejected(what_to_do: &str) -> ApiError {
    ApiError::Unprocessable { title: "Twilio rejected the credentials", detail: format!("{REJECTED} {what_to_do}") }
}

/// 422 for credentials Twilio rejects in a Twilio Region: a token is valid in its own Region
/// only, so a rejection may mean the account's token belongs to another one.
pub fn rejected_in(region: TwilioRegion, what_to_do: &str) -> ApiError {
    let others: Vec<&str> = TwilioRegion::ALL.iter().filter(|r| **r != region).map(|r| r.as_str()).collect();
    ApiError::Unprocessable {
        title: "Twilio rejected the credentials",
        detail: format!(
            "{REJECTED} They were tried in Twilio Region {region} (twilioRegion): an Auth Token is valid only in the Region it was made in, so a token of the account's {} Region is rejected here; send twilioRegion with that Region. {what_to_do}",
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
        TwilioErrorKind::Rejected => {
            rejected("Check both in the Twilio Console (Account Info), and that the account is active, then try again.")
        }
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
