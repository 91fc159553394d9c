//! The public API's request and response shapes (JSON, camelCase).

use crate::error::ApiError;
use crate::http::JsonFields;
use crate::model::{
    AccountSid, ApiKeySecret, ApiKeySid, AuthToken, CredentialListSid, CredentialSid, CredentialType, DisasterRecovery,
    PhoneNumberSid, Region, TrunkSid, TwilioAuth, TwilioCredentials, TwilioRegion, VerificationCheck,
    VerificationStatus,
};
use crate::store::{DeletionState, PhoneNumberRecord, ProviderRecord, SipCredentialRecord};
use crate::time::Timestamp;
use crate::twilio::{Capabilities, IncomingPhoneNumber, TwilioResource};
use lambda_http::Request;
use serde::Serialize;
use uuid::Uuid;

pub const NAME_MAX_CHARS: usize = 100;

/// A provider's display name: 1 to 100 characters, not blank. Surrounding white space is trimmed.
pub fn parse_name(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("must not be blank".into());
    }
    if trimmed.chars().count() > NAME_MAX_CHARS {
        return Err(format!("must be at most {NAME_MAX_CHARS} characters"));
    }
    Ok(trimmed.to_owned())
}

pub fn parse_twilio_region(value: &str) -> Result<TwilioRegion, String> {
    TwilioRegion::parse(value).ok_or_else(|| {
        let allowed: Vec<&str> = TwilioRegion::ALL.iter().map(|r| r.as_str()).collect();
        format!("must be one of {} (the Twilio Region that holds the account)", allowed.join(", "))
    })
}

pub fn parse_region(value: &str) -> Result<Region, String> {
    Region::parse(value).ok_or_else(|| {
        let allowed: Vec<&str> = Region::ALL.iter().map(|r| r.as_str()).collect();
        format!("must be one of {}", allowed.join(", "))
    })
}

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
    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        Self::from_fields(JsonFields::from_request(request)?)
    }

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

    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        match JsonFields::from_request_or_empty(request)? {
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

/// The Twilio credential a create or a credential change gives: the Auth Token, an API key
/// of the account, or the Auth Token to mint a Standard API key with (only the key is kept).
#[derive(Debug, Clone)]
pub enum NewCredential {
    AuthToken(AuthToken),
    ApiKey { sid: ApiKeySid, secret: ApiKeySecret },
    MintApiKey(AuthToken),
}

impl NewCredential {
    /// `authToken` (with `mintApiKey`), or `apiKeySid` and `apiKeySecret`, never both: every
    /// failing field is recorded, and None returned.
    fn parse(fields: &mut JsonFields) -> Option<Self> {
        let given = |fields: &mut JsonFields, name| fields.raw(name).is_some();
        let (has_token, has_sid, has_secret) =
            (given(fields, "authToken"), given(fields, "apiKeySid"), given(fields, "apiKeySecret"));
        let token = fields.optional("authToken", |s| AuthToken::parse(s).map_err(str::to_owned));
        let sid = fields.optional("apiKeySid", |s| ApiKeySid::parse(s).map_err(str::to_owned));
        let secret = fields.optional("apiKeySecret", |s| ApiKeySecret::parse(s).map_err(str::to_owned));
        let mint = fields.optional_bool("mintApiKey").unwrap_or(false);
        if has_token && (has_sid || has_secret) {
            let named = [("authToken", has_token), ("apiKeySid", has_sid), ("apiKeySecret", has_secret)];
            for (name, _) in named.into_iter().filter(|(_, given)| *given) {
                fields.add_error(name, "give either authToken or apiKeySid with apiKeySecret, never both");
            }
            return None;
        }
        if !has_token && !has_sid && !has_secret {
            fields.add_error("authToken", "is required, unless an API key is given (apiKeySid and apiKeySecret)");
            return None;
        }
        if has_sid != has_secret {
            let (missing, with) = if has_sid { ("apiKeySecret", "apiKeySid") } else { ("apiKeySid", "apiKeySecret") };
            fields.add_error(missing, format!("is required with {with}"));
            return None;
        }
        if mint && !has_token {
            fields.add_error(
                "mintApiKey",
                "needs authToken: Twilio makes API keys only for the Auth Token or a Main key",
            );
            return None;
        }
        match (token, sid, secret) {
            (Some(token), _, _) if mint => Some(Self::MintApiKey(token)),
            (Some(token), _, _) => Some(Self::AuthToken(token)),
            (None, Some(sid), Some(secret)) => Some(Self::ApiKey { sid, secret }),
            _ => None,
        }
    }

    /// The credentials of the account to ask Twilio with first (for a mint, the token that
    /// makes the key).
    pub fn credentials(&self, account_sid: &AccountSid, region: TwilioRegion) -> TwilioCredentials {
        let auth = match self {
            Self::AuthToken(token) | Self::MintApiKey(token) => TwilioAuth::AuthToken(token.clone()),
            Self::ApiKey { sid, secret } => TwilioAuth::ApiKey { sid: sid.clone(), secret: secret.clone() },
        };
        TwilioCredentials { account_sid: account_sid.clone(), auth, region }
    }
}

/// `PATCH /api/v1/providers/{id}/credentials`, parsed.
#[derive(Debug)]
pub struct ReplaceCredentials {
    pub credential: NewCredential,
}

impl ReplaceCredentials {
    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        Self::from_fields(JsonFields::from_request(request)?)
    }

    pub fn from_fields(mut fields: JsonFields) -> Result<Self, ApiError> {
        match NewCredential::parse(&mut fields) {
            Some(credential) => {
                fields.finish()?;
                Ok(Self { credential })
            }
            None => Err(fields.finish().expect_err("the credential's errors were recorded")),
        }
    }
}

/// `PATCH /api/v1/providers/twilio/{id}/auth-token`, parsed.
#[derive(Debug)]
pub struct RotateAuthToken {
    pub auth_token: AuthToken,
}

impl RotateAuthToken {
    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        Self::from_fields(JsonFields::from_request(request)?)
    }

    pub fn from_fields(mut fields: JsonFields) -> Result<Self, ApiError> {
        let auth_token = fields.required("authToken", |s| AuthToken::parse(s).map_err(str::to_owned));
        match auth_token {
            Some(auth_token) => {
                fields.finish()?;
                Ok(Self { auth_token })
            }
            None => Err(fields.finish().expect_err("the missing token was recorded")),
        }
    }
}

/// How long the replaced SIP credential keeps working after a rotation, unless asked otherwise.
pub const SIP_OVERLAP_DEFAULT_SECONDS: u64 = 3600;
pub const SIP_OVERLAP_MAX_SECONDS: u64 = 86_400;

/// `POST /api/v1/providers/{id}/sip-credential/rotate`, parsed.
#[derive(Debug, PartialEq)]
pub struct RotateSipCredential {
    /// How long the replaced credential keeps working: call engines switch meanwhile.
    pub overlap_seconds: u64,
}

impl RotateSipCredential {
    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        match JsonFields::from_request_or_empty(request)? {
            Some(fields) => Self::from_fields(fields),
            None => Ok(Self { overlap_seconds: SIP_OVERLAP_DEFAULT_SECONDS }),
        }
    }

    pub fn from_fields(mut fields: JsonFields) -> Result<Self, ApiError> {
        const FIELD: &str = "overlapSeconds";
        // JSON Schema's integers include `3600.0`: a whole number in any notation.
        let whole = |v: &serde_json::Value| {
            v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 1e15).map(|f| f as u64))
        };
        let overlap_seconds = match fields.raw(FIELD).map(whole) {
            None => SIP_OVERLAP_DEFAULT_SECONDS,
            Some(Some(seconds)) if seconds <= SIP_OVERLAP_MAX_SECONDS => seconds,
            Some(_) => {
                fields
                    .add_error(FIELD, format!("must be a whole number of seconds from 0 to {SIP_OVERLAP_MAX_SECONDS}"));
                0
            }
        };
        fields.finish()?;
        Ok(Self { overlap_seconds })
    }
}

/// Where a provider's SIP credentials stand after a rotation or its finish: which credential is
/// current and which, during an overlap, still works. Never a password (the call engine reads
/// those through `get-sip-credential`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SipCredentialState {
    pub provider_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^CL[a-f0-9]{32}$"))]
    pub credential_list_sid: CredentialListSid,
    pub current: SipCredentialView,
    /// The credential a rotation replaced, until its overlap ends; null when none is.
    pub previous: Option<PreviousSipCredentialView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SipCredentialView {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^CR[a-f0-9]{32}$"))]
    pub credential_sid: CredentialSid,
    pub username: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PreviousSipCredentialView {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^CR[a-f0-9]{32}$"))]
    pub credential_sid: CredentialSid,
    pub username: String,
    /// When it stops working: the hourly job (or `.../rotate/finish`) then removes it from
    /// Twilio.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

impl From<&SipCredentialRecord> for SipCredentialState {
    fn from(record: &SipCredentialRecord) -> Self {
        Self {
            provider_id: record.provider_id,
            credential_list_sid: record.credential_list_sid.clone(),
            current: SipCredentialView {
                credential_sid: record.credential_sid.clone(),
                username: record.username.clone(),
            },
            previous: record.previous.as_ref().map(|previous| PreviousSipCredentialView {
                credential_sid: previous.credential_sid.clone(),
                username: previous.username.clone(),
                expires_at: previous.expires_at.clone(),
            }),
        }
    }
}

pub const IMPORT_MAX_NUMBERS: usize = 100;

/// `POST /api/v1/providers/twilio/{id}/import-numbers`, parsed.
#[derive(Debug)]
pub struct ImportNumbers {
    pub phone_number_sids: Vec<PhoneNumberSid>,
}

impl ImportNumbers {
    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        Self::from_fields(JsonFields::from_request(request)?)
    }

    pub fn from_fields(mut fields: JsonFields) -> Result<Self, ApiError> {
        const FIELD: &str = "phoneNumberSids";
        let mut sids = Vec::new();
        match fields.raw(FIELD).cloned() {
            None => fields.add_error(FIELD, "is required"),
            Some(serde_json::Value::Array(mut values)) => {
                // Held to its limit before its entries are looked at: 130,000 entries are one
                // error, not 130,000.
                if values.is_empty() || values.len() > IMPORT_MAX_NUMBERS {
                    fields.add_error(FIELD, format!("must hold 1 to {IMPORT_MAX_NUMBERS} phone number SIDs"));
                    values.clear();
                }
                for (index, value) in values.iter().enumerate() {
                    let entry = format!("{FIELD}[{index}]");
                    match value.as_str().map(PhoneNumberSid::parse) {
                        Some(Ok(sid)) if sids.contains(&sid) => fields.add_error(&entry, "is a duplicate"),
                        Some(Ok(sid)) => sids.push(sid),
                        _ => fields.add_error(&entry, PhoneNumberSid::FORMAT),
                    }
                }
            }
            Some(_) => fields.add_error(FIELD, "must be an array of phone number SIDs"),
        }
        fields.finish()?;
        Ok(Self { phone_number_sids: sids })
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CapabilitiesView {
    pub voice: bool,
    pub sms: bool,
    pub mms: bool,
    pub fax: bool,
}

impl From<&Capabilities> for CapabilitiesView {
    fn from(c: &Capabilities) -> Self {
        Self { voice: c.voice, sms: c.sms, mms: c.mms, fax: c.fax }
    }
}

/// A number in the customer's Twilio account, as `available-numbers` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AvailableNumber {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^PN[a-f0-9]{32}$"))]
    pub phone_number_sid: PhoneNumberSid,
    pub phone_number: String,
    pub friendly_name: Option<String>,
    pub capabilities: CapabilitiesView,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^TK[a-f0-9]{32}$"))]
    pub trunk_sid: Option<TrunkSid>,
    /// Already imported into this provider.
    pub imported: bool,
    /// Routes voice somewhere importing would replace: a voice URL, an application, or
    /// another SIP trunk (then `trunkSid` says which). Given back when the number is removed.
    pub voice_routing_configured: bool,
}

impl AvailableNumber {
    /// `own_trunk_sid`: the provider's trunk, which is not routing to replace.
    pub fn new(number: &IncomingPhoneNumber, imported: bool, own_trunk_sid: &TrunkSid) -> Self {
        let mut routing = number.voice_routing();
        routing.trunk_sid = routing.trunk_sid.filter(|trunk| trunk != own_trunk_sid);
        Self {
            phone_number_sid: number.sid.clone(),
            phone_number: number.phone_number.clone(),
            friendly_name: number.friendly_name.clone(),
            capabilities: number.capabilities.as_ref().map(CapabilitiesView::from).unwrap_or(CapabilitiesView {
                voice: false,
                sms: false,
                mms: false,
                fax: false,
            }),
            trunk_sid: number.trunk_sid.clone(),
            imported,
            voice_routing_configured: routing.routes_voice(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AvailableNumbers {
    pub items: Vec<AvailableNumber>,
    /// True when the account has more numbers than the listing cap.
    pub truncated: bool,
}

/// An imported number.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberResponse {
    pub id: Uuid,
    pub provider_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^PN[a-f0-9]{32}$"))]
    pub phone_number_sid: PhoneNumberSid,
    pub phone_number: String,
    pub friendly_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub imported_at: Timestamp,
    /// The voice URL the number had before import (user-info, query values and token-like path
    /// segments masked).
    pub previous_voice_url: Option<String>,
    pub previous_voice_application_sid: Option<String>,
    /// The whole voice configuration before import (URLs masked); given back on removal.
    pub previous_routing: crate::model::VoiceRouting,
}

impl From<&PhoneNumberRecord> for PhoneNumberResponse {
    fn from(n: &PhoneNumberRecord) -> Self {
        Self {
            id: n.id,
            provider_id: n.provider_id,
            phone_number_sid: n.phone_number_sid.clone(),
            phone_number: n.phone_number.clone(),
            friendly_name: n.friendly_name.clone(),
            imported_at: n.imported_at.clone(),
            previous_voice_url: n.previous_routing.voice_url.clone(),
            previous_voice_application_sid: n.previous_routing.voice_application_sid.clone(),
            previous_routing: n.previous_routing.clone(),
        }
    }
}

/// A page of a provider's audit trail, newest first.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub items: Vec<crate::audit::AuditEvent>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberPage {
    pub items: Vec<PhoneNumberResponse>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImportError {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^PN[a-f0-9]{32}$"))]
    pub phone_number_sid: PhoneNumberSid,
    /// `not_found`, `not_voice_capable`, `already_imported`, `credentials_rejected`,
    /// `twilio_error`, `storage_error`, `not_attempted` (the request ran out of time before this
    /// number).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    pub success_count: usize,
    pub failed_count: usize,
    pub imported: Vec<PhoneNumberResponse>,
    pub errors: Vec<ImportError>,
    /// What the imported numbers will not do, though imported: a Trial account's limits.
    pub warnings: Vec<String>,
}

impl From<&ProviderRecord> for TwilioProviderResponse {
    fn from(record: &ProviderRecord) -> Self {
        Self {
            name: record.name.clone(),
            provider_type: ProviderType::Twilio,
            account_sid: record.account_sid.clone(),
            credential_type: record.credential.credential_type(),
            api_key_sid: record.credential.api_key.as_ref().map(|key| key.sid.clone()),
            api_key_minted: record.credential.minted_key().is_some(),
            id: record.id,
            verification_status: record.verification_status,
            last_verified_at: record.last_verified_at.clone(),
            phone_number_count: record.phone_number_count,
            verification_details: record.verification_details.clone(),
            trunk_sid: record.trunk_sid.clone(),
            termination_uri: record.termination_uri.clone(),
            region: record.region,
            twilio_region: record.twilio_region,
            secure_trunking: record.secure_trunking,
            disaster_recovery_url: record.disaster_recovery.as_ref().map(|r| r.url.clone()),
            disaster_recovery_method: record.disaster_recovery.as_ref().map(|r| r.method.clone()),
            supports_call_transfer: record.supports_call_transfer,
            deletion: record.deletion.as_ref().map(|state| DeletionView::of(state, record.phone_number_count)),
        }
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

/// The 200 body of `DELETE …/phone-numbers/{phoneNumberId}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RemovedNumber {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^PN[a-f0-9]{32}$"))]
    pub phone_number_sid: PhoneNumberSid,
    /// Whether the number's previous voice configuration was given back. False when the
    /// customer changed the number since import: it is then left as they set it.
    pub restored: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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

/// Request bodies as the OpenAPI document describes them. The handlers parse bodies field by
/// field (to report every failing field at once); tests keep these in step with the parsers.
#[cfg(feature = "openapi")]
pub mod request_schemas {
    use crate::model::{Region, TwilioRegion};
    use utoipa::ToSchema;

    /// `POST /api/v1/providers/twilio`
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct CreateTwilioProviderRequest {
        /// The Twilio Account SID.
        #[schema(pattern = "^AC[a-f0-9]{32}$")]
        pub account_sid: String,
        /// The Twilio Auth Token; stored encrypted, never returned. Give it, or an API key
        /// (`apiKeySid` with `apiKeySecret`), never both.
        #[schema(pattern = "^[a-f0-9]{32}$", format = Password, write_only)]
        pub auth_token: Option<String>,
        /// An API key of the account (Standard or Main), instead of the Auth Token.
        #[schema(pattern = "^SK[a-f0-9]{32}$")]
        pub api_key_sid: Option<String>,
        /// The API key's secret; stored encrypted, never returned.
        #[schema(pattern = "^[A-Za-z0-9]{32}$", format = Password, write_only)]
        pub api_key_secret: Option<String>,
        /// With `authToken`: mint a Standard API key in the account and store only the key
        /// (the token is used for the mint and forgotten). Default false.
        pub mint_api_key: Option<bool>,
        /// Display name, 1 to 100 characters, not blank.
        // The pattern: at least one character that is not white space as `str::trim` counts it.
        #[schema(
            min_length = 1,
            max_length = 100,
            pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
        )]
        pub name: String,
        /// The edge location of the termination URI; absent or null: the Twilio Region's own
        /// edge for ie1 and au1, else the one closest to the deployment.
        pub region: Option<Region>,
        /// The Twilio Region that holds the account (its auth token is valid there only) and
        /// where the provider's trunk, credential list and numbers' configuration are made.
        /// Default us1; fixed once the provider exists.
        pub twilio_region: Option<TwilioRegion>,
        /// Enables call transfer on the trunk (`TransferMode` enable-all). Default false.
        pub supports_call_transfer: Option<bool>,
        /// TLS signalling and SRTP media only on the trunk (`Secure`). Default false; true needs
        /// a platform SIP ingress with `;transport=tls`.
        pub secure_trunking: Option<bool>,
        /// Where Twilio sends calls when every origination URL fails (your own TwiML, a
        /// voicemail or a human line): an https URL without user-info, at most 1024 characters.
        #[schema(max_length = 1024, pattern = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,4})?([/?#][!-~]*)?$")]
        pub disaster_recovery_url: Option<String>,
        /// `GET` or `POST` (default); only with `disasterRecoveryUrl`.
        pub disaster_recovery_method: Option<DisasterRecoveryMethod>,
    }

    #[derive(ToSchema)]
    #[allow(clippy::upper_case_acronyms, reason = "as Twilio names them")]
    pub enum DisasterRecoveryMethod {
        GET,
        POST,
    }

    /// `PUT /api/v1/providers/twilio/{id}`: only the fields present change.
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct UpdateTwilioProviderRequest {
        /// Display name, 1 to 100 characters, not blank.
        #[schema(
            min_length = 1,
            max_length = 100,
            pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
        )]
        pub name: Option<String>,
        pub region: Option<Region>,
        /// Fixed once the provider exists: only its current value is accepted.
        pub twilio_region: Option<TwilioRegion>,
        pub supports_call_transfer: Option<bool>,
        pub secure_trunking: Option<bool>,
        /// As on create; null takes disaster recovery off the trunk.
        #[schema(max_length = 1024, pattern = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,4})?([/?#][!-~]*)?$")]
        pub disaster_recovery_url: Option<String>,
        /// `GET` or `POST` (default); only with `disasterRecoveryUrl`.
        pub disaster_recovery_method: Option<DisasterRecoveryMethod>,
    }

    /// `PATCH /api/v1/providers/twilio/{id}/auth-token`
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct RotateAuthTokenRequest {
        #[schema(pattern = "^[a-f0-9]{32}$", format = Password, write_only)]
        pub auth_token: String,
    }

    /// `PATCH /api/v1/providers/{id}/credentials`: as on create, `authToken` (optionally with
    /// `mintApiKey`) or `apiKeySid` with `apiKeySecret`.
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct ReplaceCredentialsRequest {
        #[schema(pattern = "^[a-f0-9]{32}$", format = Password, write_only)]
        pub auth_token: Option<String>,
        #[schema(pattern = "^SK[a-f0-9]{32}$")]
        pub api_key_sid: Option<String>,
        #[schema(pattern = "^[A-Za-z0-9]{32}$", format = Password, write_only)]
        pub api_key_secret: Option<String>,
        pub mint_api_key: Option<bool>,
    }

    /// `DELETE /api/v1/providers/{id}`: a body only when the provider's API key was minted by
    /// the service, which deleting it needs the account's Auth Token for (400 without it then;
    /// not used otherwise).
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct DeleteProviderRequest {
        #[schema(pattern = "^[a-f0-9]{32}$", format = Password, write_only)]
        pub auth_token: Option<String>,
    }

    /// `POST /api/v1/providers/twilio/{id}/import-numbers`
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct ImportNumbersRequest {
        /// 1 to 100 unique phone number SIDs.
        #[schema(min_items = 1, max_items = 100, inline)]
        pub phone_number_sids: Vec<PhoneNumberSid>,
    }

    #[derive(ToSchema)]
    #[schema(pattern = "^PN[a-f0-9]{32}$")]
    pub struct PhoneNumberSid(pub String);

    /// `POST /api/v1/providers/{id}/sip-credential/rotate`
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct RotateSipCredentialRequest {
        /// How long the replaced credential keeps working, in seconds (default 3600).
        #[schema(minimum = 0, maximum = 86400)]
        pub overlap_seconds: Option<u64>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<CreateTwilioProvider, ApiError> {
        CreateTwilioProvider::from_fields(JsonFields::from_slice(body.as_bytes())?)
    }

    #[test]
    fn names_every_failing_field_without_echoing_values() {
        let err = parse(r#"{"accountSid":"AC123","authToken":"SECRETSECRET","name":"  ","region":"mars","supportsCallTransfer":"yes"}"#)
            .unwrap_err();
        let ApiError::Validation(errors) = &err else { panic!("{err:?}") };
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["accountSid", "authToken", "name", "region", "supportsCallTransfer"]
        );
        let body = serde_json::to_string(&err.to_problem()).unwrap();
        assert!(!body.contains("SECRETSECRET") && !body.contains("mars"), "{body}");
    }

    /// A misspelt field is named, not dropped: `supportCallTransfer` would otherwise create a
    /// trunk without transfer. Long or odd names are shown shortened and printable.
    #[test]
    fn unknown_fields_are_named() {
        let body = format!(
            r#"{{"accountSid":"AC{}","authToken":"{}","name":"Main","supportCallTransfer":true,"{}":1,"a\u0007b":2}}"#,
            "0".repeat(32),
            "f".repeat(32),
            "x".repeat(100)
        );
        let ApiError::Validation(errors) = parse(&body).unwrap_err() else { panic!() };
        let shortened = format!("{}…", "x".repeat(64));
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["a\u{fffd}b", "supportCallTransfer", shortened.as_str()]);
        assert!(errors["supportCallTransfer"][0].contains("not a field"), "{errors:?}");
    }

    #[test]
    fn missing_fields_are_required() {
        let ApiError::Validation(errors) = parse("{}").unwrap_err() else { panic!() };
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["accountSid", "authToken", "name"]);
        assert_eq!(errors["name"], ["is required"]);
    }

    #[test]
    fn accepts_a_valid_body_with_defaults() {
        let ok = parse(&format!(
            r#"{{"accountSid":"AC{}","authToken":"{}","name":" Main ","region":null}}"#,
            "0".repeat(32),
            "f".repeat(32)
        ))
        .unwrap();
        assert_eq!(ok.name, "Main");
        assert_eq!(ok.region, None);
        assert!(!ok.supports_call_transfer);
    }

    #[test]
    fn update_refuses_credentials_and_accepts_partial_bodies() {
        let update = |body: &str| UpdateTwilioProvider::from_fields(JsonFields::from_slice(body.as_bytes()).unwrap());
        let ApiError::Validation(errors) = update(r#"{"accountSid":"AC1","authToken":"x","name":"ok"}"#).unwrap_err()
        else {
            panic!()
        };
        assert!(errors["authToken"][0].contains("/credentials"));
        assert!(errors.contains_key("accountSid"));
        assert_eq!(
            update(r#"{"region":"ie1"}"#).unwrap(),
            UpdateTwilioProvider { region: Some(Region::Ie1), ..Default::default() }
        );
        assert!(update("{}").unwrap().is_empty());
        assert!(update(r#"{"name":""}"#).is_err());
    }

    #[test]
    fn import_names_every_bad_entry() {
        let parse = |body: &str| ImportNumbers::from_fields(JsonFields::from_slice(body.as_bytes()).unwrap());
        let good = format!("PN{}", "a".repeat(32));
        let body = serde_json::json!({"phoneNumberSids": [good, "PN1", good, 7]}).to_string();
        let ApiError::Validation(errors) = parse(&body).unwrap_err() else { panic!() };
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["phoneNumberSids[1]", "phoneNumberSids[2]", "phoneNumberSids[3]"]
        );
        assert!(parse(r#"{"phoneNumberSids": []}"#).is_err());
        assert!(parse(r#"{}"#).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("PN{i:032x}")).collect();
        assert!(parse(&serde_json::json!({ "phoneNumberSids": many }).to_string()).is_err());
        assert_eq!(
            parse(&serde_json::json!({"phoneNumberSids": [good]}).to_string()).unwrap().phone_number_sids.len(),
            1
        );
    }

    /// A forced delete's answer lists a bounded sample of what Twilio still holds, with the
    /// count: ten thousand numbers left behind is still a small answer.
    #[test]
    fn a_forced_deletion_lists_a_sample_and_the_count() {
        let trunk_sid = crate::model::TrunkSid::parse(&format!("TK{}", "a".repeat(32))).unwrap();
        let left: Vec<LeftBehind> = (0..10_000)
            .map(|_| LeftBehind {
                resource: TwilioResource::Trunk { trunk_sid: trunk_sid.clone() },
                error: "x".repeat(200),
            })
            .collect();
        let answer = ForcedDeletion::new(Uuid::nil(), left);
        assert_eq!((answer.left_behind.len(), answer.left_behind_count), (LEFT_BEHIND_SAMPLE, 10_000));
        assert!(serde_json::to_string(&answer).unwrap().len() < 64 * 1024);
    }

    #[test]
    fn name_length_counts_characters() {
        assert!(parse_name(&"é".repeat(100)).is_ok());
        assert!(parse_name(&"é".repeat(101)).is_err());
    }
}
