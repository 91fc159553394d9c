//! The DynamoDB table, partitioned by organization: every key the handlers read and write
//! starts with the organization, so no read or write can reach another organization's items;
//! the one exception, a phone number's global claim, is looked up by its SID, never listed.
//! The keys and the item mapping are in [`crate::item`], with the table of every item.

use crate::audit::AuditEvent;
use crate::crypto::EncryptedSecret;
use crate::item::{
    Fields, Item, JOB_PROVIDER_ID, JOBS_INDEX, PK, PROVIDER_PREFIX, SK, Transaction, TransactionFailure,
    account_claim_sort_key, enum_value, jobs_index_backfill_key, leftover_sort_key, leftovers_prefix,
    legacy_leftovers_sort_key, n, number_claim_key, number_sort_key, numbers_prefix, org_key, org_partition,
    provider_sort_key, put_new, query_prefix, repair_lease_sort_key, s, secret, sip_credential_sort_key,
};
use crate::model::{
    AccountSid, CredentialListSid, CredentialSid, OrganizationId, PhoneNumberSid, Region, TrunkSid, TwilioRegion,
    VerificationCheck, VerificationStatus, VoiceRouting,
};
use crate::time::Timestamp;
use crate::twilio::TwilioResource;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use std::collections::HashMap;
use uuid::Uuid;

mod credential;
mod events;
mod intent;
pub use credential::{OpenCredentialError, SealedCredential, StoredApiKey};
pub use events::{DEFAULT_RETENTION, EventFilter};
pub use intent::{Change, Intent, IntentKey, NewResources};

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
    pub(crate) fn request<E: std::error::Error + 'static>(e: E) -> Self {
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

/// Where the next page of a table scan starts.
#[derive(Debug, Clone)]
pub struct ScanCursor(Item);

/// What the planner pages through (see [`ProviderStore::scan_ids`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobsSource {
    Index,
    /// The whole table: only while the index is not ready.
    Table,
}

/// Where the jobs index's backfill stands (see [`ProviderStore::backfill_jobs_index`]).
#[derive(Debug)]
pub enum Backfill {
    Done,
    /// Not done: the next page starts here (`None`: at the start of the table).
    From(Option<ScanCursor>),
}

/// Items given the jobs index's key at once during its backfill.
const BACKFILL_CONCURRENCY: usize = 16;
/// The backfill runs again this long after it was last done: code from before the index (a
/// deploy's overlap, a rollback) rewrites provider items without the index's key, and each
/// is found again within a day instead of never.
pub const BACKFILL_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

#[derive(Debug)]
pub struct ScanPage {
    pub providers: Vec<Result<ProviderRecord, StoreError>>,
    pub next: Option<ScanCursor>,
}

/// A phone number imported onto a provider's trunk, with the routing it had before.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneNumberRecord {
    pub id: Uuid,
    pub provider_id: Uuid,
    pub phone_number_sid: PhoneNumberSid,
    pub phone_number: String,
    pub friendly_name: Option<String>,
    /// The voice configuration before import, URLs masked (safe to show and store in plain).
    pub previous_routing: VoiceRouting,
    /// The exact voice configuration before import, envelope-encrypted (JSON of
    /// [`VoiceRouting`]); absent when it has no URL, as the masked one is then exact.
    pub previous_routing_sealed: Option<EncryptedSecret>,
    pub imported_at: Timestamp,
}

impl PhoneNumberRecord {
    fn key(&self, org: &OrganizationId) -> Item {
        org_key(org, number_sort_key(self.provider_id, self.id))
    }

    fn to_item(&self, org: &OrganizationId) -> Item {
        let mut item = self.key(org);
        item.extend([
            ("entity".to_owned(), s("phoneNumber")),
            ("id".to_owned(), s(self.id.to_string())),
            ("providerId".to_owned(), s(self.provider_id.to_string())),
            ("phoneNumberSid".to_owned(), s(self.phone_number_sid.as_str())),
            ("phoneNumber".to_owned(), s(self.phone_number.clone())),
            ("importedAt".to_owned(), s(self.imported_at.clone())),
        ]);
        if let Some(name) = &self.friendly_name {
            item.insert("friendlyName".to_owned(), s(name.clone()));
        }
        let routing = serde_json::to_string(&self.previous_routing).expect("routing serializes");
        item.insert("previousRouting".to_owned(), s(routing));
        if let Some(sealed) = &self.previous_routing_sealed {
            item.insert("previousRoutingSealed".to_owned(), secret(sealed));
        }
        item
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let f = Fields(item);
        Ok(Self {
            id: f.uuid("id")?,
            provider_id: f.uuid("providerId")?,
            phone_number_sid: f.parsed("phoneNumberSid", PhoneNumberSid::parse)?,
            phone_number: f.string("phoneNumber")?,
            friendly_name: f.opt_string("friendlyName")?,
            previous_routing: f.json("previousRouting")?.unwrap_or_default(),
            previous_routing_sealed: f.opt_secret("previousRoutingSealed")?,
            imported_at: f.timestamp("importedAt")?,
        })
    }
}

/// One Twilio resource that a failed rollback, an undo or a forced delete left in a customer's
/// account, kept until the orphan sweeper removes it: one item each, so recording one never
/// overwrites another and a provider's leftovers stay bounded by DynamoDB's item size one by one.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub organization_id: OrganizationId,
    pub provider_id: Uuid,
    pub account_sid: AccountSid,
    /// The Twilio Region the resource is in.
    pub twilio_region: TwilioRegion,
    /// The provider's credential when it was left; absent when it could not be encrypted (KMS
    /// was the failure). The sweeper prefers the live provider's current one.
    pub credential: Option<SealedCredential>,
    pub resource: TwilioResource,
    /// For a number left on the trunk: the routing it had before import (masked; the exact
    /// one sealed), so that the sweeper gives it back as a removal would.
    pub previous_routing: Option<VoiceRouting>,
    pub previous_routing_sealed: Option<EncryptedSecret>,
    pub created_at: Timestamp,
    /// Twilio rejected this token: the sweeper stops trying it (logged once) until the provider
    /// has another one; an operator removes the resource by hand otherwise.
    pub stuck: Option<(String, EncryptedSecret)>,
    /// Which recording of the resource this is (set when it is written): the sweeper forgets
    /// or marks only the one it read, never one recorded again since.
    pub record_id: Option<Uuid>,
}

impl Leftover {
    /// A resource to record as left behind now (a number adds the routing it had).
    pub fn new(
        organization_id: OrganizationId,
        provider_id: Uuid,
        account_sid: AccountSid,
        twilio_region: TwilioRegion,
        credential: Option<SealedCredential>,
        resource: TwilioResource,
    ) -> Self {
        Self {
            organization_id,
            provider_id,
            account_sid,
            twilio_region,
            credential,
            resource,
            previous_routing: None,
            previous_routing_sealed: None,
            created_at: Timestamp::now(),
            stuck: None,
            record_id: None,
        }
    }

    fn key(&self) -> Item {
        org_key(&self.organization_id, leftover_sort_key(self.provider_id, &self.resource))
    }

    /// The condition that the stored item is this recording (an item written before recordings
    /// had ids has none).
    fn same_recording(&self) -> &'static str {
        if self.record_id.is_some() {
            "recordId = :id"
        } else {
            "attribute_exists(pk) AND attribute_not_exists(recordId)"
        }
    }

    fn record_id_value(&self) -> Option<HashMap<String, AttributeValue>> {
        self.record_id.map(|id| HashMap::from([(":id".to_owned(), s(id.to_string()))]))
    }

    /// The item of a new recording of it.
    fn recorded(&self) -> Item {
        Self { record_id: Some(Uuid::now_v7()), ..self.clone() }.to_item()
    }

    fn to_item(&self) -> Item {
        let mut item = self.key();
        item.extend([
            ("entity".to_owned(), s("orphan")),
            ("organizationId".to_owned(), s(self.organization_id.as_str())),
            ("providerId".to_owned(), s(self.provider_id.to_string())),
            (JOB_PROVIDER_ID.to_owned(), s(self.provider_id.to_string())),
            ("accountSid".to_owned(), s(self.account_sid.as_str())),
            ("twilioRegion".to_owned(), s(self.twilio_region.as_str())),
            ("kind".to_owned(), s(self.resource.kind())),
            ("sid".to_owned(), s(self.resource.sid())),
            ("createdAt".to_owned(), s(self.created_at.clone())),
        ]);
        if let Some(id) = self.record_id {
            item.insert("recordId".to_owned(), s(id.to_string()));
        }
        if let Some(credential) = &self.credential {
            credential.put(&mut item);
        }
        if let Some(routing) = &self.previous_routing {
            item.insert("previousRouting".to_owned(), s(serde_json::to_string(routing).expect("routing serializes")));
        }
        if let Some(sealed) = &self.previous_routing_sealed {
            item.insert("previousRoutingSealed".to_owned(), secret(sealed));
        }
        if let Some((reason, token)) = &self.stuck {
            item.insert("stuckReason".to_owned(), s(reason.clone()));
            item.insert("stuckToken".to_owned(), secret(token));
        }
        item
    }

    /// `Ok(None)`: a resource this service does not create (never removed, so never swept).
    fn from_item(item: &Item) -> Result<Option<Self>, StoreError> {
        let f = Fields(item);
        let (kind, sid) = (f.string("kind")?, f.string("sid")?);
        let Some(resource) = TwilioResource::parse(&kind, &sid) else {
            if TwilioResource::KINDS.contains(&kind.as_str()) {
                return Err(StoreError::Corrupt(format!("leftover {kind} has a malformed sid")));
            }
            tracing::warn!(kind, sid, "leftover record names an unknown resource; skipped");
            return Ok(None);
        };
        let stuck = match (f.opt_string("stuckReason")?, f.opt_secret("stuckToken")?) {
            (Some(reason), Some(token)) => Some((reason, token)),
            _ => None,
        };
        Ok(Some(Self {
            organization_id: f.organization_id("organizationId")?,
            provider_id: f.uuid("providerId")?,
            account_sid: f.parsed("accountSid", AccountSid::parse)?,
            twilio_region: twilio_region_of(item)?,
            credential: SealedCredential::read_opt(&f)?,
            resource,
            previous_routing: f.json("previousRouting")?,
            previous_routing_sealed: f.opt_secret("previousRoutingSealed")?,
            created_at: f.timestamp("createdAt")?,
            stuck,
            record_id: f.opt_string("recordId")?.and_then(|id| Uuid::parse_str(&id).ok()),
        }))
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

/// The items of a number transaction.
#[derive(Clone, Copy, PartialEq)]
enum NumberPart {
    Number,
    Claim,
    /// The provider's `phoneNumberCount` (and version).
    ProviderCount,
    Intent,
    Event,
}

/// Where a number stands among imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberClaim {
    Free,
    /// An import of it is under way.
    Reserved,
    /// Imported into this provider.
    Claimed {
        provider_id: Uuid,
    },
}

/// Whether a conditional write's condition held: `Ok(false)` when DynamoDB refused it with
/// `ConditionalCheckFailedException` (nothing written), any other failure an error.
fn condition_held<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(StoreError::request(e)),
    }
}

/// How long a number's reservation holds an import's place: well past the longest import
/// invocation (29 s), short enough that an import that died midway frees the number soon.
pub const RESERVATION: std::time::Duration = std::time::Duration::from_secs(120);

/// How long a repair holds its provider: past the repair function's timeout (29 s), so that a
/// repair that died midway frees the provider soon.
pub const REPAIR_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

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

impl ProviderRecord {
    /// What the provider's trunk is set to.
    pub fn trunk_settings(&self) -> crate::model::TrunkSettings {
        crate::model::TrunkSettings::new(
            self.supports_call_transfer,
            self.secure_trunking,
            self.disaster_recovery.clone(),
        )
    }

    fn key(&self) -> Item {
        org_key(&self.organization_id, provider_sort_key(self.id))
    }

    fn to_item(&self) -> Item {
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

    fn from_item(item: &Item) -> Result<Self, StoreError> {
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

impl SipCredentialRecord {
    fn to_item(&self, org: &OrganizationId) -> Item {
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

    fn from_item(item: &Item) -> Result<Self, StoreError> {
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

/// Creates the table as `template.yaml` declares it: `pk` (hash) and `sk` (range) strings,
/// on-demand billing, TTL on `expiresAt`, point-in-time recovery, deletion protection.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{BillingMode, GlobalSecondaryIndex, KeyType, PointInTimeRecoverySpecification};
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(PK))
        .attribute_definitions(string_attribute(SK))
        .attribute_definitions(string_attribute(JOB_PROVIDER_ID))
        .key_schema(key_element(PK, KeyType::Hash))
        .key_schema(key_element(SK, KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(JOBS_INDEX)
                .key_schema(key_element(JOB_PROVIDER_ID, KeyType::Hash))
                .projection(jobs_index_projection())
                .build()
                .expect("name, key and projection set"),
        )
        .deletion_protection_enabled(true)
        .send()
        .await
        .map_err(StoreError::request)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name(crate::idempotency::TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .expect("name and flag set"),
        )
        .send()
        .await
        .map_err(StoreError::request)?;
    client
        .update_continuous_backups()
        .table_name(name)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(true).build().expect("flag set"),
        )
        .send()
        .await
        .map_err(StoreError::request)?;
    Ok(())
}

fn string_attribute(name: &str) -> aws_sdk_dynamodb::types::AttributeDefinition {
    aws_sdk_dynamodb::types::AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
        .build()
        .expect("name and type set")
}

fn key_element(name: &str, key_type: aws_sdk_dynamodb::types::KeyType) -> aws_sdk_dynamodb::types::KeySchemaElement {
    aws_sdk_dynamodb::types::KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("name and type set")
}

/// The attribute holding the provider's id on a provider (`id`) or leftover (`providerId`) item.
fn provider_id_attribute(entity: &str) -> &'static str {
    if entity == "provider" { "id" } else { "providerId" }
}

/// What the jobs index holds beside its key: what the planner reads.
fn jobs_index_projection() -> aws_sdk_dynamodb::types::Projection {
    aws_sdk_dynamodb::types::Projection::builder()
        .projection_type(aws_sdk_dynamodb::types::ProjectionType::Include)
        .non_key_attributes("entity")
        .non_key_attributes("organizationId")
        .build()
}

/// Adds the jobs index to a table created before it (`local-api --bootstrap` on an existing
/// table; a deployed stack gets it from template.yaml). Returns whether it had to.
pub async fn add_jobs_index(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<bool, StoreError> {
    use aws_sdk_dynamodb::types::{CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, KeyType};
    let table = client.describe_table().table_name(name).send().await.map_err(StoreError::request)?;
    let indexes = table.table.and_then(|t| t.global_secondary_indexes).unwrap_or_default();
    if indexes.iter().any(|index| index.index_name() == Some(JOBS_INDEX)) {
        return Ok(false);
    }
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(JOBS_INDEX)
        .key_schema(key_element(JOB_PROVIDER_ID, KeyType::Hash))
        .projection(jobs_index_projection())
        .build()
        .expect("name, key and projection set");
    client
        .update_table()
        .table_name(name)
        .attribute_definitions(string_attribute(JOB_PROVIDER_ID))
        .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
        .send()
        .await
        .map_err(StoreError::request)?;
    Ok(true)
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
        #[derive(Clone, Copy, PartialEq)]
        enum Part {
            Provider,
            SipCredential,
            AccountClaim,
            Intent,
            Event,
        }
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

    async fn put_replaced(&self, record: &ProviderRecord) -> Result<(), StoreError> {
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

    /// Likewise for a `nextToken` of a provider's numbers.
    pub fn check_numbers_page_token(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        token: &str,
    ) -> Result<(), StoreError> {
        decode_page_token(org, &numbers_prefix(provider_id), token).map(drop)
    }

    /// The page token of a provider's numbers that starts after `number`.
    pub fn numbers_after(&self, org: &OrganizationId, number: &PhoneNumberRecord) -> String {
        encode_page_token(org, &number_sort_key(number.provider_id, number.id))
    }

    /// A provider's imported numbers, oldest first, `limit` at a time.
    pub async fn list_numbers(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        limit: i32,
        page_token: Option<&str>,
    ) -> Result<(Vec<PhoneNumberRecord>, Option<String>), StoreError> {
        let (items, next) = self.query_page(org, &numbers_prefix(provider_id), true, limit, page_token).await?;
        Ok((items.iter().map(PhoneNumberRecord::from_item).collect::<Result<_, _>>()?, next))
    }

    /// Every imported number of a provider.
    pub async fn all_numbers(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Vec<PhoneNumberRecord>, StoreError> {
        let mut numbers = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = self.list_numbers(org, provider_id, 100, token.as_deref()).await?;
            numbers.extend(page);
            match next {
                Some(next) => token = Some(next),
                None => return Ok(numbers),
            }
        }
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

    /// One page of every organization's providers, for the hourly job. An item that cannot be
    /// read is returned as an error in its place, so one bad record never hides the rest.
    pub async fn scan_providers(&self, start: Option<ScanCursor>) -> Result<ScanPage, StoreError> {
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("entity = :provider")
            .expression_attribute_values(":provider", s("provider"))
            .set_exclusive_start_key(start.map(|cursor| cursor.0))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(ScanPage {
            providers: output.items().iter().map(ProviderRecord::from_item).collect(),
            next: output.last_evaluated_key.map(ScanCursor),
        })
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
        #[derive(Clone, Copy, PartialEq)]
        enum Part {
            Provider,
            SipCredential,
            AccountClaim,
            Intent,
            Event,
        }
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

    /// Deletes numbers' records and claims, in batches, leaving the provider's count as it is:
    /// for a provider being force-deleted, once what they leave is recorded for the sweeper.
    pub async fn forget_numbers(&self, org: &OrganizationId, numbers: &[PhoneNumberRecord]) -> Result<(), StoreError> {
        let number_keys: Vec<Item> =
            numbers.iter().flat_map(|n| [n.key(org), number_claim_key(&n.phone_number_sid)]).collect();
        let deletes = number_keys
            .into_iter()
            .map(|key| {
                let delete =
                    aws_sdk_dynamodb::types::DeleteRequest::builder().set_key(Some(key)).build().expect("key set");
                aws_sdk_dynamodb::types::WriteRequest::builder().delete_request(delete).build()
            })
            .collect();
        self.batch_write(deletes).await
    }

    /// Whether a number is imported into a provider (of any organization), or an import of it
    /// is under way (a reservation that has not lapsed).
    pub async fn number_claim(&self, phone_number_sid: &PhoneNumberSid) -> Result<NumberClaim, StoreError> {
        let Some(claim) = self.get_item(number_claim_key(phone_number_sid)).await? else {
            return Ok(NumberClaim::Free);
        };
        let f = Fields(&claim);
        Ok(match f.opt_number::<u64>("pendingUntil")? {
            None => NumberClaim::Claimed { provider_id: f.uuid("providerId")? },
            Some(until) if until >= epoch_seconds() => NumberClaim::Reserved,
            Some(_) => NumberClaim::Free,
        })
    }

    /// Reserves a number for an import before anything is done in Twilio, so that of two
    /// imports of one number (two organizations may connect one Twilio account) the loser never
    /// touches it. The reservation lapses after [`RESERVATION`] (an import that died midway
    /// does not hold the number for ever); [`Self::insert_number`] turns it into the claim.
    /// Returns the reservation's id, which only its holder gives up; `NumberTaken` when the
    /// number is imported or reserved already.
    pub async fn reserve_number(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        phone_number_sid: &PhoneNumberSid,
    ) -> Result<Uuid, StoreError> {
        let now = epoch_seconds();
        let reservation = Uuid::now_v7();
        let mut claim = number_claim_key(phone_number_sid);
        claim.extend([
            ("entity".to_owned(), s("numberClaim")),
            ("organizationId".to_owned(), s(org.as_str())),
            ("providerId".to_owned(), s(provider_id.to_string())),
            ("reservationId".to_owned(), s(reservation.to_string())),
            ("pendingUntil".to_owned(), n(now + RESERVATION.as_secs())),
            // Lapsed reservations are removed by the table's TTL, in time.
            ("expiresAt".to_owned(), n(now + RESERVATION.as_secs())),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(claim))
            .condition_expression("attribute_not_exists(pk) OR pendingUntil < :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        if condition_held(result)? { Ok(reservation) } else { Err(StoreError::NumberTaken) }
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

    pub async fn release_repair_lease(&self, org: &OrganizationId, provider_id: Uuid) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(org_key(org, repair_lease_sort_key(provider_id))))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(())
    }

    /// Gives up a reservation (the import did not happen): this one only, never one another
    /// import of the number holds since.
    pub async fn release_reservation(
        &self,
        phone_number_sid: &PhoneNumberSid,
        reservation: Uuid,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(number_claim_key(phone_number_sid)))
            .condition_expression("reservationId = :reservation AND attribute_exists(pendingUntil)")
            .expression_attribute_values(":reservation", s(reservation.to_string()))
            .send()
            .await;
        // Refused: lapsed and taken by another import, or already turned into the claim; not ours.
        condition_held(result).map(drop)
    }

    pub async fn get_number(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        number_id: Uuid,
    ) -> Result<Option<PhoneNumberRecord>, StoreError> {
        self.get_item(org_key(org, number_sort_key(provider_id, number_id)))
            .await?
            .as_ref()
            .map(PhoneNumberRecord::from_item)
            .transpose()
    }

    /// Stores an imported number, turns the provider's reservation of it into its claim,
    /// increments the provider's `phoneNumberCount` (and version) and removes the import's
    /// intent, all in one transaction. `NumberTaken` when the reservation is no longer this
    /// provider's.
    pub async fn insert_number(
        &self,
        org: &OrganizationId,
        number: &PhoneNumberRecord,
        intent: Option<&IntentKey>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut claim = number_claim_key(&number.phone_number_sid);
        claim.insert("entity".to_owned(), s("numberClaim"));
        claim.insert("organizationId".to_owned(), s(org.as_str()));
        claim.insert("providerId".to_owned(), s(number.provider_id.to_string()));
        let claim = Put::builder()
            .table_name(&self.table)
            .set_item(Some(claim))
            .condition_expression("providerId = :provider AND attribute_exists(pendingUntil)")
            .expression_attribute_values(":provider", s(number.provider_id.to_string()))
            .build()
            .expect("table and item set");
        let transaction = Transaction::new()
            .with(NumberPart::Number, put_new(&self.table, number.to_item(org)))
            .with(NumberPart::Claim, TransactWriteItem::builder().put(claim).build())
            .with(NumberPart::ProviderCount, self.count_update(org, number.provider_id, 1, false))
            .with_some(NumberPart::Intent, intent.map(|key| key.done(&self.table)))
            .with(NumberPart::Event, self.event_put(event));
        let failure = match self.transact_number_change(transaction, StoreError::NumberTaken).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if self.written_after_all(org_key(org, number_sort_key(number.provider_id, number.id))).await {
            return Ok(());
        }
        Err(failure)
    }

    /// Deletes an imported number and its claim, decrements the provider's count and removes
    /// the removal's intent; refused (`ProviderGone`) once the provider is being deleted.
    pub async fn remove_number(
        &self,
        org: &OrganizationId,
        number: &PhoneNumberRecord,
        intent: &IntentKey,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.delete_number(org, number, false, Some(intent), event).await
    }

    /// The same for a provider being deleted: each number's records go as soon as it is given
    /// back, so a resumed delete never redoes it.
    pub async fn forget_released_number(
        &self,
        org: &OrganizationId,
        number: &PhoneNumberRecord,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.delete_number(org, number, true, None, event).await
    }

    async fn delete_number(
        &self,
        org: &OrganizationId,
        number: &PhoneNumberRecord,
        while_deleting: bool,
        intent: Option<&IntentKey>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let delete = |key: Item, condition: Option<&str>| {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .set_condition_expression(condition.map(str::to_owned))
                .build()
                .expect("key set");
            TransactWriteItem::builder().delete(delete).build()
        };
        let transaction = Transaction::new()
            .with(NumberPart::Number, delete(number.key(org), Some("attribute_exists(pk)")))
            .with(NumberPart::Claim, delete(number_claim_key(&number.phone_number_sid), None))
            .with(NumberPart::ProviderCount, self.count_update(org, number.provider_id, -1, while_deleting))
            .with_some(NumberPart::Intent, intent.map(|key| key.done(&self.table)))
            .with(NumberPart::Event, self.event_put(event));
        self.transact_number_change(transaction, StoreError::NumberGone).await
    }

    fn count_update(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        delta: i64,
        while_deleting: bool,
    ) -> TransactWriteItem {
        let condition = if while_deleting {
            "attribute_exists(pk)"
        } else {
            "attribute_exists(pk) AND attribute_not_exists(deletionStartedAt)"
        };
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(org_key(org, provider_sort_key(provider_id))))
            .update_expression("SET phoneNumberCount = phoneNumberCount + :delta, version = version + :one")
            .condition_expression(condition)
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":one", n(1))
            .build()
            .expect("table, key and expression set");
        TransactWriteItem::builder().update(update).build()
    }

    /// Runs a number transaction: a failed condition on the provider's count is
    /// `ProviderGone`, on the number or its claim `on_item_conflict`. A transaction that
    /// DynamoDB cancelled because another one was writing the same item (the provider's count,
    /// under concurrent imports) is retried with jittered backoff within the deadline.
    async fn transact_number_change(
        &self,
        transaction: Transaction<NumberPart>,
        on_item_conflict: StoreError,
    ) -> Result<(), StoreError> {
        let why = match transaction.send(&self.client).await {
            Ok(()) => return Ok(()),
            Err(TransactionFailure::Request(e)) => return Err(e),
            Err(TransactionFailure::Cancelled(why)) => why,
        };
        if why.condition_failed(NumberPart::ProviderCount) {
            return Err(StoreError::ProviderGone);
        }
        if why.condition_failed(NumberPart::Number) || why.condition_failed(NumberPart::Claim) {
            return Err(on_item_conflict);
        }
        Err(why.into())
    }

    /// Records resources left in a customer's account, for the clean-up job: one item each (a
    /// resource recorded again replaces its own item only), in batches.
    pub async fn record_leftovers(&self, leftovers: &[Leftover]) -> Result<(), StoreError> {
        let puts: Vec<_> = leftovers
            .iter()
            .map(|leftover| {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(leftover.recorded()))
                    .build()
                    .expect("item set");
                aws_sdk_dynamodb::types::WriteRequest::builder().put_request(put).build()
            })
            .collect();
        self.batch_write(puts).await
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
                    Some(left) => match crate::item::retry_backoff(attempt) {
                        Some(wait) => {
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            items = left;
                        }
                        None => return Err(StoreError::Request("DynamoDB left items of a batch unprocessed".into())),
                    },
                }
            }
        }
        Ok(())
    }

    /// Forgets a leftover the sweeper removed (or found gone): the recording it read only, not
    /// one of the same resource recorded again since.
    pub async fn forget_leftover(&self, leftover: &Leftover) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(leftover.key()))
            .condition_expression(leftover.same_recording())
            .set_expression_attribute_values(leftover.record_id_value())
            .send()
            .await;
        condition_held(result).map(drop)
    }

    /// Marks a leftover as stuck on a token Twilio rejects (the recording it read only).
    pub async fn mark_leftover_stuck(&self, leftover: &Leftover) -> Result<(), StoreError> {
        let Some((reason, token)) = &leftover.stuck else { return Ok(()) };
        debug_assert!(!reason.is_empty() && !token.ciphertext.is_empty());
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(leftover.to_item()))
            .condition_expression(leftover.same_recording())
            .set_expression_attribute_values(leftover.record_id_value())
            .send()
            .await;
        condition_held(result).map(drop)
    }

    /// One page of the (organization, provider id) pairs of every item of `entity`
    /// (`provider` or `orphan`), for the job planner. It reads the jobs index, which holds
    /// provider and leftover items only, with just the attributes read here; or the whole table
    /// while the index is not ready ([`StoreError::IndexNotReady`]).
    pub async fn scan_ids(
        &self,
        entities: &[&str],
        source: JobsSource,
        start: Option<ScanCursor>,
    ) -> Result<(Vec<(OrganizationId, Uuid)>, Option<ScanCursor>), StoreError> {
        let id_attribute = match source {
            JobsSource::Index => JOB_PROVIDER_ID,
            JobsSource::Table => {
                let attribute = provider_id_attribute(entities[0]);
                debug_assert!(entities.iter().all(|e| provider_id_attribute(e) == attribute));
                attribute
            }
        };
        // One pass over the index for every entity asked for: a filter still reads every item.
        let names: Vec<String> = (0..entities.len()).map(|i| format!(":entity{i}")).collect();
        let values = names.iter().zip(entities).map(|(name, entity)| (name.clone(), s(*entity))).collect();
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .set_index_name((source == JobsSource::Index).then(|| JOBS_INDEX.to_owned()))
            .filter_expression(format!("entity IN ({})", names.join(", ")))
            .set_expression_attribute_values(Some(values))
            .projection_expression("organizationId, #provider")
            .expression_attribute_names("#provider", id_attribute)
            .set_exclusive_start_key(start.map(|cursor| cursor.0))
            .send()
            .await
            .map_err(|e| {
                // DynamoDB's answer while it backfills a new index ("Cannot read from
                // backfilling global secondary index").
                let backfilling = e.code() == Some("ValidationException")
                    && e.message().is_some_and(|m| m.contains("backfilling global secondary index"));
                if backfilling { StoreError::IndexNotReady } else { StoreError::request(e) }
            })?;
        let mut ids = Vec::new();
        for item in output.items() {
            let f = Fields(item);
            ids.push((f.organization_id("organizationId")?, f.uuid(id_attribute)?));
        }
        Ok((ids, output.last_evaluated_key.map(ScanCursor)))
    }

    /// Where the jobs index's backfill stands: done within the last [`BACKFILL_AGAIN_AFTER`],
    /// or where its next page starts.
    pub async fn jobs_index_backfill(&self) -> Result<Backfill, StoreError> {
        let Some(item) = self.get_item(jobs_index_backfill_key()).await? else { return Ok(Backfill::From(None)) };
        let f = Fields(&item);
        if let Some(done) = f.opt_timestamp("indexedAt")? {
            let age = crate::time::unix_now() as i64 - done.unix_seconds();
            return Ok(if age < BACKFILL_AGAIN_AFTER.as_secs() as i64 { Backfill::Done } else { Backfill::From(None) });
        }
        Ok(Backfill::From(item.get("cursor").and_then(|c| c.as_m().ok()).cloned().map(ScanCursor)))
    }

    /// One page of the backfill: gives the provider and leftover items written before the jobs
    /// index (they lack its key) their key, then records where the next page starts, or that
    /// the backfill is done. Returns each item's (entity, organization, provider id), for the
    /// planner to plan what the index could not yet show it, and where the next page starts.
    pub async fn backfill_jobs_index(
        &self,
        start: Option<ScanCursor>,
    ) -> Result<(Vec<(String, OrganizationId, Uuid)>, Option<ScanCursor>), StoreError> {
        use futures::{StreamExt, TryStreamExt};
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("entity IN (:provider, :orphan) AND attribute_not_exists(#provider)")
            .expression_attribute_values(":provider", s("provider"))
            .expression_attribute_values(":orphan", s("orphan"))
            .expression_attribute_names("#provider", JOB_PROVIDER_ID)
            .set_exclusive_start_key(start.map(|cursor| cursor.0))
            .send()
            .await
            .map_err(StoreError::request)?;
        let mut found = Vec::new();
        for item in output.items() {
            let f = Fields(item);
            let entity = f.string("entity")?;
            let provider_id = f.uuid(provider_id_attribute(&entity))?;
            let key = Item::from([(PK.to_owned(), f.get(PK)?.clone()), (SK.to_owned(), f.get(SK)?.clone())]);
            found.push((entity, f.organization_id("organizationId")?, provider_id, key));
        }
        // An item deleted since the scan read it is not written again (the condition).
        futures::stream::iter(&found)
            .map(|(_, _, provider_id, key)| async move {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key.clone()))
                    .update_expression("SET #provider = :provider")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#provider", JOB_PROVIDER_ID)
                    .expression_attribute_values(":provider", s(provider_id.to_string()))
                    .send()
                    .await;
                condition_held(result)
            })
            .buffer_unordered(BACKFILL_CONCURRENCY)
            .try_collect::<Vec<bool>>()
            .await?;
        let next = output.last_evaluated_key.map(ScanCursor);
        let mut progress = jobs_index_backfill_key();
        progress.insert("entity".to_owned(), s("jobsIndexBackfill"));
        match &next {
            Some(cursor) => progress.insert("cursor".to_owned(), AttributeValue::M(cursor.0.clone())),
            None => progress.insert("indexedAt".to_owned(), s(Timestamp::now().as_str())),
        };
        // Two planners at once (the two schedules fire together) may set the cursor back a
        // page or mark done what the other goes on with: either way a page is read again.
        crate::item::put(&self.client, &self.table, progress).await?;
        Ok((found.into_iter().map(|(entity, org, provider_id, _)| (entity, org, provider_id)).collect(), next))
    }

    /// Rewrites a provider's leftover record of the earlier format (one `ORPHAN#{providerId}`
    /// item listing every resource) as one item per resource, then deletes it. Returns how
    /// many resources it held (0: there was none).
    pub async fn migrate_legacy_leftovers(&self, org: &OrganizationId, provider_id: Uuid) -> Result<usize, StoreError> {
        let key = org_key(org, legacy_leftovers_sort_key(provider_id));
        let Some(item) = self.get_item(key.clone()).await? else { return Ok(0) };
        let f = Fields(&item);
        let list =
            f.get("resources")?.as_l().map_err(|_| StoreError::Corrupt("attribute resources is not a list".into()))?;
        let (account_sid, credential, created_at) =
            (f.parsed("accountSid", AccountSid::parse)?, SealedCredential::read_opt(&f)?, f.timestamp("createdAt")?);
        // The earlier format predates Twilio Regions: every such resource is US1's.
        let region = TwilioRegion::Us1;
        let mut leftovers = Vec::with_capacity(list.len());
        for entry in list {
            let entry = Fields(entry.as_m().map_err(|_| StoreError::Corrupt("a resource is not a map".into()))?);
            let (kind, sid) = (entry.string("kind")?, entry.string("sid")?);
            let Some(resource) = TwilioResource::parse(&kind, &sid) else {
                if TwilioResource::KINDS.contains(&kind.as_str()) {
                    return Err(StoreError::Corrupt(format!("leftover {kind} has a malformed sid")));
                }
                // Not something this service creates: never removed, so never swept.
                continue;
            };
            leftovers.push(Leftover {
                created_at: created_at.clone(),
                ..Leftover::new(org.clone(), provider_id, account_sid.clone(), region, credential.clone(), resource)
            });
        }
        // Each written only where no record of its own exists (a newer one keeps its routing).
        for leftover in &leftovers {
            let written = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(leftover.recorded()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            condition_held(written)?;
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(leftovers.len())
    }

    /// A provider's leftovers (every page). An unreadable one is an error for that one only.
    pub async fn leftovers_of(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Vec<Result<Leftover, StoreError>>, StoreError> {
        let items = query_prefix(&self.client, &self.table, org, &leftovers_prefix(provider_id)).await?;
        Ok(items.iter().filter_map(|item| Leftover::from_item(item).transpose()).collect())
    }

    /// The resources recorded as left behind for a provider (readable ones).
    pub async fn leftover_resources(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Vec<TwilioResource>, StoreError> {
        Ok(self.leftovers_of(org, provider_id).await?.into_iter().flatten().map(|l| l.resource).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn leftover_records_skip_resources_this_service_does_not_create() {
        let org = OrganizationId::parse("org-a").unwrap();
        let trunk_sid = TrunkSid::parse(&format!("TK{}", "1".repeat(32))).unwrap();
        let leftover = Leftover {
            organization_id: org,
            provider_id: Uuid::nil(),
            account_sid: AccountSid::parse(&format!("AC{}", "2".repeat(32))).unwrap(),
            twilio_region: TwilioRegion::Au1,
            credential: None,
            resource: TwilioResource::Trunk { trunk_sid: trunk_sid.clone() },
            previous_routing: None,
            previous_routing_sealed: None,
            created_at: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
            stuck: None,
            record_id: None,
        };
        let item = leftover.to_item();
        let read = Leftover::from_item(&item).unwrap().unwrap();
        assert_eq!(read.resource, TwilioResource::Trunk { trunk_sid });
        let mut other = item.clone();
        other.insert("kind".to_owned(), s("application"));
        assert!(Leftover::from_item(&other).unwrap().is_none());
    }
}
