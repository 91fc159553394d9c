//! Configuration, read once per process at init. A missing or malformed variable stops the function before it serves
//! anything, with a message that names the variable. Every variable: docs/operations.md#configuration.

use crate::model::{PlatformSipUris, Region, TwilioRegion};
use std::env;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where the service keeps its records and which KMS key wraps their data keys.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub table_name: String,
    /// A key id, key ARN, alias name (`alias/...`) or alias ARN.
    pub kms_key_id: String,
}

impl StorageConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self { table_name: table_name_from_env()?, kms_key_id: required("KMS_KEY_ID")? })
    }
}

/// `TABLE_NAME` alone, for functions that never encrypt or decrypt.
pub fn table_name_from_env() -> Result<String, ConfigError> {
    required("TABLE_NAME")
}

/// Twilio's API hosts of one Region: the 2010 API (`api…`), Elastic SIP Trunking
/// (`trunking…`) and Routes (`routes…`, a number's inbound processing Region).
#[derive(Debug, Clone)]
pub struct RegionHosts {
    pub api_base_url: String,
    pub trunking_base_url: String,
    pub routes_base_url: String,
}

impl RegionHosts {
    /// IE1's or AU1's hosts: `TWILIO_{API,TRUNKING,ROUTES}_BASE_URL_{IE1,AU1}`, by default
    /// Twilio's `{product}.{edge}.{region}.twilio.com` (never the legacy `api.ie1.twilio.com`
    /// form, which Twilio switched off in 2026).
    fn regional_from_env(region: TwilioRegion, edge: &str) -> Result<Self, ConfigError> {
        let names: [&'static str; 3] = match region {
            TwilioRegion::Ie1 => {
                ["TWILIO_API_BASE_URL_IE1", "TWILIO_TRUNKING_BASE_URL_IE1", "TWILIO_ROUTES_BASE_URL_IE1"]
            }
            _ => ["TWILIO_API_BASE_URL_AU1", "TWILIO_TRUNKING_BASE_URL_AU1", "TWILIO_ROUTES_BASE_URL_AU1"],
        };
        let host = |product: &str| format!("https://{product}.{edge}.{region}.twilio.com");
        Ok(Self {
            api_base_url: base_url(names[0], &host("api"))?,
            trunking_base_url: base_url(names[1], &host("trunking"))?,
            routes_base_url: base_url(names[2], &host("routes"))?,
        })
    }
}

/// Where Twilio's API hosts are, per Twilio Region (a provider's requests all go to its own).
/// Overridable so tests and the local sandbox can point the service at the fake Twilio.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub us1: RegionHosts,
    pub ie1: RegionHosts,
    pub au1: RegionHosts,
}

impl TwilioConfig {
    pub const DEFAULT_API_BASE_URL: &'static str = "https://api.twilio.com";
    pub const DEFAULT_TRUNKING_BASE_URL: &'static str = "https://trunking.twilio.com";
    pub const DEFAULT_ROUTES_BASE_URL: &'static str = "https://routes.twilio.com";

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            us1: RegionHosts {
                api_base_url: base_url("TWILIO_API_BASE_URL", Self::DEFAULT_API_BASE_URL)?,
                trunking_base_url: base_url("TWILIO_TRUNKING_BASE_URL", Self::DEFAULT_TRUNKING_BASE_URL)?,
                routes_base_url: base_url("TWILIO_ROUTES_BASE_URL", Self::DEFAULT_ROUTES_BASE_URL)?,
            },
            ie1: RegionHosts::regional_from_env(TwilioRegion::Ie1, "dublin")?,
            au1: RegionHosts::regional_from_env(TwilioRegion::Au1, "sydney")?,
        })
    }

    /// Every Region at one base URL (a test's single fake Twilio).
    pub fn everywhere(base_url: &str) -> Self {
        let hosts = RegionHosts {
            api_base_url: base_url.to_owned(),
            trunking_base_url: base_url.to_owned(),
            routes_base_url: base_url.to_owned(),
        };
        Self { us1: hosts.clone(), ie1: hosts.clone(), au1: hosts }
    }

    pub fn hosts(&self, region: TwilioRegion) -> &RegionHosts {
        match region {
            TwilioRegion::Us1 => &self.us1,
            TwilioRegion::Ie1 => &self.ie1,
            TwilioRegion::Au1 => &self.au1,
        }
    }
}

/// `PLATFORM_SIP_URI`: the platform's SIP ingresses (see [`PlatformSipUris`]), where every
/// trunk's origination URLs point so that calls to imported numbers reach the platform.
pub fn platform_sip_uris_from_env() -> Result<PlatformSipUris, ConfigError> {
    let name = "PLATFORM_SIP_URI";
    let value = required(name)?;
    // The value is not echoed: a SIP URI may carry a user.
    PlatformSipUris::parse(&value).map_err(|reason| ConfigError::Invalid { name, reason })
}

/// An SQS queue URL from `name`, when set (functions that need it require it at init).
pub fn queue_url_from_env(name: &'static str) -> Result<Option<String>, ConfigError> {
    match env::var(name) {
        Err(env::VarError::NotPresent) => Ok(None),
        _ => required(name).map(Some),
    }
}

/// How long audit events are kept: `EVENT_RETENTION_DAYS` (1 to 3650; default 400).
pub fn event_retention_from_env() -> Result<std::time::Duration, ConfigError> {
    const NAME: &str = "EVENT_RETENTION_DAYS";
    match env::var(NAME) {
        Ok(value) if !value.trim().is_empty() => match value.trim().parse::<u64>() {
            Ok(days) if (1..=3650).contains(&days) => Ok(std::time::Duration::from_secs(days * 86_400)),
            _ => Err(ConfigError::Invalid {
                name: NAME,
                reason: "it must be a whole number of days from 1 to 3650".into(),
            }),
        },
        _ => Ok(crate::storage::DEFAULT_RETENTION),
    }
}

/// An SQS queue URL from `name`, required.
pub fn required_queue_url(name: &'static str) -> Result<String, ConfigError> {
    required(name)
}

/// The Twilio region used when a request names none: the one closest to this deployment.
pub fn default_region_from_env() -> Region {
    Region::closest_to_aws_region(env::var("AWS_REGION").ok().as_deref().unwrap_or(""))
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    match env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
        Ok(_) => Err(ConfigError::Invalid { name, reason: "it is empty".into() }),
        Err(env::VarError::NotPresent) => Err(ConfigError::Missing(name)),
        Err(env::VarError::NotUnicode(_)) => Err(ConfigError::Invalid { name, reason: "it is not valid UTF-8".into() }),
    }
}

/// A base URL for Twilio's APIs. It may carry no credentials (user-info): every request URL
/// is built on it and logged at DEBUG, so the value is never repeated in an error either.
fn base_url(name: &'static str, default: &str) -> Result<String, ConfigError> {
    let value = match env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().to_owned(),
        _ => default.to_owned(),
    };
    base_url_of(&value).map_err(|reason| ConfigError::Invalid { name, reason: reason.into() })
}

fn base_url_of(value: &str) -> Result<String, &'static str> {
    let parsed = reqwest::Url::parse(value).map_err(|_| "it is not a URL")?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("it is not an http(s) URL");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it carries credentials (user-info), which would be logged with every request URL");
    }
    Ok(value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ie1_and_au1_default_to_the_edge_and_region_hosts() {
        // The tests' environment sets none of these variables.
        let ie1 = RegionHosts::regional_from_env(TwilioRegion::Ie1, "dublin").unwrap();
        assert_eq!(ie1.api_base_url, "https://api.dublin.ie1.twilio.com");
        assert_eq!(ie1.trunking_base_url, "https://trunking.dublin.ie1.twilio.com");
        assert_eq!(ie1.routes_base_url, "https://routes.dublin.ie1.twilio.com");
        let au1 = RegionHosts::regional_from_env(TwilioRegion::Au1, "sydney").unwrap();
        assert_eq!(au1.api_base_url, "https://api.sydney.au1.twilio.com");
        assert_eq!(au1.trunking_base_url, "https://trunking.sydney.au1.twilio.com");
    }

    #[test]
    fn base_urls_are_http_with_no_credentials_and_errors_never_repeat_them() {
        assert_eq!(base_url_of("https://api.twilio.com/").unwrap(), "https://api.twilio.com");
        assert_eq!(base_url_of("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        for bad in [
            "https://u:hunter2secret@api.twilio.com",
            "https://hunter2secret@api.twilio.com",
            "ftp://x",
            "nope hunter2secret",
        ] {
            let reason = base_url_of(bad).unwrap_err();
            assert!(!reason.contains("hunter2secret"), "{reason}");
        }
    }
}
