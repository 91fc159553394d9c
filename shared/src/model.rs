//! Domain types, parsed once at the edge so the rest of the code can trust them.

use rand::RngExt;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The organization a request acts for, as the API Gateway authorizer established it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganizationId(String);

impl OrganizationId {
    /// Organization ids become part of table keys; keep them to a safe, bounded alphabet.
    pub fn parse(value: &str) -> Option<Self> {
        let ok = (1..=128).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        ok.then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Declares a Twilio SID type: the two-letter prefix then 32 lowercase hex digits, parsed
/// where it enters (a request, a Twilio response, a stored item) so the rest can trust it.
macro_rules! twilio_sid {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const FORMAT: &'static str =
                concat!("must be '", $prefix, "' followed by 32 lowercase hexadecimal characters");

            pub fn parse(value: &str) -> Result<Self, &'static str> {
                match value.strip_prefix($prefix) {
                    Some(rest) if rest.len() == 32 && is_lower_hex(rest) => Ok(Self(value.to_owned())),
                    _ => Err(Self::FORMAT),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = &'static str;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(sid: $name) -> Self {
                sid.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

twilio_sid!(
    /// A Twilio Account SID.
    AccountSid,
    "AC"
);
twilio_sid!(
    /// An Elastic SIP trunk.
    TrunkSid,
    "TK"
);
twilio_sid!(
    /// A SIP credential list.
    CredentialListSid,
    "CL"
);
twilio_sid!(
    /// A SIP credential (username and password) in a credential list.
    CredentialSid,
    "CR"
);
twilio_sid!(
    /// An incoming phone number of the account.
    PhoneNumberSid,
    "PN"
);
twilio_sid!(
    /// A trunk's origination URL.
    OriginationUrlSid,
    "OU"
);

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

twilio_sid!(
    /// A Twilio API key: the Basic-auth username of requests made with it.
    ApiKeySid,
    "SK"
);

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

/// The Twilio Region that holds a customer's account data, credentials and resources (trunks,
/// credential lists, numbers' voice configuration). Regions are separate: an auth token, a trunk
/// or a credential list exists in one only. Not to be confused with [`Region`], the edge
/// location of a termination URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TwilioRegion {
    #[default]
    Us1,
    Ie1,
    Au1,
}

impl TwilioRegion {
    pub const ALL: [TwilioRegion; 3] = [TwilioRegion::Us1, TwilioRegion::Ie1, TwilioRegion::Au1];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Us1 => "us1",
            Self::Ie1 => "ie1",
            Self::Au1 => "au1",
        }
    }

    /// The edge a termination URI uses when the request names none: the Region's own edge for
    /// IE1 and AU1 (calls stay in the Region); None for US1 (the deployment's closest edge).
    pub fn default_edge(self) -> Option<Region> {
        match self {
            Self::Us1 => None,
            Self::Ie1 => Some(Region::Ie1),
            Self::Au1 => Some(Region::Au1),
        }
    }

    /// Whether the Region offers a trunk's PhoneNumbers subresource (`/v1/Trunks/{Sid}/PhoneNumbers`):
    /// US1 only. Elsewhere a number goes on and off a trunk through its own `TrunkSid`.
    pub fn has_trunk_phone_numbers(self) -> bool {
        self == Self::Us1
    }
}

impl fmt::Display for TwilioRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SIP URI the platform receives calls on (`sip:host[:port][;params]`): the `SipUrl` of every
/// trunk's origination URL. Twilio takes only the `sip:` scheme there; TLS is asked for with
/// `;transport=tls`, never with `sips:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri(String);

impl SipUri {
    pub const FORMAT: &'static str = "must be a sip: URI with a host and no password (for TLS add ;transport=tls), \
         e.g. sip:sip.voice.example.com";

    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let value = value.trim();
        let rest = value.strip_prefix("sip:").ok_or(Self::FORMAT)?;
        // The host is what follows an optional user part, up to a port or parameters.
        let (user, host_part) = rest.rsplit_once('@').map_or(("", rest), |(user, host)| (user, host));
        let host = host_part.split([':', ';', '?']).next().unwrap_or_default();
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']'));
        let ok = host_ok
            && !user.contains(':')
            && value.len() <= 255
            && !value.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
        if ok { Ok(Self(value.to_owned())) } else { Err(Self::FORMAT) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a `sip_url` Twilio holds names this URI (scheme and host are case-insensitive).
    pub fn matches(&self, sip_url: &str) -> bool {
        self.0.eq_ignore_ascii_case(sip_url.trim())
    }

    /// Whether it asks for TLS signalling (`;transport=tls`): what a secure trunk's origination
    /// URL must carry, as Twilio takes no `sips:` there.
    pub fn uses_tls(&self) -> bool {
        carries_tls(&self.0)
    }
}

/// One SIP ingress of the platform and the `Priority` and `Weight` of the origination URL that
/// points at it (Twilio tries the lowest priority first, and shares calls among equal ones by
/// weight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformTarget {
    pub uri: SipUri,
    pub priority: u16,
    pub weight: u16,
}

impl PlatformTarget {
    /// Twilio's defaults, for a URI that names neither.
    pub const DEFAULT_PRIORITY: u16 = 10;
    pub const DEFAULT_WEIGHT: u16 = 10;

    pub fn new(uri: SipUri) -> Self {
        Self { uri, priority: Self::DEFAULT_PRIORITY, weight: Self::DEFAULT_WEIGHT }
    }
}

/// `PLATFORM_SIP_URI`: the platform's SIP ingresses, comma-separated, each with an optional
/// `;priority=N;weight=N` of the service's own (stripped before the URI goes to Twilio;
/// priority 0 to 65535, weight 1 to 65535, both 10 by default). Each becomes one origination
/// URL on every trunk, so Twilio fails over between platform regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSipUris(Vec<PlatformTarget>);

impl PlatformSipUris {
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut targets: Vec<PlatformTarget> = Vec::new();
        for (i, entry) in value.split(',').enumerate() {
            let n = i + 1;
            let (mut priority, mut weight) = (PlatformTarget::DEFAULT_PRIORITY, PlatformTarget::DEFAULT_WEIGHT);
            let mut kept = Vec::new();
            for (j, part) in entry.trim().split(';').enumerate() {
                let (name, number) = part.split_once('=').unwrap_or((part, ""));
                let number = || number.trim().parse::<u16>().ok();
                match name.trim().to_ascii_lowercase().as_str() {
                    "priority" if j > 0 => {
                        priority =
                            number().ok_or(format!("URI {n}: priority must be a whole number from 0 to 65535"))?
                    }
                    "weight" if j > 0 => {
                        weight = number()
                            .filter(|w| *w >= 1)
                            .ok_or(format!("URI {n}: weight must be a whole number from 1 to 65535"))?
                    }
                    _ => kept.push(part),
                }
            }
            let uri = SipUri::parse(&kept.join(";")).map_err(|reason| format!("URI {n} {reason}"))?;
            if targets.iter().any(|t| t.uri.matches(uri.as_str())) {
                return Err(format!("URI {n} is listed twice"));
            }
            targets.push(PlatformTarget { uri, priority, weight });
        }
        Ok(Self(targets))
    }

    /// A single ingress with Twilio's default priority and weight.
    pub fn single(uri: SipUri) -> Self {
        Self(vec![PlatformTarget::new(uri)])
    }

    pub fn targets(&self) -> &[PlatformTarget] {
        &self.0
    }

    /// The target an origination URL's `SipUrl` names, if any.
    pub fn target_of(&self, sip_url: &str) -> Option<&PlatformTarget> {
        self.0.iter().find(|t| t.uri.matches(sip_url))
    }

    /// Whether every ingress asks for TLS, as a secure trunk's origination URLs must.
    pub fn uses_tls(&self) -> bool {
        self.0.iter().all(|t| t.uri.uses_tls())
    }
}

impl fmt::Display for PlatformSipUris {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uris: Vec<&str> = self.0.iter().map(|t| t.uri.as_str()).collect();
        f.write_str(&uris.join(", "))
    }
}

/// Whether a SIP URL asks for TLS (`;transport=tls`, any case).
pub fn carries_tls(sip_url: &str) -> bool {
    sip_url.split(';').skip(1).any(|param| param.trim().eq_ignore_ascii_case("transport=tls"))
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A number's whole voice configuration, as recorded at import and given back at removal.
/// The URLs may carry credentials (`https://user:password@host/…`, tokens in the query): the
/// exact value is only ever stored envelope-encrypted; [`VoiceRouting::masked`] is what may be
/// shown or stored in plain text. Debug prints the masked form.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VoiceRouting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_fallback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_fallback_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_application_sid: Option<String>,
    /// The customer's own SIP trunk the number was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^TK[a-f0-9]{32}$"))]
    pub trunk_sid: Option<TrunkSid>,
    /// The number's inbound processing Region (Routes API `voice_region`): which Twilio Region
    /// handles its calls. Recorded for providers in IE1 and AU1, whose import points it at
    /// their own Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_region: Option<String>,
}

impl VoiceRouting {
    /// Whether any URL is set (only then is there anything secret to seal).
    pub fn has_urls(&self) -> bool {
        self.voice_url.is_some() || self.voice_fallback_url.is_some() || self.status_callback.is_some()
    }

    /// The same with what could be a credential in every URL replaced by `***` ([`mask_url`]).
    pub fn masked(&self) -> Self {
        let mask = |url: &Option<String>| url.as_deref().map(mask_url);
        Self {
            voice_url: mask(&self.voice_url),
            voice_fallback_url: mask(&self.voice_fallback_url),
            status_callback: mask(&self.status_callback),
            ..self.clone()
        }
    }

    /// The routing that sends calls somewhere (a voice URL, an application or a trunk).
    pub fn routes_voice(&self) -> bool {
        self.voice_url.is_some() || self.voice_application_sid.is_some() || self.trunk_sid.is_some()
    }
}

impl fmt::Debug for VoiceRouting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = self.masked();
        f.debug_struct("VoiceRouting")
            .field("voice_url", &masked.voice_url)
            .field("voice_fallback_url", &masked.voice_fallback_url)
            .field("status_callback", &masked.status_callback)
            .field("voice_application_sid", &self.voice_application_sid)
            .field("trunk_sid", &self.trunk_sid)
            .finish_non_exhaustive()
    }
}

/// A URL as it may be shown: its scheme, host and port, and the shape of the rest, with every
/// path segment and the query as `***` (`https://hooks.example.com/***/***?***`). A token can
/// hide in any of them (webhook services put theirs in the path, `/hooks/catch/123/abc9x/`,
/// or in a parameter of any name), so none is kept; the user name and password go, and so does
/// the fragment. Anything that does not parse as a URL, or has no host, is masked whole.
pub fn mask_url(url: &str) -> String {
    let masked = "***";
    let Ok(parsed) = reqwest::Url::parse(url) else { return masked.to_owned() };
    let Some(host) = parsed.host_str().filter(|_| !parsed.cannot_be_a_base()) else { return masked.to_owned() };
    let mut shown = format!("{}://{host}", parsed.scheme());
    if let Some(port) = parsed.port() {
        shown.push_str(&format!(":{port}"));
    }
    for segment in parsed.path_segments().into_iter().flatten() {
        shown.push('/');
        if !segment.is_empty() {
            shown.push_str(masked);
        }
    }
    if parsed.query().is_some() {
        shown.push('?');
        shown.push_str(masked);
    }
    shown
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

/// A Twilio region. Only these values are accepted; a region never builds a host name
/// from user input, it selects one of the fixed edges below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Us1,
    Us2,
    Ie1,
    De1,
    Au1,
    Jp1,
    Br1,
    Sg1,
}

impl Region {
    pub const ALL: [Region; 8] =
        [Region::Us1, Region::Us2, Region::Ie1, Region::De1, Region::Au1, Region::Jp1, Region::Br1, Region::Sg1];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Region::Us1 => "us1",
            Region::Us2 => "us2",
            Region::Ie1 => "ie1",
            Region::De1 => "de1",
            Region::Au1 => "au1",
            Region::Jp1 => "jp1",
            Region::Br1 => "br1",
            Region::Sg1 => "sg1",
        }
    }

    /// Twilio's edge location for the region, as used in localized termination URIs.
    pub fn edge(self) -> &'static str {
        match self {
            Region::Us1 => "ashburn",
            Region::Us2 => "umatilla",
            Region::Ie1 => "dublin",
            Region::De1 => "frankfurt",
            Region::Au1 => "sydney",
            Region::Jp1 => "tokyo",
            Region::Br1 => "sao-paulo",
            Region::Sg1 => "singapore",
        }
    }

    /// The Twilio region closest to an AWS region (`AWS_REGION`); us1 when none is closer.
    pub fn closest_to_aws_region(aws_region: &str) -> Self {
        match aws_region {
            r if r.starts_with("us-east-") => Region::Us1,
            r if r.starts_with("us-west-") => Region::Us2,
            r if r.starts_with("eu-west-") => Region::Ie1,
            r if r.starts_with("eu-central-") => Region::De1,
            "ap-southeast-2" => Region::Au1,
            r if r.starts_with("ap-northeast-") => Region::Jp1,
            "sa-east-1" => Region::Br1,
            "ap-southeast-1" => Region::Sg1,
            _ => Region::Us1,
        }
    }

    /// `sip:<label>.pstn.<edge>.twilio.com` for a trunk whose domain is `<label>.pstn.twilio.com`.
    /// A secure trunk takes TLS only: its URI says so, on Twilio's TLS port.
    pub fn termination_uri(self, domain_label: &str, secure: bool) -> String {
        let host = format!("{domain_label}.pstn.{}.twilio.com", self.edge());
        if secure { format!("sip:{host}:5061;transport=tls") } else { format!("sip:{host}") }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum VerificationStatus {
    Pending,
    Verified,
    Warning,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Passed,
    Warning,
    Failed,
}

/// The verification checks, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum CheckName {
    Credentials,
    Account,
    Permissions,
    Trunk,
    SecureTrunking,
    CredentialList,
    Origination,
    PhoneNumbers,
}

/// One verification check as shown in `verificationDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VerificationCheck {
    pub check_name: CheckName,
    pub message: String,
    pub status: CheckStatus,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: crate::time::Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

impl VerificationCheck {
    pub fn new(name: CheckName, status: CheckStatus, message: impl Into<String>, details: serde_json::Value) -> Self {
        Self { check_name: name, message: message.into(), status, timestamp: crate::time::Timestamp::now(), details }
    }
}

/// The overall status: failed if any check failed, else warning if any warned, else verified.
pub fn overall_status(checks: &[VerificationCheck]) -> VerificationStatus {
    if checks.iter().any(|c| c.status == CheckStatus::Failed) {
        VerificationStatus::Failed
    } else if checks.iter().any(|c| c.status == CheckStatus::Warning) {
        VerificationStatus::Warning
    } else {
        VerificationStatus::Verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_sid_accepts_only_ac_and_32_lowercase_hex() {
        assert!(AccountSid::parse(&format!("AC{}", "a1".repeat(16))).is_ok());
        for bad in [
            "",
            "AC",
            &format!("AC{}", "A1".repeat(16)),
            &format!("ac{}", "a1".repeat(16)),
            &format!("AC{}", "a".repeat(31)),
            &format!("AC{}", "a".repeat(33)),
            &format!("AC{}", "g".repeat(32)),
        ] {
            assert!(AccountSid::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn auth_token_is_32_lowercase_hex_and_never_debug_printed() {
        let token = AuthToken::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert!(!format!("{token:?}").contains("0123456789abcdef"));
        assert!(AuthToken::parse("0123456789ABCDEF0123456789abcdef").is_err());
        assert!(AuthToken::parse("0123456789abcdef").is_err());
    }

    #[test]
    fn generated_sip_passwords_meet_twilio_rules_and_differ() {
        let passwords: Vec<_> = (0..200).map(|_| SipPassword::generate()).collect();
        for p in &passwords {
            assert!(SipPassword::is_acceptable(p.expose()), "weak password generated");
            assert!(!format!("{p:?}").contains(p.expose()));
        }
        let distinct: std::collections::HashSet<_> = passwords.iter().map(|p| p.expose().to_owned()).collect();
        assert_eq!(distinct.len(), passwords.len());
    }

    #[test]
    fn region_maps_from_aws_region_and_to_edge() {
        let cases = [
            ("us-east-1", Region::Us1),
            ("us-east-2", Region::Us1),
            ("us-west-2", Region::Us2),
            ("eu-west-1", Region::Ie1),
            ("eu-central-1", Region::De1),
            ("ap-southeast-2", Region::Au1),
            ("ap-northeast-1", Region::Jp1),
            ("sa-east-1", Region::Br1),
            ("ap-southeast-1", Region::Sg1),
            ("af-south-1", Region::Us1),
            ("", Region::Us1),
        ];
        for (aws, twilio) in cases {
            assert_eq!(Region::closest_to_aws_region(aws), twilio, "{aws}");
        }
        assert_eq!(Region::Br1.termination_uri("abc", false), "sip:abc.pstn.sao-paulo.twilio.com");
        assert_eq!(Region::Ie1.termination_uri("abc", true), "sip:abc.pstn.dublin.twilio.com:5061;transport=tls");
        assert!(carries_tls("sip:a.example.com;transport=TLS") && !carries_tls("sip:transport=tls.example.com"));
        assert_eq!(Region::parse("de1"), Some(Region::De1));
        assert_eq!(Region::parse("DE1"), None);
        assert_eq!(Region::parse("eu1"), None);
    }

    #[test]
    fn urls_are_masked_but_keep_their_shape() {
        assert_eq!(
            mask_url("https://user:pa55@hooks.example.com:8443/voice?token=abc&x=1#f"),
            "https://hooks.example.com:8443/***?***"
        );
        // A path of plain words is masked too: any word can be a token.
        assert_eq!(mask_url("https://hooks.example.com/twiml/letmein"), "https://hooks.example.com/***/***");
        assert_eq!(
            mask_url("https://hooks.zapier.com/hooks/catch/123456/abc9xyz/?sk_live_SECRET&CallSid=1&Zz9SECRET=2"),
            "https://hooks.zapier.com/***/***/***/***/?***"
        );
        assert_eq!(mask_url("https://example.com"), "https://example.com/");
        assert_eq!(mask_url("https://hook.eu1.make.com/qwertyuiopasdfghjklzxcvbnm"), "https://hook.eu1.make.com/***");
        for whole in ["not a url secret", "urn:SECRET", "mailto:SECRET@example.com"] {
            assert_eq!(mask_url(whole), "***", "{whole}");
        }
        let routing = VoiceRouting { voice_url: Some("https://u:secretpw@h/x?k=secretq".into()), ..Default::default() };
        let debug = format!("{routing:?}");
        assert!(!debug.contains("secretpw") && !debug.contains("secretq"), "{debug}");
    }

    #[test]
    fn platform_sip_uris_list_ingresses_with_their_own_priority_and_weight() {
        let uris = PlatformSipUris::parse(
            "sip:us.example.com;transport=tls;priority=10;weight=20, sip:eu.example.com:5061;transport=tls;priority=20",
        )
        .unwrap();
        let targets: Vec<(&str, u16, u16)> =
            uris.targets().iter().map(|t| (t.uri.as_str(), t.priority, t.weight)).collect();
        assert_eq!(
            targets,
            [("sip:us.example.com;transport=tls", 10, 20), ("sip:eu.example.com:5061;transport=tls", 20, 10)]
        );
        assert!(uris.uses_tls());
        assert_eq!(PlatformSipUris::parse("sip:a.example.com").unwrap().targets()[0].priority, 10);
        for bad in [
            "sip:a.example.com;priority=x",
            "sip:a.example.com;priority=70000",
            "sip:a.example.com;weight=0",
            "sip:a.example.com,",
            "sip:a.example.com, SIP:A.example.com",
            "sips:a.example.com",
        ] {
            assert!(PlatformSipUris::parse(bad).is_err(), "{bad:?} accepted");
        }
        // `priority` as the host is a host, not a parameter.
        assert_eq!(PlatformSipUris::parse("sip:priority").unwrap().targets()[0].uri.as_str(), "sip:priority");
    }

    #[test]
    fn sip_uris_need_the_sip_scheme_and_a_host() {
        for good in ["sip:sip.voice.example.com", "sip:ingress.example.com:5061;transport=tls", "sip:ai@10.0.0.1"] {
            assert_eq!(SipUri::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "sip:",
            "https://example.com",
            "sip:exa mple.com",
            "example.com",
            "sip:;transport=tls",
            "sips:ingress.example.com",
            // A password in the user part: the URI is sent to Twilio and shown as the trunk's
            // origination URL, so it can carry no secret.
            "sip:ai:s3cret@ingress.example.com",
            "sip:ai:@ingress.example.com",
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(SipUri::parse("sip:Sip.Example.com").unwrap().matches("SIP:sip.example.com"));
    }

    #[test]
    fn overall_status_prefers_failed_then_warning() {
        let c = |s| VerificationCheck::new(CheckName::Trunk, s, "", serde_json::Value::Null);
        assert_eq!(overall_status(&[c(CheckStatus::Passed)]), VerificationStatus::Verified);
        assert_eq!(overall_status(&[c(CheckStatus::Passed), c(CheckStatus::Warning)]), VerificationStatus::Warning);
        assert_eq!(overall_status(&[c(CheckStatus::Warning), c(CheckStatus::Failed)]), VerificationStatus::Failed);
    }
}
