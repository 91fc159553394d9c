//! The audit trail: what the service did for a provider, who asked (the task's [`Actor`]), and when, written with the
//! change it records. Why: docs/decisions/audit-with-the-change.md.

use crate::model::OrganizationId;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use uuid::Uuid;

tokio::task_local! {
    static ACTOR: Actor;
}

/// Who a change is made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// `api-key`, `job`, `call-engine` or `operator` (`admin`); `unknown` where nothing said.
    pub kind: String,
    /// The API key id (never the key), or the job's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Actor {
    pub fn api_key(id: Option<&str>) -> Self {
        Self { kind: "api-key".into(), id: id.map(str::to_owned) }
    }

    pub fn job(name: &str) -> Self {
        Self { kind: "job".into(), id: Some(name.to_owned()) }
    }

    pub fn call_engine() -> Self {
        Self { kind: "call-engine".into(), id: None }
    }

    fn unknown() -> Self {
        Self { kind: "unknown".into(), id: None }
    }
}

/// Runs `work` on behalf of `actor`: the events it records name it.
pub async fn acting_as<F: Future>(actor: Actor, work: F) -> F::Output {
    ACTOR.scope(actor, work).await
}

/// The actor of the current task.
pub fn actor() -> Actor {
    ACTOR.try_with(Clone::clone).unwrap_or_else(|_| Actor::unknown())
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    RotateCredentials,
    Import,
    RemoveNumber,
    Verify,
    Repair,
    SipCredentialRotate,
    SipCredentialRotateFinish,
    SipCredentialRead,
    DeleteStarted,
    DeleteNumberReleased,
    Deleted,
    DeleteForced,
}

impl Action {
    pub const ALL: [Action; 14] = [
        Action::Create,
        Action::Update,
        Action::RotateCredentials,
        Action::Import,
        Action::RemoveNumber,
        Action::Verify,
        Action::Repair,
        Action::SipCredentialRotate,
        Action::SipCredentialRotateFinish,
        Action::SipCredentialRead,
        Action::DeleteStarted,
        Action::DeleteNumberReleased,
        Action::Deleted,
        Action::DeleteForced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::RotateCredentials => "rotate-credentials",
            Action::Import => "import",
            Action::RemoveNumber => "remove-number",
            Action::Verify => "verify",
            Action::Repair => "repair",
            Action::SipCredentialRotate => "sip-credential-rotate",
            Action::SipCredentialRotateFinish => "sip-credential-rotate-finish",
            Action::SipCredentialRead => "sip-credential-read",
            Action::DeleteStarted => "delete-started",
            Action::DeleteNumberReleased => "delete-number-released",
            Action::Deleted => "deleted",
            Action::DeleteForced => "delete-forced",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }
}

/// One event of a provider's trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: Uuid,
    #[serde(skip)]
    pub organization_id: OrganizationId,
    pub provider_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    pub action: Action,
    pub actor: Actor,
    /// The Twilio SIDs the change touched.
    pub twilio_sids: Vec<String>,
    /// `succeeded`, or what the change found (a verification's status).
    pub outcome: String,
    /// Fingerprints of the secrets involved (never the values), by what they are.
    pub secret_fingerprints: BTreeMap<String, String>,
    /// What else is worth knowing (a repair's actions, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event of the current task's actor, now, succeeded.
    pub fn new(organization_id: &OrganizationId, provider_id: Uuid, action: Action) -> Self {
        Self {
            id: Uuid::now_v7(),
            organization_id: organization_id.clone(),
            provider_id,
            at: Timestamp::now(),
            action,
            actor: actor(),
            twilio_sids: Vec::new(),
            outcome: "succeeded".into(),
            secret_fingerprints: BTreeMap::new(),
            detail: None,
        }
    }

    /// Names another actor than the task's (the call engine, which has no API key).
    pub fn by(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    pub fn sid(mut self, sid: impl std::fmt::Display) -> Self {
        self.twilio_sids.push(sid.to_string());
        self
    }

    pub fn sids<T: std::fmt::Display>(mut self, sids: impl IntoIterator<Item = T>) -> Self {
        self.twilio_sids.extend(sids.into_iter().map(|sid| sid.to_string()));
        self
    }

    /// Records that `secret` (what it is: `authToken`, `sipPassword`, …) was involved.
    pub fn secret(mut self, name: &str, secret: &str) -> Self {
        self.secret_fingerprints.insert(name.to_owned(), fingerprint(secret));
        self
    }

    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// A fingerprint of a secret: the first 16 hex digits of a domain-separated SHA-256. It tells
/// two secrets apart (which token a change used) and cannot give one back: every secret the
/// service handles has at least 128 bits of entropy.
pub fn fingerprint(secret: &str) -> String {
    let digest =
        sha2::Sha256::new().chain_update(b"twilio-provider-service/fingerprint/v1\0").chain_update(secret).finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_secrets_apart_and_never_hold_them() {
        let token = "0123456789abcdef0123456789abcdef";
        let print = fingerprint(token);
        assert_eq!(print, fingerprint(token));
        assert_ne!(print, fingerprint("0123456789abcdef0123456789abcdee"));
        assert!(!print.contains(&token[..8]) && print.len() == "sha256:".len() + 16);
    }

    #[tokio::test]
    async fn events_name_the_task_s_actor() {
        let org = OrganizationId::parse("org-a").unwrap();
        let event =
            acting_as(Actor::api_key(Some("k1")), async { AuditEvent::new(&org, Uuid::nil(), Action::Update) }).await;
        assert_eq!(event.actor, Actor::api_key(Some("k1")));
        assert_eq!(AuditEvent::new(&org, Uuid::nil(), Action::Update).actor.kind, "unknown");
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
        }
    }
}
