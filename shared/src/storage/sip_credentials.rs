//! The generated SIP credential of each provider, and its rotation's overlap.

use super::item::{Fields, Item, Transaction, TransactionFailure, n, org_key, s, secret, sip_credential_sort_key};
use super::{IntentKey, ProviderRecord, ProviderStore, StoreError};
use crate::audit::AuditEvent;
use crate::crypto::EncryptedSecret;
use crate::model::{CredentialListSid, CredentialSid, OrganizationId};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use uuid::Uuid;

/// The generated SIP credential of a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct SipCredentialRecord {
    pub provider_id: Uuid,
    pub username: String,
    pub credential_sid: CredentialSid,
    pub credential_list_sid: CredentialListSid,
    pub password: EncryptedSecret,
    /// The credential a rotation replaced, still in the list until its overlap ends.
    pub previous: Option<PreviousSipCredential>,
}

impl SipCredentialRecord {
    /// Whether a rotation's overlap has ended: its previous credential is due to go.
    pub fn overlap_ended(&self) -> bool {
        self.previous.as_ref().is_some_and(|p| p.expires_at <= Timestamp::now())
    }

    /// Whether a credential in the provider's list is its current or its previous one.
    pub fn is_known(&self, credential_sid: &CredentialSid) -> bool {
        &self.credential_sid == credential_sid
            || self.previous.as_ref().is_some_and(|p| &p.credential_sid == credential_sid)
    }
}

/// The SIP credential a rotation replaced: call engines may still use it until `expires_at`,
/// after which it is removed from Twilio and from here.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousSipCredential {
    pub username: String,
    pub credential_sid: CredentialSid,
    pub password: EncryptedSecret,
    pub expires_at: Timestamp,
}

impl SipCredentialRecord {
    pub(super) fn to_item(&self, org: &OrganizationId) -> Item {
        let mut item = org_key(org, sip_credential_sort_key(self.provider_id));
        item.extend([
            ("entity".to_owned(), s("sipCredential")),
            ("providerId".to_owned(), s(self.provider_id.to_string())),
            ("username".to_owned(), s(self.username.clone())),
            ("credentialSid".to_owned(), s(self.credential_sid.as_str())),
            ("credentialListSid".to_owned(), s(self.credential_list_sid.as_str())),
            ("password".to_owned(), secret(&self.password)),
        ]);
        if let Some(previous) = &self.previous {
            item.extend([
                ("previousUsername".to_owned(), s(previous.username.clone())),
                ("previousCredentialSid".to_owned(), s(previous.credential_sid.as_str())),
                ("previousPassword".to_owned(), secret(&previous.password)),
                ("previousExpiresAt".to_owned(), s(previous.expires_at.as_str())),
            ]);
        }
        item
    }

    pub(super) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let f = Fields(item);
        Ok(Self {
            provider_id: f.uuid("providerId")?,
            username: f.string("username")?,
            credential_sid: f.parsed("credentialSid", CredentialSid::parse)?,
            credential_list_sid: f.parsed("credentialListSid", CredentialListSid::parse)?,
            password: f.secret("password")?,
            previous: match item.contains_key("previousCredentialSid") {
                true => Some(PreviousSipCredential {
                    username: f.string("previousUsername")?,
                    credential_sid: f.parsed("previousCredentialSid", CredentialSid::parse)?,
                    password: f.secret("previousPassword")?,
                    expires_at: f.timestamp("previousExpiresAt")?,
                }),
                false => None,
            },
        })
    }
}

impl ProviderStore {
    pub async fn get_sip_credential(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Option<SipCredentialRecord>, StoreError> {
        self.get_item(org_key(org, sip_credential_sort_key(provider_id)))
            .await?
            .as_ref()
            .map(SipCredentialRecord::from_item)
            .transpose()
    }

    /// Replaces a provider record (conditional on its version, as [`Self::replace_provider`]),
    /// when given its SIP credential record, removes the intent of the change and writes its
    /// event, in one transaction: all change or none does.
    pub async fn replace_provider_and_credential(
        &self,
        record: &ProviderRecord,
        credential: Option<&SipCredentialRecord>,
        intent: Option<&IntentKey>,
        event: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        if credential.is_none() && intent.is_none() && event.is_none() {
            return self.put_replaced(record).await;
        }
        let provider = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record.to_item()))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(record.version - 1))
            .build()
            .expect("table and item set");
        let credential = credential.map(|credential| {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(credential.to_item(&record.organization_id)))
                .build()
                .expect("table and item set");
            TransactWriteItem::builder().put(put).build()
        });
        #[derive(Clone, Copy, PartialEq)]
        enum Part {
            Provider,
            SipCredential,
            Intent,
            Event,
        }
        let transaction = Transaction::new()
            .with(Part::Provider, TransactWriteItem::builder().put(provider).build())
            .with_some(Part::SipCredential, credential)
            .with_some(Part::Intent, intent.map(|key| key.done(&self.table)))
            .with_some(Part::Event, event.map(|event| self.event_put(event)));
        match transaction.send(&self.client).await {
            Err(TransactionFailure::Cancelled(why)) if why.condition_failed(Part::Provider) => {
                Err(StoreError::VersionConflict)
            }
            other => Ok(other?),
        }
    }

    /// Stores a rotated SIP credential (its `previous` the one it replaces) and removes the
    /// rotation's intent, in one transaction, only while the stored credential is still
    /// `replaced` with no rotation under way (`VersionConflict` otherwise, or when the provider's
    /// records are gone).
    pub async fn rotate_sip_credential(
        &self,
        org: &OrganizationId,
        rotated: &SipCredentialRecord,
        replaced: &CredentialSid,
        intent: &IntentKey,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Part {
            SipCredential,
            Intent,
            Event,
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(rotated.to_item(org)))
            .condition_expression("credentialSid = :replaced AND attribute_not_exists(previousCredentialSid)")
            .expression_attribute_values(":replaced", s(replaced.as_str()))
            .build()
            .expect("table and item set");
        let transaction = Transaction::new()
            .with(Part::SipCredential, TransactWriteItem::builder().put(put).build())
            .with(Part::Intent, intent.done(&self.table))
            .with(Part::Event, self.event_put(event));
        match transaction.send(&self.client).await {
            Ok(()) => Ok(()),
            // The answer to a write that committed may be lost; the retry then meets its own.
            Err(_) if self.sip_credential_is_current(org, rotated).await => Ok(()),
            Err(TransactionFailure::Cancelled(why)) if why.condition_failed(Part::SipCredential) => {
                Err(StoreError::VersionConflict)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Whether `credential` is the provider's stored current one (false when that cannot be
    /// read): how a write whose answer was lost is found to be stored after all.
    pub async fn sip_credential_is_current(&self, org: &OrganizationId, credential: &SipCredentialRecord) -> bool {
        let stored = self.get_sip_credential(org, credential.provider_id).await;
        matches!(stored, Ok(Some(stored)) if stored.credential_sid == credential.credential_sid)
    }

    /// Forgets the previous SIP credential once it is gone from Twilio: only `previous_sid`,
    /// never one a later rotation stored. Already forgotten is done.
    pub async fn forget_previous_sip_credential(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        previous_sid: &CredentialSid,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Part {
            SipCredential,
            Event,
        }
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(org_key(org, sip_credential_sort_key(provider_id))))
            .update_expression("REMOVE previousUsername, previousCredentialSid, previousPassword, previousExpiresAt")
            .condition_expression("previousCredentialSid = :previous")
            .expression_attribute_values(":previous", s(previous_sid.as_str()))
            .build()
            .expect("table, key and expression set");
        let transaction = Transaction::new()
            .with(Part::SipCredential, TransactWriteItem::builder().update(update).build())
            .with(Part::Event, self.event_put(event));
        match transaction.send(&self.client).await {
            // Already forgotten (by another finish, whose event says so): done, nothing recorded.
            Err(TransactionFailure::Cancelled(why)) if why.condition_failed(Part::SipCredential) => Ok(()),
            other => Ok(other?),
        }
    }
}
