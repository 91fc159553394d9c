//! A phone number's voice routing before import, with its URLs masked for showing.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::TrunkSid;

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
