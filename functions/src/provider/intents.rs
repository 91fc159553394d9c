//! The sweeper's first step: intents whose writer must be over, undone (leftovers the sweep then removes or gives back)
//! or finished (a removal; a delete step, through the deletion queue). Why: docs/decisions/intents.md.

use crate::provider::cleanup::record_leftovers;
use crate::provider::give_back::remove_number;
use crate::services::Services;
use shared::ApiError;
use shared::crypto::SecretOwner;
use shared::model::{OrganizationId, TwilioCredentials};
use shared::storage::{Change, Intent, Leftover, NewResources, OpenCredentialError, ProviderRecord, StoreError};
use shared::twilio::{TwilioError, TwilioResource};
use std::time::Duration;
use uuid::Uuid;

/// How many trunks, credential lists or credentials are looked through for a resource of an
/// abandoned intent.
const LOOKUP_MAX_ITEMS: usize = 10_000;

/// What became of a provider's intents.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Too young: their writer may still be at work.
    pub pending: usize,
    /// Abandoned, but not resolved this time (Twilio or storage unavailable): tried next pass.
    pub retry: usize,
    /// Unreadable, or their token cannot be opened: logged for an operator.
    pub stuck: usize,
}

/// Resolves the provider's abandoned intents. `grace` overrides the age each recorded.
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %provider_id))]
pub async fn resolve(
    services: &Services,
    org: &OrganizationId,
    provider_id: Uuid,
    grace: Option<Duration>,
) -> Result<Resolved, StoreError> {
    let mut resolved = Resolved::default();
    let now = shared::time::unix_now();
    let mut abandoned = Vec::new();
    for intent in services.store.intents_of(org, provider_id).await? {
        match intent {
            Ok(intent) if intent.abandoned(now, grace) => abandoned.push(intent),
            Ok(_) => resolved.pending += 1,
            Err(e) => {
                tracing::error!(error = %e, "unreadable intent; check the customer's Twilio account by hand");
                resolved.stuck += 1;
            }
        }
    }
    if abandoned.is_empty() {
        return Ok(resolved);
    }
    let provider = services.store.get_provider(org, provider_id).await?;
    for intent in abandoned {
        match resolve_one(services, provider.as_ref(), &intent).await {
            Ok(()) => {
                services.store.forget_intent(&intent.key).await?;
                tracing::info!(intent_id = %intent.key.id, "abandoned intent resolved");
            }
            Err(Unresolved::Retry(why)) => {
                tracing::warn!(intent_id = %intent.key.id, why, "abandoned intent not resolved yet");
                resolved.retry += 1;
            }
            Err(Unresolved::Stuck(why)) => {
                tracing::error!(intent_id = %intent.key.id, why, "abandoned intent cannot be resolved; check the customer's Twilio account by hand");
                resolved.stuck += 1;
            }
        }
    }
    Ok(resolved)
}

enum Unresolved {
    Retry(String),
    Stuck(String),
}

impl From<StoreError> for Unresolved {
    fn from(e: StoreError) -> Self {
        Self::Retry(e.to_string())
    }
}

impl From<TwilioError> for Unresolved {
    fn from(e: TwilioError) -> Self {
        Self::Retry(e.to_string())
    }
}

async fn resolve_one(
    services: &Services,
    provider: Option<&ProviderRecord>,
    intent: &Intent,
) -> Result<(), Unresolved> {
    let key = &intent.key;
    match &intent.change {
        Change::NewResources(new) => {
            let creds = open_credentials(services, provider, intent).await?;
            let mut found = existing(services, &creds, new).await?;
            // What the provider's record names is in use (its write was made after all).
            if let Some(provider) = provider {
                let stored_credential = services.store.get_sip_credential(&key.organization_id, provider.id).await?;
                found.retain(|resource| !in_use(resource, provider, stored_credential.as_ref()));
            }
            record(services, provider, intent, found, None).await
        }
        Change::Attach { trunk_sid, number_sid, previous_routing, previous_routing_sealed, reservation } => {
            // The dead import's reservation (its own only: never a later import's), so the
            // give-back can take the number at once.
            services.store.cancel_reservation(number_sid, *reservation).await?;
            let resource =
                TwilioResource::TrunkPhoneNumber { trunk_sid: trunk_sid.clone(), number_sid: number_sid.clone() };
            let routing = (previous_routing.clone(), previous_routing_sealed.clone());
            record(services, provider, intent, vec![resource], Some(routing)).await
        }
        Change::Deletion => continue_deletion(services, provider, intent).await,
        Change::Removal { number_id } => {
            match remove_number(services, &key.organization_id, key.provider_id, *number_id).await {
                // Gone already, or the provider's delete gives back its numbers itself.
                Ok(_) | Err(ApiError::NotFound(_) | ApiError::Conflict(_)) => Ok(()),
                Err(ApiError::StoredSecretUnusable(why)) => Err(Unresolved::Stuck(why)),
                Err(e) => Err(Unresolved::Retry(e.to_string())),
            }
        }
    }
}

/// A delete whose step died before it queued the next goes on through the deletion queue (a
/// step that stops on a failure removes its intent: DELETE again continues those).
async fn continue_deletion(
    services: &Services,
    provider: Option<&ProviderRecord>,
    intent: &Intent,
) -> Result<(), Unresolved> {
    if provider.is_none_or(|p| p.deletion.is_none()) {
        return Ok(());
    }
    let queue = services.deletions.as_ref().ok_or_else(|| {
        Unresolved::Stuck("a delete stopped midway and no deletion queue is configured (DELETION_QUEUE_URL)".into())
    })?;
    let message = shared::queue::ContinueDeletion {
        organization_id: intent.key.organization_id.to_string(),
        provider_id: intent.key.provider_id,
    };
    queue.send(&message).await.map_err(|e| Unresolved::Retry(e.to_string()))
}

/// The live provider's current token (a rotation since counts), else the intent's own.
async fn open_credentials(
    services: &Services,
    provider: Option<&ProviderRecord>,
    intent: &Intent,
) -> Result<TwilioCredentials, Unresolved> {
    let sealed = provider.map_or(&intent.credential, |p| &p.credential);
    let owner =
        SecretOwner { organization_id: intent.key.organization_id.clone(), provider_id: intent.key.provider_id };
    sealed.open(&services.envelope, &owner, &intent.account_sid, intent.twilio_region).await.map_err(|e| match e {
        OpenCredentialError::Crypto(shared::crypto::CryptoError::Kms(e)) => Unresolved::Retry(e.to_string()),
        other => Unresolved::Stuck(format!("the credential cannot be opened: {other}")),
    })
}

/// The intent's resources that exist: those known by SID, and those found by their unique names.
async fn existing(
    services: &Services,
    creds: &TwilioCredentials,
    new: &NewResources,
) -> Result<Vec<TwilioResource>, Unresolved> {
    let twilio = &services.twilio;
    let mut found = new.known();
    if !new.trunk_domains.is_empty() {
        let trunks = twilio.list_trunks(creds, LOOKUP_MAX_ITEMS).await?;
        found.extend(
            trunks
                .into_iter()
                .filter(|t| t.domain_name.as_ref().is_some_and(|d| new.trunk_domains.contains(d)))
                .map(|t| TwilioResource::Trunk { trunk_sid: t.sid }),
        );
    }
    if !new.list_names.is_empty() {
        let lists = twilio.list_credential_lists(creds, LOOKUP_MAX_ITEMS).await?;
        found.extend(
            lists
                .into_iter()
                .filter(|l| l.friendly_name.as_ref().is_some_and(|n| new.list_names.contains(n)))
                .map(|l| TwilioResource::CredentialList { list_sid: l.sid }),
        );
    }
    for (list_sid, username) in &new.credentials {
        let credentials = match twilio.list_credentials(creds, list_sid, LOOKUP_MAX_ITEMS).await {
            Ok(credentials) => credentials,
            // The list went, and its credentials with it.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        found.extend(
            credentials
                .into_iter()
                .filter(|c| &c.username == username)
                .map(|c| TwilioResource::Credential { list_sid: list_sid.clone(), credential_sid: c.sid }),
        );
    }
    found.sort_by_key(|r| (r.kind(), r.sid()));
    found.dedup();
    Ok(found)
}

fn in_use(
    resource: &TwilioResource,
    provider: &ProviderRecord,
    stored_credential: Option<&shared::storage::SipCredentialRecord>,
) -> bool {
    match resource {
        TwilioResource::Trunk { trunk_sid } => *trunk_sid == provider.trunk_sid,
        TwilioResource::CredentialList { list_sid } => *list_sid == provider.credential_list_sid,
        // The current credential, or a rotation's previous one still in its overlap.
        TwilioResource::Credential { credential_sid, .. } => {
            stored_credential.is_some_and(|c| c.is_known(credential_sid))
        }
        TwilioResource::TrunkCredentialList { trunk_sid, list_sid } => {
            *trunk_sid == provider.trunk_sid && *list_sid == provider.credential_list_sid
        }
        TwilioResource::TrunkPhoneNumber { .. } => false,
    }
}

/// Records resources as left behind, with the token they were made with (the sweep prefers
/// the live provider's).
async fn record(
    services: &Services,
    provider: Option<&ProviderRecord>,
    intent: &Intent,
    resources: Vec<TwilioResource>,
    routing: Option<(shared::model::VoiceRouting, Option<shared::crypto::EncryptedSecret>)>,
) -> Result<(), Unresolved> {
    if resources.is_empty() {
        return Ok(());
    }
    let (previous_routing, previous_routing_sealed) = match routing {
        Some((masked, sealed)) => (Some(masked), sealed),
        None => (None, None),
    };
    let credential = provider.map_or(&intent.credential, |p| &p.credential);
    let leftovers: Vec<Leftover> = resources
        .into_iter()
        .map(|resource| Leftover {
            previous_routing: previous_routing.clone(),
            previous_routing_sealed: previous_routing_sealed.clone(),
            ..Leftover::new(
                intent.key.organization_id.clone(),
                intent.key.provider_id,
                intent.account_sid.clone(),
                intent.twilio_region,
                Some(credential.clone()),
                resource,
            )
        })
        .collect();
    Ok(record_leftovers(services, &leftovers).await?)
}
