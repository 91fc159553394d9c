//! The `origination` check: the trunk sends inbound calls to every platform ingress, and the
//! service's own origination URLs name no ingress the platform left.

use super::DETAILS_CAP;
use serde_json::{Value, json};
use shared::model::{CheckName, CheckStatus, PlatformSipUris, PlatformTarget, VerificationCheck};
use shared::twilio::OriginationUrl;
use uuid::Uuid;

/// The `FriendlyName` of the origination URL the service gives a provider's trunk; repair
/// finds its own origination URL by it and leaves the customer's others alone.
pub fn origination_friendly_name(provider_id: Uuid) -> String {
    format!("voice-ai-{provider_id}")
}

/// `origination`: the trunk sends inbound calls to every platform ingress, each with its
/// priority and weight (Twilio fails over between them).
/// The service's own URLs (`own_name`) that name no ingress send calls where the platform no
/// longer listens (the setting changed): a warning, as repair removes them.
pub fn origination_check(urls: &[OriginationUrl], platform: &PlatformSipUris, own_name: &str) -> VerificationCheck {
    let listed: Vec<Value> = urls
        .iter()
        .take(DETAILS_CAP)
        .map(|u| json!({"sid": u.sid, "sipUrl": u.sip_url, "enabled": u.enabled, "priority": u.priority, "weight": u.weight}))
        .collect();
    let details = json!({"expected": expected_origination(platform), "count": urls.len(), "originationUrls": listed});
    let off = ingresses_off(urls, platform);
    if off.is_empty() {
        let stale = stale_own_urls(urls, platform, own_name);
        return every_ingress_reached(platform, &stale, details);
    }
    not_every_ingress_reached(urls, platform, &off, details)
}

/// Whether an origination URL is enabled and names the ingress.
fn reaches(u: &OriginationUrl, target: &PlatformTarget) -> bool {
    u.enabled && target.uri.matches(&u.sip_url)
}

/// The platform ingresses no enabled origination URL reaches with their priority and weight.
fn ingresses_off(urls: &[OriginationUrl], platform: &PlatformSipUris) -> Vec<String> {
    let as_configured = |target: &PlatformTarget| {
        urls.iter().any(|u| {
            reaches(u, target)
                && u.priority == Some(u32::from(target.priority))
                && u.weight == Some(u32::from(target.weight))
        })
    };
    platform
        .targets()
        .iter()
        .filter(|t| !as_configured(t))
        .map(|t| format!("{} (priority {}, weight {})", t.uri, t.priority, t.weight))
        .collect()
}

/// The service's own enabled origination URLs (`own_name`) that name no platform ingress.
fn stale_own_urls(urls: &[OriginationUrl], platform: &PlatformSipUris, own_name: &str) -> Vec<String> {
    urls.iter()
        .filter(|u| {
            u.enabled && u.friendly_name.as_deref() == Some(own_name) && platform.target_of(&u.sip_url).is_none()
        })
        .map(|u| format!("{} ({})", u.sid, u.sip_url))
        .collect()
}

/// `origination` when every ingress is on the trunk as configured: it passes, unless the
/// service's own URLs also point where the platform no longer listens (`stale`).
fn every_ingress_reached(platform: &PlatformSipUris, stale: &[String], details: Value) -> VerificationCheck {
    if !stale.is_empty() {
        return VerificationCheck::new(
            CheckName::Origination,
            CheckStatus::Warning,
            format!(
                "Inbound calls reach the platform, but the service's origination URLs {} point where the platform no longer listens (PLATFORM_SIP_URI changed): Twilio may try them first. Run repair (POST /api/v1/providers/{{id}}/repair) to remove them.",
                stale.join(", ")
            ),
            details,
        );
    }
    VerificationCheck::new(
        CheckName::Origination,
        CheckStatus::Passed,
        format!("Inbound calls to the provider's numbers go to the platform ({platform})."),
        details,
    )
}

/// `origination` when some ingresses (`off`) are not on the trunk as configured.
fn not_every_ingress_reached(
    urls: &[OriginationUrl],
    platform: &PlatformSipUris,
    off: &[String],
    details: Value,
) -> VerificationCheck {
    if platform.targets().iter().any(|t| urls.iter().any(|u| reaches(u, t))) {
        return VerificationCheck::new(
            CheckName::Origination,
            CheckStatus::Warning,
            format!(
                "Inbound calls reach the platform, but not every ingress is on the trunk as configured: {} (missing, disabled, or with another priority or weight), so Twilio cannot fail over as it should. Run repair (POST /api/v1/providers/{{id}}/repair).",
                off.join(", ")
            ),
            details,
        );
    }
    if urls.is_empty() {
        return VerificationCheck::new(
            CheckName::Origination,
            CheckStatus::Failed,
            format!(
                "The trunk has no origination URL: inbound calls to the provider's numbers cannot reach the platform at {platform}. Run repair (POST /api/v1/providers/{{id}}/repair)."
            ),
            details,
        );
    }
    VerificationCheck::new(
        CheckName::Origination,
        CheckStatus::Warning,
        format!(
            "The trunk's origination URLs are disabled or point elsewhere, not at the platform ({platform}); inbound calls may not reach it. Run repair (POST /api/v1/providers/{{id}}/repair)."
        ),
        details,
    )
}

/// The origination URLs a trunk should have, as checks report them.
pub fn expected_origination(platform: &PlatformSipUris) -> Value {
    let expected: Vec<Value> = platform
        .targets()
        .iter()
        .map(|t| json!({"sipUrl": t.uri.as_str(), "priority": t.priority, "weight": t.weight}))
        .collect();
    json!(expected)
}
