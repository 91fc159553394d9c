//! A client for the parts of Twilio's REST API the service uses, following Twilio's official
//! OpenAPI specs (api v2010 and trunking v1): form-encoded PascalCase requests, snake_case JSON
//! responses, HTTP Basic auth with the Account SID and Auth Token, error bodies
//! `{code, message, more_info, status}`.

mod resource;

pub use resource::TwilioResource;

use crate::config::TwilioConfig;
use crate::model::{
    AccountSid, ApiKeySecret, ApiKeySid, CredentialListSid, CredentialSid, OriginationUrlSid, PhoneNumberSid,
    SipPassword, TrunkSettings, TrunkSid, TwilioCredentials, VoiceRouting,
};
use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};

/// Twilio's error code for rejected credentials.
pub const CODE_AUTHENTICATION_FAILED: u32 = 20003;
/// Twilio's error code for "too many requests".
pub const CODE_TOO_MANY_REQUESTS: u32 = 20429;
/// Twilio's error code for a trunk domain name that is already taken.
pub const CODE_DOMAIN_NAME_TAKEN: u32 = 21248;

/// Twilio's error codes for account limits: SIP trunks (a Trial account holds one) and
/// credential lists.
pub const CODE_TRUNK_LIMIT: u32 = 21244;
pub const CODE_CREDENTIAL_LIST_LIMIT: u32 = 21239;
/// Twilio's error codes for a domain name that is invalid or already in use.
pub const CODE_DOMAIN_NAME_INVALID: u32 = 21232;
/// Twilio's "permission denied" code.
pub const CODE_PERMISSION_DENIED: u32 = 20403;
/// Twilio's answer (403) to test credentials for anything but buying numbers, sending messages
/// and making calls: "Resource not accessible with Test Account Credentials".
pub const CODE_TEST_CREDENTIALS: u32 = 20008;

/// What a Twilio error means for the caller: the one classification every handler matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioErrorKind {
    /// 401/20003: wrong token, or the account is suspended or closed.
    Rejected,
    /// 403: the credentials may not do this.
    Denied,
    /// 403/20008: the account's test credentials, which can manage nothing the service needs.
    TestCredentials,
    NotFound,
    /// An account limit (trunks, credential lists).
    LimitReached,
    /// Still 429 after the client's retries.
    RateLimited,
    /// Worth retrying later; nothing was changed (5xx to a read, a refused connection).
    Transient,
    /// A change that may or may not have been made (timeout, broken connection, 5xx).
    OutcomeUnknown,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    #[error("Twilio answered {status}{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Api { status: u16, code: Option<u32>, message: String },
    #[error("Twilio kept rate-limiting the request")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Twilio did not answer within {0:?}")]
    Timeout(Duration),
    /// No connection was made: Twilio never saw the request.
    #[error("could not reach Twilio: {0}")]
    Connect(String),
    /// The connection failed after the request was sent: Twilio may have done the work.
    #[error("the connection to Twilio broke off: {0}")]
    Interrupted(String),
    /// A 5xx to a request that creates or changes something: Twilio (or its edge) failed
    /// after receiving it, so it may have been done.
    #[error("Twilio answered {status} to a change; it may or may not have been made")]
    Unanswered { status: u16 },
    /// A change Twilio made (2xx) whose answer could not be read: what it made (its SID) is
    /// not known, so the caller finds it as it would after no answer.
    #[error("Twilio made the change, but its answer could not be read: {0}")]
    UnreadableChange(String),
    #[error("unexpected response from Twilio: {0}")]
    Decode(String),
}

impl TwilioError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Unanswered { status } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Worth trying again later: rate limiting, a timeout, a lost connection or a 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500,
            Self::RateLimited { .. }
            | Self::Timeout(_)
            | Self::Connect(_)
            | Self::Interrupted(_)
            | Self::Unanswered { .. }
            | Self::UnreadableChange(_) => true,
            Self::Decode(_) => false,
        }
    }

    /// Twilio may or may not have done what was asked, or did it without saying what it made
    /// (no answer arrived, or one that could not be read).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Interrupted(_) | Self::Unanswered { .. } | Self::UnreadableChange(_))
    }

    pub fn kind(&self) -> TwilioErrorKind {
        use TwilioErrorKind::*;
        if self.is_outcome_unknown() {
            return OutcomeUnknown;
        }
        match (self.status(), self.code()) {
            (_, Some(CODE_AUTHENTICATION_FAILED)) | (Some(401), _) => Rejected,
            (_, Some(CODE_TEST_CREDENTIALS)) => TestCredentials,
            (Some(403), _) | (_, Some(CODE_PERMISSION_DENIED)) => Denied,
            (_, Some(CODE_TRUNK_LIMIT | CODE_CREDENTIAL_LIST_LIMIT)) => LimitReached,
            (Some(404), _) => NotFound,
            _ if matches!(self, Self::RateLimited { .. }) => RateLimited,
            _ if self.is_transient() => Transient,
            _ => Other,
        }
    }

    /// Twilio refused the Account SID / Auth Token pair.
    pub fn is_authentication_failure(&self) -> bool {
        self.status() == Some(401) || self.code() == Some(CODE_AUTHENTICATION_FAILED)
    }
}

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

fn api_key_secret<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<ApiKeySecret, D::Error> {
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

fn empty_as_none<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<TrunkSid>, D::Error> {
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
fn trunk_form(settings: &TrunkSettings) -> Vec<(&'static str, &str)> {
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

/// How often and how long to retry. Only requests that are safe to repeat are retried: any
/// request after a 429 or a connection failure (nothing was processed), and idempotent ones
/// (GET, DELETE) after a timeout or a 5xx.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The most time all the waits of one request may add up to.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            budget: Duration::from_secs(5),
        }
    }
}

/// Twilio's REST API for one deployment: base URLs injected, timeouts and retries bounded.
/// Every request also honours the current deadline, which it reads from the task-local that
/// [`crate::deadline::within`] sets (each function sets it from the Lambda invocation's), so
/// no attempt or wait outlives the invocation.
#[derive(Debug, Clone)]
pub struct TwilioClient {
    http: Pool,
    hosts: TwilioConfig,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl TwilioClient {
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new(config: &TwilioConfig) -> Self {
        Self::with_limits(config, Self::REQUEST_TIMEOUT, RetryPolicy::default())
    }

    pub fn with_limits(config: &TwilioConfig, request_timeout: Duration, retry: RetryPolicy) -> Self {
        Self { http: Pool::new(request_timeout, Pool::STALE_AFTER), hosts: config.clone(), request_timeout, retry }
    }

    /// The same client, whose pooled connections are not reused after `idle` without a request
    /// (see [`Pool`]); tests shorten it.
    pub fn with_stale_connections_after(mut self, idle: Duration) -> Self {
        self.http = Pool::new(self.request_timeout, idle);
        self
    }

    /// A 2010 API URL of the account, on its Region's host.
    fn account_url(&self, creds: &TwilioCredentials, rest: &str) -> String {
        format!("{}/2010-04-01/Accounts/{}{rest}", self.hosts.hosts(creds.region).api_base_url, creds.account_sid)
    }

    /// A number's Routes URL (inbound processing Region), on the credentials' Region's host.
    fn routes_url(&self, creds: &TwilioCredentials, phone_number: &str) -> String {
        format!("{}/v2/PhoneNumbers/{phone_number}", self.hosts.hosts(creds.region).routes_base_url)
    }

    /// An Elastic SIP Trunking URL, on the credentials' Region's host.
    fn trunking_url(&self, creds: &TwilioCredentials, rest: &str) -> String {
        format!("{}/v1/{rest}", self.hosts.hosts(creds.region).trunking_base_url)
    }

    /// `GET /2010-04-01/Accounts/{Sid}.json`: also how credentials are validated.
    pub async fn fetch_account(&self, creds: &TwilioCredentials) -> Result<Account, TwilioError> {
        self.json(creds, Method::GET, self.account_url(creds, ".json"), &[]).await
    }

    /// `POST /v1/Trunks`
    pub async fn create_trunk(
        &self,
        creds: &TwilioCredentials,
        friendly_name: &str,
        domain_name: &str,
        settings: &TrunkSettings,
    ) -> Result<Trunk, TwilioError> {
        let mut form = vec![("FriendlyName", friendly_name), ("DomainName", domain_name)];
        form.extend(trunk_form(settings));
        self.json(creds, Method::POST, self.trunking_url(creds, "Trunks"), &form).await
    }

    /// `GET /v1/Trunks/{Sid}`
    pub async fn fetch_trunk(&self, creds: &TwilioCredentials, trunk_sid: &TrunkSid) -> Result<Trunk, TwilioError> {
        self.json(creds, Method::GET, self.trunking_url(creds, &format!("Trunks/{trunk_sid}")), &[]).await
    }

    /// `POST /v1/Trunks/{Sid}` with the settings the service keeps on a trunk.
    pub async fn update_trunk(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        settings: &TrunkSettings,
    ) -> Result<Trunk, TwilioError> {
        let mut form = trunk_form(settings);
        // An empty URL takes disaster recovery off the trunk, as Twilio's own clients clear a field.
        if settings.disaster_recovery.is_none() {
            form.push(("DisasterRecoveryUrl", ""));
        }
        self.json(creds, Method::POST, self.trunking_url(creds, &format!("Trunks/{trunk_sid}")), &form).await
    }

    /// `DELETE /v1/Trunks/{Sid}`
    pub async fn delete_trunk(&self, creds: &TwilioCredentials, trunk_sid: &TrunkSid) -> Result<(), TwilioError> {
        self.no_content(creds, Method::DELETE, self.trunking_url(creds, &format!("Trunks/{trunk_sid}"))).await
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists.json`
    pub async fn create_credential_list(
        &self,
        creds: &TwilioCredentials,
        friendly_name: &str,
    ) -> Result<CredentialList, TwilioError> {
        let form = [("FriendlyName", friendly_name)];
        self.json(creds, Method::POST, self.account_url(creds, "/SIP/CredentialLists.json"), &form).await
    }

    /// `DELETE /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{Sid}.json`; the list's
    /// credentials go with it.
    pub async fn delete_credential_list(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
    ) -> Result<(), TwilioError> {
        self.no_content(
            creds,
            Method::DELETE,
            self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}.json")),
        )
        .await
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CredentialListSid}/Credentials.json`
    pub async fn create_credential(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
        username: &str,
        password: &SipPassword,
    ) -> Result<Credential, TwilioError> {
        let form = [("Username", username), ("Password", password.expose())];
        let url = self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}/Credentials.json"));
        self.json(creds, Method::POST, url, &form).await
    }

    /// `DELETE /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CredentialListSid}/Credentials/{Sid}.json`
    pub async fn delete_credential(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
        credential_sid: &CredentialSid,
    ) -> Result<(), TwilioError> {
        let url =
            self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}/Credentials/{credential_sid}.json"));
        self.no_content(creds, Method::DELETE, url).await
    }

    /// `POST /v1/Trunks/{TrunkSid}/OriginationUrls`
    pub async fn create_origination_url(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        target: OriginationTarget<'_>,
    ) -> Result<OriginationUrl, TwilioError> {
        let (priority, weight) = (target.target.priority.to_string(), target.target.weight.to_string());
        let form = [
            ("SipUrl", target.target.uri.as_str()),
            ("FriendlyName", target.friendly_name),
            ("Enabled", "true"),
            ("Priority", priority.as_str()),
            ("Weight", weight.as_str()),
        ];
        self.json(creds, Method::POST, self.trunking_url(creds, &format!("Trunks/{trunk_sid}/OriginationUrls")), &form)
            .await
    }

    /// `POST /v1/Trunks/{TrunkSid}/OriginationUrls/{Sid}`: points an existing origination URL at
    /// the target, with its priority and weight, and enables it.
    pub async fn update_origination_url(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        sid: &OriginationUrlSid,
        target: OriginationTarget<'_>,
    ) -> Result<OriginationUrl, TwilioError> {
        let (priority, weight) = (target.target.priority.to_string(), target.target.weight.to_string());
        let form = [
            ("SipUrl", target.target.uri.as_str()),
            ("Enabled", "true"),
            ("Priority", priority.as_str()),
            ("Weight", weight.as_str()),
        ];
        let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/OriginationUrls/{sid}"));
        self.json(creds, Method::POST, url, &form).await
    }

    /// `DELETE /v1/Trunks/{TrunkSid}/OriginationUrls/{Sid}`.
    pub async fn delete_origination_url(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        sid: &OriginationUrlSid,
    ) -> Result<(), TwilioError> {
        let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/OriginationUrls/{sid}"));
        self.no_content(creds, Method::DELETE, url).await
    }

    /// `GET /v1/Trunks/{TrunkSid}/OriginationUrls`, every page.
    pub async fn list_origination_urls(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        max_items: usize,
    ) -> Result<Vec<OriginationUrl>, TwilioError> {
        let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/OriginationUrls?PageSize=100"));
        self.list_all(creds, url, "origination_urls", max_items).await
    }

    /// `POST /v1/Trunks/{TrunkSid}/CredentialLists`
    pub async fn attach_credential_list(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        list_sid: &CredentialListSid,
    ) -> Result<TrunkCredentialList, TwilioError> {
        let form = [("CredentialListSid", list_sid.as_str())];
        self.json(creds, Method::POST, self.trunking_url(creds, &format!("Trunks/{trunk_sid}/CredentialLists")), &form)
            .await
    }

    /// `DELETE /v1/Trunks/{TrunkSid}/CredentialLists/{Sid}`
    pub async fn detach_credential_list(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        list_sid: &CredentialListSid,
    ) -> Result<(), TwilioError> {
        self.no_content(
            creds,
            Method::DELETE,
            self.trunking_url(creds, &format!("Trunks/{trunk_sid}/CredentialLists/{list_sid}")),
        )
        .await
    }

    /// `GET /v1/Trunks`, every page (at most `max_items`).
    pub async fn list_trunks(&self, creds: &TwilioCredentials, max_items: usize) -> Result<Vec<Trunk>, TwilioError> {
        self.list_all(creds, self.trunking_url(creds, "Trunks?PageSize=100"), "trunks", max_items).await
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists.json`, every page (at most `max_items`).
    pub async fn list_credential_lists(
        &self,
        creds: &TwilioCredentials,
        max_items: usize,
    ) -> Result<Vec<CredentialList>, TwilioError> {
        self.list_all(
            creds,
            self.account_url(creds, "/SIP/CredentialLists.json?PageSize=100"),
            "credential_lists",
            max_items,
        )
        .await
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json`, every page (at most `max_items`).
    pub async fn list_incoming_numbers(
        &self,
        creds: &TwilioCredentials,
        max_items: usize,
    ) -> Result<Vec<IncomingPhoneNumber>, TwilioError> {
        let url = self.account_url(creds, "/IncomingPhoneNumbers.json?PageSize=100");
        self.list_all(creds, url, "incoming_phone_numbers", max_items).await
    }

    /// One item of a listing the service relies on: how an API key, which may not read the
    /// account, is checked for what the service needs (each a cheap read).
    pub async fn probe(&self, creds: &TwilioCredentials, probe: Probe) -> Result<(), TwilioError> {
        let url = match probe {
            Probe::Trunks => self.trunking_url(creds, "Trunks?PageSize=1"),
            Probe::CredentialLists => self.account_url(creds, "/SIP/CredentialLists.json?PageSize=1"),
            Probe::IncomingNumbers => self.account_url(creds, "/IncomingPhoneNumbers.json?PageSize=1"),
        };
        self.json::<serde::de::IgnoredAny>(creds, Method::GET, url, &[]).await.map(drop)
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Keys.json`: a Standard API key (the 2010 API
    /// makes no other kind). Needs the Auth Token or a Main key.
    pub async fn create_api_key(
        &self,
        creds: &TwilioCredentials,
        friendly_name: &str,
    ) -> Result<NewApiKey, TwilioError> {
        self.json(creds, Method::POST, self.account_url(creds, "/Keys.json"), &[("FriendlyName", friendly_name)]).await
    }

    /// `DELETE /2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json`; already gone (404) counts as
    /// deleted. Needs the Auth Token or a Main key.
    pub async fn delete_api_key(&self, creds: &TwilioCredentials, key_sid: &ApiKeySid) -> Result<(), TwilioError> {
        match self.no_content(creds, Method::DELETE, self.account_url(creds, &format!("/Keys/{key_sid}.json"))).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json`
    pub async fn fetch_incoming_number(
        &self,
        creds: &TwilioCredentials,
        sid: &PhoneNumberSid,
    ) -> Result<IncomingPhoneNumber, TwilioError> {
        self.json(creds, Method::GET, self.account_url(creds, &format!("/IncomingPhoneNumbers/{sid}.json")), &[]).await
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json` with `TrunkSid`:
    /// puts the number on that trunk (off any other) in one update; Twilio drops its voice
    /// application.
    pub async fn move_number_to_trunk(
        &self,
        creds: &TwilioCredentials,
        sid: &PhoneNumberSid,
        trunk_sid: &TrunkSid,
    ) -> Result<IncomingPhoneNumber, TwilioError> {
        let url = self.account_url(creds, &format!("/IncomingPhoneNumbers/{sid}.json"));
        self.json(creds, Method::POST, url, &[("TrunkSid", trunk_sid.as_str())]).await
    }

    /// The same with `VoiceApplicationSid`: the application routes the number's calls, and
    /// Twilio takes it off its trunk in the same update.
    pub async fn set_voice_application(
        &self,
        creds: &TwilioCredentials,
        sid: &PhoneNumberSid,
        application_sid: &str,
    ) -> Result<IncomingPhoneNumber, TwilioError> {
        let url = self.account_url(creds, &format!("/IncomingPhoneNumbers/{sid}.json"));
        self.json(creds, Method::POST, url, &[("VoiceApplicationSid", application_sid)]).await
    }

    /// `GET /v2/PhoneNumbers/{PhoneNumber}` (Routes, on the credentials' Region's host): the
    /// Region that processes the number's calls. A number never given one is answered 404 and
    /// is processed in US1.
    pub async fn fetch_voice_region(
        &self,
        creds: &TwilioCredentials,
        phone_number: &str,
    ) -> Result<String, TwilioError> {
        match self.json::<NumberRoutes>(creds, Method::GET, self.routes_url(creds, phone_number), &[]).await {
            Ok(routes) => Ok(routes.voice_region.filter(|r| !r.is_empty()).unwrap_or_else(|| "us1".to_owned())),
            Err(e) if e.is_not_found() => Ok("us1".to_owned()),
            Err(e) => Err(e),
        }
    }

    /// `POST /v2/PhoneNumbers/{PhoneNumber}` with `VoiceRegion`: the Region that processes the
    /// number's calls from now on (Twilio takes up to five minutes to apply it).
    pub async fn set_voice_region(
        &self,
        creds: &TwilioCredentials,
        phone_number: &str,
        voice_region: &str,
    ) -> Result<(), TwilioError> {
        let url = self.routes_url(creds, phone_number);
        self.json::<serde_json::Value>(creds, Method::POST, url, &[("VoiceRegion", voice_region)]).await.map(drop)
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/Applications/{Sid}.json`
    pub async fn fetch_application(
        &self,
        creds: &TwilioCredentials,
        application_sid: &str,
    ) -> Result<Application, TwilioError> {
        let url = self.account_url(creds, &format!("/Applications/{application_sid}.json"));
        self.json(creds, Method::GET, url, &[]).await
    }

    /// Puts a number on the trunk: its own `TrunkSid` (UpdateIncomingPhoneNumber), the way that
    /// works in every Region and moves it off whatever it was on in one update.
    pub async fn attach_phone_number(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        number_sid: &PhoneNumberSid,
    ) -> Result<(), TwilioError> {
        self.move_number_to_trunk(creds, number_sid, trunk_sid).await.map(drop)
    }

    /// Takes a number off the trunk, leaving its voice URL (if any) to route it. US1: `DELETE
    /// /v1/Trunks/{TrunkSid}/PhoneNumbers/{Sid}`. IE1 and AU1 have no such subresource: an
    /// empty `TrunkSid` in the number's own update, sent only while the number is on this
    /// trunk (an empty value clears whatever trunk it is on, the customer's own included);
    /// a number no longer on the trunk is answered 404, as the subresource would.
    pub async fn detach_phone_number(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        number_sid: &PhoneNumberSid,
    ) -> Result<(), TwilioError> {
        if creds.region.has_trunk_phone_numbers() {
            let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/PhoneNumbers/{number_sid}"));
            return self.no_content(creds, Method::DELETE, url).await;
        }
        let number = self.fetch_incoming_number(creds, number_sid).await?;
        if number.trunk_sid.as_ref() != Some(trunk_sid) {
            return Err(TwilioError::Api {
                status: 404,
                code: Some(20404),
                message: "the number is not on the trunk".to_owned(),
            });
        }
        let url = self.account_url(creds, &format!("/IncomingPhoneNumbers/{number_sid}.json"));
        self.json::<serde_json::Value>(creds, Method::POST, url, &[("TrunkSid", "")]).await.map(drop)
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{Sid}.json`
    pub async fn fetch_credential_list(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
    ) -> Result<CredentialList, TwilioError> {
        self.json(creds, Method::GET, self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}.json")), &[])
            .await
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CredentialListSid}/Credentials.json`, every page.
    pub async fn list_credentials(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
        max_items: usize,
    ) -> Result<Vec<Credential>, TwilioError> {
        let url = self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}/Credentials.json?PageSize=100"));
        self.list_all(creds, url, "credentials", max_items).await
    }

    /// `GET /v1/Trunks/{TrunkSid}/CredentialLists`, every page.
    pub async fn list_trunk_credential_lists(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        max_items: usize,
    ) -> Result<Vec<TrunkCredentialList>, TwilioError> {
        let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/CredentialLists?PageSize=100"));
        self.list_all(creds, url, "credential_lists", max_items).await
    }

    /// The numbers on a trunk (at most `max_items`): the account's incoming numbers whose
    /// `trunk_sid` is the trunk's, read in pages of 1,000 (Twilio's largest). The trunk's own
    /// PhoneNumbers list exists in US1 only; this works in every Region.
    pub async fn list_trunk_phone_numbers(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        max_items: usize,
    ) -> Result<Vec<TrunkPhoneNumber>, TwilioError> {
        let url = self.account_url(creds, "/IncomingPhoneNumbers.json?PageSize=1000");
        let numbers: Vec<IncomingPhoneNumber> = self.list_all(creds, url, "incoming_phone_numbers", usize::MAX).await?;
        Ok(numbers
            .into_iter()
            .filter(|n| n.trunk_sid.as_ref() == Some(trunk_sid))
            .take(max_items)
            .map(|n| TrunkPhoneNumber { sid: n.sid, phone_number: Some(n.phone_number) })
            .collect())
    }

    /// Removes a resource the service created; already gone (404) counts as removed.
    pub async fn remove(&self, creds: &TwilioCredentials, resource: &TwilioResource) -> Result<(), TwilioError> {
        let result = match resource {
            TwilioResource::Trunk { trunk_sid } => self.delete_trunk(creds, trunk_sid).await,
            TwilioResource::CredentialList { list_sid } => self.delete_credential_list(creds, list_sid).await,
            TwilioResource::TrunkCredentialList { trunk_sid, list_sid } => {
                self.detach_credential_list(creds, trunk_sid, list_sid).await
            }
            TwilioResource::Credential { list_sid, credential_sid } => {
                self.delete_credential(creds, list_sid, credential_sid).await
            }
            TwilioResource::TrunkPhoneNumber { trunk_sid, number_sid } => {
                self.detach_phone_number(creds, trunk_sid, number_sid).await
            }
        };
        match result {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Follows Twilio's paging: `next_page_uri` (2010 API, a path) or `meta.next_page_url`
    /// (v1 APIs, an absolute URL). Only the path and query of a next-page link are used, joined
    /// to the configured base URL, so credentials are never sent to another host.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        creds: &TwilioCredentials,
        first_page_url: String,
        key: &str,
        max_items: usize,
    ) -> Result<Vec<T>, TwilioError> {
        let base = self.base_of(&first_page_url).to_owned();
        let mut items = Vec::new();
        let mut next = Some(first_page_url);
        while let Some(url) = next.take() {
            let mut page: serde_json::Map<String, serde_json::Value> = self.json(creds, Method::GET, url, &[]).await?;
            let batch = match page.remove(key) {
                Some(value) => serde_json::from_value::<Vec<T>>(value)
                    .map_err(|e| TwilioError::Decode(format!("list {key}: {}", classify(&e))))?,
                None => return Err(TwilioError::Decode(format!("the page has no {key} list"))),
            };
            items.extend(batch);
            if items.len() >= max_items {
                items.truncate(max_items);
                break;
            }
            let link = page
                .get("next_page_uri")
                .or_else(|| page.get("meta").and_then(|meta| meta.get("next_page_url")))
                .and_then(serde_json::Value::as_str);
            next = link.and_then(path_and_query).map(|path| format!("{base}{path}"));
        }
        Ok(items)
    }

    /// The configured base URL a URL was built on (the longest that prefixes it): where the
    /// next pages of a list are asked for.
    fn base_of(&self, url: &str) -> &str {
        let hosts = &self.hosts;
        [&hosts.us1, &hosts.ie1, &hosts.au1]
            .into_iter()
            .flat_map(|h| [h.api_base_url.as_str(), h.trunking_base_url.as_str(), h.routes_base_url.as_str()])
            .filter(|base| url.starts_with(base))
            .max_by_key(|base| base.len())
            .unwrap_or_default()
    }

    async fn json<T: DeserializeOwned>(
        &self,
        creds: &TwilioCredentials,
        method: Method,
        url: String,
        form: &[(&str, &str)],
    ) -> Result<T, TwilioError> {
        let changes = !is_idempotent(&method);
        let response = self.send(creds, method, &url, form).await?;
        let read = match response.bytes().await {
            // The error names the shape, never the body: an account body carries the auth token.
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                TwilioError::Decode(format!("{} at line {} column {}", classify(&e), e.line(), e.column()))
            }),
            Err(e) => Err(self.transport_error(e)),
        };
        match read {
            Err(TwilioError::Decode(detail)) if changes => Err(TwilioError::UnreadableChange(detail)),
            other => other,
        }
    }

    async fn no_content(&self, creds: &TwilioCredentials, method: Method, url: String) -> Result<(), TwilioError> {
        self.send(creds, method, &url, &[]).await.map(drop)
    }

    /// Sends with retries; returns a successful response or the error Twilio gave. Reads the
    /// current deadline ([`crate::deadline::within`], a task-local the handlers set from the
    /// Lambda invocation's): no attempt or wait goes past it.
    async fn send(
        &self,
        creds: &TwilioCredentials,
        method: Method,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::Response, TwilioError> {
        let idempotent = is_idempotent(&method);
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = crate::deadline::remaining();
            if left.is_some_and(|left| left.is_zero()) {
                return Err(TwilioError::Timeout(self.request_timeout));
            }
            let (username, password) = creds.basic_auth();
            let mut request = self.http.client().request(method.clone(), url).basic_auth(username, Some(password));
            if let Some(left) = left.filter(|left| *left < self.request_timeout) {
                request = request.timeout(left);
            }
            if !form.is_empty() {
                request = request.form(form);
            }
            let outcome = request.send().await;
            let (error, retry) = match outcome {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(%method, url, status = response.status().as_u16(), attempt, elapsed_ms = started.elapsed().as_millis() as u64, "twilio request");
                    record_request(&method, url, "ok", started);
                    return Ok(response);
                }
                Ok(response) => {
                    let status = response.status();
                    tracing::debug!(%method, url, status = status.as_u16(), attempt, "twilio request failed");
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let retry_after = retry_after_header(&response);
                        let retry = retry_after.map_or(Retry::Backoff, Retry::After);
                        (TwilioError::RateLimited { retry_after }, retry)
                    } else if status.is_server_error() && !idempotent {
                        (TwilioError::Unanswered { status: status.as_u16() }, Retry::Stop)
                    } else {
                        let error = api_error(response).await;
                        let retry = if idempotent && status.is_server_error() { Retry::Backoff } else { Retry::Stop };
                        (error, retry)
                    }
                }
                Err(e) => {
                    tracing::debug!(%method, url, attempt, error = %e, "twilio request did not complete");
                    // A refused connection never reached Twilio; anything later might have.
                    let error = self.transport_error(e);
                    let retryable =
                        matches!(error, TwilioError::Connect(_)) || (idempotent && error.is_outcome_unknown());
                    (error, if retryable { Retry::Backoff } else { Retry::Stop })
                }
            };
            let delay = match retry {
                Retry::Stop => {
                    record_request(&method, url, outcome_of(&error), started);
                    return Err(error);
                }
                Retry::Backoff => self.backoff(attempt),
                Retry::After(delay) => delay,
            };
            let past_deadline = crate::deadline::remaining().is_some_and(|left| delay >= left);
            if attempt >= self.retry.max_attempts || waited.saturating_add(delay) > self.retry.budget || past_deadline {
                record_request(&method, url, outcome_of(&error), started);
                return Err(error);
            }
            waited += delay;
            tokio::time::sleep(delay).await;
        }
    }

    /// Exponential backoff with full jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.retry.base_delay.saturating_mul(1 << attempt.min(16)).min(self.retry.max_delay);
        let millis = cap.as_millis() as u64;
        Duration::from_millis(if millis == 0 { 0 } else { rand::rng().random_range(0..=millis) })
    }

    fn transport_error(&self, e: reqwest::Error) -> TwilioError {
        if e.is_timeout() {
            TwilioError::Timeout(self.request_timeout)
        } else if e.is_decode() {
            TwilioError::Decode("the response body could not be read".into())
        } else if e.is_connect() {
            TwilioError::Connect(error_text(e))
        } else {
            TwilioError::Interrupted(error_text(e))
        }
    }
}

/// The HTTP client and its connection pool, started afresh when no request was sent for
/// `stale_after` by the wall clock. Lambda freezes a function between invocations, and a
/// server closes a connection that idles long enough; the close arrives while the process is
/// frozen, so on thaw the pool still offers the connection, and a POST written to it fails
/// after it may have been sent: an "outcome unknown" and a needless rollback. The wall clock
/// is read because it keeps counting across a freeze, which the pool's own idle timer (60 s,
/// on the monotonic clock) need not. Twilio does not document how long it keeps an idle
/// connection; 15 s keeps the pool within one burst of requests, and costs a TLS handshake
/// after a pause.
#[derive(Debug, Clone)]
struct Pool {
    current: std::sync::Arc<std::sync::Mutex<(reqwest::Client, std::time::SystemTime)>>,
    request_timeout: Duration,
    stale_after: Duration,
}

impl Pool {
    const STALE_AFTER: Duration = Duration::from_secs(15);

    fn new(request_timeout: Duration, stale_after: Duration) -> Self {
        let current = (Self::build(request_timeout), std::time::SystemTime::now());
        Self { current: std::sync::Arc::new(std::sync::Mutex::new(current)), request_timeout, stale_after }
    }

    fn build(request_timeout: Duration) -> reqwest::Client {
        crate::https::client_builder()
            .connect_timeout(TwilioClient::CONNECT_TIMEOUT.min(request_timeout))
            .timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("twilio-provider-service/", env!("CARGO_PKG_VERSION")))
            // Credentials go to the configured hosts only: a 3xx is an error, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client configuration is static and valid")
    }

    /// The client to send with now: a fresh one (no pooled connections) after a pause.
    fn client(&self) -> reqwest::Client {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = std::time::SystemTime::now();
        // A clock set back counts as a pause too.
        if now.duration_since(current.1).map_or(true, |idle| idle > self.stale_after) {
            current.0 = Self::build(self.request_timeout);
        }
        current.1 = now;
        current.0.clone()
    }
}

/// GET and DELETE: sending one again changes nothing more (a POST creates or changes).
fn is_idempotent(method: &Method) -> bool {
    method == Method::GET || method == Method::DELETE
}

/// What to do after a failed attempt.
enum Retry {
    /// Give up: the error is the answer.
    Stop,
    /// Try again after an exponential backoff with jitter.
    Backoff,
    /// Try again after the time Twilio asked for (`Retry-After`).
    After(Duration),
}

/// `TwilioRequests` (by operation and outcome) and `TwilioLatency` for a finished request.
fn record_request(method: &Method, url: &str, outcome: &str, started: Instant) {
    let operation = operation_of(method, url);
    let dimensions = [("Operation", operation.as_str()), ("Outcome", outcome)];
    crate::metrics::count("TwilioRequests", &dimensions);
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    crate::metrics::emit("TwilioLatency", elapsed, crate::metrics::Unit::Milliseconds, &dimensions[..1]);
}

/// An operation's name from its request: the path with SIDs replaced, without the account
/// prefix and query (`POST Trunks/{Sid}/PhoneNumbers`): a small, fixed set of values.
fn operation_of(method: &Method, url: &str) -> String {
    let path = reqwest::Url::parse(url).map(|u| u.path().to_owned()).unwrap_or_default();
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .skip_while(|s| matches!(*s, "v1" | "2010-04-01" | "Accounts") || (s.starts_with("AC") && s.len() == 34))
        .collect();
    let named: Vec<&str> = segments
        .iter()
        .map(|s| {
            let stem = s.strip_suffix(".json").unwrap_or(s);
            let sid = stem.len() == 34
                && stem[..2].bytes().all(|b| b.is_ascii_uppercase())
                && stem[2..].bytes().all(|b| b.is_ascii_hexdigit());
            if sid { "{Sid}" } else { stem }
        })
        .collect();
    format!("{method} {}", named.join("/"))
}

fn outcome_of(error: &TwilioError) -> &'static str {
    match error.kind() {
        TwilioErrorKind::Rejected => "rejected",
        TwilioErrorKind::Denied => "denied",
        TwilioErrorKind::TestCredentials => "test-credentials",
        TwilioErrorKind::NotFound => "not-found",
        TwilioErrorKind::LimitReached => "limit-reached",
        TwilioErrorKind::RateLimited => "rate-limited",
        TwilioErrorKind::Transient => "transient",
        TwilioErrorKind::OutcomeUnknown => "outcome-unknown",
        TwilioErrorKind::Other => "error",
    }
}

/// The path and query of a link that is either a path or an absolute URL.
fn path_and_query(link: &str) -> Option<String> {
    if link.starts_with('/') {
        return Some(link.to_owned());
    }
    let url = reqwest::Url::parse(link).ok()?;
    Some(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    })
}

/// A transport error with its causes (hyper's reason is in the source chain), without the URL
/// (reqwest's text ends with it: the Account SID, resource SIDs and page tokens).
fn error_text(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "JSON of an unexpected shape",
        serde_json::error::Category::Eof => "truncated JSON",
    }
}

/// The longest wait a `Retry-After` can ask for here; longer ones are taken as this. It is
/// past every retry budget and deadline (so not waited for), and it is what a caller is told
/// to wait at most, not a value of Twilio's that could be absurd (`u64::MAX` seconds).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

fn retry_after_header(response: &reqwest::Response) -> Option<Duration> {
    retry_after(response.headers().get("retry-after")?.to_str().ok()?, std::time::SystemTime::now())
}

/// A `Retry-After` value (seconds, or an HTTP date) as a wait from `now`, at most
/// [`MAX_RETRY_AFTER`]; a date already past is no wait.
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<u32>,
    #[serde(default)]
    message: Option<String>,
}

async fn api_error(response: reqwest::Response) -> TwilioError {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody { code, message }) => {
            TwilioError::Api { status, code, message: message.unwrap_or_else(|| "no message".into()) }
        }
        Err(_) => {
            TwilioError::Api { status, code: None, message: "the error body was not Twilio's JSON error format".into() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_the_cap() {
        let config = TwilioConfig::everywhere("http://127.0.0.1:9");
        let client = TwilioClient::new(&config);
        for attempt in 1..20 {
            assert!(client.backoff(attempt) <= client.retry.max_delay);
        }
    }

    /// Any `Retry-After`, in seconds up to `u64::MAX` or as a date however far ahead, is a
    /// wait of at most [`MAX_RETRY_AFTER`]; a date past is no wait; anything else is none.
    #[test]
    fn retry_after_is_clamped_whatever_twilio_sends() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&u64::MAX.to_string(), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), Some(MAX_RETRY_AFTER));
        let soon = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&soon, now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }

    /// A transport error says what failed, never the URL (Account SID, resource SIDs, page
    /// tokens): it reaches responses, stored errors and logs.
    #[tokio::test]
    async fn transport_errors_carry_no_url() {
        let config = TwilioConfig::everywhere("http://127.0.0.1:9");
        let client = TwilioClient::new(&config);
        let sid = format!("AC{}", "d".repeat(32));
        let creds = crate::model::TwilioCredentials {
            account_sid: crate::model::AccountSid::parse(&sid).unwrap(),
            auth: crate::model::TwilioAuth::AuthToken(crate::model::AuthToken::parse(&"e".repeat(32)).unwrap()),
            region: Default::default(),
        };
        let error = client.fetch_account(&creds).await.expect_err("nothing listens on port 9");
        let text = format!("{error} {error:?}");
        assert!(matches!(error, TwilioError::Connect(_)), "{text}");
        assert!(!text.contains(&sid) && !text.contains("127.0.0.1"), "{text}");
    }

    /// A server that closes a keep-alive connection once it has idled `idle`, when the next
    /// request arrives on it (as a close that reached a frozen process looks on thaw); it
    /// answers every other request `{}`. Returns its base URL and how many connections it took.
    async fn closing_idle_server(idle: Duration) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut answered: Option<Instant> = None;
                    let mut buffer = vec![0u8; 8192];
                    loop {
                        let Ok(read) = socket.read(&mut buffer).await else { return };
                        if read == 0 || answered.is_some_and(|at| at.elapsed() > idle) {
                            return; // closed without an answer
                        }
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        socket.write_all(answer.as_bytes()).await.unwrap();
                        answered = Some(Instant::now());
                    }
                });
            }
        });
        (base, connections)
    }

    /// After a pause longer than the pool keeps connections for, a POST goes out on a new
    /// connection: on the pooled one, which the server closed meanwhile, it would fail after
    /// it may have been sent (outcome unknown), and POSTs are not retried.
    #[tokio::test]
    async fn a_post_after_a_pause_does_not_go_out_on_a_stale_connection() {
        let (base, connections) = closing_idle_server(Duration::from_millis(1500)).await;
        let config = TwilioConfig::everywhere(&base);
        let client = TwilioClient::new(&config).with_stale_connections_after(Duration::from_secs(1));
        let creds = crate::model::TwilioCredentials {
            account_sid: crate::model::AccountSid::parse(&format!("AC{}", "d".repeat(32))).unwrap(),
            auth: crate::model::TwilioAuth::AuthToken(crate::model::AuthToken::parse(&"e".repeat(32)).unwrap()),
            region: Default::default(),
        };
        let url = format!("{base}/v1/Trunks");
        client.send(&creds, Method::POST, &url, &[("FriendlyName", "a")]).await.expect("the first POST");
        client.send(&creds, Method::POST, &url, &[("FriendlyName", "b")]).await.expect("a POST right after");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1, "kept alive within a burst");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        client.send(&creds, Method::POST, &url, &[("FriendlyName", "c")]).await.expect("a POST after a pause");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn operations_are_named_without_sids() {
        let sid = format!("AC{}", "a".repeat(32));
        let url =
            format!("https://api.twilio.com/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers/PN{}.json", "b".repeat(32));
        assert_eq!(operation_of(&Method::POST, &url), "POST IncomingPhoneNumbers/{Sid}");
        let url = format!("https://trunking.twilio.com/v1/Trunks/TK{}/PhoneNumbers?PageSize=100", "c".repeat(32));
        assert_eq!(operation_of(&Method::GET, &url), "GET Trunks/{Sid}/PhoneNumbers");
    }

    #[test]
    fn next_pages_are_asked_of_the_host_the_first_page_came_from() {
        let hosts = |region: &str| crate::config::RegionHosts {
            api_base_url: format!("https://api.{region}.example"),
            trunking_base_url: format!("https://trunking.{region}.example"),
            routes_base_url: format!("https://routes.{region}.example"),
        };
        let client =
            TwilioClient::new(&TwilioConfig { us1: hosts("us1"), ie1: hosts("dublin.ie1"), au1: hosts("sydney.au1") });
        assert_eq!(
            client.base_of("https://api.dublin.ie1.example/2010-04-01/Accounts/AC1.json"),
            "https://api.dublin.ie1.example"
        );
        assert_eq!(
            client.base_of("https://trunking.sydney.au1.example/v1/Trunks"),
            "https://trunking.sydney.au1.example"
        );
        assert_eq!(client.base_of("https://api.us1.example/2010-04-01"), "https://api.us1.example");
        assert_eq!(client.base_of("https://elsewhere.example/v1"), "");
    }

    #[test]
    fn next_page_links_keep_only_path_and_query() {
        assert_eq!(path_and_query("https://evil.example/v1/Trunks?Page=1").as_deref(), Some("/v1/Trunks?Page=1"));
        assert_eq!(
            path_and_query("/2010-04-01/Accounts/AC1/X.json?Page=2").as_deref(),
            Some("/2010-04-01/Accounts/AC1/X.json?Page=2")
        );
    }

    #[test]
    fn authentication_failures_are_recognised() {
        assert!(
            TwilioError::Api { status: 401, code: Some(20003), message: String::new() }.is_authentication_failure()
        );
        assert!(
            !TwilioError::Api { status: 404, code: Some(20404), message: String::new() }.is_authentication_failure()
        );
    }
}
