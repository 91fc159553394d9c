//! Removing Twilio resources the service created: the compensation of a failed create, repair
//! or import, what a forced delete leaves, and the sweeper's retries. A 404 from Twilio
//! counts as removed; what cannot be removed is recorded for the sweeper. Numbers given back
//! at any size (a delete's, the sweeper's) go a few at a time ([`each_in_time`]).

use crate::services::Services;
use futures::StreamExt;
use shared::crypto::{DataKey, SecretOwner};
use shared::model::TwilioCredentials;
use shared::storage::{Leftover, PhoneNumberRecord, SealedCredential};
use shared::twilio::{TwilioClient, TwilioError, TwilioResource};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Attempts per resource, on top of the client's own retries of 429s and lost connections.
const REMOVE_ATTEMPTS: u32 = 3;
const REMOVE_RETRY_DELAY: Duration = Duration::from_millis(250);

/// Removes the resources in dependency order, each with bounded retries. Returns what is
/// still there, with the last error for each; an attachment whose trunk was deleted is gone.
pub async fn remove_resources(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    resources: &[TwilioResource],
) -> Vec<(TwilioResource, TwilioError)> {
    let mut ordered = resources.to_vec();
    ordered.sort_by_key(TwilioResource::removal_rank);
    let mut left = Vec::new();
    let mut deleted_trunks = Vec::new();
    for resource in ordered {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match twilio.remove(creds, &resource).await {
                Ok(()) => {
                    if let TwilioResource::Trunk { trunk_sid } = &resource {
                        deleted_trunks.push(trunk_sid.clone());
                    }
                    break;
                }
                // Not past the deadline: a retry there is refused at once, and the waits would
                // eat the time kept back to record what is left.
                Err(e)
                    if e.is_transient()
                        && attempt < REMOVE_ATTEMPTS
                        && !shared::deadline::short_of(REMOVE_RETRY_DELAY * attempt) =>
                {
                    tracing::warn!(resource = ?resource, attempt, error = %e, "removing a Twilio resource failed; retrying");
                    tokio::time::sleep(REMOVE_RETRY_DELAY * attempt).await;
                }
                Err(e) => {
                    left.push((resource, e));
                    break;
                }
            }
        }
    }
    left.retain(|(resource, _)| resource.attached_to().is_none_or(|trunk| !deleted_trunks.contains(trunk)));
    left
}

/// Records Twilio resources of an existing provider that could not be removed (a number whose
/// attach could not be undone, what a forced delete left) for the sweeper, one item
/// each. The provider's stored token goes with them (same owner, so the sweeper can open it),
/// and a number's routing before import (from its record among `numbers`), so the sweeper
/// gives it back rather than leave the number with none.
pub async fn record_for_sweeper(
    services: &Services,
    record: &shared::storage::ProviderRecord,
    resources: &[TwilioResource],
    numbers: &[PhoneNumberRecord],
) -> Result<(), shared::storage::StoreError> {
    let leftovers: Vec<Leftover> = resources
        .iter()
        .map(|resource| {
            let number = match resource {
                TwilioResource::TrunkPhoneNumber { number_sid, .. } => {
                    numbers.iter().find(|n| n.phone_number_sid == *number_sid)
                }
                _ => None,
            };
            Leftover {
                previous_routing: number.map(|n| n.previous_routing.clone()),
                previous_routing_sealed: number.and_then(|n| n.previous_routing_sealed.clone()),
                ..Leftover::new(
                    record.organization_id.clone(),
                    record.id,
                    record.account_sid.clone(),
                    record.twilio_region,
                    Some(record.credential.clone()),
                    resource.clone(),
                )
            }
        })
        .collect();
    record_leftovers(services, &leftovers).await
}

/// Records leftovers for the sweeper, counted in the `OrphansRecorded` metric.
pub async fn record_leftovers(services: &Services, leftovers: &[Leftover]) -> Result<(), shared::storage::StoreError> {
    services.store.record_leftovers(leftovers).await?;
    shared::metrics::emit("OrphansRecorded", leftovers.len() as f64, shared::metrics::Unit::Count, &[]);
    Ok(())
}

/// Removes what a failed create or repair made. What cannot be removed is logged at error
/// level and recorded (with the token envelope-encrypted) for the sweeper; a fresh data
/// key is fetched for that when the caller has none.
pub async fn remove_or_record(
    services: &Services,
    creds: &TwilioCredentials,
    owner: &SecretOwner,
    created: &[TwilioResource],
    data_key: Option<&DataKey>,
) {
    if created.is_empty() {
        return;
    }
    let left = remove_resources(&services.twilio, creds, created).await;
    if left.is_empty() {
        tracing::info!(removed = created.len(), "created Twilio resources removed");
        return;
    }
    let resources: Vec<TwilioResource> = left.iter().map(|(resource, _)| resource.clone()).collect();
    let errors: Vec<String> = left.iter().map(|(_, e)| e.to_string()).collect();
    tracing::error!(
        account_sid = %creds.account_sid,
        resources = ?resources,
        errors = ?errors,
        "rollback left Twilio resources behind"
    );
    let fresh_key = match data_key {
        Some(_) => None,
        None => services.envelope.generate_data_key(owner).await.ok(),
    };
    let credential = data_key.or(fresh_key.as_ref()).map(|key| SealedCredential::seal(key, creds, false));
    let leftovers: Vec<Leftover> = resources
        .into_iter()
        .map(|resource| {
            let (org, account) = (owner.organization_id.clone(), creds.account_sid.clone());
            Leftover::new(org, owner.provider_id, account, creds.region, credential.clone(), resource)
        })
        .collect();
    if let Err(e) = record_leftovers(services, &leftovers).await {
        tracing::error!(error = %e, "could not record the leftover Twilio resources")
    }
}

/// What became of one item of [`each_in_time`].
pub(crate) enum Turn<T, O> {
    /// Started: what its work came to.
    Started(O),
    /// Not started: time ran short, or Twilio had rejected the credentials by then.
    Skipped(T),
}

/// Works through `items`, `concurrency` at a time, started in order. None is started with less
/// than `reserve` left, nor once Twilio has rejected the credentials (`work` answers that beside
/// its outcome): what is not started waits for the next step or pass. Answers every item's
/// turn, in the order they ended, and whether Twilio rejected the credentials.
pub(crate) async fn each_in_time<T, O, F, Fut>(
    items: impl IntoIterator<Item = T>,
    concurrency: usize,
    reserve: Duration,
    work: F,
) -> (Vec<Turn<T, O>>, bool)
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = (O, bool)>,
{
    let rejected = AtomicBool::new(false);
    let (rejected_ref, work) = (&rejected, &work);
    let turns: Vec<Turn<T, O>> = futures::stream::iter(items)
        .map(|item| async move {
            if shared::deadline::short_of(reserve) || rejected_ref.load(Ordering::Relaxed) {
                return Turn::Skipped(item);
            }
            let (outcome, refused) = work(item).await;
            if refused {
                rejected_ref.store(true, Ordering::Relaxed);
            }
            Turn::Started(outcome)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (turns, rejected.into_inner())
}
