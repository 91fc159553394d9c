//! A client for the parts of Twilio's REST API the service uses, following Twilio's official
//! OpenAPI specs (api v2010 and trunking v1): form-encoded PascalCase requests, snake_case JSON
//! responses, HTTP Basic auth with the Account SID and Auth Token, error bodies
//! `{code, message, more_info, status}`.

mod account;
mod error;
mod resource;
mod transport;
mod trunking;
mod types;

pub use error::{
    CODE_AUTHENTICATION_FAILED, CODE_CREDENTIAL_LIST_LIMIT, CODE_DOMAIN_NAME_INVALID, CODE_DOMAIN_NAME_TAKEN,
    CODE_PERMISSION_DENIED, CODE_TEST_CREDENTIALS, CODE_TOO_MANY_REQUESTS, CODE_TRUNK_LIMIT, TwilioError,
    TwilioErrorKind,
};
pub use resource::TwilioResource;
pub use transport::RetryPolicy;
pub use types::{
    Account, Application, Capabilities, Credential, CredentialList, IncomingPhoneNumber, NewApiKey, NumberRoutes,
    OriginationTarget, OriginationUrl, Probe, Trunk, TrunkCredentialList, TrunkPhoneNumber,
};

use crate::config::TwilioConfig;
use crate::model::TwilioCredentials;
use std::time::Duration;
use transport::Pool;

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
}
