//! Replacing a provider's Twilio credential (an Auth Token or an API key, either way), checked with Twilio first.
//! Why: docs/decisions/replacing-a-minted-key.md.

use crate::provider::credentials::{Accepted, accept, delete_minted_key, forget_minted, involving};
use crate::provider::record::{Change, load_provider, owner_of, save_with_retry};
use crate::provider::verify::{finished_in_time, same_references, verify_with_account};
use crate::services::Services;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::dto::NewCredential;
use shared::model::OrganizationId;
use shared::storage::{ProviderRecord, SealedCredential};
use uuid::Uuid;

/// How many verifications a replacement runs at most (the first and two more) when repairs
/// or updates keep changing what it verified.
const VERIFICATIONS: u32 = 3;

/// Stores the provider's new credential, once Twilio accepts it; returns the provider as saved.
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %id))]
pub async fn replace_credentials(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    credential: NewCredential,
) -> Result<ProviderRecord, ApiError> {
    // Allowed while deleting: a delete stuck on a credential the customer rotated or deleted
    // in Twilio continues with the new one.
    let record = load_provider(&services.store, org, id).await?;
    let replaced_minted_key = record.credential.minted_key().cloned();
    if let (Some(minted), NewCredential::ApiKey { .. }) = (&replaced_minted_key, &credential) {
        return Err(ApiError::Conflict(format!(
            "The stored credential is API key {minted}, which this service minted and deletes when it is replaced: that needs the account's Auth Token, which the service does not keep. Send authToken (with mintApiKey: true to have a new key minted), then set your own key if you wish."
        )));
    }
    let unchanged = format!("The stored credential of provider {id} is unchanged.");
    let accepted = accept(services, &credential, &record.account_sid, record.twilio_region, id, &unchanged).await?;
    let replaced = record.credential.clone();
    let saved = save_accepted(services, record, &replaced, &accepted).await;
    let saved = match saved {
        Ok(saved) => saved,
        // A minted key goes again, unless the save whose answer was lost stored it after all.
        Err(e) => match stored_after_all(services, org, id, &accepted).await {
            Some(saved) => saved,
            None => {
                forget_minted(services, &accepted).await;
                return Err(e);
            }
        },
    };
    if let Some(minted) = replaced_minted_key {
        let token = credential.credentials(&saved.account_sid, saved.twilio_region);
        match delete_minted_key(services, &token, &minted).await {
            Ok(()) => {
                let event = AuditEvent::new(org, id, Action::RotateCredentials)
                    .sid(&minted)
                    .detail(format!("deleted API key {minted}, which the service had minted and which was replaced"));
                if let Err(e) = services.store.record_event(&event).await {
                    tracing::error!(error = %e, "could not record the deletion of a replaced minted key");
                }
            }
            Err(e) => {
                tracing::error!(api_key_sid = %minted, error = %e, "the replaced API key the service minted could not be deleted; delete it in the Twilio Console");
            }
        }
    }
    tracing::info!(credential_type = ?accepted.creds.credential_type(), "twilio credentials replaced");
    Ok(saved)
}

/// The provider as stored, when it holds the key this change minted: a write that answered an
/// error (its answer lost, its retry then conflicting with itself) that was stored after all.
async fn stored_after_all(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    accepted: &Accepted,
) -> Option<ProviderRecord> {
    let minted = accepted.creds.api_key_sid().filter(|_| accepted.minted)?;
    let stored = services.store.get_provider(org, id).await.ok()??;
    (stored.credential.api_key.as_ref().map(|key| &key.sid) == Some(minted)).then_some(stored)
}

/// What the stored credential becomes, for the event.
fn credential_kind(accepted: &Accepted) -> &'static str {
    match (accepted.creds.api_key_sid(), accepted.minted) {
        (None, _) => "an Auth Token",
        (Some(_), false) => "an API key",
        (Some(_), true) => "an API key the service minted",
    }
}

/// Seals the accepted credential and saves it with a fresh verification.
async fn save_accepted(
    services: &Services,
    record: ProviderRecord,
    replaced: &SealedCredential,
    accepted: &Accepted,
) -> Result<ProviderRecord, ApiError> {
    let creds = &accepted.creds;
    let account = accepted.account.as_ref();
    // The checks and the new data key do not depend on each other.
    let owner = owner_of(&record);
    let (verification, data_key) = tokio::join!(
        verify_with_account(services, &record, creds, account),
        services.envelope.generate_data_key(&owner)
    );
    let sealed = SealedCredential::seal(&data_key?, creds, accepted.minted);
    let event = AuditEvent::new(&record.organization_id, record.id, Action::RotateCredentials);
    let event = involving(event.detail(format!("now {}", credential_kind(accepted))), creds);
    let (mut verified, mut verification) = (record, verification);
    let mut verifications = 1;
    loop {
        // A verification the deadline cut short says nothing: the credential is saved without it.
        let in_time = finished_in_time().is_ok();
        let mut verify_again = false;
        let saved = save_with_retry(&services.store, verified.clone(), Some(&event), |record| {
            // Another change of the credential meanwhile (a key minted by it would go unseen)
            // wins: this one is refused, and a key it minted deleted.
            if record.credential != *replaced && record.credential != sealed {
                return Err(ApiError::Conflict(format!(
                    "The credentials of provider {} were changed by another request at the same time; nothing of this change was kept. Retry if you still want it.",
                    record.id
                )));
            }
            record.credential = sealed.clone();
            // A repair or update that changed what was verified meanwhile makes this result
            // stale: it is run again on the newer record, or, after that too has changed
            // repeatedly, left to the next verification (the credential is saved either way).
            if same_references(&verified, record) {
                if in_time {
                    verification.apply_to(record);
                }
            } else if in_time && verifications < VERIFICATIONS {
                verify_again = true;
                return Ok(Change::Keep);
            }
            Ok(Change::Save)
        })
        .await?;
        if !verify_again {
            return Ok(saved);
        }
        verifications += 1;
        verification = verify_with_account(services, &saved, creds, account).await;
        verified = saved;
    }
}
