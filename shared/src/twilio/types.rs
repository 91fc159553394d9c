//! The resources Twilio answers with, as the OpenAPI specs name their fields.

use crate::model::{
    AccountSid, ApiKeySecret, ApiKeySid, CredentialListSid, CredentialSid, OriginationUrlSid, PhoneNumberSid,
    TrunkSettings, TrunkSid, VoiceRouting,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub sid: AccountSid,
    pub status: String,
    #[serde(rename = "type")]
    pub account_type: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
}

/// A listing [`TwilioClient::probe`] reads one item of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Trunks,
    CredentialLists,
    IncomingNumbers,
}

impl Probe {
    pub const ALL: [Probe; 3] = [Probe::Trunks, Probe::CredentialLists, Probe::IncomingNumbers];

    /// What it reads, for messages ("list SIP trunks").
    pub fn action(self) -> &'static str {
        match self {
            Probe::Trunks => "list SIP trunks",
            Probe::CredentialLists => "list SIP credential lists",
            Probe::IncomingNumbers => "list incoming phone numbers",
        }
    }
}

/// A new API key: its secret is in this answer only.
#[derive(Deserialize)]
pub struct NewApiKey {
    pub sid: ApiKeySid,
    #[serde(deserialize_with = "api_key_secret")]
    pub secret: ApiKeySecret,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey").field("sid", &self.sid).finish_non_exhaustive()
    }
}

pub(super) fn api_key_secret<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<ApiKeySecret, D::Error> {
    ApiKeySecret::from_twilio(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

/// A TwiML application of the account; only whether it exists is read.
#[derive(Debug, Clone, Deserialize)]
pub struct Application {
    pub sid: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Trunk {
    pub sid: TrunkSid,
    #[serde(default)]
    pub domain_name: Option<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// As Twilio reports it: kept as text, so a mode Twilio adds later is shown, not an error.
    #[serde(default)]
    pub transfer_mode: Option<String>,
    /// Whether the trunk takes TLS signalling and SRTP media only.
    #[serde(default)]
    pub secure: Option<bool>,
    #[serde(default)]
    pub disaster_recovery_url: Option<String>,
    #[serde(default)]
    pub disaster_recovery_method: Option<String>,
}

impl Trunk {
    /// Its disaster recovery, as the service would have set it (an empty URL as none).
    pub fn disaster_recovery(&self) -> Option<crate::model::DisasterRecovery> {
        let url = self.disaster_recovery_url.clone().filter(|u| !u.is_empty())?;
        let method = self.disaster_recovery_method.clone().unwrap_or_else(|| "POST".to_owned()).to_uppercase();
        Some(crate::model::DisasterRecovery { url, method })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CredentialList {
    pub sid: CredentialListSid,
    #[serde(default)]
    pub friendly_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Credential {
    pub sid: CredentialSid,
    pub username: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Capabilities {
    #[serde(default)]
    pub voice: bool,
    #[serde(default, alias = "SMS")]
    pub sms: bool,
    #[serde(default, alias = "MMS")]
    pub mms: bool,
    #[serde(default)]
    pub fax: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IncomingPhoneNumber {
    pub sid: PhoneNumberSid,
    pub phone_number: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Null, or (as some responses have it) empty, when the number is on no trunk.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub trunk_sid: Option<TrunkSid>,
    #[serde(default)]
    pub voice_url: Option<String>,
    #[serde(default)]
    pub voice_method: Option<String>,
    #[serde(default)]
    pub voice_fallback_url: Option<String>,
    #[serde(default)]
    pub voice_fallback_method: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
    #[serde(default)]
    pub status_callback_method: Option<String>,
    #[serde(default)]
    pub voice_application_sid: Option<String>,
}

pub(super) fn empty_as_none<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<TrunkSid>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(sid) if sid.is_empty() => Ok(None),
        Some(sid) => TrunkSid::parse(&sid).map(Some).map_err(serde::de::Error::custom),
    }
}

impl IncomingPhoneNumber {
    /// The number's whole voice configuration (empty values as unset).
    pub fn voice_routing(&self) -> VoiceRouting {
        let set = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        VoiceRouting {
            voice_url: set(&self.voice_url),
            voice_method: set(&self.voice_method),
            voice_fallback_url: set(&self.voice_fallback_url),
            voice_fallback_method: set(&self.voice_fallback_method),
            status_callback: set(&self.status_callback),
            status_callback_method: set(&self.status_callback_method),
            voice_application_sid: set(&self.voice_application_sid),
            trunk_sid: self.trunk_sid.clone(),
            voice_region: None,
        }
    }
}

/// A number's routing as the Routes API shows it: only its inbound processing Region is read.
#[derive(Debug, Clone, Deserialize)]
pub struct NumberRoutes {
    #[serde(default)]
    pub voice_region: Option<String>,
}

/// A phone number as attached to a trunk.
#[derive(Debug, Clone, Deserialize)]
pub struct TrunkPhoneNumber {
    pub sid: PhoneNumberSid,
    #[serde(default)]
    pub phone_number: Option<String>,
}

/// One of a trunk's origination URLs: where Twilio sends the trunk's inbound calls.
#[derive(Debug, Clone, Deserialize)]
pub struct OriginationUrl {
    pub sid: OriginationUrlSid,
    pub sip_url: String,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub priority: Option<u32>,
    #[serde(default)]
    pub weight: Option<u32>,
}

/// The settings the service keeps on a trunk, as create and update send them.
pub(super) fn trunk_form(settings: &TrunkSettings) -> Vec<(&'static str, &str)> {
    let mut form = vec![("TransferMode", settings.transfer_mode.as_str()), ("Secure", settings.secure_str())];
    if let Some(recovery) = &settings.disaster_recovery {
        form.extend([
            ("DisasterRecoveryUrl", recovery.url.as_str()),
            ("DisasterRecoveryMethod", recovery.method.as_str()),
        ]);
    }
    form
}

/// An origination URL the service gives a trunk: one of the platform's ingresses, enabled.
#[derive(Debug, Clone, Copy)]
pub struct OriginationTarget<'a> {
    pub target: &'a crate::model::PlatformTarget,
    pub friendly_name: &'a str,
}

/// A credential list as attached to a trunk.
#[derive(Debug, Clone, Deserialize)]
pub struct TrunkCredentialList {
    pub sid: CredentialListSid,
}
