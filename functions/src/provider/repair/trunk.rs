//! Repairing the trunk: its settings set back to the stored ones, or a new trunk for one that
//! was deleted.

use super::{NOT_RECORDED, Repair};
use crate::provider::create::{
    FRIENDLY_NAME_MAX_CHARS, create_trunk, domain_name, find_trunk_by_domain, new_domain_labels, truncate_chars,
};
use shared::dto::RepairResult;
use shared::model::TrunkSid;
use shared::twilio::{Trunk, TwilioResource};

impl Repair<'_> {
    /// The trunk exists with the stored transfer mode and `Secure`, or a new one replaces a
    /// deleted one.
    pub(super) async fn trunk(&mut self) {
        let old_sid = self.record.trunk_sid.clone();
        match self.services.twilio.fetch_trunk(self.creds, &old_sid).await {
            Ok(trunk) => {
                self.note("recreateTrunk", &old_sid, RepairResult::Skipped, "The SIP trunk exists.");
                self.trunk_sid = Some(old_sid.clone());
                self.set_trunk_settings(&old_sid, &trunk).await;
            }
            Err(e) if e.is_not_found() => self.recreate_trunk(&old_sid).await,
            Err(e) => self.note(
                "recreateTrunk",
                &old_sid,
                RepairResult::Failed,
                format!("Could not read the SIP trunk: {e}."),
            ),
        }
    }

    /// The existing trunk's transfer mode, `Secure` and disaster recovery are set to the stored
    /// ones where they differ (one update for all).
    async fn set_trunk_settings(&mut self, sid: &TrunkSid, trunk: &Trunk) {
        let expected = self.record.trunk_settings();
        let expected_mode = expected.transfer_mode;
        let mode_right = trunk.transfer_mode.as_deref() == Some(expected_mode.as_str());
        let secure_right = trunk.secure.unwrap_or(false) == expected.secure;
        let recovery_right = trunk.disaster_recovery() == expected.disaster_recovery;
        let updated = if mode_right && secure_right && recovery_right {
            None
        } else {
            Some(self.services.twilio.update_trunk(self.creds, sid, &expected).await)
        };
        let recovery = match &expected.disaster_recovery {
            Some(r) => format!("disaster recovery {} {}", r.method, r.url),
            None => "no disaster recovery".to_owned(),
        };
        let checks = [
            ("setTransferMode", mode_right, format!("TransferMode {expected_mode}, as supportsCallTransfer asks")),
            ("setSecureTrunking", secure_right, format!("Secure {}, as secureTrunking asks", expected.secure)),
            ("setDisasterRecovery", recovery_right, format!("{recovery}, as stored")),
        ];
        for (action, right, message) in checks {
            let (result, message) = match (&updated, right) {
                (None, _) | (Some(_), true) => (RepairResult::Skipped, format!("The trunk has {message}.")),
                (Some(Ok(_)), false) => (RepairResult::Done, format!("Set the trunk to {message}.")),
                (Some(Err(e)), false) => (RepairResult::Failed, format!("Could not set the trunk to {message}: {e}.")),
            };
            self.note(action, sid, result, message);
        }
    }

    /// A new trunk for the deleted `old_sid`, with a new domain (its intent recorded first).
    async fn recreate_trunk(&mut self, old_sid: &TrunkSid) {
        let twilio = &self.services.twilio;
        let expected = self.record.trunk_settings();
        let name = truncate_chars(&self.record.name, FRIENDLY_NAME_MAX_CHARS);
        let labels = new_domain_labels();
        if !self.intend(|new| new.trunk_domains.extend(labels.iter().map(|l| domain_name(l)))).await {
            let message = format!("The SIP trunk {old_sid} was deleted; {NOT_RECORDED}");
            self.note("recreateTrunk", old_sid, RepairResult::Failed, message);
            return;
        }
        match create_trunk(twilio, self.creds, &name, &expected, &labels).await {
            Ok((trunk, label)) => {
                self.created.push(TwilioResource::Trunk { trunk_sid: trunk.sid.clone() });
                let message = format!(
                    "The SIP trunk {old_sid} was deleted; created {} with domain {} (the termination URI changes).",
                    trunk.sid,
                    domain_name(&label)
                );
                self.note("recreateTrunk", &trunk.sid, RepairResult::Done, message);
                self.trunk_sid = Some(trunk.sid.clone());
                self.new.trunk = Some((trunk.sid, label));
            }
            Err((e, label)) => {
                if e.is_outcome_unknown() {
                    let found = find_trunk_by_domain(twilio, self.creds, &domain_name(&label)).await;
                    self.created.extend(found);
                }
                let message = format!("The SIP trunk {old_sid} was deleted and a new one could not be created: {e}.");
                self.note("recreateTrunk", old_sid, RepairResult::Failed, message);
            }
        }
    }
}
