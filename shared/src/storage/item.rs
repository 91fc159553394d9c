//! How records map to items of the one DynamoDB table: every key, the attribute helpers, and transactions whose items
//! are named. Why: docs/decisions/table-keys.md.
//!
//! | item | `entity` | pk | sk |
//! |---|---|---|---|
//! | provider | `provider` | `ORG#{org}` | `PROVIDER#{providerId}` (UUIDv7, so newest sorts last) |
//! | SIP credential | `sipCredential` | `ORG#{org}` | `SIPCRED#{providerId}` |
//! | Account SID claim: one provider per Account SID in an organization | `accountClaim` | `ORG#{org}` | `ACCOUNT#{accountSid}` |
//! | A Twilio resource a failed rollback, undo or forced delete left behind (one item each) | `orphan` | `ORG#{org}` | `ORPHAN#{providerId}#{kind}#{sid}` |
//! | A change about to be made in a customer's Twilio account, removed by the write that makes it official (see [`crate::storage::Intent`]) | `intent` | `ORG#{org}` | `INTENT#{providerId}#{intentId}` |
//! | imported phone number | `phoneNumber` | `ORG#{org}` | `NUMBER#{providerId}#{numberId}` |
//! | a running repair's lease (TTL attribute `expiresAt`) | `repairLease` | `ORG#{org}` | `REPAIRING#{providerId}` |
//! | phone number claim: one provider per Twilio number anywhere (while an import runs, a reservation with `pendingUntil`) | `numberClaim` | `PNCLAIM#{phoneNumberSid}` | `PNCLAIM` |
//! | API key, looked up by key id | `apiKey` | `APIKEY#{keyId}` | `APIKEY` |
//! | API key, listed by organization | `apiKey` | `ORG#{org}` | `APIKEY#{keyId}` |
//! | `Idempotency-Key` record (TTL attribute `expiresAt`) | `idempotencyKey` | `ORG#{org}` | `IDEMPOTENCY#{sha256(key)}` |
//! | how far the jobs index's backfill has come (`cursor`, then `indexedAt`) | `jobsIndexBackfill` | `JOBSINDEX` | `BACKFILL` |

use crate::crypto::EncryptedSecret;
use crate::error::Cause;
use crate::model::{AccountSid, OrganizationId, PhoneNumberSid};
use crate::storage::StoreError;
use crate::time::Timestamp;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use std::collections::HashMap;
use uuid::Uuid;

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";

/// The sparse index of what the scheduled jobs visit (as template.yaml names it).
pub const JOBS_INDEX: &str = "ScheduledJobs";
/// The index's key: on provider, leftover and intent items only, their provider's id.
pub const JOB_PROVIDER_ID: &str = "jobProviderId";

// Keys, as the table above lists them.

pub fn org_key(org: &OrganizationId, sort_key: String) -> Item {
    key(format!("ORG#{org}"), sort_key)
}

fn key(partition_key: String, sort_key: String) -> Item {
    HashMap::from([(PK.to_owned(), s(partition_key)), (SK.to_owned(), s(sort_key))])
}

pub fn org_partition(org: &OrganizationId) -> AttributeValue {
    s(format!("ORG#{org}"))
}

pub const PROVIDER_PREFIX: &str = "PROVIDER#";

pub fn provider_sort_key(provider_id: Uuid) -> String {
    format!("{PROVIDER_PREFIX}{provider_id}")
}

pub fn sip_credential_sort_key(provider_id: Uuid) -> String {
    format!("SIPCRED#{provider_id}")
}

pub fn account_claim_sort_key(account_sid: &AccountSid) -> String {
    format!("ACCOUNT#{account_sid}")
}

/// The single leftover record per provider of the earlier format, migrated by the sweeper.
pub fn legacy_leftovers_sort_key(provider_id: Uuid) -> String {
    format!("ORPHAN#{provider_id}")
}

/// One repair of a provider at a time holds this.
pub fn repair_lease_sort_key(provider_id: Uuid) -> String {
    format!("REPAIRING#{provider_id}")
}

/// The sort keys of a provider's leftover Twilio resources start with this.
pub fn leftovers_prefix(provider_id: Uuid) -> String {
    format!("ORPHAN#{provider_id}#")
}

pub fn leftover_sort_key(provider_id: Uuid, resource: &crate::twilio::TwilioResource) -> String {
    format!("{}{}#{}", leftovers_prefix(provider_id), resource.kind(), resource.sid())
}

/// The sort keys of a provider's imported numbers start with this.
pub fn numbers_prefix(provider_id: Uuid) -> String {
    format!("NUMBER#{provider_id}#")
}

pub fn number_sort_key(provider_id: Uuid, number_id: Uuid) -> String {
    format!("{}{number_id}", numbers_prefix(provider_id))
}

/// Global, not per organization, so that one Twilio number is on at most one provider
/// anywhere (two organizations may connect the same Twilio account).
pub fn number_claim_key(phone_number_sid: &PhoneNumberSid) -> Item {
    key(format!("PNCLAIM#{phone_number_sid}"), "PNCLAIM".to_owned())
}

pub fn api_key_lookup_key(key_id: &str) -> Item {
    key(format!("APIKEY#{key_id}"), "APIKEY".to_owned())
}

pub const API_KEY_PREFIX: &str = "APIKEY#";

pub fn api_key_listed_key(org: &OrganizationId, key_id: &str) -> Item {
    org_key(org, format!("{API_KEY_PREFIX}{key_id}"))
}

/// Items written before the jobs index existed are given its key once, by the planner.
pub fn jobs_index_backfill_key() -> Item {
    key("JOBSINDEX".to_owned(), "BACKFILL".to_owned())
}

/// The key is hashed: it is the caller's, and may be anything up to 255 characters.
pub fn idempotency_record_key(org: &OrganizationId, idempotency_key: &str) -> Item {
    org_key(org, format!("IDEMPOTENCY#{}", crate::storage::idempotency::digest(&[idempotency_key.as_bytes()])))
}

// Attributes.

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn secret(secret: &EncryptedSecret) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("v".to_owned(), n(secret.format_version)),
        ("keyId".to_owned(), s(secret.key_id.clone())),
        ("edk".to_owned(), AttributeValue::B(Blob::new(secret.encrypted_data_key.clone()))),
        ("nonce".to_owned(), AttributeValue::B(Blob::new(secret.nonce.clone()))),
        ("ct".to_owned(), AttributeValue::B(Blob::new(secret.ciphertext.clone()))),
    ]))
}

/// A string enum as serde names its variants.
pub fn enum_value<T: serde::Serialize>(value: &T) -> AttributeValue {
    s(variant_name(value))
}

/// A unit enum variant's name as serde writes it (what the API and the table show).
pub fn variant_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).expect("a unit enum variant")
}

fn malformed(name: &str) -> StoreError {
    StoreError::Corrupt(format!("attribute {name} is malformed"))
}

/// Typed reads of an item's attributes, naming the attribute when it is missing or mistyped.
pub struct Fields<'a>(pub &'a Item);

impl<'a> Fields<'a> {
    pub fn get(&self, name: &str) -> Result<&'a AttributeValue, StoreError> {
        self.0.get(name).ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is missing")))
    }
    pub fn string(&self, name: &str) -> Result<String, StoreError> {
        self.get(name)?.as_s().cloned().map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a string")))
    }
    /// A string attribute parsed into its type (a SID, an id, …).
    pub fn parsed<T, E>(&self, name: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, StoreError> {
        parse(&self.string(name)?).map_err(|_| malformed(name))
    }
    pub fn uuid(&self, name: &str) -> Result<Uuid, StoreError> {
        self.parsed(name, Uuid::parse_str)
    }
    pub fn timestamp(&self, name: &str) -> Result<Timestamp, StoreError> {
        self.parsed(name, Timestamp::parse)
    }
    pub fn opt_timestamp(&self, name: &str) -> Result<Option<Timestamp>, StoreError> {
        self.opt_string(name)?.map(|value| Timestamp::parse(&value).map_err(|_| malformed(name))).transpose()
    }
    pub fn organization_id(&self, name: &str) -> Result<OrganizationId, StoreError> {
        self.parsed(name, |value| OrganizationId::parse(value).ok_or(()))
    }
    pub fn opt_string(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => self.string(name).map(Some),
        }
    }
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.get(name)?
            .as_n()
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is not a number")))
    }
    pub fn opt_number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => self.number(name).map(Some),
        }
    }
    pub fn boolean(&self, name: &str) -> Result<bool, StoreError> {
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
    pub fn secret(&self, name: &str) -> Result<EncryptedSecret, StoreError> {
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
    pub fn opt_secret(&self, name: &str) -> Result<Option<EncryptedSecret>, StoreError> {
        self.0.get(name).map(|_| self.secret(name)).transpose()
    }
    /// A string enum as serde names its variants.
    pub fn enum_value<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        serde_json::from_value(serde_json::Value::String(self.string(name)?))
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} has an unknown value")))
    }
    /// A JSON document stored as a string.
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.opt_string(name)?
            .map(|text| serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}"))))
            .transpose()
    }
}

// Writes.

/// Writes an item, replacing any with its key.
/// Every item of an organization whose sort key starts with `prefix`, all pages, in key order
/// (strongly consistent).
pub async fn query_prefix(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    org: &OrganizationId,
    prefix: &str,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let output = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", org_partition(org))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(StoreError::request)?;
        start = output.last_evaluated_key;
        items.extend(output.items.unwrap_or_default());
        if start.is_none() {
            return Ok(items);
        }
    }
}

pub async fn put(client: &aws_sdk_dynamodb::Client, table: &str, item: Item) -> Result<(), StoreError> {
    client.put_item().table_name(table).set_item(Some(item)).send().await.map_err(StoreError::request)?;
    Ok(())
}

// Transactions.

/// A transaction item that puts a new item, failing if one with its key exists.
pub fn put_new(table: &str, item: Item) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .expect("table and item set");
    TransactWriteItem::builder().put(put).build()
}

/// Transactions cancelled by a conflict are tried this many times in all.
const CONFLICT_ATTEMPTS: u32 = 10;

/// The wait before retrying a conflicted transaction, or the items a batch write left
/// unprocessed (DynamoDB throttled them): full jitter over 10 ms doubling to 320 ms; None when
/// the attempts are used up or the wait would pass the deadline.
pub(crate) fn retry_backoff(attempt: u32) -> Option<std::time::Duration> {
    use rand::RngExt;
    if attempt >= CONFLICT_ATTEMPTS {
        return None;
    }
    let cap_ms = 10u64 << attempt.min(5);
    let delay = std::time::Duration::from_millis(rand::rng().random_range(1..=cap_ms));
    let past_deadline = crate::deadline::remaining().is_some_and(|left| delay >= left);
    (!past_deadline).then_some(delay)
}

/// A write transaction whose items are named, so that a cancellation is read by name: DynamoDB
/// reports the reasons in item order, and an order is easy to change by mistake.
#[derive(Clone)]
pub struct Transaction<N> {
    names: Vec<N>,
    items: Vec<TransactWriteItem>,
}

impl<N: Copy + PartialEq> Transaction<N> {
    pub fn new() -> Self {
        Self { names: Vec::new(), items: Vec::new() }
    }

    pub fn with(mut self, name: N, item: TransactWriteItem) -> Self {
        self.names.push(name);
        self.items.push(item);
        self
    }

    /// [`Self::with`] when there is an item.
    pub fn with_some(self, name: N, item: Option<TransactWriteItem>) -> Self {
        match item {
            Some(item) => self.with(name, item),
            None => self,
        }
    }

    /// Sends the transaction. One that DynamoDB cancelled only because another transaction was
    /// writing one of its items (nothing was written) is sent again, with jittered backoff
    /// within the deadline: a conflict is never reported as a failure while a retry may pass.
    pub async fn send(&self, client: &aws_sdk_dynamodb::Client) -> Result<(), TransactionFailure<N>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(client).await {
                Err(TransactionFailure::Cancelled(why)) if why.only_conflicted() => match retry_backoff(attempt) {
                    Some(delay) => {
                        tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, "transaction conflict; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(TransactionFailure::Cancelled(why)),
                },
                other => return other,
            }
        }
    }

    async fn send_once(&self, client: &aws_sdk_dynamodb::Client) -> Result<(), TransactionFailure<N>> {
        // Boxed: the SDK's request future is large, and callers' stacks should not hold it.
        let request = client.transact_write_items().set_transact_items(Some(self.items.clone())).send();
        let result = Box::pin(request).await;
        let Err(e) = result else { return Ok(()) };
        match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                let codes = cancelled.cancellation_reasons().iter().map(|reason| reason.code().map(str::to_owned));
                let reasons = self.names.iter().copied().zip(codes).collect();
                Err(TransactionFailure::Cancelled(Cancellation { reasons, error: DisplayErrorContext(&e).to_string() }))
            }
            _ => Err(TransactionFailure::Request(StoreError::request(e))),
        }
    }
}

impl<N: Copy + PartialEq> Default for Transaction<N> {
    fn default() -> Self {
        Self::new()
    }
}

pub enum TransactionFailure<N> {
    /// DynamoDB cancelled the transaction; nothing was written.
    Cancelled(Cancellation<N>),
    Request(StoreError),
}

/// Why DynamoDB cancelled a transaction, item by item.
pub struct Cancellation<N> {
    reasons: Vec<(N, Option<String>)>,
    error: String,
}

impl<N: Copy + PartialEq> Cancellation<N> {
    fn code_of(&self, name: N) -> Option<&str> {
        self.reasons.iter().find(|(n, _)| *n == name).and_then(|(_, code)| code.as_deref())
    }

    /// The named item's condition did not hold.
    pub fn condition_failed(&self, name: N) -> bool {
        self.code_of(name) == Some("ConditionalCheckFailed")
    }

    /// Another transaction was writing one of the items, and no condition failed: trying
    /// again may succeed.
    fn only_conflicted(&self) -> bool {
        let has = |wanted: &str| self.reasons.iter().any(|(_, code)| code.as_deref() == Some(wanted));
        has("TransactionConflict") && !has("ConditionalCheckFailed")
    }
}

impl<N> From<Cancellation<N>> for StoreError {
    fn from(cancellation: Cancellation<N>) -> Self {
        StoreError::Request(Cause::message(cancellation.error))
    }
}

impl<N> From<TransactionFailure<N>> for StoreError {
    fn from(failure: TransactionFailure<N>) -> Self {
        match failure {
            TransactionFailure::Cancelled(cancellation) => cancellation.into(),
            TransactionFailure::Request(error) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Part {
        Record,
        Claim,
    }

    #[test]
    fn cancellations_are_read_by_item_name() {
        let cancellation = Cancellation {
            reasons: vec![
                (Part::Record, Some("None".to_owned())),
                (Part::Claim, Some("ConditionalCheckFailed".into())),
            ],
            error: "cancelled".into(),
        };
        assert!(cancellation.condition_failed(Part::Claim));
        assert!(!cancellation.condition_failed(Part::Record));
        assert!(!cancellation.only_conflicted());
        assert!(
            matches!(StoreError::from(cancellation), StoreError::Request(cause) if cause.to_string() == "cancelled")
        );
        let conflict = |claim: &str| Cancellation {
            reasons: vec![
                (Part::Record, Some("TransactionConflict".to_owned())),
                (Part::Claim, Some(claim.to_owned())),
            ],
            error: "cancelled".into(),
        };
        assert!(conflict("None").only_conflicted(), "retried: nothing else went wrong");
        assert!(!conflict("ConditionalCheckFailed").only_conflicted(), "a failed condition is an answer");
    }

    #[test]
    fn keys_follow_the_table() {
        let org = OrganizationId::parse("org-1").unwrap();
        let id = Uuid::nil();
        let text = |item: &Item, name: &str| item[name].as_s().unwrap().clone();
        let provider = org_key(&org, provider_sort_key(id));
        assert_eq!((text(&provider, PK), text(&provider, SK)), ("ORG#org-1".into(), format!("PROVIDER#{id}")));
        assert!(number_sort_key(id, id).starts_with(&numbers_prefix(id)));
        let sid = PhoneNumberSid::parse(&format!("PN{}", "a".repeat(32))).unwrap();
        assert_eq!(text(&number_claim_key(&sid), PK), format!("PNCLAIM#{sid}"));
        let idempotency = idempotency_record_key(&org, "k");
        assert!(text(&idempotency, SK).starts_with("IDEMPOTENCY#") && !text(&idempotency, SK).ends_with("#k"));
        assert_eq!(text(&api_key_listed_key(&org, "ab"), SK), "APIKEY#ab");
        assert_eq!(text(&api_key_lookup_key("ab"), PK), "APIKEY#ab");
    }
}
