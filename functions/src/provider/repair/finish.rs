//! Finishing a repair: the last verification, stored with the new references in one
//! conditional write, or what was made for them removed again.

use super::{Repair, SAVE_ATTEMPTS};
use crate::provider::cleanup::remove_or_record;
use crate::provider::record::{load_provider, owner_of};
use crate::provider::verify::{Verification, verify_as_saved};
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::deadline::reserves::REPAIR_SAVE;
use shared::deadline::within;
use shared::dto::{RepairAction, RepairResult, VerifyResponse};
use shared::storage::{ProviderRecord, StoreError};
use std::time::Instant;

impl Repair<'_> {
    /// Verifies the provider as repaired and stores the result with the new references (one
    /// conditional write). If that write fails, what was made for the new references is
    /// removed and their actions are reported failed.
    pub(super) async fn finish(mut self) -> Result<(Vec<RepairAction>, VerifyResponse), ApiError> {
        let services = self.services;
        let mut repaired = self.record.clone();
        self.new.apply_to(&mut repaired);
        // Twilio's reads end in time for the save.
        let until = shared::deadline::remaining_less(REPAIR_SAVE).map(|left| Instant::now() + left);
        let new_credential = self.new.sip_credential.as_ref();
        let after = within(until, Box::pin(verify_as_saved(services, &repaired, self.creds, new_credential))).await;
        let has_new_references = self.new.trunk.is_some() || self.new.sip_credential.is_some();
        if !has_new_references {
            // Whatever a failed step made (a list whose credential failed) goes again.
            self.undo_created().await;
            let event = self.event(&after);
            let verification = after.store_as(services, repaired, &event).await?;
            return Ok((self.actions, verification));
        }
        match self.save_new_references(&after).await {
            Ok(()) => Ok((self.actions, after.into_response())),
            Err(error) => {
                self.undo_created().await;
                for action in self.actions.iter_mut().filter(|a| a.result == RepairResult::Done) {
                    if matches!(
                        action.action.as_str(),
                        "recreateTrunk" | "recreateCredentialList" | "recreateSipCredential"
                    ) {
                        action.result = RepairResult::Failed;
                        action.message = format!("{} It was undone: the provider could not be saved.", action.message);
                    }
                }
                Err(error)
            }
        }
    }

    /// Removes what this repair created (what cannot be removed is recorded as left behind),
    /// then its intent.
    async fn undo_created(&mut self) {
        let owner = owner_of(self.record);
        remove_or_record(self.services, self.creds, &owner, &self.created, self.data_key.as_ref()).await;
        if let Some(intent) = self.intent.take()
            && let Err(e) = self.services.store.forget_intent(&intent.key).await
        {
            tracing::warn!(error = %e, "could not remove a repair's intent; the sweeper will");
        }
    }

    /// The repair's event: what it did, to which resources, and the verification after.
    fn event(&self, after: &Verification) -> AuditEvent {
        let done = self.actions.iter().filter(|a| a.result == RepairResult::Done);
        let described: Vec<String> = done.clone().map(|a| format!("{} {}", a.action, a.resource)).collect();
        let mut event = AuditEvent::new(&self.record.organization_id, self.record.id, Action::Repair)
            .sids(done.map(|a| a.resource.clone()).filter(|r| r.len() == 34))
            .outcome(after.status_name())
            .detail(described.join("; "));
        if let Some(credential) = &self.new.sip_credential {
            event = event.sid(&credential.credential_sid);
        }
        event
    }

    /// Writes the new references and the verification, conditional on the record's version.
    /// A concurrent change to anything else is re-applied on; a concurrent repair or delete
    /// (the references changed, or a delete started) wins.
    async fn save_new_references(&self, after: &Verification) -> Result<(), ApiError> {
        let store = &self.services.store;
        let mut current = self.record.clone();
        for attempt in 1..=SAVE_ATTEMPTS {
            if attempt > 1 && self.kept_already(&current).await {
                return Ok(());
            }
            let moved = current.trunk_sid != self.record.trunk_sid
                || current.credential_list_sid != self.record.credential_list_sid;
            if moved || current.deletion.is_some() {
                return Err(ApiError::Conflict(format!(
                    "Provider {} was repaired or deleted by another request at the same time; nothing of this repair was kept.",
                    self.record.id
                )));
            }
            let mut updated = current.clone();
            self.new.apply_to(&mut updated);
            after.apply_to(&mut updated);
            updated.version = current.version + 1;
            updated.updated_at = shared::time::Timestamp::now();
            let intent = self.intent.as_ref().map(|intent| &intent.key);
            let event = self.event(after);
            match store
                .replace_provider_and_credential(&updated, self.new.sip_credential.as_ref(), intent, Some(&event))
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::VersionConflict) if attempt < SAVE_ATTEMPTS => {
                    current = load_provider(store, &self.record.organization_id, self.record.id).await?;
                }
                Err(StoreError::VersionConflict) => {
                    return Err(ApiError::Conflict(format!(
                        "Provider {} was changed by other requests at the same time; retry the repair.",
                        self.record.id
                    )));
                }
                Err(e) => {
                    return match load_provider(store, &self.record.organization_id, self.record.id).await {
                        Ok(now) if self.kept_already(&now).await => Ok(()),
                        _ => Err(e.into()),
                    };
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Whether this repair's own write is already stored, though its answer was lost after it
    /// committed (the SDK's retry then meets the new version): the record holds the new
    /// references, or, when only the SIP credential is new, the stored credential is the new
    /// one. What it names must then not be rolled back.
    async fn kept_already(&self, current: &ProviderRecord) -> bool {
        let mut ours = self.record.clone();
        self.new.apply_to(&mut ours);
        if ours.trunk_sid != self.record.trunk_sid || ours.credential_list_sid != self.record.credential_list_sid {
            return current.trunk_sid == ours.trunk_sid && current.credential_list_sid == ours.credential_list_sid;
        }
        let Some(new) = &self.new.sip_credential else { return false };
        self.services.store.sip_credential_is_current(&self.record.organization_id, new).await
    }
}
