//! Providers: create and update requests, the provider as answered, and what a verify,
//! a forced delete or a repair report.

use crate::error::ApiError;
use crate::model::{
    AccountSid, ApiKeySid, CredentialType, DisasterRecovery, Region, TrunkSid, TwilioRegion, VerificationCheck,
    VerificationStatus,
};
use crate::request::JsonFields;
use crate::storage::{DeletionState, ProviderRecord};
use crate::time::Timestamp;
use crate::twilio::TwilioResource;
use serde::Serialize;
use uuid::Uuid;

use super::{NewCredential, parse_name, parse_region, parse_twilio_region};

/// `POST /api/v1/providers/twilio`, parsed.
#[derive(Debug)]
pub struct CreateTwilioProvider {
    pub account_sid: AccountSid,
    pub credential: NewCredential,
    pub name: String,
    /// None: the Twilio Region's own edge (IE1, AU1), else the one closest to the deployment.
    pub region: Option<Region>,
    pub twilio_region: TwilioRegion,
    pub supports_call_transfer: bool,
    pub secure_trunking: bool,
    pub disaster_recovery: Option<DisasterRecovery>,
}

/// `disasterRecoveryUrl` and `disasterRecoveryMethod` as given: the URL absent (None), null
/// (Some(None): taken off, which only a `PUT` means) or set; the method (GET/POST) applies to the
/// URL given or, on a `PUT`, to the one stored.
#[derive(Debug, Default, PartialEq)]
pub struct DisasterRecoveryFields {
    url: Option<Option<String>>,
    method: Option<String>,
}

impl DisasterRecoveryFields {
    fn parse(fields: &mut JsonFields) -> Self {
        let given = fields.contains("disasterRecoveryUrl");
        // `raw` is None for null: given, yet null.
        let cleared = given && fields.raw("disasterRecoveryUrl").is_none();
        let url = fields.optional("disasterRecoveryUrl", DisasterRecovery::parse_url);
        let method = fields.optional("disasterRecoveryMethod", DisasterRecovery::parse_method);
        Self { url: if cleared { Some(None) } else { url.map(Some) }, method }
    }

    /// What the trunk gets, from what it has now; None when neither field was given.
    pub fn applied_to(&self, current: Option<&DisasterRecovery>) -> Option<Option<DisasterRecovery>> {
        let method = |stored: Option<&DisasterRecovery>| {
            self.method.clone().or(stored.map(|r| r.method.clone())).unwrap_or_else(|| "POST".to_owned())
        };
        match (&self.url, &self.method) {
            (Some(Some(url)), _) => Some(Some(DisasterRecovery { url: url.clone(), method: method(current) })),
            (Some(None), _) => Some(None),
            (None, Some(_)) => Some(current.map(|r| DisasterRecovery { url: r.url.clone(), method: method(current) })),
            (None, None) => None,
        }
    }
}

impl CreateTwilioProvider {
    pub fn from_fields(mut fields: JsonFields) -> Result<Self, ApiError> {
        let account_sid = fields.required("accountSid", |s| AccountSid::parse(s).map_err(str::to_owned));
        let credential = NewCredential::parse(&mut fields);
        let name = fields.required("name", parse_name);
        let region = fields.optional("region", parse_region);
        let twilio_region = fields.optional("twilioRegion", parse_twilio_region).unwrap_or_default();
        let supports_call_transfer = fields.optional_bool("supportsCallTransfer").unwrap_or(false);
        let secure_trunking = fields.optional_bool("secureTrunking").unwrap_or(false);
        let disaster_recovery = DisasterRecoveryFields::parse(&mut fields).applied_to(None).flatten();
        match (account_sid, credential, name) {
            (Some(account_sid), Some(credential), Some(name)) => {
                fields.finish()?;
                Ok(Self {
                    account_sid,
                    credential,
                    name,
                    region,
                    twilio_region,
                    supports_call_transfer,
                    secure_trunking,
                    disaster_recovery,
                })
            }
            _ => Err(fields.finish().expect_err("a missing required field was recorded")),
        }
    }
}

/// The provider type, the discriminator of the generic provider views.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    Twilio,
}

/// The Twilio provider as every endpoint shows it. The auth token is never part of it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TwilioProviderResponse {
    pub name: String,
    pub provider_type: ProviderType,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^AC[a-f0-9]{32}$"))]
    pub account_sid: AccountSid,
    /// Which kind of Twilio credential is stored (never the credential itself).
    pub credential_type: CredentialType,
    /// The stored API key's SID; null with an auth token.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^SK[a-f0-9]{32}$"))]
    pub api_key_sid: Option<ApiKeySid>,
    /// The stored API key was minted by this service (`mintApiKey`): deleting the provider
    /// deletes it, given the account's Auth Token.
    pub api_key_minted: bool,
    pub id: Uuid,
    pub verification_status: VerificationStatus,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_verified_at: Option<Timestamp>,
    pub phone_number_count: u32,
    pub verification_details: Option<Vec<VerificationCheck>>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^TK[a-f0-9]{32}$"))]
    pub trunk_sid: TrunkSid,
    pub termination_uri: String,
    /// The edge location of the termination URI.
    pub region: Region,
    /// The Twilio Region that holds the account's credentials and the provider's resources.
    pub twilio_region: TwilioRegion,
    pub supports_call_transfer: bool,
    /// The trunk takes TLS signalling and SRTP media only: the call engine dials
    /// `terminationUri` over TLS (port 5061).
    pub secure_trunking: bool,
    /// Where Twilio sends calls when every origination URL fails; null: nowhere.
    pub disaster_recovery_url: Option<String>,
    /// `GET` or `POST`; null without a URL.
    pub disaster_recovery_method: Option<String>,
    /// Present only while a delete is in progress (a failed delete can be retried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion: Option<DeletionView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeletionView {
    /// Always `deleting`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^deleting$"))]
    pub status: &'static str,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    /// Imported numbers not yet given back.
    pub remaining_numbers: u32,
    pub last_error: Option<String>,
}

impl DeletionView {
    pub fn of(state: &DeletionState, remaining_numbers: u32) -> Self {
        Self {
            status: "deleting",
            started_at: state.started_at.clone(),
            remaining_numbers,
            last_error: state.last_error.clone(),
        }
    }
}

/// The 202 body of a delete that goes on in the background.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeletionInProgress {
    pub deletion: DeletionView,
}

/// A provider of any type, as the generic endpoints show it; `providerType` says which.
/// A new provider type is a new variant with its own fields, so existing clients keep working.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum ProviderResponse {
    Twilio(TwilioProviderResponse),
}

impl From<&ProviderRecord> for ProviderResponse {
    fn from(record: &ProviderRecord) -> Self {
        Self::Twilio(record.into())
    }
}

/// A page of providers, newest first. `nextToken` is null on the last page.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProviderPage {
    pub items: Vec<ProviderResponse>,
    pub next_token: Option<String>,
}

/// `PUT /api/v1/providers/twilio/{id}`, parsed: only the fields present change.
#[derive(Debug, Default, PartialEq)]
pub struct UpdateTwilioProvider {
    pub name: Option<String>,
    pub region: Option<Region>,
    /// Fixed once the provider exists: only its current value is accepted.
    pub twilio_region: Option<TwilioRegion>,
    pub supports_call_transfer: Option<bool>,
    pub secure_trunking: Option<bool>,
    pub disaster_recovery: DisasterRecoveryFields,
}

impl UpdateTwilioProvider {
    /// The fields given, by their API names (for the audit trail).
    pub fn changed_fields(&self) -> Vec<&'static str> {
        let given = [
            ("name", self.name.is_some()),
            ("region", self.region.is_some()),
            ("twilioRegion", self.twilio_region.is_some()),
            ("supportsCallTransfer", self.supports_call_transfer.is_some()),
            ("secureTrunking", self.secure_trunking.is_some()),
            ("disasterRecoveryUrl", self.disaster_recovery.url.is_some()),
            ("disasterRecoveryMethod", self.disaster_recovery.method.is_some()),
        ];
        given.into_iter().filter(|(_, given)| *given).map(|(name, _)| name).collect()
    }

    /// The request from its body's fields; no body at all is the default.
    pub fn from_optional_fields(fields: Option<JsonFields>) -> Result<Self, ApiError> {
        match fields {
            Some(fields) => Self::from_fields(fields),
            None => Ok(Self::default()),
        }
    }

    pub fn from_fields(mut fields: JsonFields) -> Result<Self, ApiError> {
        if fields.contains("accountSid") {
            fields.add_error("accountSid", "cannot be changed; create a new provider for another Twilio account");
        }
        for credential in ["authToken", "apiKeySid", "apiKeySecret", "mintApiKey"] {
            if fields.contains(credential) {
                fields.add_error(credential, "is changed through PATCH /api/v1/providers/{id}/credentials");
            }
        }
        let update = Self {
            name: fields.optional("name", parse_name),
            region: fields.optional("region", parse_region),
            twilio_region: fields.optional("twilioRegion", parse_twilio_region),
            supports_call_transfer: fields.optional_bool("supportsCallTransfer"),
            secure_trunking: fields.optional_bool("secureTrunking"),
            disaster_recovery: DisasterRecoveryFields::parse(&mut fields),
        };
        fields.finish()?;
        Ok(update)
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The result of `POST /api/v1/providers/{id}/verify`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub status: crate::model::VerificationStatus,
    pub checks: Vec<VerificationCheck>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_verified_at: Timestamp,
}

/// The 200 body of a forced delete that could not clean up Twilio.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ForcedDeletion {
    pub id: Uuid,
    pub deleted: bool,
    /// What Twilio still holds, the first [`LEFT_BEHIND_SAMPLE`] of it (the sweeper has all).
    pub left_behind: Vec<LeftBehind>,
    /// How many resources Twilio still holds, all told.
    pub left_behind_count: usize,
}

/// The most left-behind resources a forced delete's answer lists: thousands of numbers would
/// make it larger than Lambda can return (6 MB).
pub const LEFT_BEHIND_SAMPLE: usize = 100;

impl ForcedDeletion {
    pub fn new(id: Uuid, mut left_behind: Vec<LeftBehind>) -> Self {
        let left_behind_count = left_behind.len();
        left_behind.truncate(LEFT_BEHIND_SAMPLE);
        Self { id, deleted: true, left_behind, left_behind_count }
    }
}

/// What `POST /api/v1/providers/{id}/repair` did about one thing it checked.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RepairAction {
    /// What the action is, e.g. `attachCredentialList`, `createOriginationUrl`, `reimportNumber`.
    pub action: String,
    /// The Twilio resource it concerns (a SID, or a kind when there is none yet).
    pub resource: String,
    pub result: RepairResult,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RepairResult {
    /// Changed in Twilio (and stored) as described.
    Done,
    /// Tried and failed; nothing of it was kept.
    Failed,
    /// Nothing to do, or not the service's to change.
    Skipped,
}

/// The 200 body of `POST /api/v1/providers/{id}/repair`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RepairResponse {
    pub actions: Vec<RepairAction>,
    /// The verification run after the repair, as stored.
    pub verification: VerifyResponse,
}

/// A Twilio resource a forced delete could not remove.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LeftBehind {
    #[serde(flatten)]
    pub resource: TwilioResource,
    pub error: String,
}
