//! The `credentials` and `account` checks, and the checks of a verification that the first
//! reads (the account, the trunk) end early: rejected credentials or an inactive account.

use super::{LATER_CHECKS, account_type_known, skipped, twilio_finding};
use serde_json::{Value, json};
use shared::model::{CheckName, CheckStatus, TwilioCredentials, VerificationCheck};
use shared::storage::ProviderRecord;
use shared::twilio::{Account, Trunk, TwilioError, TwilioErrorKind};

/// Which credential a check used: its kind, and a key's SID.
fn credential_details(creds: &TwilioCredentials) -> Value {
    json!({"credentialType": creds.credential_type(), "apiKeySid": creds.api_key_sid()})
}

pub fn credentials_passed(creds: &TwilioCredentials) -> VerificationCheck {
    let message = match creds.api_key_sid() {
        None => "Twilio accepted the Account SID and Auth Token.".to_owned(),
        Some(sid) => format!("Twilio accepted API key {sid} for account {}.", creds.account_sid),
    };
    VerificationCheck::new(CheckName::Credentials, CheckStatus::Passed, message, credential_details(creds))
}

/// `account` with an API key that may not read the account (a Standard key: Twilio keeps
/// `/Accounts` to the Auth Token and Main keys). Twilio refuses a suspended or closed
/// account's credentials, so a key it accepts shows the account active; its type is unknown.
pub fn account_unreadable_with_key(creds: &TwilioCredentials) -> VerificationCheck {
    VerificationCheck::new(
        CheckName::Account,
        CheckStatus::Passed,
        format!(
            "The Twilio account is active: Twilio accepted API key {} (it refuses a suspended or closed account's credentials). A Standard key may not read the account, so its type (Trial or Full) is unknown.",
            creds.api_key_sid().map(|sid| sid.as_str()).unwrap_or_default()
        ),
        json!({"status": "active", "type": "unknown", "derived": true}),
    )
}

/// What a Twilio Trial account will not do, which calls on it meet at call time.
pub const TRIAL_LIMITS: &str = "This is a Twilio Trial account: it holds one SIP trunk and one phone number, its calls can only reach and come from verified numbers (caller IDs verified in the Console), and each call plays a trial notice first. Upgrade the account in the Twilio Console to lift the limits.";

/// `account`: active passes, a Trial account warns (with its limits), anything else fails.
pub fn account_check(account: &Account) -> VerificationCheck {
    let details = json!({"status": account.status, "type": account.account_type});
    if account.status != "active" {
        return VerificationCheck::new(
            CheckName::Account,
            CheckStatus::Failed,
            format!(
                "The Twilio account {} is {}; only active accounts can place calls. Reactivate it in the Twilio Console.",
                account.sid, account.status
            ),
            details,
        );
    }
    if account.account_type == "Trial" {
        return VerificationCheck::new(CheckName::Account, CheckStatus::Warning, TRIAL_LIMITS, details);
    }
    VerificationCheck::new(CheckName::Account, CheckStatus::Passed, "The Twilio account is active.", details)
}

/// The rejection (401) from a first read that makes every other check meaningless; but an API
/// key refused the account alone is a Standard key (Twilio keeps `/Accounts` to the Auth
/// Token and Main keys): the trunk's answer says whether Twilio accepts it.
pub(super) fn rejection<'a>(
    creds: &TwilioCredentials,
    account: &'a Option<Result<Account, TwilioError>>,
    trunk: &'a Result<Trunk, TwilioError>,
) -> Option<&'a TwilioError> {
    let with_key = creds.api_key_sid().is_some();
    match (account, trunk) {
        (Some(Err(e)), _)
            if !with_key
                && matches!(
                    e.kind(),
                    TwilioErrorKind::Rejected | TwilioErrorKind::NotFound | TwilioErrorKind::Denied
                ) =>
        {
            Some(e)
        }
        (_, Err(e)) if e.kind() == TwilioErrorKind::Rejected => Some(e),
        _ => None,
    }
}

/// `account` from the account as read (None: not read), once no first read was rejected.
pub(super) fn account_as_read(
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    account: &Option<Result<Account, TwilioError>>,
    trunk: &Result<Trunk, TwilioError>,
) -> VerificationCheck {
    let with_key = creds.api_key_sid().is_some();
    let account_refused = |e: &TwilioError| matches!(e.kind(), TwilioErrorKind::Rejected | TwilioErrorKind::Denied);
    match account {
        Some(Ok(account)) => account_check(account),
        Some(Err(e)) if with_key && account_refused(e) => match trunk {
            Err(e) if !e.is_not_found() => twilio_finding(CheckName::Account, "the account", e, json!({})),
            _ => account_unreadable_with_key(creds),
        },
        Some(Err(e)) => twilio_finding(CheckName::Account, "the account", e, json!({})),
        // An API key that may not read the account, and no earlier check that saw it paid.
        None if with_key && !account_type_known(record) => account_unreadable_with_key(creds),
        None => VerificationCheck::new(
            CheckName::Account,
            CheckStatus::Passed,
            "The Twilio account is active: Twilio accepted its credentials (it refuses a suspended or closed account's), and it was a paid account at the last check.",
            json!({"status": "active", "type": "Full", "derived": true}),
        ),
    }
}

/// The checks when the account is not active: every later check is skipped.
pub(super) fn inactive_account(creds: &TwilioCredentials, account: VerificationCheck) -> Vec<VerificationCheck> {
    let mut checks = vec![credentials_passed(creds), account];
    checks.extend(LATER_CHECKS.iter().map(|name| skipped(*name, "the Twilio account is not active")));
    checks
}

/// The checks when the account fetch fails: a rejection fails `credentials` and `account`
/// alike (Twilio's 401 does not say whether the token is wrong or the account suspended or
/// closed); a denial passes `credentials` and fails `permissions`; anything else could not
/// be checked. Whatever could not run is reported as skipped.
pub(super) fn unverifiable(
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    e: &TwilioError,
) -> Vec<VerificationCheck> {
    match e.kind() {
        TwilioErrorKind::Rejected | TwilioErrorKind::NotFound => rejected(record, creds, e),
        TwilioErrorKind::Denied => {
            let mut checks = vec![
                credentials_passed(creds),
                skipped(CheckName::Account, "the credentials may not read the account"),
                VerificationCheck::new(
                    CheckName::Permissions,
                    CheckStatus::Failed,
                    format!(
                        "Twilio denied these credentials permission for reading the account ({e}). Use credentials that may read the account and manage Elastic SIP Trunking. {}",
                        crate::provider::problems::DENIED_OR_SUSPENDED
                    ),
                    json!({"denied": ["reading the account"]}),
                ),
            ];
            checks.extend(skip(&LATER_CHECKS[1..], "the credentials may not read the account"));
            checks
        }
        _ => {
            let mut checks = vec![VerificationCheck::new(
                CheckName::Credentials,
                CheckStatus::Warning,
                format!("Could not reach Twilio: {e}. It will be checked again."),
                json!({}),
            )];
            checks.extend(skip(&[CheckName::Account], "the credentials could not be checked"));
            checks.extend(skip(&LATER_CHECKS, "the credentials could not be checked"));
            checks
        }
    }
}

/// The named checks, skipped for the same reason.
fn skip(names: &[CheckName], because: &str) -> Vec<VerificationCheck> {
    names.iter().map(|name| skipped(*name, because)).collect()
}

/// Twilio rejected the credentials: `credentials` and `account` fail alike.
fn rejected(record: &ProviderRecord, creds: &TwilioCredentials, e: &TwilioError) -> Vec<VerificationCheck> {
    shared::metrics::count("CredentialsRejected", &[]);
    let message = format!(
        "{} {} If the account was suspended or closed, reactivate it in the Twilio Console.",
        crate::provider::problems::rejected_text(creds),
        crate::provider::problems::set_credentials_hint(record.id),
    );
    let mut details = credential_details(creds);
    details["code"] = json!(e.code());
    let mut checks = vec![
        VerificationCheck::new(CheckName::Credentials, CheckStatus::Failed, message.clone(), details.clone()),
        VerificationCheck::new(CheckName::Account, CheckStatus::Failed, message, details),
    ];
    checks.extend(skip(&LATER_CHECKS, "Twilio rejected the credentials"));
    checks
}
