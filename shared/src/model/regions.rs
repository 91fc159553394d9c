//! Where things run: the customer's Twilio Region (US1, IE1, AU1) and a trunk's edge Region.

use serde::{Deserialize, Serialize};
use std::fmt;

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
