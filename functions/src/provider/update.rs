//! Updating a provider: name, region, supportsCallTransfer, secureTrunking, only those given.
//! Why a trunk change goes to Twilio first: docs/decisions/update-twilio-first.md.

use crate::provider::record::{
    Change, load_provider, refuse_if_deleting, save_with_retry, stored_credentials, stored_credentials_error,
    under_lease,
};
use crate::services::Services;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::dto::{DisasterRecoveryFields, UpdateTwilioProvider};
use shared::model::{CheckName, CheckStatus, OrganizationId, TrunkSettings, TwilioCredentials};
use shared::storage::ProviderRecord;
use uuid::Uuid;

/// Whether the last verification saw the trunk's TransferMode or Secure differ from the stored
/// values.
fn trunk_drifted(record: &ProviderRecord) -> bool {
    record.verification_details.iter().flatten().any(|check| {
        let differs = |field: &str, expected: &str| {
            check.details.get(field).is_some() && check.details.get(field) != check.details.get(expected)
        };
        check.status != CheckStatus::Passed
            && ((check.check_name == CheckName::Trunk
                && (differs("transferMode", "expectedTransferMode")
                    || differs("disasterRecoveryUrl", "expectedDisasterRecoveryUrl")))
                || (check.check_name == CheckName::SecureTrunking && differs("secure", "expectedSecure")))
    })
}

/// The Twilio Region is where the provider's trunk, credential list and numbers' configuration
/// exist and its token is valid: it cannot move, so only its current value is accepted.
fn refuse_other_twilio_region(update: &UpdateTwilioProvider, record: &ProviderRecord) -> Result<(), ApiError> {
    match update.twilio_region {
        Some(region) if region != record.twilio_region => Err(ApiError::validation(
            "twilioRegion",
            format!(
                "cannot be changed: the provider's trunk, credentials and numbers are in Twilio Region {}; create a new provider for another Region",
                record.twilio_region
            ),
        )),
        _ => Ok(()),
    }
}

/// Applies the update and returns the provider as saved (unchanged when the update is empty).
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %id))]
pub async fn update_provider(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    update: UpdateTwilioProvider,
) -> Result<ProviderRecord, ApiError> {
    if update.secure_trunking == Some(true) {
        crate::provider::create::refuse_secure_without_tls(&services.platform_sip_uris)?;
    }
    let changes_trunk = update.supports_call_transfer.is_some()
        || update.secure_trunking.is_some()
        || update.disaster_recovery != DisasterRecoveryFields::default();
    if !changes_trunk {
        let record = load_provider(&services.store, org, id).await?;
        refuse_other_twilio_region(&update, &record)?;
        return save(services, id, &update, record, None).await;
    }
    // Whatever sets the trunk's TransferMode or the stored value holds the provider's repair
    // lease: a repair (which sets TransferMode from the record it read) and another transfer
    // change never run at once with this one, so Twilio and the table cannot end up set in
    // opposite orders. Imports, renames and verifications saved meanwhile are re-applied.
    under_lease(services, org, id, change_transfer(services, org, id, &update)).await
}

/// Under the lease: the record as it is now, Twilio if it needs the change, then the save.
async fn change_transfer(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    update: &UpdateTwilioProvider,
) -> Result<ProviderRecord, ApiError> {
    let record = load_provider(&services.store, org, id).await?;
    refuse_if_deleting(&record)?;
    refuse_other_twilio_region(update, &record)?;
    let wanted = TrunkSettings::new(
        update.supports_call_transfer.unwrap_or(record.supports_call_transfer),
        update.secure_trunking.unwrap_or(record.secure_trunking),
        update
            .disaster_recovery
            .applied_to(record.disaster_recovery.as_ref())
            .unwrap_or(record.disaster_recovery.clone()),
    );
    if wanted == record.trunk_settings() && !trunk_drifted(&record) {
        return save(services, id, update, record, None).await;
    }
    let creds = stored_credentials(services, &record).await?;
    services
        .twilio
        .update_trunk(&creds, &record.trunk_sid, &wanted)
        .await
        .map_err(|e| stored_credentials_error("changing the trunk's transfer mode and Secure", &record, e))?;
    save(services, id, update, record, Some(creds)).await
}

/// Saves the update; `changed_in_twilio` holds the credentials when the trunk was set, which is
/// put back if the save fails.
async fn save(
    services: &Services,
    id: Uuid,
    update: &UpdateTwilioProvider,
    record: ProviderRecord,
    changed_in_twilio: Option<TwilioCredentials>,
) -> Result<ProviderRecord, ApiError> {
    if update.is_empty() {
        return Ok(record);
    }
    let org = record.organization_id.clone();
    let previous = record.trunk_settings();
    let trunk_sid = record.trunk_sid.clone();
    let mut event = AuditEvent::new(&org, id, Action::Update).detail(update.changed_fields().join(", "));
    if changed_in_twilio.is_some() {
        event = event.sid(&trunk_sid);
    }
    let saved = save_with_retry(&services.store, record, Some(&event), |record| {
        refuse_if_deleting(record)?;
        refuse_other_twilio_region(update, record)?;
        if let Some(name) = &update.name {
            record.name = name.clone();
        }
        if let Some(region) = update.region {
            record.region = region;
        }
        if let Some(supports) = update.supports_call_transfer {
            record.supports_call_transfer = supports;
        }
        if let Some(secure) = update.secure_trunking {
            record.secure_trunking = secure;
        }
        if let Some(recovery) = update.disaster_recovery.applied_to(record.disaster_recovery.as_ref()) {
            record.disaster_recovery = recovery;
        }
        // The trunk and its domain stay; the edge and the transport of the termination URI follow.
        let label = record.domain_name.strip_suffix(".pstn.twilio.com").unwrap_or(&record.domain_name).to_owned();
        record.termination_uri = record.region.termination_uri(&label, record.secure_trunking);
        Ok(Change::Save)
    })
    .await;
    let saved = match (saved, changed_in_twilio) {
        (Ok(saved), _) => saved,
        (Err(e), Some(creds)) => {
            // Not saved: Twilio goes back to what the stored record says.
            if let Err(undo) = services.twilio.update_trunk(&creds, &trunk_sid, &previous).await {
                tracing::error!(error = %undo, "could not put the trunk's transfer mode back after a failed save; the next repair does");
            }
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    tracing::info!("twilio provider updated");
    Ok(saved)
}
