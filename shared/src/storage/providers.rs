//! Providers: their records, item mapping, and the repair lease.

use super::item::{
    Fields, Item, JOB_PROVIDER_ID, PROVIDER_PREFIX, Transaction, TransactionFailure, account_claim_sort_key,
    enum_value, n, org_key, provider_sort_key, put_new, repair_lease_sort_key, s, sip_credential_sort_key,
};
use super::{
    IntentKey, ProviderStore, SealedCredential, SipCredentialRecord, StoreError, condition_held, decode_page_token,
    epoch_seconds, twilio_region_of,
};
use crate::audit::AuditEvent;
use crate::model::{
    AccountSid, CredentialListSid, OrganizationId, Region, TrunkSid, TwilioRegion, VerificationCheck,
    VerificationStatus,
};
use crate::time::Timestamp;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use uuid::Uuid;

/// A Twilio provider as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRecord {
    pub organization_id: OrganizationId,
    pub id: Uuid,
    pub name: String,
    pub account_sid: AccountSid,
    pub credential: SealedCredential,
    pub region: Region,
    pub twilio_region: TwilioRegion,
    pub supports_call_transfer: bool,
    /// The trunk takes TLS signalling and SRTP media only (`Secure`).
    pub secure_trunking: bool,
    /// Where Twilio sends calls when every origination URL fails.
    pub disaster_recovery: Option<crate::model::DisasterRecovery>,
    pub trunk_sid: TrunkSid,
    /// `<label>.pstn.twilio.com`
    pub domain_name: String,
    pub termination_uri: String,
    pub credential_list_sid: CredentialListSid,
    pub verification_status: VerificationStatus,
    pub last_verified_at: Option<Timestamp>,
    pub verification_details: Option<Vec<VerificationCheck>>,
    pub phone_number_count: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version, incremented by every update.
    pub version: u64,
    /// Set once a delete has started; a failed delete leaves it so a retry continues.
    pub deletion: Option<DeletionState>,
}

/// A delete in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletionState {
    pub started_at: Timestamp,
    /// What failed last time, if anything.
    pub last_error: Option<String>,
    /// Where the next step starts among the numbers (a page token) when a step ran out of
    /// time: the numbers before it were tried, and those still recorded failed. None: at the start.
    pub numbers_from: Option<String>,
    /// A `?force=true` delete: every step of it is forced, whoever runs it (the deletion
    /// queue's messages say nothing about it).
    pub forced: bool,
}

/// How long a repair holds its provider: past the repair function's timeout (29 s), so that a
/// repair that died midway frees the provider soon.
pub const REPAIR_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

impl ProviderRecord {
    /// What the provider's trunk is set to.
    pub fn trunk_settings(&self) -> crate::model::TrunkSettings {
        crate::model::TrunkSettings::new(
            self.supports_call_transfer,
            self.secure_trunking,
            self.disaster_recovery.clone(),
        )
    }

    pub(super) fn key(&self) -> Item {
        org_key(&self.organization_id, provider_sort_key(self.id))
    }

    pub(super) fn to_item(&self) -> Item {
        let mut item = self.key();
        item.extend([
            ("entity".to_owned(), s("provider")),
            ("providerType".to_owned(), s("twilio")),
            ("organizationId".to_owned(), s(self.organization_id.as_str())),
            ("id".to_owned(), s(self.id.to_string())),
            (JOB_PROVIDER_ID.to_owned(), s(self.id.to_string())),
            ("name".to_owned(), s(self.name.clone())),
            ("accountSid".to_owned(), s(self.account_sid.as_str())),
            ("region".to_owned(), s(self.region.as_str())),
            ("twilioRegion".to_owned(), s(self.twilio_region.as_str())),
            ("supportsCallTransfer".to_owned(), AttributeValue::Bool(self.supports_call_transfer)),
            ("secureTrunking".to_owned(), AttributeValue::Bool(self.secure_trunking)),
            ("trunkSid".to_owned(), s(self.trunk_sid.as_str())),
            ("domainName".to_owned(), s(self.domain_name.clone())),
            ("terminationUri".to_owned(), s(self.termination_uri.clone())),
            ("credentialListSid".to_owned(), s(self.credential_list_sid.as_str())),
            ("verificationStatus".to_owned(), enum_value(&self.verification_status)),
            ("phoneNumberCount".to_owned(), n(self.phone_number_count)),
            ("createdAt".to_owned(), s(self.created_at.clone())),
            ("updatedAt".to_owned(), s(self.updated_at.clone())),
            ("version".to_owned(), n(self.version)),
        ]);
        self.credential.put(&mut item);
        if let Some(at) = &self.last_verified_at {
            item.insert("lastVerifiedAt".to_owned(), s(at.clone()));
        }
        if let Some(recovery) = &self.disaster_recovery {
            item.insert("disasterRecoveryUrl".to_owned(), s(recovery.url.clone()));
            item.insert("disasterRecoveryMethod".to_owned(), s(recovery.method.clone()));
        }
        if let Some(details) = &self.verification_details {
            item.insert("verificationDetails".to_owned(), s(serde_json::to_string(details).expect("checks serialize")));
        }
        if let Some(deletion) = &self.deletion {
            item.insert("deletionStartedAt".to_owned(), s(deletion.started_at.clone()));
            if let Some(from) = &deletion.numbers_from {
                item.insert("deletionNumbersFrom".to_owned(), s(from.clone()));
            }
            if let Some(error) = &deletion.last_error {
                item.insert("deletionError".to_owned(), s(error.clone()));
            }
            if deletion.forced {
                item.insert("deletionForced".to_owned(), AttributeValue::Bool(true));
            }
        }
        item
    }

    pub(super) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let f = Fields(item);
        Ok(Self {
            organization_id: f.organization_id("organizationId")?,
            id: f.uuid("id")?,
            name: f.string("name")?,
            account_sid: f.parsed("accountSid", AccountSid::parse)?,
            credential: SealedCredential::read(&f)?,
            region: f.parsed("region", |v| Region::parse(v).ok_or(()))?,
            twilio_region: twilio_region_of(item)?,
            supports_call_transfer: f.boolean("supportsCallTransfer")?,
            // Providers made before secure trunking was offered have plain trunks.
            secure_trunking: match item.get("secureTrunking") {
                None => false,
                Some(_) => f.boolean("secureTrunking")?,
            },
            disaster_recovery: match (f.opt_string("disasterRecoveryUrl")?, f.opt_string("disasterRecoveryMethod")?) {
                (Some(url), method) => {
                    Some(crate::model::DisasterRecovery { url, method: method.unwrap_or_else(|| "POST".to_owned()) })
                }
                (None, _) => None,
            },
            trunk_sid: f.parsed("trunkSid", TrunkSid::parse)?,
            domain_name: f.string("domainName")?,
            termination_uri: f.string("terminationUri")?,
            credential_list_sid: f.parsed("credentialListSid", CredentialListSid::parse)?,
            verification_status: f.enum_value("verificationStatus")?,
            last_verified_at: f.opt_timestamp("lastVerifiedAt")?,
            verification_details: f.json("verificationDetails")?,
            phone_number_count: f.number("phoneNumberCount")?,
            created_at: f.timestamp("createdAt")?,
            updated_at: f.timestamp("updatedAt")?,
            version: f.number("version")?,
            deletion: f
                .opt_timestamp("deletionStartedAt")?
                .map(|started_at| {
                    Ok::<_, StoreError>(DeletionState {
                        started_at,
                        last_error: f.opt_string("deletionError")?,
                        numbers_from: f.opt_string("deletionNumbersFrom")?,
                        forced: item.get("deletionForced").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
                    })
                })
                .transpose()?,
        })
    }
}

/// The items of a provider's own transactions (its insert, its deletion).
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Provider,
    SipCredential,
    AccountClaim,
    Intent,
    Event,
}

impl ProviderStore {
    /// Whether the organization already has a provider for this Account SID.
    pub async fn account_in_use(&self, org: &OrganizationId, account_sid: &AccountSid) -> Result<bool, StoreError> {
        Ok(self.get_item(org_key(org, account_claim_sort_key(account_sid))).await?.is_some())
    }

    /// Stores a new provider, its SIP credential and its Account SID claim, and removes the
    /// create's intent, in one transaction; nothing is written unless all three are new.
    pub async fn insert_provider(
        &self,
        provider: &ProviderRecord,
        credential: &SipCredentialRecord,
        intent: &IntentKey,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let org = &provider.organization_id;
        let mut claim = org_key(org, account_claim_sort_key(&provider.account_sid));
        claim.insert("entity".to_owned(), s("accountClaim"));
        claim.insert("providerId".to_owned(), s(provider.id.to_string()));
        let transaction = Transaction::new()
            .with(Part::Provider, put_new(&self.table, provider.to_item()))
            .with(Part::SipCredential, put_new(&self.table, credential.to_item(org)))
            .with(Part::AccountClaim, put_new(&self.table, claim))
            .with(Part::Intent, intent.done(&self.table))
            .with(Part::Event, self.event_put(event));
        let failure = match transaction.send(&self.client).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if self.written_after_all(provider.key()).await {
            return Ok(());
        }
        match failure {
            TransactionFailure::Cancelled(why) if why.condition_failed(Part::AccountClaim) => {
                Err(StoreError::AccountTaken)
            }
            other => Err(other.into()),
        }
    }

    pub async fn get_provider(&self, org: &OrganizationId, id: Uuid) -> Result<Option<ProviderRecord>, StoreError> {
        self.get_item(org_key(org, provider_sort_key(id))).await?.as_ref().map(ProviderRecord::from_item).transpose()
    }

    /// Replaces a provider record whose stored version is `record.version - 1`
    /// (optimistic concurrency); `VersionConflict` when it changed or vanished meanwhile. With
    /// an event, both are written in one transaction.
    pub async fn replace_provider(
        &self,
        record: &ProviderRecord,
        event: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.replace_provider_and_credential(record, None, None, event).await
    }

    pub(super) async fn put_replaced(&self, record: &ProviderRecord) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record.to_item()))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(record.version - 1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Err(StoreError::VersionConflict)
            }
            Err(e) => Err(StoreError::request(e)),
        }
    }

    /// The organization's providers, newest first, `limit` at a time. The page token is opaque
    /// to callers; one issued for another organization, or altered, is `BadPageToken`.
    pub async fn list_providers(
        &self,
        org: &OrganizationId,
        limit: i32,
        page_token: Option<&str>,
    ) -> Result<(Vec<ProviderRecord>, Option<String>), StoreError> {
        let (items, next) = self.query_page(org, PROVIDER_PREFIX, false, limit, page_token).await?;
        Ok((items.iter().map(ProviderRecord::from_item).collect::<Result<_, _>>()?, next))
    }

    /// Checks a `nextToken` of the providers listing without reading the table, so that a
    /// handler names it together with the request's other mistakes.
    pub fn check_providers_page_token(&self, org: &OrganizationId, token: &str) -> Result<(), StoreError> {
        decode_page_token(org, PROVIDER_PREFIX, token).map(drop)
    }

    /// Deletes every record of a provider: its numbers (and their claims) in batches, then the
    /// provider, its SIP credential, its Account SID claim and its delete's intent in one
    /// transaction, conditional on the provider's version being the one read
    /// (`VersionConflict` otherwise).
    pub async fn delete_provider(&self, record: &ProviderRecord, event: &AuditEvent) -> Result<(), StoreError> {
        let org = &record.organization_id;
        self.forget_numbers(org, &self.all_numbers(org, record.id).await?).await?;
        let delete = |sort_key: String| Delete::builder().table_name(&self.table).set_key(Some(org_key(org, sort_key)));
        let item = |delete: aws_sdk_dynamodb::types::builders::DeleteBuilder| {
            TransactWriteItem::builder().delete(delete.build().expect("key set")).build()
        };
        // Only the record as it was read: a token rotated meanwhile is not deleted unseen.
        let provider = delete(provider_sort_key(record.id))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", n(record.version));
        let transaction = Transaction::new()
            .with(Part::Provider, item(provider))
            .with(Part::SipCredential, item(delete(sip_credential_sort_key(record.id))))
            .with(Part::AccountClaim, item(delete(account_claim_sort_key(&record.account_sid))))
            .with(Part::Intent, IntentKey::deletion(org.clone(), record.id).done(&self.table))
            .with(Part::Event, self.event_put(event));
        match transaction.send(&self.client).await {
            Err(TransactionFailure::Cancelled(why)) if why.condition_failed(Part::Provider) => {
                Err(StoreError::VersionConflict)
            }
            other => Ok(other?),
        }
    }

    /// Takes the provider's repair lease for [`REPAIR_LEASE`]: false while another repair holds
    /// one that has not lapsed.
    pub async fn take_repair_lease(&self, org: &OrganizationId, provider_id: Uuid) -> Result<bool, StoreError> {
        let now = epoch_seconds();
        let until = now + REPAIR_LEASE.as_secs();
        let mut lease = org_key(org, repair_lease_sort_key(provider_id));
        lease.extend([
            ("entity".to_owned(), s("repairLease")),
            ("leaseUntil".to_owned(), n(until)),
            ("expiresAt".to_owned(), n(until)),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(lease))
            .condition_expression("attribute_not_exists(pk) OR leaseUntil < :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        condition_held(result)
    }

    /// Whether a repair (or a transfer change) holds the provider's lease now.
    pub async fn repair_lease_held(&self, org: &OrganizationId, provider_id: Uuid) -> Result<bool, StoreError> {
        let Some(lease) = self.get_item(org_key(org, repair_lease_sort_key(provider_id))).await? else {
            return Ok(false);
        };
        Ok(Fields(&lease).opt_number::<u64>("leaseUntil")?.is_some_and(|until| until >= epoch_seconds()))
    }

    pub async fn end_repair_lease(&self, org: &OrganizationId, provider_id: Uuid) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(org_key(org, repair_lease_sort_key(provider_id))))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(())
    }
}
