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
use shared::model::{CheckName, CheckStatus, OrganizationId, TransferMode, TwilioCredentials};
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
/// stored transfer setting or the trunk between its decision and its save.
const DECISIONS: u32 = 3;

/// Applies the update and returns the provider as saved (unchanged when the update is empty).
pub async fn update_provider(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    update: UpdateTwilioProvider,
) -> Result<ProviderRecord, ApiError> {
    let mut set_in_twilio = false;
    for _ in 0..DECISIONS {
        match update_once(services, org, id, &update).await? {
            Attempt::Saved(saved) => return Ok(*saved),
            Attempt::DecideAgain { set_in_twilio: set } => set_in_twilio = set,
        }
    }
    if set_in_twilio {
        // Given up after setting the trunk: it goes back to what is stored.
        let record = load_provider(&services.store, org, id).await?;
        let creds = stored_credentials(services, &record).await?;
        let stored_mode = TransferMode::for_call_transfer(record.supports_call_transfer);
        if let Err(e) = services.twilio.update_trunk_transfer_mode(&creds, &record.trunk_sid, stored_mode).await {
            tracing::error!(provider_id = %id, error = %e, "could not set the trunk's transfer mode back to the stored value; the next repair does");
        }
    }
    Err(ApiError::Conflict(format!(
        "Provider {id}'s supportsCallTransfer was changed by other requests at the same time; retry."
    )))
}

enum Attempt {
    Saved(Box<ProviderRecord>),
    /// Another request changed the stored transfer setting or the trunk between this decision
    /// and its save.
    DecideAgain {
        set_in_twilio: bool,
    },
}

/// One decision and its save. Whatever sets the trunk's TransferMode (an update that calls
/// Twilio, a repair) holds the provider's repair lease, so no two of them overlap; an update
/// that needs no call to Twilio and finds the stored value or the trunk changed at its save
/// decides again from the newer record rather than saving a value the trunk may not have.
async fn update_once(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    update: &UpdateTwilioProvider,
) -> Result<Attempt, ApiError> {
    let record = load_provider(&services.store, org, id).await?;
    if update.is_empty() {
        return Ok(Attempt::Saved(Box::new(record)));
    }
    refuse_if_deleting(&record)?;
    let needs_twilio = |wanted: &bool| *wanted != record.supports_call_transfer || transfer_mode_drifted(&record);
    let Some(wanted) = update.supports_call_transfer.filter(needs_twilio) else {
        return decide_and_save(services, org, id, update, record, None).await;
    };
    // A repair sets the trunk's TransferMode from the record it read, and two changes could
    // reach Twilio in one order and the table in the other: the change holds the repair lease
    // while it sets the trunk and saves.
    if !services.store.take_repair_lease(org, id).await? {
        return Err(ApiError::Conflict(format!(
            "A repair or another transfer change of provider {id} is under way; retry when it has finished."
        )));
    }
    let outcome = async {
        let creds = stored_credentials(services, &record).await?;
        services
            .twilio
            .update_trunk_transfer_mode(&creds, &record.trunk_sid, TransferMode::for_call_transfer(wanted))
            .await
            .map_err(|e| stored_credentials_error("changing the trunk's transfer mode", &record, e))?;
        decide_and_save(services, org, id, update, record, Some(creds)).await
    }
    .await;
    if let Err(e) = services.store.release_repair_lease(org, id).await {
        tracing::warn!(provider_id = %id, error = %e, "could not give up the repair lease; it lapses by itself");
    }
    outcome
}

/// Saves the update unless the stored transfer setting or the trunk changed since the decision;
/// `changed_in_twilio` holds the credentials when this update has set the trunk.
async fn decide_and_save(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    update: &UpdateTwilioProvider,
    record: ProviderRecord,
    changed_in_twilio: Option<TwilioCredentials>,
) -> Result<Attempt, ApiError> {
    let previous_mode = TransferMode::for_call_transfer(record.supports_call_transfer);
    let decided_on = (record.supports_call_transfer, record.trunk_sid.clone());
    let set_in_twilio = changed_in_twilio.is_some();
    let mut decide_again = false;
    let saved = save_with_retry(&services.store, record, |record| {
        refuse_if_deleting(record)?;
        let now = (record.supports_call_transfer, record.trunk_sid.clone());
        if update.supports_call_transfer.is_some() && now != decided_on {
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
        (Ok(_), _) if decide_again => return Ok(Attempt::DecideAgain { set_in_twilio }),
        (Ok(saved), _) => saved,
        (Err(e), Some(creds)) => {
            // Not saved: Twilio goes back to what the stored record says.
            let trunk_sid = &decided_on.1;
            if let Err(undo) = services.twilio.update_trunk_transfer_mode(&creds, trunk_sid, previous_mode).await {
                tracing::error!(provider_id = %id, error = %undo, "could not put the trunk's transfer mode back after a failed save; the next repair does");
            }
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    tracing::info!(organization_id = %org, provider_id = %id, "twilio provider updated");
    Ok(Attempt::Saved(Box::new(saved)))
}
