//! The `phoneNumbers` check: the imported numbers are on the trunk and, outside US1, have their
//! calls processed in the provider's Twilio Region.

use super::{DETAILS_CAP, twilio_finding};
use serde_json::json;
use shared::model::{CheckName, CheckStatus, PhoneNumberSid, TwilioCredentials, TwilioRegion, VerificationCheck};
use shared::storage::{PhoneNumberRecord, ProviderRecord, StoreError};
use shared::twilio::{TrunkPhoneNumber, TwilioClient, TwilioError};
use std::collections::HashSet;

/// How many imported numbers of an IE1 or AU1 provider have their inbound processing Region read
/// per verification (one Routes request each): a sample, so that the hourly re-verification of
/// a provider with thousands of numbers stays a few requests. Repair reads them all.
const VOICE_REGION_SAMPLE: usize = 20;

/// The inbound processing Region of a sample of the imported numbers, for providers outside US1
/// (import points them at the provider's Region); empty in US1.
pub(super) async fn voice_regions(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    numbers: &[PhoneNumberRecord],
) -> Vec<(String, Result<String, TwilioError>)> {
    if creds.region == TwilioRegion::Us1 {
        return Vec::new();
    }
    let sample = numbers.iter().take(VOICE_REGION_SAMPLE).map(|n| n.phone_number.clone());
    let reads = sample.map(|number| async move {
        let region = twilio.fetch_voice_region(creds, &number).await;
        (number, region)
    });
    futures::future::join_all(reads).await
}

pub(super) type TrunkNumbers = (Result<Vec<TrunkPhoneNumber>, TwilioError>, Vec<(String, Result<String, TwilioError>)>);

/// `phoneNumbers`: every imported number is on the trunk (`on_trunk`: the trunk's numbers and
/// a sample's Region, read when numbers are imported).
pub(super) fn phone_numbers_check(
    record: &ProviderRecord,
    imported: Result<Vec<PhoneNumberRecord>, StoreError>,
    on_trunk: Option<TrunkNumbers>,
) -> VerificationCheck {
    let imported = match imported {
        Ok(imported) => imported,
        Err(e) => {
            tracing::error!(error = %e, "could not read the imported numbers");
            return VerificationCheck::new(
                CheckName::PhoneNumbers,
                CheckStatus::Warning,
                "Could not read the imported numbers (storage unavailable). They will be checked again.",
                json!({"code": "storage_unavailable"}),
            );
        }
    };
    if imported.is_empty() {
        return VerificationCheck::new(
            CheckName::PhoneNumbers,
            CheckStatus::Passed,
            "No numbers are imported yet.",
            json!({"imported": 0}),
        );
    }
    let (on_trunk, regions) = match on_trunk {
        Some((listed, regions)) => (Some(listed), regions),
        None => (None, Vec::new()),
    };
    let on_trunk: HashSet<PhoneNumberSid> = match on_trunk {
        Some(Ok(numbers)) => numbers.into_iter().map(|n| n.sid).collect(),
        Some(Err(e)) => {
            return twilio_finding(
                CheckName::PhoneNumbers,
                &format!("the numbers of trunk {}", record.trunk_sid),
                &e,
                json!({}),
            );
        }
        None => {
            return VerificationCheck::new(
                CheckName::PhoneNumbers,
                CheckStatus::Warning,
                "Could not list the trunk's numbers. They will be checked again.",
                json!({}),
            );
        }
    };
    numbers_on_trunk_check(record, &imported, &on_trunk, &regions)
}

/// `phoneNumbers` once the imported numbers and the trunk's were read: the imported numbers
/// no longer on the trunk warn, then those of the sample whose calls go to another Region.
fn numbers_on_trunk_check(
    record: &ProviderRecord,
    imported: &[PhoneNumberRecord],
    on_trunk: &HashSet<PhoneNumberSid>,
    regions: &[(String, Result<String, TwilioError>)],
) -> VerificationCheck {
    let detached: Vec<&PhoneNumberRecord> =
        imported.iter().filter(|n| !on_trunk.contains(&n.phone_number_sid)).collect();
    if !detached.is_empty() {
        return detached_numbers_check(imported.len(), &detached);
    }
    let elsewhere: Vec<(&String, &String)> = regions
        .iter()
        .filter_map(|(number, region)| region.as_ref().ok().map(|region| (number, region)))
        .filter(|(_, region)| region.as_str() != record.twilio_region.as_str())
        .collect();
    if !elsewhere.is_empty() {
        return other_region_check(record, imported.len(), regions.len(), &elsewhere);
    }
    VerificationCheck::new(
        CheckName::PhoneNumbers,
        CheckStatus::Passed,
        format!("All {} imported numbers are on the trunk.", imported.len()),
        json!({"imported": imported.len()}),
    )
}

/// `phoneNumbers` when every imported number is on the trunk but some of the `checked` have
/// their calls processed in another Twilio Region (`elsewhere`).
fn other_region_check(
    record: &ProviderRecord,
    imported: usize,
    checked: usize,
    elsewhere: &[(&String, &String)],
) -> VerificationCheck {
    VerificationCheck::new(
        CheckName::PhoneNumbers,
        CheckStatus::Warning,
        format!(
            "All {imported} imported numbers are on the trunk, but {} of the {checked} checked have their calls processed in another Twilio Region than {}, where the trunk is: those calls do not reach the platform. Run repair to set it back.",
            elsewhere.len(),
            record.twilio_region
        ),
        json!({
            "imported": imported,
            "voiceRegionChecked": checked,
            "otherVoiceRegion": elsewhere
                .iter()
                .map(|(number, region)| json!({"phoneNumber": number, "voiceRegion": region}))
                .collect::<Vec<_>>(),
        }),
    )
}

/// `phoneNumbers` when imported numbers (`detached`) are no longer on the trunk.
fn detached_numbers_check(imported: usize, detached: &[&PhoneNumberRecord]) -> VerificationCheck {
    VerificationCheck::new(
        CheckName::PhoneNumbers,
        CheckStatus::Warning,
        format!(
            "{} of {imported} imported numbers are no longer on the trunk and will not reach the platform. Run repair to put back those on no trunk (a number given a voice application since is left so).",
            detached.len()
        ),
        json!({
            "imported": imported,
            "detachedCount": detached.len(),
            "detached": detached
                .iter()
                .take(DETAILS_CAP)
                .map(|n| json!({"phoneNumberSid": n.phone_number_sid, "phoneNumber": n.phone_number, "id": n.id}))
                .collect::<Vec<_>>(),
        }),
    )
}
