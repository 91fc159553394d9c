//! Domain types, parsed once at the edge so the rest of the code can trust them.

mod ids;
mod regions;
mod routing;
mod secrets;
mod sip;
mod trunk;
mod verification;
pub use ids::{
    AccountSid, ApiKeySid, CredentialListSid, CredentialSid, OrganizationId, OriginationUrlSid, PhoneNumberSid,
    TrunkSid,
};
pub use regions::{Region, TwilioRegion};
pub use routing::{VoiceRouting, mask_url};
pub use secrets::{ApiKeySecret, AuthToken, CredentialType, SipPassword, TwilioAuth, TwilioCredentials};
pub use sip::{PlatformSipUris, PlatformTarget, SipUri, carries_tls};
pub use trunk::{DisasterRecovery, TransferMode, TrunkSettings};
pub use verification::{CheckName, CheckStatus, VerificationCheck, VerificationStatus, overall_status};

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
