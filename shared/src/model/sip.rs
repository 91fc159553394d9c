//! The platform's SIP ingress: its URIs, and the origination targets a trunk sends calls to.

use std::fmt;

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
