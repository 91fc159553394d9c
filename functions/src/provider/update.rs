//! Updating a provider: name, region, supportsCallTransfer, only those given.
//! A transfer change goes to Twilio first; if Twilio fails, nothing changes locally; if the
//! save fails after Twilio changed, Twilio is put back (and if even that fails, the stored
//! value stays the old one, which the next repair applies). `supportsCallTransfer` equal to
//! the stored value is still sent to Twilio when the last verification saw the trunk differ.

use crate::provider::record::{
    Change, load_provider, refuse_if_deleting, save_with_retry, stored_credentials, stored_credentials_error,
};
use crate::services::Services;
use shared::ApiError;
use shared::dto::UpdateTwilioProvider;
use shared::model::{CheckName, CheckStatus, OrganizationId, TransferMode};
use shared::store::ProviderRecord;
use uuid::Uuid;

/// Whether the last verification saw the trunk's TransferMode differ from the stored value.
fn transfer_mode_drifted(record: &ProviderRecord) -> bool {
    record.verification_details.iter().flatten().any(|check| {
        check.check_name == CheckName::Trunk
            && check.status != CheckStatus::Passed
            && check.details.get("transferMode").is_some()
            && check.details.get("transferMode") != check.details.get("expectedTransferMode")
    })
}

/// How many times an update decides again about Twilio when other requests keep changing the
/// provider between its decision and its save.
const DECISIONS: u32 = 3;

/// Applies the update and returns the provider as saved (unchanged when the update is empty).
pub async fn update_provider(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    update: UpdateTwilioProvider,
) -> Result<ProviderRecord, ApiError> {
    for _ in 0..DECISIONS {
        if let Some(saved) = update_once(services, org, id, &update).await? {
            return Ok(saved);
        }
    }
    Err(ApiError::Conflict(format!("Provider {id} was changed by other requests at the same time; retry.")))
}

/// One decision and its save; `None` when the update sets `supportsCallTransfer` and another
/// request saved the provider in between. Then the order of the two requests' calls to Twilio
/// is unknown (the other may have set the trunk after this one did), so the decision is made
/// again from the newer record rather than saving a value the trunk may not have.
async fn update_once(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    update: &UpdateTwilioProvider,
) -> Result<Option<ProviderRecord>, ApiError> {
    let record = load_provider(&services.store, org, id).await?;
    if update.is_empty() {
        return Ok(Some(record));
    }
    refuse_if_deleting(&record)?;
    let mut changed_in_twilio = None;
    let needs_twilio = |wanted: &bool| *wanted != record.supports_call_transfer || transfer_mode_drifted(&record);
    if let Some(wanted) = update.supports_call_transfer.filter(needs_twilio) {
        let creds = stored_credentials(services, &record).await?;
        services
            .twilio
            .update_trunk_transfer_mode(&creds, &record.trunk_sid, TransferMode::for_call_transfer(wanted))
            .await
            .map_err(|e| stored_credentials_error("changing the trunk's transfer mode", &record, e))?;
        changed_in_twilio = Some(creds);
    }
    let previous_mode = TransferMode::for_call_transfer(record.supports_call_transfer);
    let trunk_sid = record.trunk_sid.clone();
    let decided_on = record.version;
    let mut decide_again = false;
    let saved = save_with_retry(&services.store, record, |record| {
        refuse_if_deleting(record)?;
        if update.supports_call_transfer.is_some() && record.version != decided_on {
            decide_again = true;
            return Ok(Change::Keep);
        }
        if let Some(name) = &update.name {
            record.name = name.clone();
        }
        if let Some(region) = update.region {
            record.region = region;
            // The trunk and its domain stay; only the edge in the termination URI changes.
            let label = record.domain_name.strip_suffix(".pstn.twilio.com").unwrap_or(&record.domain_name).to_owned();
            record.termination_uri = region.termination_uri(&label);
        }
        if let Some(supports) = update.supports_call_transfer {
            record.supports_call_transfer = supports;
        }
        Ok(Change::Save)
    })
    .await;
    let saved = match (saved, changed_in_twilio) {
        (Ok(_), _) if decide_again => return Ok(None),
        (Ok(saved), _) => saved,
        (Err(e), Some(creds)) => {
            // Not saved: Twilio goes back to what the stored record says.
            if let Err(undo) = services.twilio.update_trunk_transfer_mode(&creds, &trunk_sid, previous_mode).await {
                tracing::error!(provider_id = %id, error = %undo, "could not put the trunk's transfer mode back after a failed save; the next repair does");
            }
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    tracing::info!(organization_id = %org, provider_id = %id, "twilio provider updated");
    Ok(Some(saved))
}
