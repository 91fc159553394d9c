//! Twilio credentials and the SIP credential: replacing, rotating, and how they are shown.

use crate::error::ApiError;
use crate::model::{
    AccountSid, ApiKeySecret, ApiKeySid, AuthToken, CredentialListSid, CredentialSid, TwilioAuth, TwilioCredentials,
    TwilioRegion,
};
use crate::request::JsonFields;
use crate::storage::SipCredentialRecord;
use crate::time::Timestamp;
use serde::Serialize;
use uuid::Uuid;

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
    pub(super) fn parse(fields: &mut JsonFields) -> Option<Self> {
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
    /// The request from its body's fields; no body at all is the default.
    pub fn from_optional_fields(fields: Option<JsonFields>) -> Result<Self, ApiError> {
        match fields {
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
