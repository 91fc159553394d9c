//! Verification results: each check's status and the overall one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum VerificationStatus {
    Pending,
    Verified,
    Warning,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Passed,
    Warning,
    Failed,
}

/// The verification checks, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum CheckName {
    Credentials,
    Account,
    Permissions,
    Trunk,
    SecureTrunking,
    CredentialList,
    Origination,
    PhoneNumbers,
}

/// One verification check as shown in `verificationDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VerificationCheck {
    pub check_name: CheckName,
    pub message: String,
    pub status: CheckStatus,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: crate::time::Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

impl VerificationCheck {
    pub fn new(name: CheckName, status: CheckStatus, message: impl Into<String>, details: serde_json::Value) -> Self {
        Self { check_name: name, message: message.into(), status, timestamp: crate::time::Timestamp::now(), details }
    }
}

/// The overall status: failed if any check failed, else warning if any warned, else verified.
pub fn overall_status(checks: &[VerificationCheck]) -> VerificationStatus {
    if checks.iter().any(|c| c.status == CheckStatus::Failed) {
        VerificationStatus::Failed
    } else if checks.iter().any(|c| c.status == CheckStatus::Warning) {
        VerificationStatus::Warning
    } else {
        VerificationStatus::Verified
    }
}
