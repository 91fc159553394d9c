//! Deleting a provider: give the customer's Twilio account back (its numbers, then the trunk and credential list), then
//! delete every record of the provider, in steps at any size. Why: docs/decisions/delete-in-steps.md.

mod force;
mod numbers;

use crate::provider::cleanup::remove_resources;
use crate::provider::credentials::delete_minted_key;
use crate::provider::record::{Change, load_provider, save_with_retry, stored_credentials};
use crate::services::Services;
use force::{finish_forced, force_without_twilio, numbers_left_for_sweeper};
use numbers::{NumbersGivenBack, give_back_numbers};
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::deadline::reserves::DELETE_CONTINUE;
use shared::dto::LeftBehind;
use shared::model::{ApiKeySid, AuthToken, OrganizationId, TwilioAuth, TwilioCredentials};
use shared::queue::ContinueDeletion;
use shared::storage::{Change as IntentChange, DeletionState, Intent, IntentKey, ProviderRecord};
use shared::twilio::TwilioErrorKind;
use shared::twilio::TwilioResource;
use uuid::Uuid;

/// Where one step of a delete got to.
#[derive(Debug)]
pub enum Deletion {
    /// Twilio is given back and every record is gone.
    Deleted,
    /// Forced: the records are gone; what Twilio still holds is listed and recorded for the
    /// sweeper.
    Forced(Vec<LeftBehind>),
    /// Out of time: progress is recorded and a message on the deletion queue continues it.
    Continuing(Box<ProviderRecord>),
}

/// `DELETE`: marks the provider as being deleted (forced, when asked; a forced delete stays
/// forced), then runs as much of it as the current deadline allows (docs/decisions/delete-in-steps.md).
/// Idempotent: the next step continues where this one stopped.
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %id))]
pub async fn delete_step(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    force: bool,
    auth_token: Option<AuthToken>,
) -> Result<Deletion, ApiError> {
    let mut record = load_provider(&services.store, org, id).await?;
    let token = Box::pin(token_for_minted_key(services, &record, auth_token)).await?;
    let marked = record.deletion.as_ref().is_some_and(|deletion| deletion.forced || !force);
    if !marked {
        let event = AuditEvent::new(org, id, Action::DeleteStarted).detail(if force { "forced" } else { "plain" });
        record = save_with_retry(&services.store, record, Some(&event), move |record| {
            let deletion = record.deletion.get_or_insert_with(|| DeletionState {
                started_at: shared::time::Timestamp::now(),
                last_error: None,
                numbers_from: None,
                forced: false,
            });
            deletion.forced |= force;
            Ok(Change::Save)
        })
        .await?;
    }
    run_step(services, record, token.as_ref()).await
}

/// The Auth Token that deletes the key the service minted for the provider, checked with
/// Twilio before anything is done: required then (a Standard key may not delete keys, and the
/// service keeps no token); not needed, and not used, otherwise.
async fn token_for_minted_key(
    services: &Services,
    record: &ProviderRecord,
    auth_token: Option<AuthToken>,
) -> Result<Option<TwilioCredentials>, ApiError> {
    let token = auth_token.map(|token| TwilioCredentials {
        account_sid: record.account_sid.clone(),
        auth: TwilioAuth::AuthToken(token),
        region: record.twilio_region,
    });
    match (record.credential.minted_key(), token) {
        (None, _) => Ok(None),
        (Some(key), None) => Err(ApiError::validation(
            "authToken",
            format!(
                "is required: the provider's API key {key} was minted by this service and goes with it, and deleting a key needs the account's Auth Token, which the service does not keep"
            ),
        )),
        (Some(_), Some(token)) => {
            services.twilio.fetch_account(&token).await.map_err(|e| match e.kind() {
                TwilioErrorKind::Rejected | TwilioErrorKind::NotFound => crate::provider::problems::rejected_in(
                    &token,
                    "Nothing was deleted. Copy the current token from the Twilio Console (Account Info).",
                ),
                _ => crate::provider::problems::twilio_problem("checking the auth token", e),
            })?;
            Ok(Some(token))
        }
    }
}

/// The deletion queue's message: the next step of a delete the table marks as in progress,
/// forced if it says so. None: the provider is not being deleted (a message that is stale,
/// or not the service's own), and nothing is done.
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %id))]
pub async fn continue_deletion(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
) -> Result<Option<Deletion>, ApiError> {
    let record = load_provider(&services.store, org, id).await?;
    if record.deletion.is_none() {
        return Ok(None);
    }
    run_step(services, record, None).await.map(Some)
}

/// One step of a delete the record is marked for. Its intent is written first: a step that
/// dies midway (before it queued the next) is continued by the sweeper; the final
/// delete removes it, and so does a step that stops on a failure that is not passing (DELETE
/// again continues those, by design; the queue retries passing ones itself).
async fn run_step(
    services: &Services,
    record: ProviderRecord,
    token: Option<&TwilioCredentials>,
) -> Result<Deletion, ApiError> {
    let key = IntentKey::deletion(record.organization_id.clone(), record.id);
    let intent = Intent::now(
        key,
        record.account_sid.clone(),
        record.twilio_region,
        record.credential.clone(),
        IntentChange::Deletion,
    );
    services.store.record_intent(&intent).await?;
    let result = step(services, record, token).await;
    if result.as_ref().is_err_and(|e| !is_passing(e))
        && let Err(e) = services.store.forget_intent(&intent.key).await
    {
        tracing::warn!(error = %e, "could not remove a stopped delete's intent");
    }
    result
}

/// A step failure the deletion queue delivers again (any other stops the delete until DELETE
/// again).
pub(crate) fn is_passing(e: &ApiError) -> bool {
    matches!(e, ApiError::Unavailable(_) | ApiError::Internal(_) | ApiError::TwilioRateLimited { .. })
}

/// One step's work: the numbers given back, then the trunk's resources, then the records.
async fn step(
    services: &Services,
    record: ProviderRecord,
    token: Option<&TwilioCredentials>,
) -> Result<Deletion, ApiError> {
    let force = record.deletion.as_ref().is_some_and(|deletion| deletion.forced);
    let creds = match stored_credentials(services, &record).await {
        Ok(creds) => creds,
        // The key service failing for a moment is retried; a token that cannot be opened at all
        // leaves everything, the trunk's resources too, for the sweeper.
        Err(e) if force && !matches!(e, ApiError::Unavailable(_)) => {
            let why = "the stored credentials cannot be used";
            return force_without_twilio(services, record, e.to_string(), why).await;
        }
        Err(e) => return Err(e),
    };
    let mut left = match give_back_numbers(services, &creds, &record).await? {
        NumbersGivenBack::Done(failed) => failed,
        NumbersGivenBack::OutOfTime(from, failed) => {
            // What failed so far is shown while the delete goes on (GET's `lastError`).
            let failed = (!failed.is_empty()).then(|| summary_of(&failed, 0));
            return continue_later(services, record, from, failed).await;
        }
        // Nothing else can work until the token is rotated: the step stops at the first refusal.
        NumbersGivenBack::Rejected(reason) if force => {
            return force_without_twilio(services, record, reason, "Twilio rejects the stored credentials").await;
        }
        NumbersGivenBack::Rejected(_) => return Err(stop_rejected(services, record, &creds).await),
    };
    let numbers_left = remove_trunk_resources(services, &creds, &record, &mut left).await?;
    if left.is_empty() && !numbers_left {
        return delete_records(services, &record, token).await;
    }
    if force {
        return finish_forced(services, record, left, "not given back", "a forced delete could not remove it").await;
    }
    stop_failed(services, &record, &left).await
}

/// Twilio rejected the stored credentials, and the delete is not forced: it stops until
/// working ones are set.
async fn stop_rejected(services: &Services, record: ProviderRecord, creds: &TwilioCredentials) -> ApiError {
    let id = record.id;
    let what_to_do = format!(
        "The provider is marked as being deleted: set credentials Twilio accepts with PATCH /api/v1/providers/{id}/credentials, then DELETE again, or add ?force=true to remove it anyway."
    );
    record_error(
        services,
        record,
        "Twilio rejected the stored credentials; set working ones (PATCH .../credentials), then DELETE again.",
    )
    .await;
    crate::provider::problems::rejected(creds, &what_to_do)
}

/// The trunk's resources are removed only once every number is off it (what cannot be removed
/// joins `left`); answers whether numbers are left. A step that started past numbers an earlier
/// step tried reads whether any of them are still recorded.
async fn remove_trunk_resources(
    services: &Services,
    creds: &TwilioCredentials,
    record: &ProviderRecord,
    left: &mut Vec<(TwilioResource, String)>,
) -> Result<bool, ApiError> {
    let (org, id) = (&record.organization_id, record.id);
    let force = record.deletion.as_ref().is_some_and(|deletion| deletion.forced);
    let started_past_numbers = record.deletion.as_ref().is_some_and(|d| d.numbers_from.is_some());
    let numbers_left = !left.is_empty()
        || (started_past_numbers && !services.store.list_numbers(org, id, 1, None).await?.0.is_empty())
        || (force && numbers_left_for_sweeper(services, record).await?);
    if !numbers_left {
        left.extend(
            remove_resources(&services.twilio, creds, &resources_of(record))
                .await
                .into_iter()
                .map(|(resource, e)| (resource, e.to_string())),
        );
    }
    Ok(numbers_left)
}

/// Twilio is given back: the minted key goes last (everything else went with it), then every
/// record.
async fn delete_records(
    services: &Services,
    record: &ProviderRecord,
    token: Option<&TwilioCredentials>,
) -> Result<Deletion, ApiError> {
    let (org, id) = (&record.organization_id, record.id);
    let mut event =
        AuditEvent::new(org, id, Action::Deleted).sids(resources_of(record).iter().map(TwilioResource::sid));
    if let Some(key) = record.credential.minted_key() {
        // Leftovers of an earlier failure are swept with this very key: it stays until
        // they are gone.
        let leftovers = services.store.leftover_resources(org, id).await?;
        if !leftovers.is_empty() {
            let failure = ApiError::Conflict(format!(
                "Everything else is removed, but {} Twilio resources an earlier failure left are waiting for the orphan sweeper, which removes them with the provider's API key {key}: the key and the provider stay until it has (hourly). DELETE again then, or add ?force=true to keep the key for the sweeper and remove the provider now.",
                leftovers.len()
            ));
            record_error(services, record.clone(), &failure.to_string()).await;
            return Err(failure);
        }
        Box::pin(delete_key(services, record, key, token)).await?;
        event = event.sid(key).detail(format!("deleted API key {key}, which the service had minted"));
    }
    // Read again: the step changed the record (each number given back counts down).
    let mut attempt = 0;
    loop {
        let current = load_provider(&services.store, org, id).await?;
        // A credential set meanwhile (a key minted since) would go unseen with the records.
        if current.credential != record.credential {
            return Err(ApiError::Conflict(format!(
                "The credentials of provider {id} changed while it was being deleted; DELETE again."
            )));
        }
        if deleted_as_read(services, &current, &event, &mut attempt).await? {
            break;
        }
    }
    tracing::info!("provider deleted");
    Ok(Deletion::Deleted)
}

/// What this step could not give back or remove, and the delete is not forced: recorded (with
/// what an earlier step recorded), and the step fails; `DELETE` again continues.
async fn stop_failed(
    services: &Services,
    record: &ProviderRecord,
    left: &[(TwilioResource, String)],
) -> Result<Deletion, ApiError> {
    // Read again: the count went down with each number given back. Numbers that failed in
    // an earlier step are counted; what they failed on is the error that step recorded.
    let record = load_provider(&services.store, &record.organization_id, record.id).await?;
    let mut summary = summary_of(left, record.phone_number_count);
    let earlier = record.deletion.as_ref().and_then(|d| d.last_error.as_deref()).filter(|_| left.is_empty());
    if let Some(earlier) = earlier {
        summary = format!("{earlier}; {summary}");
    }
    // Bounded, whatever an earlier step recorded: it is stored and answered.
    if let Some((cut, _)) = summary.char_indices().nth(SUMMARY_CHARS) {
        summary.truncate(cut);
        summary.push('…');
    }
    record_error(services, record, &summary).await;
    Err(ApiError::TwilioFailed {
        detail: format!(
            "Could not clean up Twilio: {summary}. The provider is marked as being deleted; call DELETE again to continue, or add ?force=true to remove it anyway."
        ),
        cause: None,
    })
}

/// Deletes the provider's minted API key with the Auth Token given; a step the queue continued
/// has none, and stops for a `DELETE` that gives it.
async fn delete_key(
    services: &Services,
    record: &ProviderRecord,
    key: &ApiKeySid,
    token: Option<&TwilioCredentials>,
) -> Result<(), ApiError> {
    let failure = match token {
        Some(token) => match delete_minted_key(services, token, key).await {
            Ok(()) => return Ok(()),
            Err(e) => crate::provider::problems::twilio_problem("deleting the API key the service minted", e),
        },
        None => ApiError::Conflict(format!(
            "Everything else is removed; the provider's API key {key}, which this service minted, remains. DELETE again with the account's Auth Token ({{\"authToken\": …}}) to delete it and finish."
        )),
    };
    record_error(services, record.clone(), &format!("API key {key} not deleted: {failure}")).await;
    Err(failure)
}

/// Failures listed in an error: enough to act on, small enough for a record and an answer.
const SUMMARY_FAILURES: usize = 10;
/// The longest error a delete records and answers.
const SUMMARY_CHARS: usize = 2000;

/// What could not be given back: the first failures of this step, and how many numbers are
/// still recorded (those an earlier step could not give back among them).
fn summary_of(left: &[(TwilioResource, String)], numbers_recorded: u32) -> String {
    let mut parts: Vec<String> = left
        .iter()
        .take(SUMMARY_FAILURES)
        .map(|(resource, e)| format!("{} {}: {e}", resource.kind(), resource.sid()))
        .collect();
    if left.len() > SUMMARY_FAILURES {
        parts.push(format!("and {} more", left.len() - SUMMARY_FAILURES));
    }
    if numbers_recorded > 0 {
        parts.push(format!("{numbers_recorded} numbers are not yet given back"));
    }
    parts.join("; ")
}

/// Whether the step is out of time: what is left goes on in the next one.
fn out_of_time() -> bool {
    shared::deadline::short_of(DELETE_CONTINUE)
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

/// Deletes the provider's records as `record` read them. False: the provider changed since (a
/// rotated token, say), so the caller reads it again and tries again; `attempt` counts the
/// tries, and the third such change is a 409.
async fn deleted_as_read(
    services: &Services,
    record: &ProviderRecord,
    event: &AuditEvent,
    attempt: &mut u32,
) -> Result<bool, ApiError> {
    const TRIES: u32 = 3;
    *attempt += 1;
    match Box::pin(services.store.delete_provider(record, event)).await {
        Ok(()) => Ok(true),
        Err(shared::storage::StoreError::VersionConflict) if *attempt < TRIES => Ok(false),
        Err(shared::storage::StoreError::VersionConflict) => Err(ApiError::Conflict(format!(
            "Provider {} kept changing while it was being deleted; DELETE again.",
            record.id
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Out of time: records where the next step starts and queues it.
async fn continue_later(
    services: &Services,
    record: ProviderRecord,
    numbers_from: Option<String>,
    failed: Option<String>,
) -> Result<Deletion, ApiError> {
    let queue = services.deletions.as_ref().ok_or_else(|| {
        ApiError::internal("a delete ran out of time and no deletion queue is configured (DELETION_QUEUE_URL)")
    })?;
    let record = load_provider(&services.store, &record.organization_id, record.id).await?;
    let record = save_with_retry(&services.store, record, None, move |record| {
        let Some(deletion) = record.deletion.as_mut() else { return Ok(Change::Keep) };
        if deletion.numbers_from == numbers_from && failed.is_none() {
            return Ok(Change::Keep);
        }
        deletion.numbers_from = numbers_from.clone();
        if let Some(failed) = &failed {
            deletion.last_error = Some(failed.clone());
        }
        Ok(Change::Save)
    })
    .await?;
    let message = ContinueDeletion { organization_id: record.organization_id.to_string(), provider_id: record.id };
    queue.send(&message).await.map_err(ApiError::unavailable)?;
    tracing::info!(remaining_numbers = record.phone_number_count, "delete continues from the deletion queue");
    Ok(Deletion::Continuing(Box::new(record)))
}

/// Best effort: the marker exists already; this only records why the delete stopped, and that
/// the next step starts at the first number again (to retry those that failed).
async fn record_error(services: &Services, record: ProviderRecord, summary: &str) {
    let reason = summary.to_owned();
    let saved = save_with_retry(&services.store, record, None, move |record| {
        if let Some(deletion) = record.deletion.as_mut() {
            deletion.last_error = Some(reason.clone());
            deletion.numbers_from = None;
        }
        Ok(Change::Save)
    })
    .await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "could not record why the delete stopped");
    }
}
