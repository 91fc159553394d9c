//! A stored provider, as every workflow handles it: loaded within the organization, its
//! credentials opened, a change saved with optimistic concurrency.

use crate::services::Services;
use shared::ApiError;
use shared::audit::AuditEvent;
use shared::crypto::{CryptoError, SecretOwner};
use shared::model::{OrganizationId, TwilioCredentials};
use shared::storage::{OpenCredentialError, ProviderRecord, ProviderStore, StoreError};
use shared::twilio::TwilioError;
use uuid::Uuid;

/// How often a conditional update is retried on a fresh read before answering 409.
const SAVE_ATTEMPTS: u32 = 8;

pub fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("No provider {id} exists in this organization."))
}

/// The organization's provider; another organization's is a 404 exactly like a missing one.
pub async fn load_provider(store: &ProviderStore, org: &OrganizationId, id: Uuid) -> Result<ProviderRecord, ApiError> {
    store.get_provider(org, id).await?.ok_or_else(|| not_found(id))
}

pub fn refuse_if_deleting(record: &ProviderRecord) -> Result<(), ApiError> {
    match record.deletion {
        Some(_) => Err(ApiError::Conflict(format!(
            "Provider {} is being deleted; finish the delete with DELETE /api/v1/providers/{}.",
            record.id, record.id
        ))),
        None => Ok(()),
    }
}

/// Runs `work` holding the provider's lease: repairs, transfer changes and SIP credential
/// rotations each rebuild or replace what the others read, so one runs at a time per
/// provider; another is a 409. The lease lapses by itself if this invocation dies.
pub async fn under_lease<T>(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    if !services.store.take_repair_lease(org, id).await? {
        return Err(ApiError::Conflict(format!(
            "A repair, a transfer change or a SIP credential rotation of provider {id} is under way; retry when it has finished."
        )));
    }
    let outcome = work.await;
    if let Err(e) = services.store.end_repair_lease(org, id).await {
        tracing::warn!(provider_id = %id, error = %e, "could not end the provider's lease; it ends by itself");
    }
    outcome
}

pub fn owner_of(record: &ProviderRecord) -> SecretOwner {
    SecretOwner { organization_id: record.organization_id.clone(), provider_id: record.id }
}

/// Decrypts the stored credential (one KMS call).
pub async fn stored_credentials(services: &Services, record: &ProviderRecord) -> Result<TwilioCredentials, ApiError> {
    let sealed = &record.credential;
    sealed.open(&services.envelope, &owner_of(record), &record.account_sid, record.twilio_region).await.map_err(|e| {
        match e {
            OpenCredentialError::Crypto(CryptoError::Kms(e)) => CryptoError::Kms(e).into(),
            OpenCredentialError::Crypto(_) => {
                tracing::error!(provider_id = %record.id, error = %e, "stored Twilio credential cannot be decrypted");
                ApiError::StoredSecretUnusable(format!(
                    "The stored Twilio credential of provider {} cannot be decrypted. Set it again with PATCH /api/v1/providers/{}/credentials.",
                    record.id, record.id
                ))
            }
            OpenCredentialError::Format => ApiError::internal("a stored Twilio credential does not have its format"),
        }
    })
}

/// A Twilio failure while `operation` (a gerund phrase) with the stored credentials; a 401
/// says how to set a rotated token.
pub fn stored_credentials_error(operation: &str, record: &ProviderRecord, e: TwilioError) -> ApiError {
    if e.kind() == shared::twilio::TwilioErrorKind::Rejected {
        let creds_hint = crate::provider::problems::set_credentials_hint(record.id);
        return ApiError::Unprocessable {
            title: "Twilio rejected the credentials",
            detail: format!("{} {creds_hint}", crate::provider::problems::rejected_of(record)),
        };
    }
    crate::provider::problems::twilio_problem(operation, e)
}

/// What a change does with the record it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Save it as changed.
    Save,
    /// Leave the stored record as it is (what the change was computed against is gone).
    Keep,
}

/// Applies `change` to the provider and saves it with optimistic concurrency. On a conflict it
/// re-reads and re-applies, a bounded number of times, then answers 409. A change that answers
/// [`Change::Keep`] writes nothing; the record as read is returned. The event, if any, is written
/// in the same transaction as the change.
pub async fn save_with_retry(
    store: &ProviderStore,
    mut record: ProviderRecord,
    event: Option<&AuditEvent>,
    mut change: impl FnMut(&mut ProviderRecord) -> Result<Change, ApiError>,
) -> Result<ProviderRecord, ApiError> {
    for attempt in 1..=SAVE_ATTEMPTS {
        let mut updated = record.clone();
        if change(&mut updated)? == Change::Keep {
            return Ok(record);
        }
        updated.version = record.version + 1;
        updated.updated_at = shared::time::Timestamp::now();
        // Boxed: with an event it is a transaction, whose SDK future is large.
        match Box::pin(store.replace_provider(&updated, event)).await {
            Ok(()) => return Ok(updated),
            Err(StoreError::VersionConflict) if attempt < SAVE_ATTEMPTS => {
                record = load_provider(store, &record.organization_id, record.id).await?;
                // Spread concurrent writers out a little before the next try.
                tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt) * 5)).await;
            }
            Err(StoreError::VersionConflict) => {
                return Err(ApiError::Conflict(format!(
                    "Provider {} was changed by other requests at the same time; retry.",
                    record.id
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns on its last attempt")
}
