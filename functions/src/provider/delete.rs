//! Deleting a provider: give the customer's Twilio account back (imported numbers off the
//! trunk with their previous voice configuration, then the credential list's attachment, the
//! trunk and the credential list with its credentials; 404 counts as done), then delete every
//! record of the provider.
//!
//! At any size: numbers are released with bounded concurrency, and each number's records go
//! (with the count) as soon as it is given back, so work done is never redone. When the
//! invocation's time runs short, a step records its progress and queues a message on the
//! deletion queue ([`Deletion::Continuing`]); `continue-deletions` runs the next step until the
//! provider is gone. `DELETE` again also continues, and `GET` shows the progress.
//!
//! A Twilio failure leaves the provider marked as being deleted and fails the step (a rotated
//! token can be set meanwhile). A forced delete removes the records anyway and records
//! whatever Twilio still holds for the orphan sweeper ([`Deletion::Forced`]).

use crate::provider::cleanup::{record_for_sweeper, remove_resources};
use crate::provider::record::{Change, load_provider, save_with_retry, stored_credentials};
use crate::provider::release::{KeyCache, Released, release_number};
use crate::services::Services;
use futures::StreamExt;
use shared::ApiError;
use shared::dto::LeftBehind;
use shared::model::{OrganizationId, TwilioCredentials};
use shared::queue::ContinueDeletion;
use shared::store::{DeletionState, PhoneNumberRecord, ProviderRecord};
use shared::twilio::TwilioResource;
use std::time::Duration;
use uuid::Uuid;

/// Numbers given back at the same time.
const RELEASE_CONCURRENCY: usize = 8;
/// Numbers read per page.
const PAGE: i32 = 50;
/// Time kept back to record progress, queue the continuation and answer.
const CONTINUE_RESERVE: Duration = Duration::from_secs(3);

/// Where one step of a delete got to.
#[derive(Debug)]
pub enum Deletion {
    /// Twilio is given back and every record is gone.
    Deleted,
    /// Forced: the records are gone; what Twilio still holds is listed and recorded for the
    /// orphan sweeper.
    Forced(Vec<LeftBehind>),
    /// Out of time: progress is recorded and a message on the deletion queue continues it.
    Continuing(Box<ProviderRecord>),
}

/// As much of a delete as the current deadline allows (see the module doc). Idempotent: the
/// next step continues where this one stopped.
pub async fn delete_step(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    force: bool,
) -> Result<Deletion, ApiError> {
    let mut record = load_provider(&services.store, org, id).await?;
    if record.deletion.is_none() {
        record = save_with_retry(&services.store, record, |record| {
            record
                .deletion
                .get_or_insert_with(|| DeletionState { started_at: shared::time::Timestamp::now(), last_error: None });
            Ok(Change::Save)
        })
        .await?;
    }
    let creds = match stored_credentials(services, &record).await {
        Ok(creds) => creds,
        Err(e) if force => {
            let reason = e.to_string();
            let left = everything_of(services, &record).await?.into_iter().map(|r| (r, reason.clone())).collect();
            return finish_forced(services, record, left, "the stored credentials cannot be used").await;
        }
        Err(e) => return Err(e),
    };

    let mut left = Vec::new();
    match release_numbers(services, &creds, &record).await? {
        NumbersReleased::Done(failed) => left.extend(failed),
        NumbersReleased::OutOfTime => return continue_later(services, record).await,
    }
    // The trunk's resources are removed only once every number is off it.
    let numbers_left = !left.is_empty();
    if !numbers_left {
        left.extend(
            remove_resources(&services.twilio, &creds, &resources_of(&record))
                .await
                .into_iter()
                .map(|(resource, e)| (resource, e.to_string())),
        );
    }
    if left.is_empty() {
        services.store.delete_provider(&record).await?;
        tracing::info!(organization_id = %org, provider_id = %id, "provider deleted");
        return Ok(Deletion::Deleted);
    }
    if force {
        if numbers_left {
            // Not tried: the numbers that could not be given back hold the trunk. They stay
            // for the sweeper with the numbers.
            left.extend(resources_of(&record).into_iter().map(|r| (r, "not removed: numbers were left".to_owned())));
        }
        return finish_forced(services, record, left, "a forced delete could not remove it").await;
    }
    let summary: Vec<String> =
        left.iter().map(|(resource, e)| format!("{} {}: {e}", resource.kind(), resource.sid())).collect();
    let summary = summary.join("; ");
    record_error(services, record, &summary).await;
    Err(ApiError::TwilioFailed {
        detail: format!(
            "Could not clean up Twilio: {summary}. The provider is marked as being deleted; call DELETE again to continue, or add ?force=true to remove it anyway."
        ),
        cause: None,
    })
}

enum NumbersReleased {
    /// Every number was tried; these could not be given back.
    Done(Vec<(TwilioResource, String)>),
    OutOfTime,
}

fn out_of_time() -> bool {
    shared::deadline::remaining().is_some_and(|left| left < CONTINUE_RESERVE)
}

/// Gives every imported number back, page by page, forgetting each as soon as it is back.
async fn release_numbers(
    services: &Services,
    creds: &TwilioCredentials,
    record: &ProviderRecord,
) -> Result<NumbersReleased, ApiError> {
    let org = &record.organization_id;
    let mut failed = Vec::new();
    let mut keys = KeyCache::default();
    let mut token: Option<String> = None;
    loop {
        if out_of_time() {
            return Ok(NumbersReleased::OutOfTime);
        }
        // The cursor moves past numbers that failed; released ones are gone from the table.
        let (page, next) = services.store.list_numbers(org, record.id, PAGE, token.as_deref()).await?;
        keys.load(services, record, &page).await?;
        let keys = &keys;
        let outcomes: Vec<Option<(TwilioResource, String)>> = futures::stream::iter(page.iter().cloned())
            .map(|number| release_one(services, creds, record, number, keys))
            .buffer_unordered(RELEASE_CONCURRENCY)
            .collect()
            .await;
        failed.extend(outcomes.into_iter().flatten());
        if out_of_time() {
            return Ok(NumbersReleased::OutOfTime);
        }
        match next {
            Some(next) => token = Some(next),
            None => return Ok(NumbersReleased::Done(failed)),
        }
    }
}

/// One number: given back and forgotten, or what is left of it. Not started once out of time.
async fn release_one(
    services: &Services,
    creds: &TwilioCredentials,
    record: &ProviderRecord,
    number: PhoneNumberRecord,
    keys: &KeyCache,
) -> Option<(TwilioResource, String)> {
    let left = || TwilioResource::TrunkPhoneNumber {
        trunk_sid: record.trunk_sid.clone(),
        number_sid: number.phone_number_sid.clone(),
    };
    if out_of_time() {
        return None;
    }
    match release_number(services, creds, record, &number, keys).await {
        Ok(released) => {
            if let Released::NotRestored(reason) = &released {
                tracing::info!(provider_id = %record.id, phone_number_sid = %number.phone_number_sid, reason, "number not given back as it was");
            }
            match services.store.forget_released_number(&record.organization_id, &number).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(provider_id = %record.id, phone_number_sid = %number.phone_number_sid, error = %e, "number given back but its record stays; the next step forgets it");
                    None
                }
            }
        }
        Err(e) => Some((left(), e.to_string())),
    }
}

/// The provider's own Twilio resources, in removal order.
fn resources_of(record: &ProviderRecord) -> Vec<TwilioResource> {
    vec![
        TwilioResource::TrunkCredentialList {
            trunk_sid: record.trunk_sid.clone(),
            list_sid: record.credential_list_sid.clone(),
        },
        TwilioResource::Trunk { trunk_sid: record.trunk_sid.clone() },
        TwilioResource::CredentialList { list_sid: record.credential_list_sid.clone() },
    ]
}

/// Everything the provider holds in Twilio: its numbers' places on the trunk and its resources.
async fn everything_of(services: &Services, record: &ProviderRecord) -> Result<Vec<TwilioResource>, ApiError> {
    let numbers = services.store.all_numbers(&record.organization_id, record.id).await?;
    let mut all: Vec<TwilioResource> = numbers
        .iter()
        .map(|n| TwilioResource::TrunkPhoneNumber {
            trunk_sid: record.trunk_sid.clone(),
            number_sid: n.phone_number_sid.clone(),
        })
        .collect();
    all.extend(resources_of(record));
    Ok(all)
}

/// A forced delete's end: what is left is recorded for the orphan sweeper (with the stored,
/// envelope-encrypted token: same owner, so the sweeper can open it), then the records go.
async fn finish_forced(
    services: &Services,
    record: ProviderRecord,
    left: Vec<(TwilioResource, String)>,
    why: &str,
) -> Result<Deletion, ApiError> {
    let left_behind: Vec<LeftBehind> =
        left.iter().map(|(resource, error)| LeftBehind { resource: resource.clone(), error: error.clone() }).collect();
    if !left.is_empty() {
        // Recorded before the records go: a forced delete never forgets what it leaves.
        let resources: Vec<TwilioResource> = left.iter().map(|(resource, _)| resource.clone()).collect();
        let numbers = services.store.all_numbers(&record.organization_id, record.id).await?;
        record_for_sweeper(services, &record, &resources, &numbers).await?;
    }
    services.store.delete_provider(&record).await?;
    tracing::warn!(organization_id = %record.organization_id, provider_id = %record.id, left_behind = ?left_behind, why, "provider force-deleted; what Twilio still holds is recorded for the orphan sweeper");
    Ok(if left_behind.is_empty() { Deletion::Deleted } else { Deletion::Forced(left_behind) })
}

/// Out of time: records the progress and queues the rest.
async fn continue_later(services: &Services, record: ProviderRecord) -> Result<Deletion, ApiError> {
    let record = load_provider(&services.store, &record.organization_id, record.id).await?;
    let queue = services.deletions.as_ref().ok_or_else(|| {
        ApiError::internal("a delete ran out of time and no deletion queue is configured (DELETION_QUEUE_URL)")
    })?;
    let message = ContinueDeletion { organization_id: record.organization_id.to_string(), provider_id: record.id };
    queue.send(&message).await.map_err(ApiError::unavailable)?;
    tracing::info!(organization_id = %record.organization_id, provider_id = %record.id, remaining_numbers = record.phone_number_count, "delete continues from the deletion queue");
    Ok(Deletion::Continuing(Box::new(record)))
}

/// Best effort: the marker exists already; this only records why the delete stopped.
async fn record_error(services: &Services, record: ProviderRecord, summary: &str) {
    let id = record.id;
    let reason = summary.to_owned();
    let saved = save_with_retry(&services.store, record, move |record| {
        if let Some(deletion) = record.deletion.as_mut() {
            deletion.last_error = Some(reason.clone());
        }
        Ok(Change::Save)
    })
    .await;
    if let Err(e) = saved {
        tracing::warn!(provider_id = %id, error = %e, "could not record why the delete stopped");
    }
}
