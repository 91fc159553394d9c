//! The hourly job: re-verifies every provider of every organization, then sweeps leftover
//! Twilio resources ([`crate::sweep_orphans`]). Pages through the
//! table with bounded concurrency; one provider's failure never stops the rest. Logs a
//! summary (counts by status) and a line for each provider whose status changed.

use crate::providers::{save_with_retry, stored_credentials};
use crate::services::Services;
use crate::verification::verify;
use futures::StreamExt;
use serde::Serialize;
use shared::ApiError;
use shared::model::{CheckStatus, VerificationStatus};
use shared::store::{ProviderRecord, ScanCursor};

/// Providers verified at once.
const CONCURRENCY: usize = 8;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub verified: usize,
    pub warning: usize,
    pub failed: usize,
    /// Could not be verified at all (unreadable record, KMS or storage failure, …).
    pub errors: usize,
    /// Being deleted: left alone.
    pub skipped: usize,
    /// Twilio rejected the stored credentials at the last check: not asked again until the
    /// token is rotated (their `credentials` check stays failed; counted in `failed` too).
    pub held: usize,
    pub changed: usize,
}

enum Outcome {
    Verified { previous: VerificationStatus, current: VerificationStatus },
    Skipped,
    Held,
    Error,
}

pub async fn run(services: &Services) -> Result<Summary, shared::store::StoreError> {
    let mut summary = Summary::default();
    let mut cursor: Option<ScanCursor> = None;
    loop {
        let page = services.store.scan_providers(cursor.take()).await?;
        let outcomes: Vec<Outcome> = futures::stream::iter(page.providers)
            .map(|record| async move {
                match record {
                    Ok(record) => reverify(services, record).await,
                    Err(e) => {
                        tracing::error!(error = %e, "unreadable provider record skipped");
                        Outcome::Error
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Outcome::Verified { previous, current } => {
                    match current {
                        VerificationStatus::Verified | VerificationStatus::Pending => summary.verified += 1,
                        VerificationStatus::Warning => summary.warning += 1,
                        VerificationStatus::Failed => summary.failed += 1,
                    }
                    summary.changed += usize::from(previous != current);
                }
                Outcome::Skipped => summary.skipped += 1,
                Outcome::Held => {
                    summary.held += 1;
                    summary.failed += 1;
                }
                Outcome::Error => summary.errors += 1,
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    tracing::info!(
        verified = summary.verified,
        warning = summary.warning,
        failed = summary.failed,
        errors = summary.errors,
        skipped = summary.skipped,
        changed = summary.changed,
        "re-verification finished"
    );
    Ok(summary)
}

async fn reverify(services: &Services, record: ProviderRecord) -> Outcome {
    if record.deletion.is_some() {
        return Outcome::Skipped;
    }
    if credentials_rejected(&record) {
        return Outcome::Held;
    }
    let (org, id, previous) = (record.organization_id.clone(), record.id, record.verification_status);
    let result: Result<VerificationStatus, ApiError> = async {
        let creds = stored_credentials(services, &record).await?;
        let verification = verify(services, &record, &creds).await;
        let status = verification.status;
        save_with_retry(&services.store, record, |record| {
            verification.apply_to(record);
            Ok(())
        })
        .await?;
        Ok(status)
    }
    .await;
    match result {
        Ok(current) => {
            if current != previous {
                tracing::info!(organization_id = %org, provider_id = %id, previous = ?previous, current = ?current, "verification status changed");
            }
            Outcome::Verified { previous, current }
        }
        Err(e) => {
            tracing::error!(organization_id = %org, provider_id = %id, error = %e, "provider could not be re-verified");
            Outcome::Error
        }
    }
}

/// Whether the last verification found the stored credentials rejected. Rotation (the only
/// way to a new token) stores a passing `credentials` check, which lifts this.
fn credentials_rejected(record: &ProviderRecord) -> bool {
    record
        .verification_details
        .iter()
        .flatten()
        .any(|check| check.check_name == "credentials" && check.status == CheckStatus::Failed)
}

/// What the hourly job did.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HourlyReport {
    pub verification: Summary,
    pub orphans: crate::sweep_orphans::SweepSummary,
}

/// The scheduled function's work: re-verification, then the orphan sweep.
pub async fn hourly(services: &Services) -> Result<HourlyReport, shared::store::StoreError> {
    let verification = run(services).await?;
    let orphans = crate::sweep_orphans::run(services).await?;
    Ok(HourlyReport { verification, orphans })
}
