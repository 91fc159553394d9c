//! The sweeper, run by the hourly job: resolves the intents of work that died midway
//! (see [`intents`]), and retries the removal of Twilio resources that a failed rollback left
//! behind (recorded as `ORPHAN#` items) until they are gone.

use crate::provider::cleanup::{Turn, each_in_time, remove_resources};
use crate::provider::give_back::{GiveBackError, GivenBack, KeyCache, give_back_with};
use crate::provider::intents;
use crate::services::Services;
use serde::Serialize;
use shared::crypto::SecretOwner;
use shared::deadline::reserves::SWEEP_NUMBER;
use shared::error::Cause;
use shared::model::OrganizationId;
use shared::model::TwilioCredentials;
use shared::storage::{Leftover, NumberClaim, SealedCredential, StoreError};
use shared::twilio::{TwilioError, TwilioErrorKind, TwilioResource};
use std::time::Duration;
use uuid::Uuid;

/// Leftover numbers of one provider given back at the same time.
const NUMBER_CONCURRENCY: usize = 8;

/// Providers by what their sweep came to.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SweepSummary {
    /// Everything left behind is gone now, and no change is under way.
    pub cleared: usize,
    /// Resources still left, or abandoned changes not resolved yet (retried next hour).
    pub remaining: usize,
    /// Nothing left but changes too young to take: their writer may still be at work.
    pub pending: usize,
    /// Cannot be acted on (no usable credentials, unreadable records); logged for an operator.
    pub stuck: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Cleared,
    Remaining,
    Pending,
    Stuck,
}

impl SweepSummary {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Cleared => self.cleared += 1,
            Outcome::Remaining => self.remaining += 1,
            Outcome::Pending => self.pending += 1,
            Outcome::Stuck => self.stuck += 1,
        }
    }
}

/// The whole job in-process (the planner's and worker's code, see [`crate::provider::jobs`]):
/// every provider with leftovers or intents, one at a time. `grace` overrides the age at which
/// an intent counts as abandoned (`Some(ZERO)`: every one does).
pub async fn run(
    services: &Services,
    grace: Option<Duration>,
) -> Result<SweepSummary, crate::provider::jobs::PlanError> {
    let run = crate::provider::jobs::run_in_process(services, shared::queue::Job::SweepOrphans, 1, grace).await?;
    let mut summary = run.orphans.unwrap_or_default();
    summary.remaining += run.retry;
    tracing::info!(
        cleared = summary.cleared,
        remaining = summary.remaining,
        pending = summary.pending,
        stuck = summary.stuck,
        "orphan sweep finished"
    );
    Ok(summary)
}

/// Sweeps one provider: its abandoned intents first (what they name becomes leftovers, or a
/// removal is finished), then its leftovers. `Err`: they could not be read; worth retrying.
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %provider_id))]
pub async fn sweep_one(
    services: &Services,
    org: &OrganizationId,
    provider_id: Uuid,
    grace: Option<Duration>,
) -> Result<Outcome, StoreError> {
    let intents = intents::resolve(services, org, provider_id, grace).await?;
    let outcome = sweep_leftovers(services, org, provider_id).await?;
    Ok(match outcome {
        _ if intents.stuck > 0 => Outcome::Stuck,
        Outcome::Cleared if intents.retry > 0 => Outcome::Remaining,
        Outcome::Cleared if intents.pending > 0 => Outcome::Pending,
        other => other,
    })
}

/// Sweeps one provider's leftovers (none left: cleared): load them, choose the credentials,
/// give the numbers back, remove the trunk's resources, settle what is left.
async fn sweep_leftovers(services: &Services, org: &OrganizationId, provider_id: Uuid) -> Result<Outcome, StoreError> {
    let (leftovers, unreadable) = load(services, org, provider_id).await?;
    if leftovers.is_empty() {
        return Ok(if unreadable > 0 { Outcome::Stuck } else { Outcome::Cleared });
    }
    let Some((sweep, leftovers)) = choose_credentials(services, org, provider_id, leftovers, unreadable).await? else {
        return Ok(Outcome::Stuck);
    };
    let (numbers, others): (Vec<Leftover>, Vec<Leftover>) =
        leftovers.into_iter().partition(|l| matches!(l.resource, TwilioResource::TrunkPhoneNumber { .. }));
    let (mut left, waiting) = give_back_numbers(services, &sweep, numbers).await;
    // While any number may still be on a trunk (not given back, stuck, being imported, or
    // unreadable), the trunk resources stay: deleting a trunk would take its numbers off with
    // no routing. They wait for the next pass.
    let numbers_held = !left.is_empty()
        || waiting > 0
        || sweep.unreadable > 0
        || sweep.stuck.iter().any(|l| matches!(l.resource, TwilioResource::TrunkPhoneNumber { .. }));
    let cleared =
        if numbers_held { Vec::new() } else { remove_trunk_resources(services, &sweep, others, &mut left).await };
    Ok(settle(services, &sweep, cleared, left, numbers_held).await)
}

/// One provider's sweep under way: whose leftovers, the credentials they are tried with, and
/// what cannot be acted on this pass.
struct ProviderSweep {
    owner: SecretOwner,
    creds: TwilioCredentials,
    /// The token `creds` were opened from: what Twilio rejects is marked stuck on it.
    token: SealedCredential,
    /// A provider still being deleted holds its numbers' claims: those are its own, not
    /// imports again.
    deleting: bool,
    /// Leftover records that could not be read.
    unreadable: usize,
    /// Leftovers stuck on this very token: not tried again.
    stuck: Vec<Leftover>,
}

/// The provider's leftovers (a record of the earlier format is rewritten first, one item per
/// resource), and how many records could not be read.
async fn load(
    services: &Services,
    org: &OrganizationId,
    provider_id: Uuid,
) -> Result<(Vec<Leftover>, usize), StoreError> {
    let store = &services.store;
    let mut unreadable = 0;
    match store.migrate_legacy_leftovers(org, provider_id).await {
        Ok(0) => {}
        Ok(migrated) => {
            tracing::info!(
                resources = migrated,
                "leftover record of the earlier format rewritten, one item per resource"
            );
        }
        Err(StoreError::Corrupt(e)) => {
            tracing::error!(error = %e, "unreadable leftover record of the earlier format; remove its resources by hand");
            unreadable += 1;
        }
        Err(e) => return Err(e),
    }
    let mut leftovers = Vec::new();
    for leftover in store.leftovers_of(org, provider_id).await? {
        match leftover {
            Ok(leftover) => leftovers.push(leftover),
            Err(e) => {
                tracing::error!(error = %e, "unreadable leftover-resource record");
                unreadable += 1;
            }
        }
    }
    Ok((leftovers, unreadable))
}

/// The live provider's current token when there is one (a rotation since is used), else the
/// newest one recorded with the leftovers, opened; leftovers stuck on it are set aside. Answers
/// the sweep and the leftovers to try, or None when none can be tried (logged).
async fn choose_credentials(
    services: &Services,
    org: &OrganizationId,
    provider_id: Uuid,
    leftovers: Vec<Leftover>,
    unreadable: usize,
) -> Result<Option<(ProviderSweep, Vec<Leftover>)>, StoreError> {
    let provider = services.store.get_provider(org, provider_id).await?;
    let deleting = provider.as_ref().is_some_and(|p| p.deletion.is_some());
    let token = match &provider {
        Some(provider) => Some(provider.credential.clone()),
        None => leftovers
            .iter()
            .filter(|l| l.credential.is_some())
            .max_by(|a, b| a.created_at.cmp(&b.created_at))
            .and_then(|l| l.credential.clone()),
    };
    let Some(token) = token else {
        let resources: Vec<_> = leftovers.iter().map(|l| &l.resource).collect();
        tracing::error!(resources = ?resources, "leftover Twilio resources without stored credentials; remove them by hand");
        return Ok(None);
    };
    // Stuck on this very token: logged when it got stuck; asking again would only be refused.
    let (stuck, leftovers): (Vec<Leftover>, Vec<Leftover>) =
        leftovers.into_iter().partition(|l| l.stuck.as_ref().is_some_and(|(_, rejected)| *rejected == token.secret));
    if leftovers.is_empty() {
        return Ok(None);
    }
    let owner = SecretOwner { organization_id: org.clone(), provider_id };
    let (account_sid, region) = (leftovers[0].account_sid.clone(), leftovers[0].twilio_region);
    let creds = match token.open(&services.envelope, &owner, &account_sid, region).await {
        Ok(creds) => creds,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the credentials of leftover Twilio resources");
            return Ok(None);
        }
    };
    Ok(Some((ProviderSweep { owner, creds, token, deleting, unreadable, stuck }, leftovers)))
}

/// Numbers go back a few at a time, each forgotten as soon as it is back, and none is started
/// once time runs short or Twilio has rejected the token: what is not done waits for the next
/// pass, which starts with the rest. Answers what could not be given back (with why) and how
/// many numbers wait.
async fn give_back_numbers(
    services: &Services,
    sweep: &ProviderSweep,
    numbers: Vec<Leftover>,
) -> (Vec<(Leftover, TwilioError)>, usize) {
    let keys = routing_keys(services, sweep, &numbers).await;
    let keys = &keys;
    let (tried, rejected) = each_in_time(numbers, NUMBER_CONCURRENCY, SWEEP_NUMBER, |number| async move {
        let result = give_back(services, &sweep.owner, &sweep.creds, keys, &number, sweep.deleting).await;
        if matches!(result, Ok(NumberSwept::Done))
            && let Err(e) = services.store.forget_leftover(&number).await
        {
            tracing::error!(error = %e, "a leftover number was given back but its record stays");
        }
        let refused = matches!(&result, Err(e) if e.kind() == TwilioErrorKind::Rejected);
        ((number, result), refused)
    })
    .await;
    let (mut left, mut waiting, mut numbers_back, mut not_started) = (Vec::new(), 0, 0, Vec::new());
    for turn in tried {
        match turn {
            Turn::Started((_, Ok(NumberSwept::Done))) => numbers_back += 1,
            Turn::Started((_, Ok(NumberSwept::Held))) => waiting += 1,
            Turn::Started((number, Err(e))) => left.push((number, e)),
            Turn::Skipped(number) => not_started.push(number),
        }
    }
    if rejected {
        // Not started because the token is rejected: stuck on it as those tried are.
        let refused = || TwilioError::Api {
            status: 401,
            code: Some(20003),
            message: "not tried: Twilio rejected the credentials".into(),
        };
        left.extend(not_started.drain(..).map(|number| (number, refused())));
    }
    waiting += not_started.len();
    if numbers_back > 0 {
        tracing::info!(given_back = numbers_back, "leftover numbers given back");
        shared::metrics::emit("OrphansRemoved", numbers_back as f64, shared::metrics::Unit::Count, &[]);
    }
    (left, waiting)
}

/// Every number's previous routing opens with the keys loaded here, one KMS call per key; a
/// number whose key could not be loaded fails alone (its routing cannot be opened).
async fn routing_keys(services: &Services, sweep: &ProviderSweep, numbers: &[Leftover]) -> KeyCache {
    let mut keys = KeyCache::default();
    for sealed in numbers.iter().filter_map(|n| n.previous_routing_sealed.as_ref()) {
        if let Err(e) = keys.load_sealed(services, &sweep.owner, [sealed]).await {
            tracing::warn!(error = %e, "cannot open a leftover number's previous routing");
        }
    }
    keys
}

/// Removes the trunk's resources (no number holds them any more): answers those gone; those
/// still there join `left`.
async fn remove_trunk_resources(
    services: &Services,
    sweep: &ProviderSweep,
    others: Vec<Leftover>,
    left: &mut Vec<(Leftover, TwilioError)>,
) -> Vec<Leftover> {
    let resources: Vec<TwilioResource> = others.iter().map(|l| l.resource.clone()).collect();
    let still_there = remove_resources(&services.twilio, &sweep.creds, &resources).await;
    let mut cleared = Vec::new();
    for leftover in others {
        match still_there.iter().find(|(resource, _)| *resource == leftover.resource) {
            Some((_, e)) => left.push((leftover, clone_error(e))),
            None => cleared.push(leftover),
        }
    }
    cleared
}

/// Forgets what is gone and answers what the sweep came to; what Twilio refused with this
/// token is marked stuck on it.
async fn settle(
    services: &Services,
    sweep: &ProviderSweep,
    cleared: Vec<Leftover>,
    left: Vec<(Leftover, TwilioError)>,
    numbers_held: bool,
) -> Outcome {
    let mut forgotten = 0;
    for leftover in &cleared {
        match services.store.forget_leftover(leftover).await {
            Ok(()) => forgotten += 1,
            Err(e) => tracing::error!(error = %e, "a leftover resource was removed but its record stays"),
        }
    }
    if forgotten > 0 {
        tracing::info!(removed = forgotten, "leftover Twilio resources removed");
        shared::metrics::emit("OrphansRemoved", forgotten as f64, shared::metrics::Unit::Count, &[]);
    }
    let needs_operator = !sweep.stuck.is_empty() || sweep.unreadable > 0;
    if left.is_empty() {
        let done = forgotten == cleared.len() && !needs_operator && !numbers_held;
        return if done {
            Outcome::Cleared
        } else if !needs_operator {
            Outcome::Remaining
        } else {
            Outcome::Stuck
        };
    }
    let errors: Vec<String> = left.iter().map(|(_, e)| e.to_string()).collect();
    let resources: Vec<&TwilioResource> = left.iter().map(|(l, _)| &l.resource).collect();
    let Some(rejected) = left.iter().find(|(_, e)| e.kind() == TwilioErrorKind::Rejected).map(|(_, e)| e.to_string())
    else {
        tracing::warn!(resources = ?resources, errors = ?errors, "leftover Twilio resources still there");
        return if needs_operator { Outcome::Stuck } else { Outcome::Remaining };
    };
    tracing::error!(account_sid = %sweep.creds.account_sid, resources = ?resources, errors = ?errors, "leftover Twilio resources are stuck: Twilio rejects the credentials; set the provider's credentials again, or remove them by hand");
    mark_stuck(services, sweep, left, &rejected).await;
    Outcome::Stuck
}

/// Twilio rejects the token (`rejected`: what it said): what is left is marked stuck on it,
/// and not tried again until the provider has another one.
async fn mark_stuck(services: &Services, sweep: &ProviderSweep, left: Vec<(Leftover, TwilioError)>, rejected: &str) {
    let reason = format!(
        "Twilio rejected the credentials ({rejected}); set the provider's credentials again (PATCH ./credentials) or remove the resource by hand"
    );
    for (mut leftover, _) in left {
        leftover.stuck = Some((reason.clone(), sweep.token.secret.clone()));
        if let Err(e) = services.store.mark_leftover_stuck(&leftover).await {
            tracing::error!(error = %e, "could not mark a leftover resource stuck");
        }
    }
}

/// What became of a leftover number.
enum NumberSwept {
    /// Given back, or imported again meanwhile (no longer a leftover): forgotten.
    Done,
    /// An import of it is under way, or its own provider's delete still holds it: looked at
    /// again next pass.
    Held,
}

/// A number left on the trunk goes back to the routing it had before import, as a removal
/// gives it back (one the customer changed since is left as they set it; one recorded without
/// its routing, by the earlier format, is detached). A number imported again meanwhile is no
/// longer a leftover: it is not touched.
async fn give_back(
    services: &Services,
    owner: &SecretOwner,
    creds: &TwilioCredentials,
    keys: &KeyCache,
    leftover: &Leftover,
    deleting: bool,
) -> Result<NumberSwept, TwilioError> {
    let TwilioResource::TrunkPhoneNumber { number_sid, .. } = &leftover.resource else {
        unreachable!("only numbers are given back")
    };
    let unavailable = |what: String| TwilioError::Connect(Cause::message(what));
    let store = &services.store;
    // Reserved while it is given back, as an import reserves it: an import of it that starts
    // meanwhile waits, so giving it back never undoes that import.
    let reservation = match store.reserve_number(&owner.organization_id, owner.provider_id, number_sid).await {
        Ok(reservation) => reservation,
        Err(StoreError::NumberTaken) => {
            return match store.number_claim(number_sid).await {
                Ok(NumberClaim::Claimed { provider_id }) if provider_id == owner.provider_id && deleting => {
                    Ok(NumberSwept::Held)
                }
                Ok(NumberClaim::Claimed { .. }) => Ok(NumberSwept::Done),
                // Being imported, or freed just now: looked at again next pass.
                Ok(NumberClaim::Reserved | NumberClaim::Free) => Ok(NumberSwept::Held),
                Err(e) => Err(unavailable(format!("could not read the number's claim: {e}"))),
            };
        }
        Err(e) => return Err(unavailable(format!("could not reserve the number: {e}"))),
    };
    let given_back = give_back_reserved(services, creds, keys, leftover).await;
    if let Err(e) = store.cancel_reservation(number_sid, reservation).await {
        tracing::warn!(phone_number_sid = %number_sid, error = %e, "could not give up a number's reservation; it lapses by itself");
    }
    given_back
}

async fn give_back_reserved(
    services: &Services,
    creds: &TwilioCredentials,
    keys: &KeyCache,
    leftover: &Leftover,
) -> Result<NumberSwept, TwilioError> {
    let TwilioResource::TrunkPhoneNumber { trunk_sid, number_sid } = &leftover.resource else {
        unreachable!("only numbers are given back")
    };
    let unavailable = |what: String| TwilioError::Connect(Cause::message(what));
    let stored = leftover.previous_routing.clone().unwrap_or_default();
    let previous = keys
        .routing(&stored, leftover.previous_routing_sealed.as_ref())
        .map_err(|e| unavailable(format!("could not open the number's previous routing: {e}")))?;
    match give_back_with(&services.twilio, creds, trunk_sid, number_sid, &previous).await {
        Ok(given_back) => {
            if let GivenBack::NotRestored(reason) = given_back {
                tracing::info!(phone_number_sid = %number_sid, reason, "leftover number not given back as it was");
            }
            Ok(NumberSwept::Done)
        }
        Err(GiveBackError::Twilio(_, e)) => Err(e),
        Err(GiveBackError::Secret(e)) => Err(unavailable(format!("could not open the number's previous routing: {e}"))),
    }
}

/// `TwilioError` holds no clonable cause; its text and kind are what is kept.
fn clone_error(e: &TwilioError) -> TwilioError {
    match e {
        TwilioError::Api { status, code, message } => {
            TwilioError::Api { status: *status, code: *code, message: message.clone() }
        }
        other => TwilioError::Decode(other.to_string()),
    }
}
