//! Rotating a provider's generated SIP credential without dropping a call: the replaced one stays valid until its
//! overlap ends. Why: docs/decisions/sip-rotation-with-overlap.md.

use crate::provider::cleanup::remove_or_record;
use crate::provider::create::fresh_sip_username;
use crate::provider::problems::twilio_problem;
use crate::provider::record::{load_provider, owner_of, refuse_if_deleting, stored_credentials, under_lease};
use crate::services::Services;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::crypto::{DataKey, EncryptedSecret, SecretKind};
use shared::dto::{RotateSipCredential, SipCredentialState};
use shared::model::{CredentialListSid, OrganizationId, SipPassword, TwilioCredentials};
use shared::storage::{
    Change, Intent, IntentKey, NewResources, PreviousSipCredential, ProviderRecord, SipCredentialRecord, StoreError,
};
use shared::time::Timestamp;
use shared::twilio::{Credential, TwilioResource};
use uuid::Uuid;

/// `POST /api/v1/providers/{id}/sip-credential/rotate`.
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %id))]
pub async fn rotate_sip_credential(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    request: RotateSipCredential,
) -> Result<SipCredentialState, ApiError> {
    under_lease(services, org, id, rotate(services, org, id, request.overlap_seconds)).await
}

async fn rotate(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    overlap_seconds: u64,
) -> Result<SipCredentialState, ApiError> {
    let record = load_provider(&services.store, org, id).await?;
    refuse_if_deleting(&record)?;
    let current = current_credential(services, &record).await?;
    refuse_if_rotating(id, &current)?;
    let creds = stored_credentials(services, &record).await?;
    let data_key = services.envelope.generate_data_key(&owner_of(&record)).await?;
    let list_sid = current.credential_list_sid.clone();
    let username = fresh_sip_username(id);
    let intent = Intent::now(
        IntentKey::new(org.clone(), id),
        record.account_sid.clone(),
        record.twilio_region,
        record.credential.clone(),
        Change::NewResources(NewResources {
            credentials: vec![(list_sid.clone(), username.clone())],
            ..NewResources::default()
        }),
    );
    services.store.record_intent(&intent).await?;
    let password = SipPassword::generate();
    let created = add_credential(services, &creds, &intent.key, &list_sid, &username, &password).await?;
    let expires_at = Timestamp::from_unix(Timestamp::now().unix_seconds() + overlap_seconds as i64);
    let sealed = data_key.seal(SecretKind::SipPassword, password.expose());
    let rotated = rotated_record(id, &current, created, sealed, &expires_at);
    let event = AuditEvent::new(org, id, Action::SipCredentialRotate)
        .sid(&rotated.credential_sid)
        .sid(&current.credential_sid)
        .secret("sipPassword", password.expose())
        .detail(format!("the replaced credential works until {expires_at}"));
    match services.store.rotate_sip_credential(org, &rotated, &current.credential_sid, &intent.key, &event).await {
        Ok(()) => {}
        // Certainly not current: the new credential goes again (recorded for the sweeper if it
        // cannot).
        Err(StoreError::VersionConflict) => {
            return Err(undo_rotation(services, &record, &creds, &data_key, &rotated, &intent.key).await);
        }
        // Unknown whether the write was stored: removing the new credential could leave the
        // record naming one Twilio no longer has. The intent decides: gone with a stored write,
        // else the sweeper removes the credential it names.
        Err(e) => return Err(e.into()),
    }
    tracing::info!(
        credential_sid = %rotated.credential_sid,
        previous_credential_sid = %current.credential_sid,
        overlap_seconds,
        "SIP credential rotated"
    );
    Ok(SipCredentialState::from(&rotated))
}

/// 409 while an earlier rotation's overlap is under way: it is finished first.
fn refuse_if_rotating(id: Uuid, current: &SipCredentialRecord) -> Result<(), ApiError> {
    match &current.previous {
        Some(previous) => Err(ApiError::Conflict(format!(
            "A rotation of provider {id}'s SIP credential is under way: {} stays valid until {}. Finish it first with POST /api/v1/providers/{id}/sip-credential/rotate/finish.",
            previous.username, previous.expires_at
        ))),
        None => Ok(()),
    }
}

/// The new credential in Twilio's list. Nothing new is certainly in Twilio after a failure
/// unless the outcome is unknown: then the intent stays, and the sweeper removes the username
/// if Twilio made it.
async fn add_credential(
    services: &Services,
    creds: &TwilioCredentials,
    intent: &IntentKey,
    list_sid: &CredentialListSid,
    username: &str,
    password: &SipPassword,
) -> Result<Credential, ApiError> {
    let e = match services.twilio.create_credential(creds, list_sid, username, password).await {
        Ok(created) => return Ok(created),
        Err(e) => e,
    };
    if !e.is_outcome_unknown() {
        forget_intent(services, intent).await;
    }
    let id = intent.provider_id;
    Err(if e.is_not_found() {
        ApiError::Conflict(format!(
            "The credential list {list_sid} of provider {id} no longer exists in Twilio; run POST /api/v1/providers/{id}/repair first."
        ))
    } else {
        twilio_problem("adding a SIP credential", e)
    })
}

/// The new credential, current, with the one it replaces kept as `previous` until
/// `expires_at`.
fn rotated_record(
    id: Uuid,
    current: &SipCredentialRecord,
    created: Credential,
    password: EncryptedSecret,
    expires_at: &Timestamp,
) -> SipCredentialRecord {
    SipCredentialRecord {
        provider_id: id,
        username: created.username,
        credential_sid: created.sid,
        credential_list_sid: current.credential_list_sid.clone(),
        password,
        previous: Some(PreviousSipCredential {
            username: current.username.clone(),
            credential_sid: current.credential_sid.clone(),
            password: current.password.clone(),
            expires_at: expires_at.clone(),
        }),
    }
}

/// The write found the credential changed (a repair, or the provider's delete): the new one is
/// certainly not current, so it goes again (recorded for the sweeper if it cannot), and nothing
/// was changed.
async fn undo_rotation(
    services: &Services,
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    data_key: &DataKey,
    rotated: &SipCredentialRecord,
    intent: &IntentKey,
) -> ApiError {
    let id = record.id;
    let made = TwilioResource::Credential {
        list_sid: rotated.credential_list_sid.clone(),
        credential_sid: rotated.credential_sid.clone(),
    };
    remove_or_record(services, creds, &owner_of(record), &[made], Some(data_key)).await;
    forget_intent(services, intent).await;
    ApiError::Conflict(format!(
        "Provider {id}'s SIP credential changed (a repair, or its delete) while it was rotated; nothing was changed. Retry."
    ))
}

/// `POST /api/v1/providers/{id}/sip-credential/rotate/finish`: ends the overlap now. Without a
/// rotation under way it changes nothing and answers the credential as it is.
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %id))]
pub async fn finish_sip_credential_rotation(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
) -> Result<SipCredentialState, ApiError> {
    under_lease(services, org, id, async {
        let record = load_provider(&services.store, org, id).await?;
        refuse_if_deleting(&record)?;
        let current = current_credential(services, &record).await?;
        if current.previous.is_none() {
            return Ok(SipCredentialState::from(&current));
        }
        let creds = stored_credentials(services, &record).await?;
        finish(services, &record, &creds, current).await.map(|after| SipCredentialState::from(&after))
    })
    .await
}

/// The hourly job's part: ends an overlap that has expired (a provider whose lease another
/// holds is left for the next hour). Answers the SIP credential as it stands after, so that
/// the verification which follows needs no read of its own.
#[tracing::instrument(skip_all, fields(organization_id = %record.organization_id, provider_id = %record.id))]
pub async fn finish_if_expired(
    services: &Services,
    record: &ProviderRecord,
) -> Result<Option<SipCredentialRecord>, ApiError> {
    let Some(current) = services.store.get_sip_credential(&record.organization_id, record.id).await? else {
        return Ok(None);
    };
    if !current.overlap_ended() {
        return Ok(Some(current));
    }
    let finished = under_lease(services, &record.organization_id, record.id, async {
        // Read again under the lease: a finish, and a new rotation with its own overlap, may
        // have run since.
        let current = current_credential(services, record).await?;
        if !current.overlap_ended() {
            return Ok(current);
        }
        let creds = stored_credentials(services, record).await?;
        finish(services, record, &creds, current).await
    })
    .await;
    match finished {
        Ok(after) => Ok(Some(after)),
        Err(ApiError::Conflict(_)) => Ok(Some(current)),
        Err(e) => Err(e),
    }
}

/// Removes the previous credential from Twilio (already gone is done), then from the table;
/// answers the credential without it.
async fn finish(
    services: &Services,
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    mut current: SipCredentialRecord,
) -> Result<SipCredentialRecord, ApiError> {
    let Some(previous) = current.previous.take() else { return Ok(current) };
    let old = TwilioResource::Credential {
        list_sid: current.credential_list_sid.clone(),
        credential_sid: previous.credential_sid.clone(),
    };
    services.twilio.remove(creds, &old).await.map_err(|e| twilio_problem("removing the previous SIP credential", e))?;
    let event = AuditEvent::new(&record.organization_id, record.id, Action::SipCredentialRotateFinish)
        .sid(&previous.credential_sid);
    services
        .store
        .forget_previous_sip_credential(&record.organization_id, record.id, &previous.credential_sid, &event)
        .await?;
    tracing::info!(
        credential_sid = %previous.credential_sid,
        "previous SIP credential removed"
    );
    Ok(current)
}

async fn current_credential(services: &Services, record: &ProviderRecord) -> Result<SipCredentialRecord, ApiError> {
    services.store.get_sip_credential(&record.organization_id, record.id).await?.ok_or_else(|| {
        ApiError::Conflict(format!(
            "Provider {} has no stored SIP credential; run POST /api/v1/providers/{}/repair first.",
            record.id, record.id
        ))
    })
}

async fn forget_intent(services: &Services, key: &IntentKey) {
    if let Err(e) = services.store.forget_intent(key).await {
        tracing::warn!(error = %e, "could not remove a rotation's intent; the sweeper will");
    }
}
