//! The orphan sweeper, run by the hourly job: retries the removal of Twilio resources that a
//! failed rollback left behind (recorded as `ORPHAN#` items) until they are gone.

use crate::provider::cleanup::remove_resources;
use crate::services::Services;
use serde::Serialize;
use shared::crypto::{SecretKind, SecretOwner};
use shared::model::OrganizationId;
use shared::model::{AuthToken, TwilioCredentials};
use shared::store::{OrphanRecord, StoreError};
use shared::twilio::TwilioErrorKind;
use uuid::Uuid;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SweepSummary {
    /// Records whose resources are all gone now.
    pub cleared: usize,
    /// Records with resources still left (retried next hour).
    pub remaining: usize,
    /// Records that cannot be acted on (no usable credentials); logged for an operator.
    pub stuck: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Cleared,
    Remaining,
    Stuck,
}

impl SweepSummary {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Cleared => self.cleared += 1,
            Outcome::Remaining => self.remaining += 1,
            Outcome::Stuck => self.stuck += 1,
        }
    }
}

/// The whole job in-process (the planner's and worker's code, see [`crate::provider::jobs`]): every
/// leftover-resource record, one at a time.
pub async fn run(services: &Services) -> Result<SweepSummary, crate::provider::jobs::PlanError> {
    let run = crate::provider::jobs::run_in_process(services, shared::queue::Job::SweepOrphans, 1).await?;
    let mut summary = run.orphans.unwrap_or_default();
    summary.remaining += run.retry;
    tracing::info!(
        cleared = summary.cleared,
        remaining = summary.remaining,
        stuck = summary.stuck,
        "orphan sweep finished"
    );
    Ok(summary)
}

/// Sweeps one provider's leftover record (gone already: cleared). `Err`: the record could not
/// be read; worth retrying.
pub async fn sweep_one(services: &Services, org: &OrganizationId, provider_id: Uuid) -> Result<Outcome, StoreError> {
    match services.store.get_orphan(org, provider_id).await {
        Ok(Some(orphan)) => Ok(sweep(services, orphan).await),
        Ok(None) => Ok(Outcome::Cleared),
        Err(StoreError::Corrupt(e)) => {
            tracing::error!(organization_id = %org, %provider_id, error = %e, "unreadable leftover-resource record");
            Ok(Outcome::Stuck)
        }
        Err(e) => Err(e),
    }
}

async fn sweep(services: &Services, orphan: OrphanRecord) -> Outcome {
    let (org, provider_id) = (orphan.organization_id.clone(), orphan.provider_id);
    if orphan.stuck_reason.is_some() {
        // Logged when it got stuck; retrying would only ask Twilio again every hour.
        return Outcome::Stuck;
    }
    let Some(token) = &orphan.auth_token else {
        tracing::error!(organization_id = %org, %provider_id, resources = ?orphan.resources, "leftover Twilio resources without stored credentials; remove them by hand");
        return Outcome::Stuck;
    };
    let owner = SecretOwner { organization_id: org.clone(), provider_id };
    let creds = match services.envelope.open(&owner, SecretKind::AuthToken, token).await {
        Ok(secret) => match AuthToken::parse(secrecy::ExposeSecret::expose_secret(&secret)) {
            Ok(auth_token) => TwilioCredentials { account_sid: orphan.account_sid.clone(), auth_token },
            Err(_) => return Outcome::Stuck,
        },
        Err(e) => {
            tracing::error!(organization_id = %org, %provider_id, error = %e, "cannot open the credentials of leftover Twilio resources");
            return Outcome::Stuck;
        }
    };
    let resources = &orphan.resources;
    let left = remove_resources(&services.twilio, &creds, resources).await;
    if left.is_empty() {
        if let Err(e) = services.store.delete_orphan(&org, provider_id).await {
            tracing::error!(%provider_id, error = %e, "leftover resources removed but their record stays");
            return Outcome::Remaining;
        }
        tracing::info!(organization_id = %org, %provider_id, removed = resources.len(), "leftover Twilio resources removed");
        shared::metrics::emit("OrphansRemoved", resources.len() as f64, shared::metrics::Unit::Count, &[]);
        return Outcome::Cleared;
    }
    let rejected = left.iter().find(|(_, e)| e.kind() == TwilioErrorKind::Rejected).map(|(_, e)| e.to_string());
    let remaining = OrphanRecord {
        resources: left.iter().map(|(resource, _)| resource.clone()).collect(),
        stuck_reason: rejected
            .as_ref()
            .map(|e| format!("Twilio rejected the stored credentials ({e}); remove the resources by hand")),
        ..orphan
    };
    let errors: Vec<String> = left.iter().map(|(_, e)| e.to_string()).collect();
    if rejected.is_some() {
        tracing::error!(organization_id = %org, %provider_id, account_sid = %remaining.account_sid, resources = ?remaining.resources, errors = ?errors, "leftover Twilio resources are stuck: Twilio rejects the stored credentials; remove them by hand");
    } else {
        tracing::warn!(organization_id = %org, %provider_id, resources = ?remaining.resources, errors = ?errors, "leftover Twilio resources still there");
    }
    if let Err(e) = services.store.record_orphan(&remaining).await {
        tracing::error!(%provider_id, error = %e, "could not update a leftover-resource record");
    }
    if rejected.is_some() { Outcome::Stuck } else { Outcome::Remaining }
}
