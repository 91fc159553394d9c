//! The DynamoDB table. One table, partitioned by organization: every key starts with the
//! organization, so no read or write can reach another organization's items.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | provider | `ORG#{org}` | `PROVIDER#{id}` (ids are UUIDv7, so newest sorts last) |
//! | SIP credential | `ORG#{org}` | `SIPCRED#{providerId}` |
//! | Account SID claim (one provider per Account SID) | `ORG#{org}` | `ACCOUNT#{accountSid}` |
//! | Twilio resources a failed rollback left behind | `ORG#{org}` | `ORPHAN#{providerId}` |

use crate::crypto::EncryptedSecret;
use crate::model::{AccountSid, OrganizationId, Region, VerificationCheck, VerificationStatus};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use std::collections::HashMap;
use uuid::Uuid;

type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB request failed: {0}")]
    Request(String),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    /// The organization already has a provider for this Account SID.
    #[error("the Account SID is already connected in this organization")]
    AccountTaken,
    /// The record changed (or vanished) since it was read.
    #[error("the record was changed by another request")]
    VersionConflict,
    /// A paging token that this store did not issue for this organization.
    #[error("the paging token is not valid")]
    BadPageToken,
}

impl StoreError {
    fn request<E: std::error::Error + 'static>(e: E) -> Self {
        Self::Request(DisplayErrorContext(&e).to_string())
    }
}

/// A Twilio provider as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRecord {
    pub organization_id: OrganizationId,
    pub id: Uuid,
    pub name: String,
    pub account_sid: AccountSid,
    pub auth_token: EncryptedSecret,
    pub region: Region,
    pub supports_call_transfer: bool,
    pub trunk_sid: String,
    /// `<label>.pstn.twilio.com`
    pub domain_name: String,
    pub termination_uri: String,
    pub credential_list_sid: String,
    pub verification_status: VerificationStatus,
    pub last_verified_at: Option<String>,
    pub verification_details: Option<Vec<VerificationCheck>>,
    pub phone_number_count: u32,
    pub created_at: String,
    pub updated_at: String,
    /// Optimistic-concurrency version, incremented by every update.
    pub version: u64,
    /// Set once a delete has started; a failed delete leaves it so a retry continues.
    pub deletion: Option<DeletionState>,
}

/// A delete in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletionState {
    pub started_at: String,
    /// What failed last time, if anything.
    pub last_error: Option<String>,
}

/// The generated SIP credential of a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct SipCredentialRecord {
    pub provider_id: Uuid,
    pub username: String,
    pub credential_sid: String,
    pub credential_list_sid: String,
    pub password: EncryptedSecret,
}

/// A Twilio resource that could not be deleted during a rollback.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftoverResource {
    /// `trunk`, `credentialList`, …
    pub kind: String,
    pub sid: String,
}

/// What a failed rollback left in a customer's Twilio account, kept for later clean-up.
#[derive(Debug, Clone)]
pub struct OrphanRecord {
    pub organization_id: OrganizationId,
    pub provider_id: Uuid,
    pub account_sid: AccountSid,
    /// Absent when the token could not be encrypted (KMS was the failure).
    pub auth_token: Option<EncryptedSecret>,
    pub resources: Vec<LeftoverResource>,
    pub created_at: String,
}

#[derive(Clone, Debug)]
pub struct ProviderStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn org_pk(org: &OrganizationId) -> AttributeValue {
    AttributeValue::S(format!("ORG#{org}"))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn secret_to_attr(secret: &EncryptedSecret) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("v".to_owned(), n(secret.format_version)),
        ("keyId".to_owned(), s(secret.key_id.clone())),
        ("edk".to_owned(), AttributeValue::B(Blob::new(secret.encrypted_data_key.clone()))),
        ("nonce".to_owned(), AttributeValue::B(Blob::new(secret.nonce.clone()))),
        ("ct".to_owned(), AttributeValue::B(Blob::new(secret.ciphertext.clone()))),
    ]))
}

/// Typed reads of an item's attributes, naming the attribute when it is missing or mistyped.
struct Fields<'a>(&'a Item);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Result<&'a AttributeValue, StoreError> {
        self.0.get(name).ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is missing")))
    }
    fn string(&self, name: &str) -> Result<String, StoreError> {
        self.get(name)?.as_s().cloned().map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a string")))
    }
    fn opt_string(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => self.string(name).map(Some),
        }
    }
    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.get(name)?
            .as_n()
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is not a number")))
    }
    fn boolean(&self, name: &str) -> Result<bool, StoreError> {
        self.get(name)?
            .as_bool()
            .copied()
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a boolean")))
    }
    fn blob(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        self.get(name)?
            .as_b()
            .map(|b| b.as_ref().to_vec())
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not binary")))
    }
    fn secret(&self, name: &str) -> Result<EncryptedSecret, StoreError> {
        let map = self.get(name)?.as_m().map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a map")))?;
        let inner = Fields(map);
        Ok(EncryptedSecret {
            format_version: inner.number("v")?,
            key_id: inner.string("keyId")?,
            encrypted_data_key: inner.blob("edk")?,
            nonce: inner.blob("nonce")?,
            ciphertext: inner.blob("ct")?,
        })
    }
    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.opt_string(name)?
            .map(|text| serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}"))))
            .transpose()
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(name: &str, value: String) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(value))
        .map_err(|_| StoreError::Corrupt(format!("attribute {name} has an unknown value")))
}

impl ProviderRecord {
    pub fn sort_key(id: Uuid) -> String {
        format!("PROVIDER#{id}")
    }

    fn to_item(&self) -> Item {
        let mut item = HashMap::from([
            (PK.to_owned(), org_pk(&self.organization_id)),
            (SK.to_owned(), s(Self::sort_key(self.id))),
            ("entity".to_owned(), s("provider")),
            ("providerType".to_owned(), s("twilio")),
            ("organizationId".to_owned(), s(self.organization_id.as_str())),
            ("id".to_owned(), s(self.id.to_string())),
            ("name".to_owned(), s(self.name.clone())),
            ("accountSid".to_owned(), s(self.account_sid.as_str())),
            ("authToken".to_owned(), secret_to_attr(&self.auth_token)),
            ("region".to_owned(), s(self.region.as_str())),
            ("supportsCallTransfer".to_owned(), AttributeValue::Bool(self.supports_call_transfer)),
            ("trunkSid".to_owned(), s(self.trunk_sid.clone())),
            ("domainName".to_owned(), s(self.domain_name.clone())),
            ("terminationUri".to_owned(), s(self.termination_uri.clone())),
            ("credentialListSid".to_owned(), s(self.credential_list_sid.clone())),
            (
                "verificationStatus".to_owned(),
                s(serde_json::to_value(self.verification_status).expect("enum").as_str().expect("string enum")),
            ),
            ("phoneNumberCount".to_owned(), n(self.phone_number_count)),
            ("createdAt".to_owned(), s(self.created_at.clone())),
            ("updatedAt".to_owned(), s(self.updated_at.clone())),
            ("version".to_owned(), n(self.version)),
        ]);
        if let Some(at) = &self.last_verified_at {
            item.insert("lastVerifiedAt".to_owned(), s(at.clone()));
        }
        if let Some(details) = &self.verification_details {
            item.insert("verificationDetails".to_owned(), s(serde_json::to_string(details).expect("checks serialize")));
        }
        if let Some(deletion) = &self.deletion {
            item.insert("deletionStartedAt".to_owned(), s(deletion.started_at.clone()));
            if let Some(error) = &deletion.last_error {
                item.insert("deletionError".to_owned(), s(error.clone()));
            }
        }
        item
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let f = Fields(item);
        let organization_id = OrganizationId::parse(&f.string("organizationId")?)
            .ok_or_else(|| StoreError::Corrupt("organizationId".into()))?;
        let id = Uuid::parse_str(&f.string("id")?).map_err(|_| StoreError::Corrupt("id is not a UUID".into()))?;
        let account_sid =
            AccountSid::parse(&f.string("accountSid")?).map_err(|_| StoreError::Corrupt("accountSid".into()))?;
        let region = Region::parse(&f.string("region")?).ok_or_else(|| StoreError::Corrupt("region".into()))?;
        Ok(Self {
            organization_id,
            id,
            name: f.string("name")?,
            account_sid,
            auth_token: f.secret("authToken")?,
            region,
            supports_call_transfer: f.boolean("supportsCallTransfer")?,
            trunk_sid: f.string("trunkSid")?,
            domain_name: f.string("domainName")?,
            termination_uri: f.string("terminationUri")?,
            credential_list_sid: f.string("credentialListSid")?,
            verification_status: parse_enum("verificationStatus", f.string("verificationStatus")?)?,
            last_verified_at: f.opt_string("lastVerifiedAt")?,
            verification_details: f.json("verificationDetails")?,
            phone_number_count: f.number("phoneNumberCount")?,
            created_at: f.string("createdAt")?,
            updated_at: f.string("updatedAt")?,
            version: f.number("version")?,
            deletion: f
                .opt_string("deletionStartedAt")?
                .map(|started_at| {
                    Ok::<_, StoreError>(DeletionState { started_at, last_error: f.opt_string("deletionError")? })
                })
                .transpose()?,
        })
    }
}

impl SipCredentialRecord {
    pub fn sort_key(provider_id: Uuid) -> String {
        format!("SIPCRED#{provider_id}")
    }

    fn to_item(&self, org: &OrganizationId) -> Item {
        HashMap::from([
            (PK.to_owned(), org_pk(org)),
            (SK.to_owned(), s(Self::sort_key(self.provider_id))),
            ("entity".to_owned(), s("sipCredential")),
            ("providerId".to_owned(), s(self.provider_id.to_string())),
            ("username".to_owned(), s(self.username.clone())),
            ("credentialSid".to_owned(), s(self.credential_sid.clone())),
            ("credentialListSid".to_owned(), s(self.credential_list_sid.clone())),
            ("password".to_owned(), secret_to_attr(&self.password)),
        ])
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let f = Fields(item);
        Ok(Self {
            provider_id: Uuid::parse_str(&f.string("providerId")?)
                .map_err(|_| StoreError::Corrupt("providerId".into()))?,
            username: f.string("username")?,
            credential_sid: f.string("credentialSid")?,
            credential_list_sid: f.string("credentialListSid")?,
            password: f.secret("password")?,
        })
    }
}

const PAGE_TOKEN_VERSION: &str = "p1";

/// `p1.<organization>.<provider id>`, base64url: names the organization so a token cannot be
/// replayed by another one.
fn encode_page_token(org: &OrganizationId, after: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{PAGE_TOKEN_VERSION}.{org}.{after}"))
}

fn decode_page_token(org: &OrganizationId, token: &str) -> Result<Uuid, StoreError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| StoreError::BadPageToken)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadPageToken)?;
    let rest =
        text.strip_prefix(PAGE_TOKEN_VERSION).and_then(|r| r.strip_prefix('.')).ok_or(StoreError::BadPageToken)?;
    let (token_org, id) = rest.rsplit_once('.').ok_or(StoreError::BadPageToken)?;
    if token_org != org.as_str() {
        return Err(StoreError::BadPageToken);
    }
    Uuid::parse_str(id).map_err(|_| StoreError::BadPageToken)
}

fn account_claim_sort_key(account_sid: &AccountSid) -> String {
    format!("ACCOUNT#{account_sid}")
}

impl ProviderStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    fn key(org: &OrganizationId, sort_key: String) -> Item {
        HashMap::from([(PK.to_owned(), org_pk(org)), (SK.to_owned(), s(sort_key))])
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(output.item)
    }

    /// Whether the organization already has a provider for this Account SID.
    pub async fn account_in_use(&self, org: &OrganizationId, account_sid: &AccountSid) -> Result<bool, StoreError> {
        Ok(self.get_item(Self::key(org, account_claim_sort_key(account_sid))).await?.is_some())
    }

    /// Stores a new provider, its SIP credential and its Account SID claim in one transaction;
    /// nothing is written unless all three are new.
    pub async fn insert_provider(
        &self,
        provider: &ProviderRecord,
        credential: &SipCredentialRecord,
    ) -> Result<(), StoreError> {
        let org = &provider.organization_id;
        let mut claim = Self::key(org, account_claim_sort_key(&provider.account_sid));
        claim.insert("entity".to_owned(), s("accountClaim"));
        claim.insert("providerId".to_owned(), s(provider.id.to_string()));
        let items = [provider.to_item(), credential.to_item(org), claim];
        let puts = items.into_iter().map(|item| {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .expect("table name and item are set");
            TransactWriteItem::builder().put(put).build()
        });
        let result = self.client.transact_write_items().set_transact_items(Some(puts.collect())).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                // Reasons come in item order; the claim is the third.
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled))
                    if cancelled.cancellation_reasons().get(2).and_then(|r| r.code())
                        == Some("ConditionalCheckFailed") =>
                {
                    Err(StoreError::AccountTaken)
                }
                _ => Err(StoreError::request(e)),
            },
        }
    }

    pub async fn get_provider(&self, org: &OrganizationId, id: Uuid) -> Result<Option<ProviderRecord>, StoreError> {
        self.get_item(Self::key(org, ProviderRecord::sort_key(id)))
            .await?
            .as_ref()
            .map(ProviderRecord::from_item)
            .transpose()
    }

    pub async fn get_sip_credential(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Option<SipCredentialRecord>, StoreError> {
        self.get_item(Self::key(org, SipCredentialRecord::sort_key(provider_id)))
            .await?
            .as_ref()
            .map(SipCredentialRecord::from_item)
            .transpose()
    }

    /// Replaces a provider record whose stored version is `record.version - 1`
    /// (optimistic concurrency); `VersionConflict` when it changed or vanished meanwhile.
    pub async fn replace_provider(&self, record: &ProviderRecord) -> Result<(), StoreError> {
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
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", org_pk(org))
            .expression_attribute_values(":prefix", s("PROVIDER#"))
            .scan_index_forward(false)
            .limit(limit);
        if let Some(token) = page_token {
            let after = decode_page_token(org, token)?;
            query = query.set_exclusive_start_key(Some(Self::key(org, ProviderRecord::sort_key(after))));
        }
        let output = query.send().await.map_err(StoreError::request)?;
        let records = output.items().iter().map(ProviderRecord::from_item).collect::<Result<Vec<_>, _>>()?;
        let next = match output.last_evaluated_key() {
            Some(_) => records.last().map(|last| encode_page_token(org, last.id)),
            None => None,
        };
        Ok((records, next))
    }

    /// Deletes every record of a provider in one transaction.
    pub async fn delete_provider(&self, record: &ProviderRecord) -> Result<(), StoreError> {
        let org = &record.organization_id;
        let keys = [
            ProviderRecord::sort_key(record.id),
            SipCredentialRecord::sort_key(record.id),
            account_claim_sort_key(&record.account_sid),
        ];
        let deletes = keys.into_iter().map(|sort_key| {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(org, sort_key)))
                .build()
                .expect("key set");
            TransactWriteItem::builder().delete(delete).build()
        });
        self.client
            .transact_write_items()
            .set_transact_items(Some(deletes.collect()))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(())
    }

    /// Records what a failed rollback left behind, for the clean-up job.
    pub async fn record_orphan(&self, orphan: &OrphanRecord) -> Result<(), StoreError> {
        let mut item = Self::key(&orphan.organization_id, format!("ORPHAN#{}", orphan.provider_id));
        item.insert("entity".to_owned(), s("orphan"));
        item.insert("organizationId".to_owned(), s(orphan.organization_id.as_str()));
        item.insert("providerId".to_owned(), s(orphan.provider_id.to_string()));
        item.insert("accountSid".to_owned(), s(orphan.account_sid.as_str()));
        item.insert("createdAt".to_owned(), s(orphan.created_at.clone()));
        if let Some(token) = &orphan.auth_token {
            item.insert("authToken".to_owned(), secret_to_attr(token));
        }
        let resources = orphan
            .resources
            .iter()
            .map(|r| {
                AttributeValue::M(HashMap::from([
                    ("kind".to_owned(), s(r.kind.clone())),
                    ("sid".to_owned(), s(r.sid.clone())),
                ]))
            })
            .collect();
        item.insert("resources".to_owned(), AttributeValue::L(resources));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(())
    }

    /// The resources recorded as left behind for a provider, if any.
    pub async fn get_orphan_resources(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Option<Vec<LeftoverResource>>, StoreError> {
        let Some(item) = self.get_item(Self::key(org, format!("ORPHAN#{provider_id}"))).await? else {
            return Ok(None);
        };
        let list = Fields(&item).get("resources")?.as_l().map_err(|_| StoreError::Corrupt("resources".into()))?;
        list.iter()
            .map(|entry| {
                let map = entry.as_m().map_err(|_| StoreError::Corrupt("resource".into()))?;
                let f = Fields(map);
                Ok(LeftoverResource { kind: f.string("kind")?, sid: f.string("sid")? })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_other_organizations_and_tampering() {
        let org = OrganizationId::parse("org-a").unwrap();
        let id = Uuid::now_v7();
        let token = encode_page_token(&org, id);
        assert_eq!(decode_page_token(&org, &token).unwrap(), id);
        let other = OrganizationId::parse("org-b").unwrap();
        assert!(matches!(decode_page_token(&other, &token), Err(StoreError::BadPageToken)));
        for bad in ["", "!!!", "cDEub3JnLWEubm90LWEtdXVpZA", &token[..token.len() - 2]] {
            assert!(matches!(decode_page_token(&org, bad), Err(StoreError::BadPageToken)), "{bad}");
        }
    }
}
