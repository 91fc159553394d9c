//! Verification: the one routine that checks a provider against Twilio (verify endpoint, repair, auth-token rotation,
//! hourly job); each check says what to do when it does not pass. Checks: docs/api.md#verification.

mod account;
mod checks;
mod numbers;
mod origination;
mod run;

pub use account::{TRIAL_LIMITS, account_check, account_unreadable_with_key, credentials_passed};
pub use origination::{expected_origination, origination_check, origination_friendly_name};

use crate::provider::record::{Change, refuse_if_deleting, save_with_retry, stored_credentials};
use crate::services::Services;
use run::run_checks;
use serde_json::{Value, json};
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::dto::VerifyResponse;
use shared::model::{CheckName, CheckStatus, TwilioCredentials, VerificationCheck, VerificationStatus, overall_status};
use shared::storage::{ProviderRecord, SipCredentialRecord};
use shared::twilio::{Account, TwilioError, TwilioErrorKind};

/// Checks read every page of a Twilio list: a cap would turn the items past it into false
/// findings ("detached" numbers). What they store stays bounded by [`DETAILS_CAP`].
const LIST_CAP: usize = usize::MAX;
const LATER_CHECKS: [CheckName; 6] = [
    CheckName::Permissions,
    CheckName::Trunk,
    CheckName::SecureTrunking,
    CheckName::CredentialList,
    CheckName::Origination,
    CheckName::PhoneNumbers,
];
/// How many items a check lists in its details at most (counts are always complete).
const DETAILS_CAP: usize = 50;

pub struct Verification {
    pub status: VerificationStatus,
    pub checks: Vec<VerificationCheck>,
    pub verified_at: shared::time::Timestamp,
}

impl Verification {
    fn new(checks: Vec<VerificationCheck>) -> Self {
        let status = overall_status(&checks);
        let verification = Self { status, checks, verified_at: shared::time::Timestamp::now() };
        shared::metrics::count("VerificationResults", &[("Status", &verification.status_name())]);
        verification
    }

    /// Writes the result into a record's verification fields.
    pub fn apply_to(&self, record: &mut ProviderRecord) {
        record.verification_status = self.status;
        record.last_verified_at = Some(self.verified_at.clone());
        record.verification_details = Some(self.checks.clone());
    }

    /// Stores the result on the provider (refused once a delete has started). A result computed
    /// against a record whose credentials, references or expectations changed meanwhile (a
    /// rotation, a repair, an update) never overwrites the newer record: the answer is then what
    /// that record holds.
    pub async fn store(self, services: &Services, record: ProviderRecord) -> Result<VerifyResponse, ApiError> {
        let event = AuditEvent::new(&record.organization_id, record.id, Action::Verify).outcome(self.status_name());
        self.store_as(services, record, &event).await
    }

    /// As [`Self::store`], recorded as `event` (a repair that changed nothing the record holds).
    pub async fn store_as(
        self,
        services: &Services,
        record: ProviderRecord,
        event: &AuditEvent,
    ) -> Result<VerifyResponse, ApiError> {
        let verified = record.clone();
        let saved = save_with_retry(&services.store, record, Some(event), |current| {
            refuse_if_deleting(current)?;
            if !same_inputs(&verified, current) {
                return Ok(Change::Keep);
            }
            self.apply_to(current);
            Ok(Change::Save)
        })
        .await?;
        if same_inputs(&verified, &saved) {
            return Ok(self.into_response());
        }
        tracing::info!("provider changed while it was verified; the newer record's result stays");
        Ok(match (saved.verification_details, saved.last_verified_at) {
            (Some(checks), Some(last_verified_at)) => {
                VerifyResponse { status: saved.verification_status, checks, last_verified_at }
            }
            _ => self.into_response(),
        })
    }

    /// The status as the API names it (`verified`, `warning`, `failed`).
    pub fn status_name(&self) -> String {
        shared::storage::item::variant_name(&self.status)
    }

    pub fn into_response(self) -> VerifyResponse {
        VerifyResponse { status: self.status, checks: self.checks, last_verified_at: self.verified_at }
    }
}

/// Whether the invocation's deadline passed while it verified: what Twilio was then not asked,
/// or not heard from, says nothing about the provider, so such a result is not stored.
pub fn finished_in_time() -> Result<(), ApiError> {
    match shared::deadline::remaining() {
        Some(left) if left.is_zero() => Err(ApiError::unavailable("the verification did not finish in time")),
        _ => Ok(()),
    }
}

/// Runs every check now with the stored credentials and stores the result.
#[tracing::instrument(skip_all, fields(organization_id = %record.organization_id, provider_id = %record.id))]
pub async fn verify_provider(services: &Services, record: ProviderRecord) -> Result<VerifyResponse, ApiError> {
    refuse_if_deleting(&record)?;
    let creds = stored_credentials(services, &record).await?;
    let verification = verify(services, &record, &creds).await;
    finished_in_time()?;
    let response = verification.store(services, record).await?;
    tracing::info!(status = ?response.status, "provider verified");
    Ok(response)
}

/// Whether two versions of a record would be verified the same way: same credentials, same
/// Twilio resources, same expectations.
fn same_inputs(a: &ProviderRecord, b: &ProviderRecord) -> bool {
    a.credential == b.credential && same_references(a, b)
}

/// The inputs of a verification but the token: what a rotation, which brings its own token,
/// checks before it stores the verification it ran with that token.
pub fn same_references(a: &ProviderRecord, b: &ProviderRecord) -> bool {
    a.account_sid == b.account_sid
        && a.trunk_sid == b.trunk_sid
        && a.credential_list_sid == b.credential_list_sid
        && a.domain_name == b.domain_name
        && a.trunk_settings() == b.trunk_settings()
}

fn skipped(name: CheckName, because: &str) -> VerificationCheck {
    VerificationCheck::new(name, CheckStatus::Warning, format!("Skipped: {because}."), json!({"skipped": true}))
}

/// A Twilio error met by a check: a denial or a missing resource is a finding (failed); a
/// transient error means the check could not finish (warning).
fn twilio_finding(name: CheckName, what: &str, e: &TwilioError, details: Value) -> VerificationCheck {
    if matches!(e.kind(), TwilioErrorKind::Rejected | TwilioErrorKind::Denied) {
        VerificationCheck::new(
            name,
            CheckStatus::Failed,
            format!("Twilio denied access to {what} ({e}). Give the credentials permission to manage SIP trunking."),
            details,
        )
    } else if e.is_not_found() {
        VerificationCheck::new(name, CheckStatus::Failed, format!("{what} no longer exists in Twilio."), details)
    } else {
        VerificationCheck::new(
            name,
            CheckStatus::Warning,
            format!("Could not check {what}: {e}. It will be checked again."),
            details,
        )
    }
}

/// Runs every check for the provider with the given credentials.
pub async fn verify(services: &Services, record: &ProviderRecord, creds: &TwilioCredentials) -> Verification {
    verify_as_saved(services, record, creds, None).await
}

/// As [`verify`], with the provider's SIP credential as the caller has it: one a repair is
/// about to save (the checks look for it, not the stored one it replaces), or one just read.
pub async fn verify_as_saved(
    services: &Services,
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    new_credential: Option<&SipCredentialRecord>,
) -> Verification {
    if account_type_known(record) {
        let trunk = services.twilio.fetch_trunk(creds, &record.trunk_sid).await;
        // Only an answer about the trunk itself (found, or 404) shows that Twilio accepted the
        // credentials. A 403 may be a suspended or closed account (Twilio's 20403), and a
        // transient failure shows nothing: then the account is read for what it is.
        let account = match &trunk {
            Err(e) if !e.is_not_found() => Some(services.twilio.fetch_account(creds).await),
            _ => None,
        };
        run_checks(services, record, creds, account, trunk, new_credential).await
    } else {
        let (account, trunk) =
            tokio::join!(services.twilio.fetch_account(creds), services.twilio.fetch_trunk(creds, &record.trunk_sid));
        run_checks(services, record, creds, Some(account), trunk, new_credential).await
    }
}

/// Runs every check, given the account as the caller read it (None: the credentials may not read it).
pub async fn verify_with_account(
    services: &Services,
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    account: Option<&Account>,
) -> Verification {
    let trunk = services.twilio.fetch_trunk(creds, &record.trunk_sid).await;
    run_checks(services, record, creds, account.map(|account| Ok(account.clone())), trunk, None).await
}

/// Whether the last check saw a paid (Full) account: then the account needs no read of its
/// own while the trunk can be read. Twilio refuses a suspended or closed account's credentials
/// (401 or 403), so an answer about the trunk proves it active; only a Trial account's upgrade
/// would go unnoticed, so a Trial (or unknown) account is read every time.
fn account_type_known(record: &ProviderRecord) -> bool {
    record.verification_details.iter().flatten().any(|check| {
        check.check_name == CheckName::Account && check.status == CheckStatus::Passed && check.details["type"] == "Full"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::model::AccountSid;

    #[test]
    fn inactive_accounts_fail_and_trials_warn() {
        let account = |status: &str, kind: &str| Account {
            sid: AccountSid::parse(&format!("AC{}", "1".repeat(32))).unwrap(),
            status: status.into(),
            account_type: kind.into(),
            friendly_name: None,
        };
        assert_eq!(account_check(&account("suspended", "Full")).status, CheckStatus::Failed);
        assert!(account_check(&account("closed", "Full")).message.contains("closed"));
        assert_eq!(account_check(&account("active", "Trial")).status, CheckStatus::Warning);
        assert_eq!(account_check(&account("active", "Full")).status, CheckStatus::Passed);
    }

    #[test]
    fn transient_errors_warn_and_denials_fail() {
        let denied = TwilioError::Api { status: 403, code: Some(20403), message: "no".into() };
        assert_eq!(twilio_finding(CheckName::Trunk, "y", &denied, json!({})).status, CheckStatus::Failed);
        let busy = TwilioError::Api { status: 503, code: None, message: "busy".into() };
        assert_eq!(twilio_finding(CheckName::Trunk, "y", &busy, json!({})).status, CheckStatus::Warning);
    }
}
