//! `Idempotency-Key` records: the first response to a keyed request, replayed for 24 hours to the same organization
//! sending the same key with the same request. The item: docs/api.md#idempotency.

use crate::model::OrganizationId;
use crate::storage::StoreError;
use crate::storage::item::{Fields, idempotency_record_key, n, put, s};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long a key is remembered.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long an in-flight claim holds before a retry of the same request may take it over
/// (longer than any invocation can run).
pub const LOCK: Duration = Duration::from_secs(120);
/// The table attribute DynamoDB's TTL deletes expired items by.
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// A response as stored for replay.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub location: Option<String>,
}

#[derive(Debug, PartialEq)]
pub enum Claim {
    /// First use of the key (or a takeover of an abandoned one): run the request.
    Proceed,
    /// Done before with the same request: answer this.
    Replay(StoredResponse),
    /// The first request with this key is still running.
    InFlight,
    /// The key was used with a different request.
    Mismatch,
}

#[derive(Clone, Debug)]
pub struct IdempotencyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// Hex SHA-256 of the parts, each length-prefixed so that boundaries cannot shift.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl IdempotencyStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Claims the key for a request with this digest, or says why not.
    pub async fn claim(
        &self,
        org: &OrganizationId,
        idempotency_key: &str,
        request_digest: &str,
    ) -> Result<Claim, StoreError> {
        let now = crate::time::unix_now();
        let mut item = idempotency_record_key(org, idempotency_key);
        item.insert("entity".to_owned(), s("idempotencyKey"));
        item.insert("requestDigest".to_owned(), s(request_digest));
        item.insert("state".to_owned(), s("inFlight"));
        item.insert("lockedUntil".to_owned(), n(now + LOCK.as_secs()));
        item.insert(TTL_ATTRIBUTE.to_owned(), n(now + RETENTION.as_secs()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR expiresAt < :now OR (requestDigest = :digest AND #state = :inFlight AND lockedUntil < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":digest", s(request_digest))
            .expression_attribute_values(":inFlight", s("inFlight"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Proceed),
            Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                self.existing(org, idempotency_key, request_digest).await
            }
            Err(e) => Err(StoreError::request(e)),
        }
    }

    async fn existing(
        &self,
        org: &OrganizationId,
        idempotency_key: &str,
        request_digest: &str,
    ) -> Result<Claim, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_record_key(org, idempotency_key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::request)?
            .item
            .ok_or_else(|| StoreError::Corrupt("idempotency record vanished".into()))?;
        let f = Fields(&item);
        if f.opt_string("requestDigest")?.as_deref() != Some(request_digest) {
            return Ok(Claim::Mismatch);
        }
        if f.opt_string("state")?.as_deref() != Some("done") {
            return Ok(Claim::InFlight);
        }
        Ok(Claim::Replay(StoredResponse {
            status: f.number("responseStatus")?,
            content_type: f.opt_string("responseContentType")?.unwrap_or_else(|| "application/json".into()),
            body: f.string("responseBody")?,
            location: f.opt_string("responseLocation")?,
        }))
    }

    /// Stores the response of the request that claimed the key.
    pub async fn complete(
        &self,
        org: &OrganizationId,
        idempotency_key: &str,
        request_digest: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let now = crate::time::unix_now();
        let mut item = idempotency_record_key(org, idempotency_key);
        item.insert("entity".to_owned(), s("idempotencyKey"));
        item.insert("requestDigest".to_owned(), s(request_digest));
        item.insert("state".to_owned(), s("done"));
        item.insert(TTL_ATTRIBUTE.to_owned(), n(now + RETENTION.as_secs()));
        item.insert("responseStatus".to_owned(), n(u64::from(response.status)));
        item.insert("responseContentType".to_owned(), s(response.content_type.clone()));
        item.insert("responseBody".to_owned(), s(response.body.clone()));
        if let Some(location) = &response.location {
            item.insert("responseLocation".to_owned(), s(location.clone()));
        }
        put(&self.client, &self.table, item).await
    }

    /// Forgets the key (after a server-side failure, so that a retry runs again).
    pub async fn forget(&self, org: &OrganizationId, idempotency_key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_record_key(org, idempotency_key)))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_separate_their_parts() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert_eq!(digest(&[b"x"]).len(), 64);
    }
}
