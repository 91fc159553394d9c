//! Intents: what a function is about to change in a customer's Twilio account, written before the change and removed
//! by the write that makes the change official, in the same transaction. Why: docs/decisions/intents.md.

use super::{ProviderStore, SealedCredential, StoreError};
use crate::crypto::EncryptedSecret;
use crate::model::{
    AccountSid, CredentialListSid, OrganizationId, PhoneNumberSid, TrunkSid, TwilioRegion, VoiceRouting,
};
use crate::storage::item::{Fields, Item, JOB_PROVIDER_ID, n, org_key, query_prefix, s, secret};
use crate::twilio::TwilioResource;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// Added to the time the writing invocation had left: past it, that invocation is over.
const GRACE_MARGIN: Duration = Duration::from_secs(60);
/// Lambda's longest timeout: the writer's lifetime when it has no deadline (a local server).
const LONGEST_INVOCATION: Duration = Duration::from_secs(900);

/// Which intent: one item per change under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentKey {
    pub organization_id: OrganizationId,
    pub provider_id: Uuid,
    pub id: Uuid,
}

impl IntentKey {
    pub fn new(organization_id: OrganizationId, provider_id: Uuid) -> Self {
        Self { organization_id, provider_id, id: Uuid::now_v7() }
    }

    /// A provider's delete has one intent, rewritten by each of its steps.
    pub fn deletion(organization_id: OrganizationId, provider_id: Uuid) -> Self {
        Self { organization_id, provider_id, id: provider_id }
    }

    fn item(&self) -> Item {
        org_key(&self.organization_id, format!("{}{}", intents_prefix(self.provider_id), self.id))
    }

    /// The transaction item that removes the intent, for the write that makes its change
    /// official.
    pub(crate) fn done(&self, table: &str) -> TransactWriteItem {
        let delete = Delete::builder().table_name(table).set_key(Some(self.item())).build().expect("table and key set");
        TransactWriteItem::builder().delete(delete).build()
    }
}

fn intents_prefix(provider_id: Uuid) -> String {
    format!("INTENT#{provider_id}#")
}

/// A change about to be made in a customer's Twilio account.
#[derive(Debug, Clone)]
pub struct Intent {
    pub key: IntentKey,
    pub account_sid: AccountSid,
    /// The Twilio Region the change is made in (the token's).
    pub twilio_region: TwilioRegion,
    /// The credential the change is made with (sealed for this provider), so the sweeper can
    /// act even when no provider record exists (a create that died).
    pub credential: SealedCredential,
    /// When it was written (Unix seconds).
    pub written_at: u64,
    /// How long after `written_at` the writing invocation is certainly over.
    pub grace: Duration,
    pub change: Change,
}

/// What is about to change.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant, reason = "a few live at a time; boxing would only add noise")]
pub enum Change {
    /// A create's or repair's new resources; removed when abandoned.
    NewResources(NewResources),
    /// An import puts a number on the trunk; given back when abandoned.
    Attach {
        trunk_sid: TrunkSid,
        number_sid: PhoneNumberSid,
        /// The routing it had (masked; the exact one sealed), as its record would hold.
        previous_routing: VoiceRouting,
        previous_routing_sealed: Option<EncryptedSecret>,
        /// The import's reservation of the number, cancelled when the import is abandoned.
        reservation: Uuid,
    },
    /// A removal gives a number back; its record is forgotten when abandoned (the give-back is
    /// finished first).
    Removal { number_id: Uuid },
    /// A delete step gives numbers back and removes the trunk; continued through the deletion
    /// queue when abandoned (unless the delete stopped on a failure it recorded).
    Deletion,
}

/// New resources, found by SID once known and by their unique names before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewResources {
    /// Domain names a new trunk may get (a taken one is retried under the next).
    pub trunk_domains: Vec<String>,
    /// Friendly names of new credential lists.
    pub list_names: Vec<String>,
    /// SIP usernames new in existing credential lists.
    pub credentials: Vec<(CredentialListSid, String)>,
    /// Those created so far, as `(kind, sid)`.
    pub known: Vec<(String, String)>,
}

impl NewResources {
    pub fn add_known(&mut self, resource: &TwilioResource) {
        self.known.push((resource.kind().to_owned(), resource.sid()));
    }

    pub fn known(&self) -> Vec<TwilioResource> {
        self.known.iter().filter_map(|(kind, sid)| TwilioResource::parse(kind, sid)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.trunk_domains.is_empty() && self.list_names.is_empty() && self.credentials.is_empty()
    }
}

/// The non-secret part of a change, stored as JSON.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum StoredChange {
    NewResources(NewResources),
    #[serde(rename_all = "camelCase")]
    Attach {
        trunk_sid: TrunkSid,
        number_sid: PhoneNumberSid,
        previous_routing: VoiceRouting,
        reservation: Uuid,
    },
    #[serde(rename_all = "camelCase")]
    Removal {
        number_id: Uuid,
    },
    Deletion,
}

impl Intent {
    /// An intent written now by an invocation that has `shared::deadline::remaining()` left.
    pub fn now(
        key: IntentKey,
        account_sid: AccountSid,
        twilio_region: TwilioRegion,
        credential: SealedCredential,
        change: Change,
    ) -> Self {
        let lifetime = crate::deadline::remaining().unwrap_or(LONGEST_INVOCATION);
        Self {
            key,
            account_sid,
            twilio_region,
            credential,
            written_at: super::epoch_seconds(),
            grace: lifetime + GRACE_MARGIN,
            change,
        }
    }

    /// Whether the sweeper may take it at `now` (Unix seconds): its writer must be over, or
    /// `grace` (an operator's override) has passed since it was written.
    pub fn abandoned(&self, now: u64, grace: Option<Duration>) -> bool {
        now >= self.written_at.saturating_add(grace.unwrap_or(self.grace).as_secs())
    }

    fn to_item(&self) -> Item {
        let (stored, sealed) = match &self.change {
            Change::NewResources(new) => (StoredChange::NewResources(new.clone()), None),
            Change::Attach { trunk_sid, number_sid, previous_routing, previous_routing_sealed, reservation } => (
                StoredChange::Attach {
                    trunk_sid: trunk_sid.clone(),
                    number_sid: number_sid.clone(),
                    previous_routing: previous_routing.clone(),
                    reservation: *reservation,
                },
                previous_routing_sealed.as_ref(),
            ),
            Change::Removal { number_id } => (StoredChange::Removal { number_id: *number_id }, None),
            Change::Deletion => (StoredChange::Deletion, None),
        };
        let mut item = self.key.item();
        item.extend([
            ("entity".to_owned(), s("intent")),
            ("organizationId".to_owned(), s(self.key.organization_id.as_str())),
            ("providerId".to_owned(), s(self.key.provider_id.to_string())),
            (JOB_PROVIDER_ID.to_owned(), s(self.key.provider_id.to_string())),
            ("id".to_owned(), s(self.key.id.to_string())),
            ("accountSid".to_owned(), s(self.account_sid.as_str())),
            ("twilioRegion".to_owned(), s(self.twilio_region.as_str())),
            ("writtenAt".to_owned(), n(self.written_at)),
            ("graceSeconds".to_owned(), n(self.grace.as_secs())),
            ("change".to_owned(), s(serde_json::to_string(&stored).expect("change serializes"))),
        ]);
        if let Some(sealed) = sealed {
            item.insert("previousRoutingSealed".to_owned(), secret(sealed));
        }
        self.credential.put(&mut item);
        item
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let f = Fields(item);
        let stored: StoredChange =
            f.json("change")?.ok_or_else(|| StoreError::Corrupt("intent without its change".into()))?;
        let change = match stored {
            StoredChange::NewResources(new) => Change::NewResources(new),
            StoredChange::Attach { trunk_sid, number_sid, previous_routing, reservation } => Change::Attach {
                trunk_sid,
                number_sid,
                previous_routing,
                previous_routing_sealed: f.opt_secret("previousRoutingSealed")?,
                reservation,
            },
            StoredChange::Removal { number_id } => Change::Removal { number_id },
            StoredChange::Deletion => Change::Deletion,
        };
        Ok(Self {
            key: IntentKey {
                organization_id: f.organization_id("organizationId")?,
                provider_id: f.uuid("providerId")?,
                id: f.uuid("id")?,
            },
            account_sid: f.parsed("accountSid", AccountSid::parse)?,
            twilio_region: super::twilio_region_of(item)?,
            credential: SealedCredential::read(&f)?,
            written_at: f.number("writtenAt")?,
            grace: Duration::from_secs(f.number("graceSeconds")?),
            change,
        })
    }
}

impl ProviderStore {
    /// Writes an intent (a rewrite of one replaces it: a repair adds to its own as it goes).
    pub async fn record_intent(&self, intent: &Intent) -> Result<(), StoreError> {
        crate::storage::item::put(&self.client, &self.table, intent.to_item()).await
    }

    /// Removes an intent whose change was undone, or never made.
    pub async fn forget_intent(&self, key: &IntentKey) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(())
    }

    /// A provider's intents (every page). An unreadable one is an error for that one only.
    pub async fn intents_of(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Vec<Result<Intent, StoreError>>, StoreError> {
        let items = query_prefix(&self.client, &self.table, org, &intents_prefix(provider_id)).await?;
        Ok(items.iter().map(Intent::from_item).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> EncryptedSecret {
        EncryptedSecret {
            format_version: 1,
            key_id: "k".into(),
            encrypted_data_key: vec![1, 2],
            nonce: vec![3; 12],
            ciphertext: vec![4, 5],
        }
    }

    #[test]
    fn intents_round_trip_through_their_items() {
        let key = IntentKey::new(OrganizationId::parse("org-a").unwrap(), Uuid::now_v7());
        let account = AccountSid::parse(&format!("AC{}", "1".repeat(32))).unwrap();
        let trunk_sid = TrunkSid::parse(&format!("TK{}", "2".repeat(32))).unwrap();
        let number_sid = PhoneNumberSid::parse(&format!("PN{}", "3".repeat(32))).unwrap();
        let mut new = NewResources { trunk_domains: vec!["vai-x.pstn.twilio.com".into()], ..Default::default() };
        new.add_known(&TwilioResource::Trunk { trunk_sid: trunk_sid.clone() });
        let changes = [
            Change::NewResources(new),
            Change::Attach {
                trunk_sid,
                number_sid,
                previous_routing: VoiceRouting::default(),
                previous_routing_sealed: Some(sealed()),
                reservation: Uuid::now_v7(),
            },
            Change::Removal { number_id: Uuid::now_v7() },
            Change::Deletion,
        ];
        // A token, a customer's key and a minted key, each in turn.
        let key_sid = crate::model::ApiKeySid::parse(&format!("SK{}", "4".repeat(32))).unwrap();
        let credentials = [None, Some(false), Some(true)].map(|minted| SealedCredential {
            secret: sealed(),
            api_key: minted.map(|minted| super::super::StoredApiKey { sid: key_sid.clone(), minted }),
        });
        for (change, credential) in changes.into_iter().zip(credentials.into_iter().cycle()) {
            let intent =
                Intent::now(key.clone(), account.clone(), TwilioRegion::Ie1, credential.clone(), change.clone());
            let read = Intent::from_item(&intent.to_item()).unwrap();
            assert_eq!(
                (read.key, read.change, read.written_at, read.grace, read.credential),
                (key.clone(), change, intent.written_at, intent.grace, credential)
            );
        }
    }

    #[test]
    fn an_intent_is_taken_only_once_its_writer_must_be_over_unless_overridden() {
        let key = IntentKey::new(OrganizationId::parse("org-a").unwrap(), Uuid::now_v7());
        let account = AccountSid::parse(&format!("AC{}", "1".repeat(32))).unwrap();
        let credential = SealedCredential { secret: sealed(), api_key: None };
        let intent =
            Intent::now(key, account, TwilioRegion::Us1, credential, Change::Removal { number_id: Uuid::nil() });
        let written = intent.written_at;
        assert_eq!(intent.grace, LONGEST_INVOCATION + GRACE_MARGIN, "no deadline: Lambda's longest");
        assert!(!intent.abandoned(written + 60, None));
        assert!(intent.abandoned(written + intent.grace.as_secs(), None));
        assert!(intent.abandoned(written, Some(Duration::ZERO)));
        assert!(!intent.abandoned(written, Some(Duration::from_secs(5))));
        assert!(!intent.abandoned(written, Some(Duration::MAX)), "no overflow");
    }
}
