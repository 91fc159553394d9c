//! The run of a verification: the first reads' verdict, then the reads behind the later checks
//! (each resource once), then one function per check, in the order the checks are reported.

use super::account::{account_as_read, credentials_passed, inactive_account, rejection, unverifiable};
use super::checks::{credential_list_check, secure_trunking_check, trunk_check};
use super::numbers::{TrunkNumbers, phone_numbers_check, voice_regions};
use super::origination::{expected_origination, origination_check, origination_friendly_name};
use super::{LIST_CAP, Verification, skipped, twilio_finding};
use crate::services::Services;
use serde_json::json;
use shared::model::{CheckName, CheckStatus, PlatformSipUris, TwilioCredentials, VerificationCheck};
use shared::storage::{PhoneNumberRecord, ProviderRecord, SipCredentialRecord, StoreError};
use shared::twilio::{Account, Credential, OriginationUrl, Trunk, TrunkCredentialList, TwilioError, TwilioErrorKind};

/// What Twilio and the table answered for the checks, each resource read once. The reads on
/// the trunk are None when the trunk was not read.
struct Reads {
    trunk: Result<Trunk, TwilioError>,
    attached: Option<Result<Vec<TrunkCredentialList>, TwilioError>>,
    credentials: Result<Vec<Credential>, TwilioError>,
    origination: Option<Result<Vec<OriginationUrl>, TwilioError>>,
    imported: Result<Vec<PhoneNumberRecord>, StoreError>,
    numbers: Option<TrunkNumbers>,
    sip: Result<Option<SipCredentialRecord>, StoreError>,
}

/// Every check, given the first reads (the account, None when not read; the trunk): a
/// rejection or an inactive account ends the verification there; otherwise the rest is read
/// and each check runs in turn.
pub(super) async fn run_checks(
    services: &Services,
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    account: Option<Result<Account, TwilioError>>,
    trunk: Result<Trunk, TwilioError>,
    new_credential: Option<&SipCredentialRecord>,
) -> Verification {
    if let Some(e) = rejection(creds, &account, &trunk) {
        return Verification::new(unverifiable(record, creds, e));
    }
    let account_check = account_as_read(record, creds, &account, &trunk);
    if account_check.status == CheckStatus::Failed {
        return Verification::new(inactive_account(creds, account_check));
    }
    let reads = read_resources(services, record, creds, trunk, new_credential).await;
    let platform = &services.platform_sip_uris;
    let trunk_gone = trunk_unread_reason(&reads.trunk);
    Verification::new(vec![
        credentials_passed(creds),
        account_check,
        permissions_check(&reads),
        trunk_check(record, &reads.trunk),
        secure_trunking(record, &reads, platform),
        credential_list(record, reads.attached, &reads.credentials, reads.sip, trunk_gone),
        origination(record, reads.origination, platform, trunk_gone),
        phone_numbers(record, reads.trunk.is_ok(), reads.imported, reads.numbers, trunk_gone),
    ])
}

/// Why the checks on the trunk are skipped when it was not read: only a 404 means deleted.
fn trunk_unread_reason(trunk: &Result<Trunk, TwilioError>) -> &'static str {
    match trunk {
        Err(e) if e.is_not_found() => "the SIP trunk was deleted",
        _ => "the SIP trunk could not be read",
    }
}

/// The reads behind the checks, each resource once: the trunk (already read, as the first
/// answer that can make the rest meaningless), then its credential lists, the list's
/// credentials, its origination URLs and its numbers side by side with the table's records.
async fn read_resources(
    services: &Services,
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    trunk: Result<Trunk, TwilioError>,
    new_credential: Option<&SipCredentialRecord>,
) -> Reads {
    let twilio = &services.twilio;
    let trunk_exists = trunk.is_ok();
    let store = &services.store;
    let (attached, credentials, origination, (imported, numbers), sip) = tokio::join!(
        async {
            match trunk_exists {
                true => Some(twilio.list_trunk_credential_lists(creds, &record.trunk_sid, LIST_CAP).await),
                false => None,
            }
        },
        twilio.list_credentials(creds, &record.credential_list_sid, LIST_CAP),
        async {
            match trunk_exists {
                true => Some(twilio.list_origination_urls(creds, &record.trunk_sid, LIST_CAP).await),
                false => None,
            }
        },
        async {
            // The trunk's numbers are read only when there are imported numbers to look for.
            let imported = store.all_numbers(&record.organization_id, record.id).await;
            let on_trunk = match &imported {
                Ok(numbers) if trunk_exists && !numbers.is_empty() => {
                    let (listed, regions) = tokio::join!(
                        twilio.list_trunk_phone_numbers(creds, &record.trunk_sid, LIST_CAP),
                        voice_regions(twilio, creds, numbers)
                    );
                    Some((listed, regions))
                }
                _ => None,
            };
            (imported, on_trunk)
        },
        async {
            match new_credential {
                Some(credential) => Ok(Some(credential.clone())),
                None => store.get_sip_credential(&record.organization_id, record.id).await,
            }
        },
    );
    Reads { trunk, attached, credentials, origination, imported, numbers, sip }
}

/// `permissions`: derived from what the reads already proved, no probes of its own.
fn permissions_check(reads: &Reads) -> VerificationCheck {
    let mut denied = Vec::new();
    let errors: [(&str, Option<&TwilioError>); 5] = [
        ("reading SIP trunks", reads.trunk.as_ref().err()),
        ("reading the trunk's credential lists", reads.attached.as_ref().and_then(|r| r.as_ref().err())),
        ("reading credential lists", reads.credentials.as_ref().err()),
        ("reading origination URLs", reads.origination.as_ref().and_then(|r| r.as_ref().err())),
        ("reading the trunk's phone numbers", reads.numbers.as_ref().and_then(|(r, _)| r.as_ref().err())),
    ];
    for (what, error) in errors {
        if error.is_some_and(|e| e.kind() == TwilioErrorKind::Denied) {
            denied.push(what);
        }
    }
    if denied.is_empty() {
        VerificationCheck::new(
            CheckName::Permissions,
            CheckStatus::Passed,
            "The credentials may read the trunk, its credential lists, origination URLs and numbers (proved by the reads of the other checks).",
            json!({}),
        )
    } else {
        VerificationCheck::new(
            CheckName::Permissions,
            CheckStatus::Failed,
            format!(
                "Twilio denied these credentials permission for {}. Use credentials that may manage Elastic SIP Trunking, credential lists and phone numbers. {}",
                denied.join(", "),
                crate::provider::problems::DENIED_OR_SUSPENDED
            ),
            json!({"denied": denied}),
        )
    }
}

/// `secureTrunking`, when the trunk and its origination URLs were read.
fn secure_trunking(record: &ProviderRecord, reads: &Reads, platform: &PlatformSipUris) -> VerificationCheck {
    match (&reads.trunk, &reads.origination) {
        (Ok(trunk), Some(Ok(urls))) => secure_trunking_check(record, trunk, urls, platform),
        _ => skipped(CheckName::SecureTrunking, "the trunk or its origination URLs could not be read"),
    }
}

/// `credentialList`, when the trunk's credential lists were read.
fn credential_list(
    record: &ProviderRecord,
    attached: Option<Result<Vec<TrunkCredentialList>, TwilioError>>,
    credentials: &Result<Vec<Credential>, TwilioError>,
    sip: Result<Option<SipCredentialRecord>, StoreError>,
    trunk_gone: &str,
) -> VerificationCheck {
    match attached {
        Some(attached) => credential_list_check(record, &attached, credentials, sip),
        None => skipped(CheckName::CredentialList, trunk_gone),
    }
}

/// `origination`, when the trunk's origination URLs were read.
fn origination(
    record: &ProviderRecord,
    urls: Option<Result<Vec<OriginationUrl>, TwilioError>>,
    platform: &PlatformSipUris,
    trunk_gone: &str,
) -> VerificationCheck {
    match urls {
        Some(Ok(urls)) => origination_check(&urls, platform, &origination_friendly_name(record.id)),
        Some(Err(e)) => twilio_finding(
            CheckName::Origination,
            &format!("the origination URLs of trunk {}", record.trunk_sid),
            &e,
            json!({"expected": expected_origination(platform)}),
        ),
        None => skipped(CheckName::Origination, trunk_gone),
    }
}

/// `phoneNumbers`, when the trunk exists.
fn phone_numbers(
    record: &ProviderRecord,
    trunk_exists: bool,
    imported: Result<Vec<PhoneNumberRecord>, StoreError>,
    numbers: Option<TrunkNumbers>,
    trunk_gone: &str,
) -> VerificationCheck {
    match trunk_exists {
        false => skipped(CheckName::PhoneNumbers, trunk_gone),
        true => phone_numbers_check(record, imported, numbers),
    }
}
