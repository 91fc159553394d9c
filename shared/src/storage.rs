//! The DynamoDB table, partitioned by organization: every key the handlers read and write
//! starts with the organization, so no read or write can reach another organization's items;
//! the one exception, a phone number's global claim, is looked up by its SID, never listed.
//! The keys and the item mapping are in [`item`], with the table of every item.

use crate::error::Cause;
use crate::model::{OrganizationId, TwilioRegion};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use item::{Fields, Item, SK, org_key, org_partition, s};
use std::collections::HashMap;
use uuid::Uuid;

pub mod api_keys;
mod credential;
mod events;
pub mod idempotency;
mod intent;
pub mod item;
mod jobs;
mod leftovers;
mod numbers;
mod providers;
mod schema;
mod sip_credentials;
pub use credential::{OpenCredentialError, SealedCredential, StoredApiKey};
pub use events::{DEFAULT_RETENTION, EventFilter};
pub use intent::{Change, Intent, IntentKey, NewResources};
pub use jobs::{BACKFILL_AGAIN_AFTER, Backfill, JobsSource, ScanCursor, ScanPage};
pub use leftovers::Leftover;
pub use numbers::{NumberClaim, PhoneNumberRecord, RESERVATION};
pub use providers::{DeletionState, ProviderRecord, REPAIR_LEASE};
pub use schema::{add_jobs_index, create_table};
pub use sip_credentials::{PreviousSipCredential, SipCredentialRecord};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB request failed: {}", crate::error::chain(.0))]
    Request(#[source] Cause),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    /// The organization already has a provider for this Account SID.
    #[error("the Account SID is already connected in this organization")]
    AccountTaken,
    /// The record changed (or vanished) since it was read.
    #[error("the record was changed by another request")]
    VersionConflict,
    /// The phone number is already imported into a provider of this organization.
    #[error("the phone number is already imported")]
    NumberTaken,
    /// The imported number's record is gone (removed concurrently).
    #[error("the imported number no longer exists")]
    NumberGone,
    /// The provider vanished or started being deleted.
    #[error("the provider no longer accepts changes")]
    ProviderGone,
    /// A paging token that this store did not issue for this organization.
    #[error("the paging token is not valid")]
    BadPageToken,
    /// The jobs index is still being built (just added to a table with items): it cannot be
    /// read until DynamoDB has backfilled it.
    #[error("the jobs index is still being built")]
    IndexNotReady,
}

impl StoreError {
    pub(crate) fn request(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Request(Cause::sdk(e))
    }
}

/// The `twilioRegion` attribute of a provider, intent or leftover: absent on what was written
/// before Twilio Regions were offered, which is US1's.
fn twilio_region_of(item: &Item) -> Result<TwilioRegion, StoreError> {
    match item.get("twilioRegion") {
        None => Ok(TwilioRegion::Us1),
        Some(_) => Fields(item).parsed("twilioRegion", |v| TwilioRegion::parse(v).ok_or(())),
    }
}

/// Whether a conditional write's condition held: `Ok(false)` when DynamoDB refused it with
/// `ConditionalCheckFailedException` (nothing written), any other failure an error.
fn condition_held<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(StoreError::request(e)),
    }
}

fn epoch_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

#[derive(Clone, Debug)]
pub struct ProviderStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// How long audit events are kept (their `expiresAt`).
    event_retention: std::time::Duration,
}

const PAGE_TOKEN_VERSION: &str = "p1";

/// `p1.<organization>.<last sort key>`, base64url: names the organization so a token cannot be
/// replayed by another one, and is checked against the listing's key prefix on the way back.
fn encode_page_token(org: &OrganizationId, last_sort_key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{PAGE_TOKEN_VERSION}.{org}.{last_sort_key}"))
}

fn decode_page_token(org: &OrganizationId, prefix: &str, token: &str) -> Result<String, StoreError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| StoreError::BadPageToken)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadPageToken)?;
    let rest =
        text.strip_prefix(PAGE_TOKEN_VERSION).and_then(|r| r.strip_prefix('.')).ok_or(StoreError::BadPageToken)?;
    let sort_key = rest.strip_prefix(org.as_str()).and_then(|r| r.strip_prefix('.')).ok_or(StoreError::BadPageToken)?;
    // The listed items' keys are `<prefix><uuid>`: anything else was not issued by this listing.
    let id = sort_key.strip_prefix(prefix).ok_or(StoreError::BadPageToken)?;
    Uuid::parse_str(id).map_err(|_| StoreError::BadPageToken)?;
    Ok(sort_key.to_owned())
}

impl ProviderStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), event_retention: events::DEFAULT_RETENTION }
    }

    /// The same store, keeping audit events for `retention`.
    pub fn with_event_retention(mut self, retention: std::time::Duration) -> Self {
        self.event_retention = retention;
        self
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Whether a write that answered an error stored its new item after all: an answer lost
    /// after the commit, the SDK's retry then cancelled by the write's own items (a claim
    /// "taken", say). The item, under the request's own new id, says which; a caller told "not
    /// stored" would roll back the Twilio resources a stored record names.
    async fn written_after_all(&self, key: Item) -> bool {
        let written = matches!(self.get_item(key).await, Ok(Some(_)));
        if written {
            tracing::info!("a write that answered an error was stored");
        }
        written
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

    async fn query_page(
        &self,
        org: &OrganizationId,
        prefix: &str,
        oldest_first: bool,
        limit: i32,
        page_token: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", org_partition(org))
            .expression_attribute_values(":prefix", s(prefix))
            .scan_index_forward(oldest_first)
            .consistent_read(true)
            .limit(limit);
        if let Some(token) = page_token {
            let after = decode_page_token(org, prefix, token)?;
            query = query.set_exclusive_start_key(Some(org_key(org, after)));
        }
        let output = query.send().await.map_err(StoreError::request)?;
        let items = output.items.unwrap_or_default();
        let next = match output.last_evaluated_key {
            Some(key) => key.get(SK).and_then(|sk| sk.as_s().ok()).map(|sk| encode_page_token(org, sk)),
            None => None,
        };
        Ok((items, next))
    }

    /// Writes in batches of 25, resending what DynamoDB hands back unprocessed under load.
    async fn batch_write(&self, requests: Vec<aws_sdk_dynamodb::types::WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut items = HashMap::from([(self.table.clone(), chunk.to_vec())]);
            let mut attempt = 0;
            loop {
                let output = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(StoreError::request)?;
                match output.unprocessed_items.filter(|left| left.values().any(|l| !l.is_empty())) {
                    None => break,
                    // Throttled (a provider's items share one partition): retried after a wait,
                    // as DynamoDB advises; at once they would be throttled again.
                    Some(left) => match crate::storage::item::retry_backoff(attempt) {
                        Some(wait) => {
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            items = left;
                        }
                        None => {
                            return Err(StoreError::Request(Cause::message(
                                "DynamoDB left items of a batch unprocessed",
                            )));
                        }
                    },
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::item::provider_sort_key;

    #[test]
    fn page_tokens_round_trip_and_reject_other_organizations_and_tampering() {
        let org = OrganizationId::parse("org-a").unwrap();
        let sort_key = provider_sort_key(Uuid::now_v7());
        let token = encode_page_token(&org, &sort_key);
        assert_eq!(decode_page_token(&org, "PROVIDER#", &token).unwrap(), sort_key);
        let other = OrganizationId::parse("org-b").unwrap();
        assert!(matches!(decode_page_token(&other, "PROVIDER#", &token), Err(StoreError::BadPageToken)));
        assert!(matches!(decode_page_token(&org, "NUMBER#", &token), Err(StoreError::BadPageToken)));
        for bad in ["", "!!!", "cDEub3JnLWEubm90LWEtdXVpZA", &token[..token.len() - 2]] {
            assert!(matches!(decode_page_token(&org, "PROVIDER#", bad), Err(StoreError::BadPageToken)), "{bad}");
        }
    }
}
