//! Verification checks, as shown in `verificationDetails`.

use serde_json::json;
use shared::model::{CheckStatus, VerificationCheck};
use shared::twilio::Account;

pub fn credentials_passed() -> VerificationCheck {
    VerificationCheck::new(
        "credentials",
        CheckStatus::Passed,
        "Twilio accepted the Account SID and Auth Token.",
        json!({}),
    )
}

/// `account`: active passes, a Trial account warns (with its limits), anything else fails.
pub fn account_check(account: &Account) -> VerificationCheck {
    let details = json!({"status": account.status, "type": account.account_type});
    if account.status != "active" {
        return VerificationCheck::new(
            "account",
            CheckStatus::Failed,
            format!(
                "The Twilio account {} is {}; only active accounts can place calls. Reactivate it in the Twilio Console.",
                account.sid, account.status
            ),
            details,
        );
    }
    if account.account_type == "Trial" {
        return VerificationCheck::new(
            "account",
            CheckStatus::Warning,
            "This is a Twilio Trial account: calls can only reach verified numbers and play a trial notice. Upgrade the account in the Twilio Console to lift the limits.",
            details,
        );
    }
    VerificationCheck::new("account", CheckStatus::Passed, "The Twilio account is active.", details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_accounts_fail_and_trials_warn() {
        let account = |status: &str, kind: &str| Account {
            sid: "AC1".into(),
            status: status.into(),
            account_type: kind.into(),
            friendly_name: None,
        };
        assert_eq!(account_check(&account("suspended", "Full")).status, CheckStatus::Failed);
        assert!(account_check(&account("closed", "Full")).message.contains("closed"));
        assert_eq!(account_check(&account("active", "Trial")).status, CheckStatus::Warning);
        assert_eq!(account_check(&account("active", "Full")).status, CheckStatus::Passed);
    }
}
