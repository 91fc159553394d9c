//! What a trunk is set to: call transfer, secure trunking, disaster recovery.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What the service sets on a provider's trunk: its `TransferMode` (from `supportsCallTransfer`),
/// `Secure` (from `secureTrunking`: TLS signalling and SRTP media only) and disaster recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkSettings {
    pub transfer_mode: TransferMode,
    pub secure: bool,
    pub disaster_recovery: Option<DisasterRecovery>,
}

impl TrunkSettings {
    pub fn new(
        supports_call_transfer: bool,
        secure_trunking: bool,
        disaster_recovery: Option<DisasterRecovery>,
    ) -> Self {
        Self {
            transfer_mode: TransferMode::for_call_transfer(supports_call_transfer),
            secure: secure_trunking,
            disaster_recovery,
        }
    }

    /// `Secure` as Twilio's form takes it.
    pub fn secure_str(&self) -> &'static str {
        if self.secure { "true" } else { "false" }
    }
}

/// Where Twilio sends a trunk's calls when every origination URL fails (`DisasterRecoveryUrl`
/// and `DisasterRecoveryMethod`): the customer's own TwiML, a voicemail or a human line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisasterRecovery {
    /// An https URL without user-info (it is shown to whoever can read the provider).
    pub url: String,
    /// `GET` or `POST`.
    pub method: String,
}

impl DisasterRecovery {
    pub const METHODS: [&'static str; 2] = ["GET", "POST"];

    /// `https://host[:port][/path][?query][#fragment]`: a host of letters, digits, dots and
    /// hyphens (so no user or password, which would be shown with the provider), a port of up
    /// to four digits, the rest printable ASCII (non-ASCII percent-encoded); at most 1024
    /// characters. The OpenAPI document states the same pattern.
    pub fn parse_url(value: &str) -> Result<String, String> {
        const FORMAT: &str = "must be an https URL with a plain host (no user or password), printable ASCII";
        let rest = value.strip_prefix("https://").ok_or(FORMAT)?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (host, port) = authority.split_once(':').map_or((authority, None), |(host, port)| (host, Some(port)));
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        let port_ok = port.is_none_or(|p| (1..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
        let tail_ok = tail.chars().all(|c| ('!'..='~').contains(&c));
        if !(host_ok && port_ok && tail_ok) {
            return Err(FORMAT.into());
        }
        if value.chars().count() > 1024 {
            return Err("must be at most 1024 characters".into());
        }
        Ok(value.to_owned())
    }

    pub fn parse_method(value: &str) -> Result<String, String> {
        Self::METHODS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(value))
            .map(|m| (*m).to_owned())
            .ok_or_else(|| "must be GET or POST".to_owned())
    }
}

/// A trunk's `TransferMode` (Twilio's `trunk_enum_transfer_setting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferMode {
    DisableAll,
    EnableAll,
    SipOnly,
}

impl TransferMode {
    /// The mode a provider's trunk has: `supportsCallTransfer` enables every transfer.
    pub fn for_call_transfer(supports_call_transfer: bool) -> Self {
        if supports_call_transfer { Self::EnableAll } else { Self::DisableAll }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DisableAll => "disable-all",
            Self::EnableAll => "enable-all",
            Self::SipOnly => "sip-only",
        }
    }
}

impl fmt::Display for TransferMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
