//! Repairing the trunk's origination URLs: every platform ingress has one, with its priority
//! and weight; the service's own that name no ingress are reused or removed.

use super::{LIST_CAP, Repair};
use crate::provider::verify::origination_friendly_name;
use shared::dto::RepairResult;
use shared::model::TrunkSid;
use shared::twilio::{OriginationTarget, OriginationUrl};

impl Repair<'_> {
    /// Every platform ingress has an enabled origination URL on the trunk with its priority and
    /// weight. The service's own origination URLs (found by their friendly name) are updated,
    /// reused for an ingress that has none, or removed when they name no ingress (the
    /// deployment's PLATFORM_SIP_URI changed); the customer's others are left.
    pub(super) async fn origination(&mut self) {
        let trunk_sid = self.trunk_sid.clone().expect("origination runs only with a trunk");
        let existing = if self.trunk_is_new() {
            Vec::new()
        } else {
            match self.services.twilio.list_origination_urls(self.creds, &trunk_sid, LIST_CAP).await {
                Ok(urls) => urls,
                Err(e) => {
                    let message = format!("Could not read the trunk's origination URLs: {e}.");
                    self.note("setOriginationUrl", &trunk_sid, RepairResult::Failed, message);
                    return;
                }
            }
        };
        let (done, failed) = self.set_origination_urls(&trunk_sid, &existing).await;
        let platform = &self.services.platform_sip_uris;
        let (result, message) = match (done.is_empty(), failed.is_empty()) {
            (true, true) => (RepairResult::Skipped, format!("Inbound calls go to the platform ({platform}).")),
            (_, true) => (RepairResult::Done, format!("Origination URLs set, enabled: {}.", done.join("; "))),
            (_, false) => (
                RepairResult::Failed,
                format!(
                    "Could not set every origination URL: {}{}.",
                    failed.join("; "),
                    if done.is_empty() { String::new() } else { format!(" (done: {})", done.join("; ")) }
                ),
            ),
        };
        self.note("setOriginationUrl", &trunk_sid, result, message);
    }

    /// Points an origination URL at each ingress not on the trunk as configured (one of the
    /// service's own reused first), then removes the service's own that name no ingress: what
    /// was done and what failed.
    async fn set_origination_urls(
        &self,
        trunk_sid: &TrunkSid,
        existing: &[OriginationUrl],
    ) -> (Vec<String>, Vec<String>) {
        let (twilio, creds) = (&self.services.twilio, self.creds);
        let platform = &self.services.platform_sip_uris;
        let friendly_name = origination_friendly_name(self.record.id);
        let own = |u: &&OriginationUrl| u.friendly_name.as_deref() == Some(friendly_name.as_str());
        let mut spare: Vec<&OriginationUrl> =
            existing.iter().filter(own).filter(|u| platform.target_of(&u.sip_url).is_none()).collect();
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for target in platform.targets() {
            let pointing: Vec<&OriginationUrl> = existing.iter().filter(|u| target.uri.matches(&u.sip_url)).collect();
            let right = |u: &&&OriginationUrl| {
                u.enabled
                    && u.priority == Some(u32::from(target.priority))
                    && u.weight == Some(u32::from(target.weight))
            };
            if pointing.iter().any(|u| right(&u)) {
                continue;
            }
            let wanted = OriginationTarget { target, friendly_name: &friendly_name };
            let reused = pointing.iter().copied().find(|u| own(u)).or_else(|| spare.pop());
            let result = match reused {
                Some(url) => twilio.update_origination_url(creds, trunk_sid, &url.sid, wanted).await,
                None => twilio.create_origination_url(creds, trunk_sid, wanted).await,
            };
            let what = format!("{} (priority {}, weight {})", target.uri, target.priority, target.weight);
            match result {
                Ok(url) => {
                    done.push(format!("{} {} at {what}", if reused.is_some() { "pointed" } else { "added" }, url.sid))
                }
                Err(e) => failed.push(format!("{what}: {e}")),
            }
        }
        for url in spare {
            match twilio.delete_origination_url(creds, trunk_sid, &url.sid).await {
                Ok(()) => done.push(format!("removed {} ({}), which names no platform ingress", url.sid, url.sip_url)),
                Err(e) if e.is_not_found() => {}
                Err(e) => failed.push(format!("removing {} ({}): {e}", url.sid, url.sip_url)),
            }
        }
        (done, failed)
    }
}
