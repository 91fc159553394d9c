//! Re-verification of every provider, the `reverify` job (hourly), which also ends SIP credential rotations whose
//! overlap is over: one provider per jobs-queue message, or all in-process (admin, tests). Jobs: docs/operations.md.

use crate::provider::record::{load_provider, stored_credentials};
use crate::provider::verify::verify_as_saved;
use crate::services::Services;
use serde::Serialize;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::model::{CheckName, CheckStatus, OrganizationId, VerificationStatus};
use shared::storage::{ProviderRecord, StoreError};
use uuid::Uuid;

/// Providers verified at once in-process.
const CONCURRENCY: usize = 8;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub verified: usize,
    pub warning: usize,
    pub failed: usize,
    /// Could not be verified at all (unreadable record, KMS or storage failure, …).
    pub errors: usize,
    /// Being deleted, or gone: left alone.
    pub skipped: usize,
    /// Twilio rejected the stored credentials at the last check: not asked again until the
    /// token is rotated (their `credentials` check stays failed; counted in `failed` too).
    pub held: usize,
    /// The record changed while it was being verified (a rotation, say): the newer one stays.
    pub stale: usize,
    pub changed: usize,
}

/// What verifying one provider came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Verified { previous: VerificationStatus, current: VerificationStatus },
    Skipped,
    Held,
    Stale,
    Error,
}

impl Summary {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Verified { previous, current } => {
                match current {
                    VerificationStatus::Verified | VerificationStatus::Pending => self.verified += 1,
                    VerificationStatus::Warning => self.warning += 1,
                    VerificationStatus::Failed => self.failed += 1,
                }
                self.changed += usize::from(previous != current);
            }
            Outcome::Skipped => self.skipped += 1,
            Outcome::Held => {
                self.held += 1;
                self.failed += 1;
            }
            Outcome::Stale => self.stale += 1,
            Outcome::Error => self.errors += 1,
        }
    }
}

/// The whole job in-process (the planner's and worker's code, see [`crate::provider::jobs`]): every
/// provider of every organization. Items that failed for a reason worth retrying count as
/// errors here.
pub async fn run(services: &Services) -> Result<Summary, crate::provider::jobs::PlanError> {
    let run = crate::provider::jobs::run_in_process(services, shared::queue::Job::Reverify, CONCURRENCY, None).await?;
    let mut summary = run.verification.unwrap_or_default();
    summary.errors += run.retry;
    tracing::info!(summary = ?summary, "re-verification finished");
    Ok(summary)
}

/// Verifies one provider and stores the result conditionally on the version it read: a result
/// computed against an older record never overwrites a newer one. `Err` is worth retrying
/// (storage or KMS unavailable).
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %id))]
pub async fn reverify_one(services: &Services, org: &OrganizationId, id: Uuid) -> Result<Outcome, ApiError> {
    let record = match load_provider(&services.store, org, id).await {
        Ok(record) => record,
        Err(ApiError::NotFound(_)) => return Ok(Outcome::Skipped),
        Err(e) => return Err(e),
    };
    if record.deletion.is_some() {
        return Ok(Outcome::Skipped);
    }
    if credentials_rejected(&record) {
        return Ok(Outcome::Held);
    }
    // A SIP credential rotation whose overlap has ended: the replaced credential goes now.
    // A failure leaves it for the next hour; the verification below still runs (reading the
    // credential itself).
    let sip_credential = match crate::provider::sip_rotation::finish_if_expired(services, &record).await {
        Ok(credential) => credential,
        Err(e) => {
            tracing::warn!(error = %e, "could not finish an expired SIP credential rotation");
            None
        }
    };
    let previous = record.verification_status;
    let creds = match stored_credentials(services, &record).await {
        Ok(creds) => creds,
        Err(e @ ApiError::Unavailable(_)) => return Err(e),
        Err(e) => {
            tracing::error!(error = %e, "provider could not be re-verified");
            return Ok(Outcome::Error);
        }
    };
    let verification = verify_as_saved(services, &record, &creds, sip_credential.as_ref()).await;
    // Not finished in time: SQS delivers the item again.
    crate::provider::verify::finished_in_time()?;
    let mut updated = record.clone();
    verification.apply_to(&mut updated);
    updated.version = record.version + 1;
    updated.updated_at = shared::time::Timestamp::now();
    // The hourly result is recorded when it changed the provider's status: a trail of every
    // unchanged hour would bury the changes.
    let event = (verification.status != previous).then(|| {
        AuditEvent::new(&updated.organization_id, updated.id, Action::Verify).outcome(verification.status_name())
    });
    match services.store.replace_provider(&updated, event.as_ref()).await {
        Ok(()) => {}
        Err(StoreError::VersionConflict) => {
            tracing::info!("provider changed while it was verified; the newer record stays");
            return Ok(Outcome::Stale);
        }
        Err(e) => return Err(e.into()),
    }
    let current = verification.status;
    if current != previous {
        tracing::info!(previous = ?previous, current = ?current, "verification status changed");
    }
    Ok(Outcome::Verified { previous, current })
}

/// Whether the last verification found the stored credentials rejected. Rotation (the only
/// way to a new token) stores a passing `credentials` check, which lifts this.
fn credentials_rejected(record: &ProviderRecord) -> bool {
    record
        .verification_details
        .iter()
        .flatten()
        .any(|check| check.check_name == CheckName::Credentials && check.status == CheckStatus::Failed)
}
