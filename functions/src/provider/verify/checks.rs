//! The checks on the trunk itself (`trunk`, `secureTrunking`) and on its credential list
//! (`credentialList`).

use super::twilio_finding;
use serde_json::{Value, json};
use shared::model::{
    CheckName, CheckStatus, CredentialListSid, CredentialSid, DisasterRecovery, PlatformSipUris, TransferMode,
    VerificationCheck, carries_tls,
};
use shared::storage::{ProviderRecord, SipCredentialRecord, StoreError};
use shared::twilio::{Credential, OriginationUrl, Trunk, TrunkCredentialList, TwilioError};

/// `trunk`: the trunk exists with the provider's domain, transfer mode and disaster recovery.
pub(super) fn trunk_check(record: &ProviderRecord, trunk: &Result<Trunk, TwilioError>) -> VerificationCheck {
    let expected_mode = TransferMode::for_call_transfer(record.supports_call_transfer);
    let details =
        json!({"trunkSid": record.trunk_sid, "domainName": record.domain_name, "expectedTransferMode": expected_mode});
    match trunk {
        Ok(trunk) => trunk_settings_check(record, trunk, expected_mode),
        Err(e) if e.is_not_found() => VerificationCheck::new(
            CheckName::Trunk,
            CheckStatus::Failed,
            format!(
                "The SIP trunk {} was deleted in Twilio; calls cannot be routed. Run repair (POST /api/v1/providers/{}/repair) to build a new one.",
                record.trunk_sid, record.id
            ),
            details,
        ),
        Err(e) => twilio_finding(CheckName::Trunk, &format!("the SIP trunk {}", record.trunk_sid), e, details),
    }
}

/// `trunk` for a trunk that exists: its domain, transfer mode and disaster recovery are the
/// provider's.
fn trunk_settings_check(record: &ProviderRecord, trunk: &Trunk, expected_mode: TransferMode) -> VerificationCheck {
    let domain = trunk.domain_name.clone().unwrap_or_default();
    let mode = trunk.transfer_mode.clone().unwrap_or_default();
    let (recovery, expected_recovery) = (trunk.disaster_recovery(), record.disaster_recovery.clone());
    let details = json!({
        "trunkSid": trunk.sid, "domainName": domain, "transferMode": mode, "expectedTransferMode": expected_mode,
        "disasterRecoveryUrl": recovery.as_ref().map(|r| &r.url),
        "expectedDisasterRecoveryUrl": expected_recovery.as_ref().map(|r| &r.url),
    });
    if !domain.eq_ignore_ascii_case(&record.domain_name) {
        return VerificationCheck::new(
            CheckName::Trunk,
            CheckStatus::Failed,
            format!(
                "The trunk's domain is {domain:?} but the provider's termination URI {} expects {}; calls will not reach the trunk. Restore the domain name in Twilio.",
                record.termination_uri, record.domain_name
            ),
            details,
        );
    }
    if mode != expected_mode.as_str() {
        return VerificationCheck::new(
            CheckName::Trunk,
            CheckStatus::Warning,
            format!(
                "The trunk's TransferMode is {mode:?} but supportsCallTransfer is {}; call transfers will not behave as configured. Run repair, or set supportsCallTransfer again with PUT.",
                record.supports_call_transfer
            ),
            details,
        );
    }
    if recovery != expected_recovery {
        return VerificationCheck::new(
            CheckName::Trunk,
            CheckStatus::Warning,
            format!(
                "The trunk's disaster recovery is {} but the provider's is {}: when the platform cannot take a call, it will not go where configured. Run repair, or set disasterRecoveryUrl again with PUT.",
                describe_recovery(&recovery),
                describe_recovery(&expected_recovery)
            ),
            details,
        );
    }
    VerificationCheck::new(
        CheckName::Trunk,
        CheckStatus::Passed,
        "The SIP trunk exists with the expected domain and transfer mode.",
        details,
    )
}

/// A disaster recovery as a message names it.
fn describe_recovery(recovery: &Option<DisasterRecovery>) -> String {
    match recovery {
        Some(r) => format!("{} {}", r.method, r.url),
        None => "none".to_owned(),
    }
}

/// `secureTrunking`: the trunk's `Secure` is the stored setting, and a secure trunk's
/// origination URLs ask for TLS (Twilio sends a secure trunk's calls encrypted only).
pub(super) fn secure_trunking_check(
    record: &ProviderRecord,
    trunk: &Trunk,
    urls: &[OriginationUrl],
    platform: &PlatformSipUris,
) -> VerificationCheck {
    let (secure, expected) = (trunk.secure.unwrap_or(false), record.secure_trunking);
    let plain: Vec<&str> =
        urls.iter().filter(|u| u.enabled && !carries_tls(&u.sip_url)).map(|u| u.sip_url.as_str()).collect();
    let details = json!({"secure": secure, "expectedSecure": expected, "originationUrlsWithoutTls": plain});
    let check =
        |status, message: String| VerificationCheck::new(CheckName::SecureTrunking, status, message, details.clone());
    match (secure, expected) {
        (true, false) => check(
            CheckStatus::Failed,
            "The trunk takes TLS and SRTP only (Secure) but secureTrunking is false: a call engine dialling it without TLS is refused (Twilio error 32209). Run repair, or set secureTrunking to true with PUT.".to_owned(),
        ),
        (false, true) => check(
            CheckStatus::Warning,
            "secureTrunking is true but the trunk takes unencrypted calls (Secure is off): calls are not kept private. Run repair.".to_owned(),
        ),
        (true, true) if !platform.uses_tls() || !plain.is_empty() => check(
            CheckStatus::Failed,
            format!(
                "The trunk is secure, but {} not ask for TLS (;transport=tls): Twilio cannot bring inbound calls to the platform. Deploy with a PLATFORM_SIP_URI that ends in ;transport=tls and run repair.",
                if plain.is_empty() { format!("the platform's SIP ingress ({platform}) does") } else { format!("its origination URLs {} do", plain.join(", ")) }
            ),
        ),
        (true, true) => check(
            CheckStatus::Passed,
            "The trunk takes TLS signalling and SRTP media only, and its origination URLs ask for TLS.".to_owned(),
        ),
        (false, false) => check(
            CheckStatus::Passed,
            "The trunk takes unencrypted calls, as secureTrunking (false) asks.".to_owned(),
        ),
    }
}

/// `credentialList`: the list (its credentials readable proves it exists) is attached to the
/// trunk and holds the provider's SIP credential.
pub(super) fn credential_list_check(
    record: &ProviderRecord,
    attached: &Result<Vec<TrunkCredentialList>, TwilioError>,
    credentials: &Result<Vec<Credential>, TwilioError>,
    sip: Result<Option<SipCredentialRecord>, StoreError>,
) -> VerificationCheck {
    let list_sid = &record.credential_list_sid;
    let details = json!({"credentialListSid": list_sid, "trunkSid": record.trunk_sid});
    let credentials = match credentials {
        Ok(credentials) => credentials,
        Err(e) if e.is_not_found() => {
            return VerificationCheck::new(
                CheckName::CredentialList,
                CheckStatus::Failed,
                format!(
                    "The credential list {list_sid} no longer exists in Twilio; SIP calls cannot authenticate. Run repair."
                ),
                details,
            );
        }
        Err(e) => {
            return twilio_finding(CheckName::CredentialList, &format!("the credential list {list_sid}"), e, details);
        }
    };
    if let Some(finding) = attachment_finding(record, attached, &details) {
        return finding;
    }
    let sip = match sip {
        Ok(Some(sip)) => sip,
        Ok(None) => {
            return VerificationCheck::new(
                CheckName::CredentialList,
                CheckStatus::Failed,
                "The provider's SIP credential record is missing.",
                details,
            );
        }
        Err(e) => return sip_unreadable(record, &e),
    };
    credential_list_contents_check(list_sid, credentials, &sip, details)
}

/// What `credentialList` finds when the list is not attached to the trunk, or the trunk's
/// lists could not be read; None when it is attached.
fn attachment_finding(
    record: &ProviderRecord,
    attached: &Result<Vec<TrunkCredentialList>, TwilioError>,
    details: &Value,
) -> Option<VerificationCheck> {
    let list_sid = &record.credential_list_sid;
    match attached {
        Ok(attached) if attached.iter().any(|a| &a.sid == list_sid) => None,
        Ok(_) => Some(VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Failed,
            format!(
                "The credential list {list_sid} is not attached to the trunk {}; SIP calls cannot authenticate. Run repair.",
                record.trunk_sid
            ),
            details.clone(),
        )),
        Err(e) => Some(twilio_finding(
            CheckName::CredentialList,
            &format!("the credential lists of trunk {}", record.trunk_sid),
            e,
            details.clone(),
        )),
    }
}

/// `credentialList` when the stored SIP credential could not be read.
fn sip_unreadable(record: &ProviderRecord, e: &StoreError) -> VerificationCheck {
    // The cause (AWS text) goes to the log; the stored check says what happened.
    tracing::error!(error = %e, "could not read the SIP credential record");
    let list_sid = &record.credential_list_sid;
    VerificationCheck::new(
        CheckName::CredentialList,
        CheckStatus::Warning,
        "Could not read the stored SIP credential (storage unavailable). It will be checked again.",
        json!({"code": "storage_unavailable", "credentialListSid": list_sid, "trunkSid": record.trunk_sid}),
    )
}

/// `credentialList` for a list attached to the trunk: it holds the provider's SIP credential,
/// a rotation's previous one until its overlap ends, and no other. `details` are the list's
/// and the trunk's SIDs.
fn credential_list_contents_check(
    list_sid: &CredentialListSid,
    credentials: &[Credential],
    sip: &SipCredentialRecord,
    details: Value,
) -> VerificationCheck {
    if !credentials.iter().any(|c| c.sid == sip.credential_sid) {
        return VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Failed,
            format!(
                "The SIP credential {} ({}) was removed from the credential list; calls cannot authenticate. Run repair to issue a new one.",
                sip.credential_sid, sip.username
            ),
            details,
        );
    }
    let unknown: Vec<String> =
        credentials.iter().filter(|c| !sip.is_known(&c.sid)).map(|c| format!("{} ({})", c.sid, c.username)).collect();
    let mut details = details_of_list(list_sid, sip);
    if !unknown.is_empty() {
        details["unknownCredentials"] = json!(unknown);
        return VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Warning,
            format!(
                "The credential list holds SIP credentials the provider does not use: {}. They authenticate calls nobody expects; run repair to remove them.",
                unknown.join(", ")
            ),
            details,
        );
    }
    rotation_overlap_check(credentials, sip, details)
}

/// The details of `credentialList` once the provider's SIP credential was read.
fn details_of_list(list_sid: &CredentialListSid, sip: &SipCredentialRecord) -> Value {
    let mut details =
        json!({"credentialListSid": list_sid, "credentialSid": sip.credential_sid, "username": sip.username});
    if let Some(previous) = &sip.previous {
        details["previous"] = json!({
            "credentialSid": previous.credential_sid,
            "username": previous.username,
            "expiresAt": previous.expires_at,
        });
    }
    details
}

/// `credentialList` for a list that holds the provider's credential and no unknown one: a
/// rotation's previous credential stays in it until its overlap ends.
fn rotation_overlap_check(credentials: &[Credential], sip: &SipCredentialRecord, details: Value) -> VerificationCheck {
    let listed = |sid: &CredentialSid| credentials.iter().any(|c| &c.sid == sid);
    match sip.previous.as_ref() {
        Some(previous) if !listed(&previous.credential_sid) => VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Warning,
            format!(
                "The previous SIP credential {} ({}) was removed from the list before its overlap ends ({}); call engines still using it cannot authenticate. Finish the rotation.",
                previous.credential_sid, previous.username, previous.expires_at
            ),
            details,
        ),
        Some(previous) => VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Passed,
            format!(
                "The credential list is attached to the trunk and holds the SIP user {}, and {} until its overlap ends ({}).",
                sip.username, previous.username, previous.expires_at
            ),
            details,
        ),
        None => VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Passed,
            format!("The credential list is attached to the trunk and holds the SIP user {}.", sip.username),
            details,
        ),
    }
}
