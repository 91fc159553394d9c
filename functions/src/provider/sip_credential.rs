//! What the platform's call engine needs to place outbound calls through a customer's trunk:
//! the termination URI and the SIP user and password (`get-sip-credential`, and operators'
//! `admin sip-credential get`). Failures carry a stable `errorType` ([`SipCredentialError`]).

use crate::provider::record::owner_of;
use lambda_http::lambda_runtime::Diagnostic;
use serde::{Serialize, Serializer};
use shared::audit::{Action, Actor, AuditEvent};
use shared::config::{ConfigError, StorageConfig};
use shared::crypto::{CryptoError, Envelope, SecretKind};
use shared::model::{OrganizationId, SipPassword};
use shared::storage::{PreviousSipCredential, ProviderStore};
use uuid::Uuid;

/// The table and KMS: all the reader needs (no Twilio).
#[derive(Clone, Debug)]
pub struct SipCredentialReader {
    pub store: ProviderStore,
    pub envelope: Envelope,
}

impl SipCredentialReader {
    pub fn new(aws: &aws_config::SdkConfig, storage: &StorageConfig) -> Self {
        Self {
            store: ProviderStore::new(aws_sdk_dynamodb::Client::new(aws), storage.table_name.clone()),
            envelope: Envelope::new(aws_sdk_kms::Client::new(aws), storage.kms_key_id.clone()),
        }
    }

    pub async fn from_env() -> Result<Self, ConfigError> {
        let storage = StorageConfig::from_env()?;
        let retention = shared::config::event_retention_from_env()?;
        let aws = shared::tls::function_sdk_config().await;
        let mut reader = Self::new(&aws, &storage);
        reader.store = reader.store.with_event_retention(retention);
        Ok(reader)
    }
}

/// Who reads: the call engine (Lambda Invoke carries no API key), unless the task says
/// otherwise (an operator's `admin sip-credential get`).
fn reader_actor() -> Actor {
    let actor = shared::audit::actor();
    if actor.kind == "unknown" { Actor::call_engine() } else { actor }
}

/// The SIP credential of a provider, as the call engine uses it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SipCredential {
    pub provider_id: Uuid,
    pub trunk_sid: shared::model::TrunkSid,
    pub termination_uri: String,
    /// How to dial `terminationUri`: `tls` for a secure trunk (TLS signalling, SRTP media;
    /// Twilio refuses anything else), else `udp`.
    pub transport: &'static str,
    pub username: String,
    #[serde(serialize_with = "expose_password")]
    pub password: SipPassword,
    /// During a rotation's overlap, the credential it replaced: still accepted by Twilio until
    /// `expiresAt`, so calls placed with it keep working while engines switch. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousCredential>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousCredential {
    pub username: String,
    #[serde(serialize_with = "expose_password")]
    pub password: SipPassword,
    pub expires_at: shared::time::Timestamp,
}

fn expose_password<S: Serializer>(password: &SipPassword, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(password.expose())
}

#[derive(Debug, thiserror::Error)]
pub enum SipCredentialError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("no provider {provider_id} exists in organization {organization_id}")]
    ProviderNotFound { organization_id: OrganizationId, provider_id: Uuid },
    #[error("provider {0} is being deleted; its SIP credential is no longer usable")]
    ProviderBeingDeleted(Uuid),
    #[error("the stored SIP credential of provider {0} cannot be decrypted; run repair to issue a new one")]
    CredentialUnusable(Uuid),
    #[error("the table or KMS could not be reached; retry")]
    Unavailable,
}

impl SipCredentialError {
    /// The `errorType` of the function error: stable, for the call engine to match on.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "InvalidRequest",
            Self::ProviderNotFound { .. } => "ProviderNotFound",
            Self::ProviderBeingDeleted(_) => "ProviderBeingDeleted",
            Self::CredentialUnusable(_) => "CredentialUnusable",
            Self::Unavailable => "Unavailable",
        }
    }
}

impl From<SipCredentialError> for Diagnostic {
    fn from(e: SipCredentialError) -> Self {
        Diagnostic { error_type: e.error_type().to_owned(), error_message: e.to_string() }
    }
}

/// Two DynamoDB reads (the provider and its SIP credential, side by side) and one KMS call.
#[tracing::instrument(skip_all, fields(organization_id = %organization_id, provider_id = %provider_id))]
pub async fn read(
    reader: &SipCredentialReader,
    organization_id: &OrganizationId,
    provider_id: Uuid,
) -> Result<SipCredential, SipCredentialError> {
    let (provider, credential) = tokio::join!(
        reader.store.get_provider(organization_id, provider_id),
        reader.store.get_sip_credential(organization_id, provider_id)
    );
    let not_found = || SipCredentialError::ProviderNotFound { organization_id: organization_id.clone(), provider_id };
    let record = provider.map_err(|e| unavailable(&e))?.ok_or_else(not_found)?;
    if record.deletion.is_some() {
        return Err(SipCredentialError::ProviderBeingDeleted(provider_id));
    }
    let credential = credential.map_err(|e| unavailable(&e))?.ok_or_else(not_found)?;
    let owner = owner_of(&record);
    let open = |sealed| {
        let owner = &owner;
        async move {
            let opened = reader.envelope.open(owner, SecretKind::SipPassword, sealed).await;
            opened.map(|password| SipPassword::from_stored(secrecy::ExposeSecret::expose_secret(&password).to_owned()))
        }
    };
    // Past its expiry the previous credential is on its way out: engines must not pick it up.
    let previous = credential.previous.as_ref().filter(|p| p.expires_at > shared::time::Timestamp::now());
    let (password, previous_password) = tokio::join!(open(&credential.password), async {
        match previous {
            Some(previous) => Some(open(&previous.password).await),
            None => None,
        }
    });
    let password = password.map_err(|e| unusable(provider_id, e))?;
    // Every read of a password is on the trail before the password leaves: a read that cannot
    // be recorded is refused.
    let event = AuditEvent::new(organization_id, provider_id, Action::SipCredentialRead)
        .by(reader_actor())
        .sids(std::iter::once(&credential.credential_sid).chain(previous.map(|p| &p.credential_sid)));
    reader.store.record_event(&event).await.map_err(|e| unavailable(&e))?;
    let previous = previous_of(previous, previous_password);
    Ok(SipCredential {
        provider_id,
        trunk_sid: record.trunk_sid.clone(),
        termination_uri: record.termination_uri.clone(),
        transport: if record.secure_trunking { "tls" } else { "udp" },
        username: credential.username,
        password,
        previous,
    })
}

/// The table or KMS could not be reached: logged, and answered as `Unavailable` (worth a retry).
fn unavailable(e: &dyn std::fmt::Display) -> SipCredentialError {
    tracing::error!(error = %e, "reading the SIP credential failed");
    SipCredentialError::Unavailable
}

/// The stored password could not be opened: KMS failing is worth a retry; a password that
/// cannot be decrypted needs a repair.
fn unusable(provider_id: Uuid, e: CryptoError) -> SipCredentialError {
    match e {
        CryptoError::Kms(_) => unavailable(&e),
        CryptoError::WrongContext | CryptoError::Malformed(_) => {
            tracing::error!(error = %e, "stored SIP password cannot be decrypted");
            SipCredentialError::CredentialUnusable(provider_id)
        }
    }
}

/// The previous credential as engines get it, with its password opened.
fn previous_of(
    previous: Option<&PreviousSipCredential>,
    password: Option<Result<SipPassword, CryptoError>>,
) -> Option<PreviousCredential> {
    match (previous, password) {
        (Some(previous), Some(Ok(password))) => Some(PreviousCredential {
            username: previous.username.clone(),
            password,
            expires_at: previous.expires_at.clone(),
        }),
        // The current credential is what matters: a previous one that cannot be opened is left out.
        (Some(_), Some(Err(e))) => {
            tracing::warn!(error = %e, "the previous SIP password cannot be opened; left out");
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_carries_the_password_but_its_debug_print_does_not() {
        let credential = SipCredential {
            provider_id: Uuid::nil(),
            trunk_sid: shared::model::TrunkSid::parse(&format!("TK{}", "1".repeat(32))).unwrap(),
            termination_uri: "sip:x.pstn.twilio.com".into(),
            transport: "udp",
            username: "u".into(),
            password: SipPassword::from_stored("Secret123Secret123Secret123Secre".into()),
            previous: Some(PreviousCredential {
                username: "p".into(),
                password: SipPassword::from_stored("Older4567Older4567Older4567Older".into()),
                expires_at: shared::time::Timestamp::now(),
            }),
        };
        let answer = serde_json::to_string(&credential).unwrap();
        assert!(answer.contains("Secret123") && answer.contains("Older4567"), "{answer}");
        let debug = format!("{credential:?}");
        assert!(!debug.contains("Secret123") && !debug.contains("Older4567"), "{debug}");
    }
}
