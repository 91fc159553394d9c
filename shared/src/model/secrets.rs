//! Secrets that redact themselves: Auth Tokens, API key secrets, SIP passwords, and the
//! credentials a Twilio request authenticates with.

use rand::RngExt;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;

use super::ids::is_lower_hex;
use super::{AccountSid, ApiKeySid, TwilioRegion};

/// A Twilio Auth Token: 32 lowercase hex digits. Never printed, serialized or logged.
#[derive(Clone)]
pub struct AuthToken(SecretString);

impl AuthToken {
    pub const FORMAT: &'static str = "must be exactly 32 lowercase hexadecimal characters";

    pub fn parse(value: &str) -> Result<Self, &'static str> {
        if value.len() == 32 && is_lower_hex(value) { Ok(Self(SecretString::from(value))) } else { Err(Self::FORMAT) }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken([REDACTED])")
    }
}

/// An API key's secret: 32 letters and digits, shown once by Twilio when the key is made.
/// Never printed, serialized or logged.
#[derive(Clone)]
pub struct ApiKeySecret(SecretString);

impl ApiKeySecret {
    pub const FORMAT: &'static str = "must be exactly 32 letters and digits";

    pub fn parse(value: &str) -> Result<Self, &'static str> {
        if value.len() == 32 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(SecretString::from(value)))
        } else {
            Err(Self::FORMAT)
        }
    }

    /// A secret as Twilio answers it (a key just minted) or as it was stored: taken as it is,
    /// so a change in Twilio's format never strands a key the service made.
    pub fn from_twilio(value: &str) -> Result<Self, &'static str> {
        if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
            return Err("is not an API key secret");
        }
        Ok(Self(SecretString::from(value)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret([REDACTED])")
    }
}

/// What a Twilio request authenticates with: the account's Auth Token (the Account SID as
/// username), or an API key of the account (the key's SID as username, the Account SID still
/// in the path, as Twilio documents).
#[derive(Debug, Clone)]
pub enum TwilioAuth {
    AuthToken(AuthToken),
    ApiKey { sid: ApiKeySid, secret: ApiKeySecret },
}

/// Which kind of credential a provider stores, as its responses say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    AuthToken,
    ApiKey,
}

/// The Account SID and credential a Twilio request is authenticated with, and the Twilio Region
/// they belong to: a token or key is valid in its own Region only, so it also says which hosts
/// are asked.
#[derive(Debug, Clone)]
pub struct TwilioCredentials {
    pub account_sid: AccountSid,
    pub auth: TwilioAuth,
    pub region: TwilioRegion,
}

impl TwilioCredentials {
    /// The Basic-auth username and password.
    pub fn basic_auth(&self) -> (&str, &str) {
        match &self.auth {
            TwilioAuth::AuthToken(token) => (self.account_sid.as_str(), token.expose()),
            TwilioAuth::ApiKey { sid, secret } => (sid.as_str(), secret.expose()),
        }
    }

    pub fn credential_type(&self) -> CredentialType {
        match self.auth {
            TwilioAuth::AuthToken(_) => CredentialType::AuthToken,
            TwilioAuth::ApiKey { .. } => CredentialType::ApiKey,
        }
    }

    pub fn api_key_sid(&self) -> Option<&ApiKeySid> {
        match &self.auth {
            TwilioAuth::AuthToken(_) => None,
            TwilioAuth::ApiKey { sid, .. } => Some(sid),
        }
    }

    /// What Twilio is told the request authenticated as, for messages: "the Auth Token" or
    /// "API key SK…".
    pub fn describe(&self) -> String {
        match &self.auth {
            TwilioAuth::AuthToken(_) => "the Auth Token".to_owned(),
            TwilioAuth::ApiKey { sid, .. } => format!("API key {sid}"),
        }
    }
}

/// A generated SIP password: 32 characters of `[A-Za-z0-9]` from a CSPRNG, with at least
/// one digit, one upper-case and one lower-case letter (Twilio rejects weaker ones).
#[derive(Clone)]
pub struct SipPassword(SecretString);

impl SipPassword {
    pub const LEN: usize = 32;

    pub fn generate() -> Self {
        // `rand::rng()` is a CSPRNG seeded from the OS. Redrawing until all three classes
        // are present keeps every accepted password uniformly distributed.
        let mut rng = rand::rng();
        loop {
            let candidate: String = (&mut rng).sample_iter(Alphanumeric).take(Self::LEN).map(char::from).collect();
            if Self::is_acceptable(&candidate) {
                return Self(SecretString::from(candidate));
            }
        }
    }

    /// Wraps a password read back from storage.
    pub fn from_stored(value: String) -> Self {
        Self(SecretString::from(value))
    }

    pub fn is_acceptable(candidate: &str) -> bool {
        candidate.len() == Self::LEN
            && candidate.bytes().all(|b| b.is_ascii_alphanumeric())
            && candidate.bytes().any(|b| b.is_ascii_digit())
            && candidate.bytes().any(|b| b.is_ascii_uppercase())
            && candidate.bytes().any(|b| b.is_ascii_lowercase())
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SipPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SipPassword([REDACTED])")
    }
}
