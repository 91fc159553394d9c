//! Removing Twilio resources the service created: the compensation of a failed create or
//! repair, and the orphan sweeper's retries. A 404 from Twilio counts as removed; what cannot
//! be removed is recorded for the sweeper.

use crate::services::Services;
use shared::crypto::{DataKey, SecretKind, SecretOwner};
use shared::model::TwilioCredentials;
use shared::store::{LeftoverResource, OrphanRecord};
use shared::time::now_rfc3339;
use shared::twilio::{TwilioClient, TwilioError};
use std::time::Duration;

/// A Twilio resource created for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioResource {
    Trunk {
        trunk_sid: String,
    },
    CredentialList {
        list_sid: String,
    },
    /// One SIP credential in a credential list.
    Credential {
        list_sid: String,
        credential_sid: String,
    },
    /// An imported number's place on the trunk (left when a forced delete could not give it back).
    TrunkPhoneNumber {
        trunk_sid: String,
        number_sid: String,
    },
    /// The credential list's attachment to the trunk.
    TrunkCredentialList {
        trunk_sid: String,
        list_sid: String,
    },
}

impl TwilioResource {
    pub fn to_leftover(&self) -> LeftoverResource {
        let (kind, sid) = match self {
            Self::Trunk { trunk_sid } => ("trunk", trunk_sid.clone()),
            Self::CredentialList { list_sid } => ("credentialList", list_sid.clone()),
            Self::TrunkCredentialList { trunk_sid, list_sid } => {
                ("trunkCredentialList", format!("{trunk_sid}/{list_sid}"))
            }
            Self::Credential { list_sid, credential_sid } => ("credential", format!("{list_sid}/{credential_sid}")),
            Self::TrunkPhoneNumber { trunk_sid, number_sid } => {
                ("trunkPhoneNumber", format!("{trunk_sid}/{number_sid}"))
            }
        };
        LeftoverResource { kind: kind.to_owned(), sid }
    }

    /// The resource a leftover record names, if it names one this service creates.
    pub fn from_leftover(leftover: &LeftoverResource) -> Option<Self> {
        match leftover.kind.as_str() {
            "trunk" => Some(Self::Trunk { trunk_sid: leftover.sid.clone() }),
            "credentialList" => Some(Self::CredentialList { list_sid: leftover.sid.clone() }),
            "trunkCredentialList" => leftover.sid.split_once('/').map(|(trunk, list)| Self::TrunkCredentialList {
                trunk_sid: trunk.to_owned(),
                list_sid: list.to_owned(),
            }),
            "trunkPhoneNumber" => leftover.sid.split_once('/').map(|(trunk, number)| Self::TrunkPhoneNumber {
                trunk_sid: trunk.to_owned(),
                number_sid: number.to_owned(),
            }),
            "credential" => leftover.sid.split_once('/').map(|(list, credential)| Self::Credential {
                list_sid: list.to_owned(),
                credential_sid: credential.to_owned(),
            }),
            _ => None,
        }
    }

    async fn remove(&self, twilio: &TwilioClient, creds: &TwilioCredentials) -> Result<(), TwilioError> {
        let result = match self {
            Self::Trunk { trunk_sid } => twilio.delete_trunk(creds, trunk_sid).await,
            Self::CredentialList { list_sid } => twilio.delete_credential_list(creds, list_sid).await,
            Self::TrunkCredentialList { trunk_sid, list_sid } => {
                twilio.detach_credential_list(creds, trunk_sid, list_sid).await
            }
            Self::Credential { list_sid, credential_sid } => {
                twilio.delete_credential(creds, list_sid, credential_sid).await
            }
            Self::TrunkPhoneNumber { trunk_sid, number_sid } => {
                twilio.detach_phone_number(creds, trunk_sid, number_sid).await
            }
        };
        match result {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Removal order: attachments first, then trunks, then credential lists (with their credentials).
    fn removal_rank(&self) -> u8 {
        match self {
            Self::TrunkCredentialList { .. } | Self::Credential { .. } | Self::TrunkPhoneNumber { .. } => 0,
            Self::Trunk { .. } => 1,
            Self::CredentialList { .. } => 2,
        }
    }
}

/// Attempts per resource, on top of the client's own retries of 429s and lost connections.
const REMOVE_ATTEMPTS: u32 = 3;
const REMOVE_RETRY_DELAY: Duration = Duration::from_millis(250);

/// Removes the resources in dependency order, each with bounded retries. Returns what is
/// still there, with the last error for each; an attachment whose trunk was deleted is gone.
pub async fn remove_resources(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    resources: &[TwilioResource],
) -> Vec<(TwilioResource, TwilioError)> {
    let mut ordered = resources.to_vec();
    ordered.sort_by_key(TwilioResource::removal_rank);
    let mut left = Vec::new();
    let mut deleted_trunks = Vec::new();
    for resource in ordered {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match resource.remove(twilio, creds).await {
                Ok(()) => {
                    if let TwilioResource::Trunk { trunk_sid } = &resource {
                        deleted_trunks.push(trunk_sid.clone());
                    }
                    break;
                }
                Err(e) if e.is_transient() && attempt < REMOVE_ATTEMPTS => {
                    tracing::warn!(resource = ?resource, attempt, error = %e, "removing a Twilio resource failed; retrying");
                    tokio::time::sleep(REMOVE_RETRY_DELAY * attempt).await;
                }
                Err(e) => {
                    left.push((resource, e));
                    break;
                }
            }
        }
    }
    left.retain(|(resource, _)| match resource {
        TwilioResource::TrunkCredentialList { trunk_sid, .. } | TwilioResource::TrunkPhoneNumber { trunk_sid, .. } => {
            !deleted_trunks.contains(trunk_sid)
        }
        _ => true,
    });
    left
}

/// Records Twilio resources of an existing provider that could not be removed (a number whose
/// attach could not be undone, what a forced delete left) for the orphan sweeper, beside any
/// already recorded. The provider's stored token goes with them: same owner, so the sweeper
/// can open it.
pub async fn record_for_sweeper(
    services: &Services,
    record: &shared::store::ProviderRecord,
    resources: &[TwilioResource],
) -> Result<(), shared::store::StoreError> {
    let store = &services.store;
    let mut leftovers: Vec<LeftoverResource> = resources.iter().map(TwilioResource::to_leftover).collect();
    if let Some(earlier) = store.get_orphan_resources(&record.organization_id, record.id).await? {
        let new: Vec<_> = earlier.into_iter().filter(|r| !leftovers.contains(r)).collect();
        leftovers.extend(new);
    }
    let orphan = OrphanRecord {
        organization_id: record.organization_id.clone(),
        provider_id: record.id,
        account_sid: record.account_sid.clone(),
        auth_token: Some(record.auth_token.clone()),
        resources: leftovers,
        created_at: now_rfc3339(),
        stuck_reason: None,
    };
    store.record_orphan(&orphan).await?;
    shared::metrics::emit("OrphansRecorded", resources.len() as f64, shared::metrics::Unit::Count, &[]);
    Ok(())
}

/// Removes what a failed create or repair made. What cannot be removed is logged at error
/// level and recorded (with the token envelope-encrypted) for the orphan sweeper; a fresh data
/// key is fetched for that when the caller has none.
pub async fn remove_or_record(
    services: &Services,
    creds: &TwilioCredentials,
    owner: &SecretOwner,
    created: &[TwilioResource],
    data_key: Option<&DataKey>,
) {
    if created.is_empty() {
        return;
    }
    let left = remove_resources(&services.twilio, creds, created).await;
    if left.is_empty() {
        tracing::info!(provider_id = %owner.provider_id, removed = created.len(), "created Twilio resources removed");
        return;
    }
    let resources: Vec<_> = left.iter().map(|(resource, _)| resource.to_leftover()).collect();
    let errors: Vec<String> = left.iter().map(|(_, e)| e.to_string()).collect();
    tracing::error!(
        organization_id = %owner.organization_id,
        provider_id = %owner.provider_id,
        account_sid = %creds.account_sid,
        resources = ?resources,
        errors = ?errors,
        "rollback left Twilio resources behind"
    );
    let fresh_key = match data_key {
        Some(_) => None,
        None => services.envelope.generate_data_key(owner).await.ok(),
    };
    let auth_token =
        data_key.or(fresh_key.as_ref()).map(|key| key.seal(SecretKind::AuthToken, creds.auth_token.expose()));
    let orphan = OrphanRecord {
        organization_id: owner.organization_id.clone(),
        provider_id: owner.provider_id,
        account_sid: creds.account_sid.clone(),
        auth_token,
        resources,
        created_at: now_rfc3339(),
        stuck_reason: None,
    };
    match services.store.record_orphan(&orphan).await {
        Ok(()) => {
            shared::metrics::emit("OrphansRecorded", orphan.resources.len() as f64, shared::metrics::Unit::Count, &[])
        }
        Err(e) => {
            tracing::error!(provider_id = %owner.provider_id, error = %e, "could not record the leftover Twilio resources")
        }
    }
}
