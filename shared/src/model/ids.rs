//! Identifiers: the organization, and Twilio's SIDs, parsed where they enter.

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

pub(super) fn is_lower_hex(s: &str) -> bool {
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

twilio_sid!(
    /// A Twilio API key: the Basic-auth username of requests made with it.
    ApiKeySid,
    "SK"
);
