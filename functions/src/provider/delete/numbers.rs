//! A delete step's numbers given back: page by page from where an earlier step stopped, a few
//! at a time, each forgotten as soon as it is back.

use super::out_of_time;
use crate::provider::cleanup::{Turn, each_in_time};
use crate::provider::give_back::{GiveBackError, GivenBack, KeyCache, give_back_number, put_back_off_again};
use crate::services::Services;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::deadline::reserves::DELETE_CONTINUE;
use shared::model::TwilioCredentials;
use shared::storage::{PhoneNumberRecord, ProviderRecord};
use shared::twilio::TwilioResource;

/// Numbers given back at the same time.
const GIVE_BACK_CONCURRENCY: usize = 8;
/// Numbers read per page.
const PAGE: i32 = 50;

pub(super) enum NumbersGivenBack {
    /// Every number from where the delete stood was tried; these could not be given back.
    Done(Vec<(TwilioResource, String)>),
    /// Out of time: the next step starts at this page token (None: at the first number);
    /// these could not be given back meanwhile.
    OutOfTime(Option<String>, Vec<(TwilioResource, String)>),
    /// Twilio rejected the stored credentials (why).
    Rejected(String),
}

/// A number that could not be given back.
struct NotGivenBack {
    resource: TwilioResource,
    error: String,
    rejected: bool,
}

/// Gives every imported number back, page by page, from where an earlier step stopped,
/// forgetting each as soon as it is back.
pub(super) async fn give_back_numbers(
    services: &Services,
    creds: &TwilioCredentials,
    record: &ProviderRecord,
) -> Result<NumbersGivenBack, ApiError> {
    let org = &record.organization_id;
    let mut failed = Vec::new();
    let mut keys = KeyCache::default();
    let mut token = record.deletion.as_ref().and_then(|d| d.numbers_from.clone());
    // A repair that started before the delete was marked may still put numbers back on the
    // trunk (one that starts later sees the mark and refuses): while one holds the lease, each
    // number is looked at again once forgotten.
    let repair_running = services.store.repair_lease_held(org, record.id).await?;
    loop {
        if out_of_time() {
            return Ok(NumbersGivenBack::OutOfTime(token, failed));
        }
        // The cursor moves past numbers that failed; numbers given back are gone from the table.
        let (page, next) = services.store.list_numbers(org, record.id, PAGE, token.as_deref()).await?;
        keys.load(services, record, &page).await?;
        let (keys, numbers) = (&keys, &page);
        // Once Twilio rejects the token, no further number is started with it. Items are
        // indices: a borrowed item would make the future's type depend on its lifetime.
        let (turns, _) = each_in_time(0..page.len(), GIVE_BACK_CONCURRENCY, DELETE_CONTINUE, |i| async move {
            let tried = give_back_one(services, creds, record, &numbers[i], keys, repair_running).await;
            let rejected = tried.as_ref().is_some_and(|n| n.rejected);
            ((i, tried), rejected)
        })
        .await;
        // Numbers are started in order until time runs out: those not started are the last.
        let mut last_started: Option<usize> = None;
        let mut outcomes: Vec<NotGivenBack> = Vec::new();
        for turn in turns {
            if let Turn::Started((i, tried)) = turn {
                last_started = last_started.max(Some(i));
                outcomes.extend(tried);
            }
        }
        if let Some(rejected) = outcomes.iter().find(|n| n.rejected) {
            return Ok(NumbersGivenBack::Rejected(rejected.error.clone()));
        }
        failed.extend(outcomes.into_iter().map(|n| (n.resource, n.error)));
        if out_of_time() {
            // The next step starts after the last number tried here (those that failed stay
            // behind it), so a page that outlasts a step is never tried from its start again.
            let from = match last_started {
                Some(i) => Some(services.store.numbers_after(org, &page[i])),
                None => token,
            };
            return Ok(NumbersGivenBack::OutOfTime(from, failed));
        }
        match next {
            Some(next) => token = Some(next),
            None => return Ok(NumbersGivenBack::Done(failed)),
        }
    }
}

/// One number: given back and forgotten (None), or what is left of it.
async fn give_back_one(
    services: &Services,
    creds: &TwilioCredentials,
    record: &ProviderRecord,
    number: &PhoneNumberRecord,
    keys: &KeyCache,
    repair_running: bool,
) -> Option<NotGivenBack> {
    match give_back_number(services, creds, record, number, keys).await {
        Ok(given_back) => {
            if let GivenBack::NotRestored(reason) = &given_back {
                tracing::info!(phone_number_sid = %number.phone_number_sid, reason, "number not given back as it was");
            }
            let event = AuditEvent::new(&record.organization_id, record.id, Action::DeleteNumberReleased)
                .sid(&number.phone_number_sid)
                .outcome(if matches!(given_back, GivenBack::NotRestored(_)) { "not-restored" } else { "restored" });
            if let Err(e) = services.store.forget_given_back_number(&record.organization_id, number, &event).await {
                tracing::error!(phone_number_sid = %number.phone_number_sid, error = %e, "number given back but its record stays; the next step forgets it");
            } else if repair_running {
                put_back_off_again(services, creds, record, number, keys).await;
            }
            None
        }
        Err(e) => Some(NotGivenBack {
            resource: TwilioResource::TrunkPhoneNumber {
                trunk_sid: record.trunk_sid.clone(),
                number_sid: number.phone_number_sid.clone(),
            },
            rejected: matches!(&e, GiveBackError::Twilio(_, e) if e.is_authentication_failure()),
            error: e.to_string(),
        }),
    }
}
