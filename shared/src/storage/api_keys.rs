//! API keys: how callers authenticate (`Authorization: Bearer <key>`) and which organization a request acts for.
//! Why: docs/decisions/api-keys-as-digests.md.

use crate::model::OrganizationId;
use crate::storage::StoreError;
use crate::storage::item::{
    API_KEY_PREFIX, Fields, Item, Transaction, api_key_listed_key, api_key_lookup_key, put_new, query_prefix, s,
};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;

const KEY_PREFIX: &str = "tpk_";
const KEY_ID_HEX: usize = 16;
const SECRET_BYTES: usize = 32;

/// A full API key. Shown once when created; never stored, logged or printed.
pub struct ApiKey(SecretString);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

impl ApiKey {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub organization_id: String,
    /// The readable start of the key (`tpk_<key id>`), to recognise it.
    pub prefix: String,
    pub description: Option<String>,
    pub created_at: crate::time::Timestamp,
    pub revoked: bool,
}

/// The key id of a well-formed key, or None.
fn key_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == KEY_ID_HEX && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let secret_ok = secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(id)
}

fn digest_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn generate() -> (String, ApiKey) {
    let mut id = [0u8; KEY_ID_HEX / 2];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id).expect("the OS random source");
    getrandom::fill(&mut secret).expect("the OS random source");
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let key = format!("{KEY_PREFIX}{id}_{secret}");
    (id, ApiKey(SecretString::from(key)))
}

#[derive(Clone, Debug)]
pub struct ApiKeyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// What an accepted key authenticates: its organization, and the key's id (not secret: the
/// part of the key that names it), for the request's logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    pub organization_id: OrganizationId,
    pub key_id: String,
}

impl ApiKeyStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Creates a key for the organization; the returned key is the only copy.
    pub async fn create(
        &self,
        org: &OrganizationId,
        description: Option<&str>,
    ) -> Result<(ApiKeyInfo, ApiKey), StoreError> {
        let (key_id, key) = generate();
        let info = ApiKeyInfo {
            key_id: key_id.clone(),
            organization_id: org.as_str().to_owned(),
            prefix: format!("{KEY_PREFIX}{key_id}"),
            description: description.map(str::to_owned),
            created_at: crate::time::Timestamp::now(),
            revoked: false,
        };
        let mut fields = HashMap::from([
            ("entity".to_owned(), s("apiKey")),
            ("keyId".to_owned(), s(key_id.clone())),
            ("organizationId".to_owned(), s(org.as_str())),
            ("prefix".to_owned(), s(info.prefix.clone())),
            ("createdAt".to_owned(), s(info.created_at.clone())),
            ("revoked".to_owned(), AttributeValue::Bool(false)),
        ]);
        if let Some(description) = description {
            fields.insert("description".to_owned(), s(description));
        }
        let mut lookup = api_key_lookup_key(&key_id);
        lookup.extend(fields.clone());
        lookup.insert("keyHash".to_owned(), s(digest_hex(key.expose())));
        let mut listed = api_key_listed_key(org, &key_id);
        listed.extend(fields);
        Transaction::new()
            .with(KeyCopy::Lookup, put_new(&self.table, lookup))
            .with(KeyCopy::Listed, put_new(&self.table, listed))
            .send(&self.client)
            .await?;
        Ok((info, key))
    }

    /// The organization's keys, oldest first.
    pub async fn list(&self, org: &OrganizationId) -> Result<Vec<ApiKeyInfo>, StoreError> {
        query_prefix(&self.client, &self.table, org, API_KEY_PREFIX).await?.iter().map(info_from_item).collect()
    }

    /// Revokes a key by id. Returns false when there is no such key.
    pub async fn revoke(&self, key_id: &str) -> Result<bool, StoreError> {
        let Some(item) = self.lookup(key_id).await? else { return Ok(false) };
        let org = Fields(&item).organization_id("organizationId")?;
        let revoke = |key: Item| {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("SET revoked = :true")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .build()
                .expect("table, key and expression set");
            TransactWriteItem::builder().update(update).build()
        };
        Transaction::new()
            .with(KeyCopy::Lookup, revoke(api_key_lookup_key(key_id)))
            .with(KeyCopy::Listed, revoke(api_key_listed_key(&org, key_id)))
            .send(&self.client)
            .await?;
        Ok(true)
    }

    /// A key's lookup item, read consistently (a key revoked a moment ago reads as revoked).
    async fn lookup(&self, key_id: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(api_key_lookup_key(key_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(output.item)
    }

    /// The organization an `Authorization` header value authenticates, with the key's id, or
    /// None for a missing, malformed, unknown or revoked key. Storage errors are errors (no
    /// decision is made). The read is consistent: a key revoked a moment ago is denied.
    pub async fn authorize(&self, authorization: Option<&str>) -> Result<Option<AuthorizedKey>, StoreError> {
        let Some(key) = authorization.and_then(bearer_credentials) else { return Ok(None) };
        let Some(key_id) = key_id_of(key) else { return Ok(None) };
        let digest = digest_hex(key);
        let Some(item) = self.lookup(key_id).await? else { return Ok(None) };
        let stored = item.get("keyHash").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("");
        let revoked = item.get("revoked").and_then(|v| v.as_bool().ok()).copied().unwrap_or(true);
        if !constant_time_eq(stored.as_bytes(), digest.as_bytes()) || revoked {
            return Ok(None);
        }
        let organization_id =
            item.get("organizationId").and_then(|v| v.as_s().ok()).and_then(|org| OrganizationId::parse(org));
        Ok(organization_id.map(|organization_id| AuthorizedKey { organization_id, key_id: key_id.to_owned() }))
    }
}

/// The credentials of a `Bearer` authorization (the scheme is case-insensitive, RFC 9110 11.1).
fn bearer_credentials(authorization: &str) -> Option<&str> {
    let (scheme, credentials) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// The two copies of a key, as transaction items.
#[derive(Clone, Copy, PartialEq)]
enum KeyCopy {
    Lookup,
    Listed,
}

fn info_from_item(item: &Item) -> Result<ApiKeyInfo, StoreError> {
    let f = Fields(item);
    Ok(ApiKeyInfo {
        key_id: f.string("keyId")?,
        organization_id: f.string("organizationId")?,
        prefix: f.string("prefix")?,
        description: f.opt_string("description")?,
        created_at: f.timestamp("createdAt")?,
        revoked: item.get("revoked").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_random_and_redacted() {
        let (id, key) = generate();
        assert_eq!(key_id_of(key.expose()), Some(id.as_str()));
        assert!(key.expose().len() >= 4 + 16 + 1 + 43);
        assert!(!format!("{key:?}").contains(key.expose()));
        let (other_id, other) = generate();
        assert_ne!(id, other_id);
        assert_ne!(key.expose(), other.expose());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer k", "bearer k", "BEARER  k ", " Bearer k"] {
            assert_eq!(bearer_credentials(header), Some("k"), "{header:?}");
        }
        for header in ["Basic k", "Bearerk", "k", ""] {
            assert_eq!(bearer_credentials(header), None, "{header:?}");
        }
    }

    #[test]
    fn malformed_keys_are_rejected_before_any_lookup() {
        for bad in [
            "",
            "tpk_",
            "tpk_0123456789abcdef",
            "tpk_0123456789ABCDEF_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "xyz_0123456789abcdef_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(key_id_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn digests_compare_in_constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
