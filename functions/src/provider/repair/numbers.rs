//! Repairing the imported numbers: those on no trunk go back on the provider's trunk and, in
//! IE1 and AU1, those on it have their calls processed in the provider's Region again.

use super::{LIST_CAP, NUMBER_CONCURRENCY, Repair, action};
use crate::provider::cleanup::record_for_sweeper;
use crate::provider::give_back::{KeyCache, give_back_with, voice_fields_as_imported};
use crate::services::Services;
use futures::StreamExt;
use shared::crypto::CryptoError;
use shared::deadline::reserves::{REPAIR_FINISH, REPAIR_NUMBER};
use shared::deadline::within;
use shared::dto::{RepairAction, RepairResult};
use shared::model::{PhoneNumberSid, TrunkSid, TwilioCredentials, TwilioRegion, VoiceRouting};
use shared::storage::{PhoneNumberRecord, ProviderRecord};
use shared::twilio::{IncomingPhoneNumber, TwilioResource};
use std::collections::HashSet;
use std::time::Instant;

impl Repair<'_> {
    /// Imported numbers on no trunk go back on the provider's trunk.
    pub(super) async fn numbers(&mut self) {
        let twilio = &self.services.twilio;
        let trunk_sid = self.trunk_sid.clone().expect("numbers run only with a trunk");
        let imported = match self.services.store.all_numbers(&self.record.organization_id, self.record.id).await {
            Ok(imported) => imported,
            Err(e) => {
                tracing::error!(error = %e, "could not read the imported numbers");
                self.note(
                    "reattachNumbers",
                    &trunk_sid,
                    RepairResult::Failed,
                    "Could not read the imported numbers; retry.",
                );
                return;
            }
        };
        self.imported = Some(imported.clone());
        let on_trunk: HashSet<PhoneNumberSid> = if self.trunk_is_new() || imported.is_empty() {
            HashSet::new()
        } else {
            match twilio.list_trunk_phone_numbers(self.creds, &trunk_sid, LIST_CAP).await {
                Ok(numbers) => numbers.into_iter().map(|n| n.sid).collect(),
                Err(e) => {
                    let message = format!("Could not list the trunk's numbers: {e}.");
                    self.note("reattachNumbers", &trunk_sid, RepairResult::Failed, message);
                    return;
                }
            }
        };
        let missing: Vec<_> = imported.iter().filter(|n| !on_trunk.contains(&n.phone_number_sid)).collect();
        if missing.is_empty() {
            let message = format!("All {} imported numbers are on the trunk.", imported.len());
            self.note("reattachNumbers", &trunk_sid, RepairResult::Skipped, message);
            return;
        }
        let missing: Vec<PhoneNumberRecord> = missing.into_iter().cloned().collect();
        let keys = self.routing_keys(&missing).await;
        self.reattach_missing(&trunk_sid, missing, &keys).await;
    }

    /// The keys of the routing each number had before import, to tell a number the customer
    /// re-routed from one that merely fell off the trunk (one KMS call per data key). A key that
    /// cannot be opened fails only its own numbers (they are not put back unchecked); KMS itself
    /// failing stops the loading, as every further call would fail too.
    async fn routing_keys(&self, numbers: &[PhoneNumberRecord]) -> KeyCache {
        let mut keys = KeyCache::default();
        for number in numbers {
            match keys.load(self.services, self.record, std::slice::from_ref(number)).await {
                Ok(()) => {}
                Err(e @ CryptoError::Kms(_)) => {
                    tracing::warn!(error = %e, "KMS failed opening numbers' routing before import");
                    break;
                }
                Err(e) => {
                    tracing::warn!(phone_number_sid = %number.phone_number_sid, error = %e, "cannot open a number's routing before import");
                }
            }
        }
        keys
    }

    /// Puts the `missing` numbers back on the trunk, a few at a time, each with its `keys`.
    async fn reattach_missing(&mut self, trunk_sid: &TrunkSid, missing: Vec<PhoneNumberRecord>, keys: &KeyCache) {
        let total = missing.len();
        // Numbers are started only while one can finish with time left to verify and save: a
        // repair stopped by its deadline would leave a rebuilt trunk out of the record.
        let until = shared::deadline::remaining_less(REPAIR_FINISH).map(|left| Instant::now() + left);
        let in_time = move || until.is_none_or(|until| Instant::now() + REPAIR_NUMBER <= until);
        let (services, provider, creds) = (self.services, self.record, self.creds);
        let outcomes: Vec<RepairAction> = futures::stream::iter(missing)
            .take_while(|_| std::future::ready(in_time()))
            .map(|number| within(until, reattach_number(services, provider, creds, keys, trunk_sid, number)))
            .buffered(NUMBER_CONCURRENCY)
            .collect()
            .await;
        let not_started = total - outcomes.len();
        self.actions.extend(outcomes);
        if not_started > 0 {
            let message = format!(
                "{not_started} of {total} numbers on no trunk were not put back: the repair ran out of time. Repeat the repair to put back the rest."
            );
            self.note("reattachNumbers", trunk_sid, RepairResult::Failed, message);
        }
    }

    /// IE1 and AU1: every imported number on the trunk has its calls processed in the provider's
    /// Region again (import set it so; the customer may have changed it since). Each is read
    /// first and set only where it differs; numbers are started only while there is time.
    pub(super) async fn voice_regions(&mut self) {
        // Without the imported numbers `numbers` has said so already.
        let Some(imported) = self.imported.take().filter(|_| self.creds.region != TwilioRegion::Us1) else {
            return;
        };
        if imported.is_empty() {
            // Nothing to route: no need to list the trunk's numbers again.
            let (trunk_sid, region) =
                (self.trunk_sid.clone().expect("numbers run only with a trunk"), self.creds.region);
            let message = format!("All 0 numbers on the trunk have their calls processed in {region}.");
            self.note("routeNumbers", &trunk_sid, RepairResult::Skipped, message);
            return;
        }
        let trunk_sid = self.trunk_sid.clone().expect("numbers run only with a trunk");
        // Read again: `numbers` has just put some back.
        let Some(numbers) = self.imported_on_trunk(&trunk_sid, imported).await else { return };
        let (set, failed, not_started) = self.set_voice_regions(&numbers).await;
        let region = self.creds.region;
        let (result, message) = match (set, failed.len(), not_started) {
            (0, 0, 0) => (
                RepairResult::Skipped,
                format!("All {} numbers on the trunk have their calls processed in {region}.", numbers.len()),
            ),
            (set, 0, 0) => (RepairResult::Done, format!("{set} numbers have their calls processed in {region} again.")),
            (set, _, _) => (
                RepairResult::Failed,
                format!(
                    "{set} numbers have their calls processed in {region} again; {} could not be set ({}) and {not_started} were not started (out of time). Repeat the repair.",
                    failed.len(),
                    failed.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
                ),
            ),
        };
        self.note("routeNumbers", &trunk_sid, result, message);
    }

    /// The phone numbers of the imported numbers on the trunk; None (noted) when the trunk's
    /// numbers cannot be listed.
    async fn imported_on_trunk(
        &mut self,
        trunk_sid: &TrunkSid,
        imported: Vec<PhoneNumberRecord>,
    ) -> Option<Vec<String>> {
        let on_trunk = match self.services.twilio.list_trunk_phone_numbers(self.creds, trunk_sid, LIST_CAP).await {
            Ok(on_trunk) => on_trunk,
            Err(e) => {
                let message = format!(
                    "Could not list the trunk's numbers: {e}; their inbound processing Region was not checked. Retry."
                );
                self.note("routeNumbers", trunk_sid, RepairResult::Failed, message);
                return None;
            }
        };
        let on_trunk: HashSet<PhoneNumberSid> = on_trunk.into_iter().map(|n| n.sid).collect();
        Some(imported.into_iter().filter(|n| on_trunk.contains(&n.phone_number_sid)).map(|n| n.phone_number).collect())
    }

    /// Sets the numbers' inbound processing Region to the provider's where it differs, a few at
    /// a time while there is time: how many were set, what failed, how many were not started.
    async fn set_voice_regions(&self, numbers: &[String]) -> (usize, Vec<String>, usize) {
        let (twilio, creds) = (&self.services.twilio, self.creds);
        let until = shared::deadline::remaining_less(REPAIR_FINISH).map(|left| Instant::now() + left);
        let wanted = creds.region.as_str();
        let (mut set, mut failed, mut not_started) = (0, Vec::new(), 0);
        for chunk in numbers.chunks(NUMBER_CONCURRENCY) {
            if until.is_some_and(|until| Instant::now() + REPAIR_NUMBER > until) {
                not_started += chunk.len();
                continue;
            }
            let fixes = chunk.iter().map(|number| async move {
                let result = match twilio.fetch_voice_region(creds, number).await {
                    Ok(region) if region == wanted => Ok(false),
                    Ok(_) => twilio.set_voice_region(creds, number, wanted).await.map(|()| true),
                    Err(e) => Err(e),
                };
                (number, result)
            });
            for (number, result) in within(until, futures::future::join_all(fixes)).await {
                match result {
                    Ok(changed) => set += usize::from(changed),
                    Err(e) => failed.push(format!("{number}: {e}")),
                }
            }
        }
        (set, failed, not_started)
    }
}

/// Puts an imported number back on the trunk if it is on no trunk, has no voice application and
/// its voice fields are as import left them: a number moved to another trunk, given an
/// application or pointed at another voice URL is the customer's choice and stays so
/// (attaching would take its calls away).
async fn reattach_number(
    services: &Services,
    provider: &ProviderRecord,
    creds: &TwilioCredentials,
    keys: &KeyCache,
    trunk_sid: &TrunkSid,
    number: PhoneNumberRecord,
) -> RepairAction {
    let twilio = &services.twilio;
    let sid = &number.phone_number_sid;
    let current = match twilio.fetch_incoming_number(creds, sid).await {
        Ok(current) => current,
        Err(e) if e.is_not_found() => {
            let message =
                format!("{} is no longer in the Twilio account; remove it from the provider.", number.phone_number);
            return action("reattachNumber", sid, RepairResult::Failed, message);
        }
        Err(e) => {
            let message = format!("Could not read {}: {e}.", number.phone_number);
            return action("reattachNumber", sid, RepairResult::Failed, message);
        }
    };
    if let Some(left) = rerouted_by_customer(&number, &current, trunk_sid) {
        return left;
    }
    let previous = match keys.previous_routing(&number) {
        Ok(previous) => previous,
        Err(e) => {
            let message = format!("Could not open the routing {} had before import: {e}.", number.phone_number);
            return action("reattachNumber", sid, RepairResult::Failed, message);
        }
    };
    if !voice_fields_as_imported(&current.voice_routing(), &previous) {
        let message = format!(
            "{}'s voice URL was changed after it left the trunk; it was left as set. Remove it from the provider, or set its voice URL back in Twilio and repair again.",
            number.phone_number
        );
        return action("reattachNumber", sid, RepairResult::Skipped, message);
    }
    if let Err(e) = twilio.attach_phone_number(creds, trunk_sid, sid).await {
        let message = format!("Could not put {} back on the trunk: {e}.", number.phone_number);
        return action("reattachNumber", sid, RepairResult::Failed, message);
    }
    // A removal or delete running meanwhile may have given the number back and forgotten it
    // after it was read: then it is given back again, or it would stay on the trunk unrecorded.
    let store = &services.store;
    if let Ok(None) = store.get_number(&provider.organization_id, provider.id, number.id).await {
        return give_back_removed(services, provider, creds, trunk_sid, &number, &previous).await;
    }
    let message = format!("Put {} back on the trunk {trunk_sid}.", number.phone_number);
    action("reattachNumber", sid, RepairResult::Done, message)
}

/// The number is left as it is when the customer moved it to another trunk or gave it a voice
/// application after import: the skipped action, or None.
fn rerouted_by_customer(
    number: &PhoneNumberRecord,
    current: &IncomingPhoneNumber,
    trunk_sid: &TrunkSid,
) -> Option<RepairAction> {
    let sid = &number.phone_number_sid;
    if let Some(other) = current.trunk_sid.as_ref().filter(|t| *t != trunk_sid) {
        let message = format!(
            "{} was moved to another trunk ({other}); it was left there. Remove it from the provider, or move it back in Twilio and repair again.",
            number.phone_number
        );
        return Some(action("reattachNumber", sid, RepairResult::Skipped, message));
    }
    if let Some(application) = current.voice_routing().voice_application_sid {
        let message = format!(
            "{} was given a voice application ({application}) after import; it was left so. Remove it from the provider, or take the application off in Twilio and repair again.",
            number.phone_number
        );
        return Some(action("reattachNumber", sid, RepairResult::Skipped, message));
    }
    None
}

/// A number a removal or delete gave back and forgot while it was put back on the trunk: it is
/// taken off the trunk again, or recorded for the sweeper.
async fn give_back_removed(
    services: &Services,
    provider: &ProviderRecord,
    creds: &TwilioCredentials,
    trunk_sid: &TrunkSid,
    number: &PhoneNumberRecord,
    previous: &VoiceRouting,
) -> RepairAction {
    let sid = &number.phone_number_sid;
    // Given back from the trunk it was just put on (a rebuilt one is not yet the record's).
    let given_back = give_back_with(&services.twilio, creds, trunk_sid, sid, previous).await.map(drop);
    match given_back {
        Ok(()) => {
            let message =
                format!("{} was removed from the provider meanwhile; it was left off the trunk.", number.phone_number);
            action("reattachNumber", sid, RepairResult::Skipped, message)
        }
        Err(e) => {
            tracing::error!(phone_number_sid = %sid, error = %e, "a number removed during repair is on the trunk");
            let leftover = TwilioResource::TrunkPhoneNumber { trunk_sid: trunk_sid.clone(), number_sid: sid.clone() };
            if let Err(e) = record_for_sweeper(services, provider, &[leftover], std::slice::from_ref(number)).await {
                tracing::error!(phone_number_sid = %sid, error = %e, "could not record it for the sweeper");
            }
            let message = format!(
                "{} was removed from the provider meanwhile, and could not be taken off the trunk again: {e}.",
                number.phone_number
            );
            action("reattachNumber", sid, RepairResult::Failed, message)
        }
    }
}
