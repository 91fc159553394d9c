//! A Twilio resource the service creates in a customer's account: what a rollback removes, what
//! the sweeper retries, what a forced delete reports as left behind. Stored and shown as
//! `{kind, sid}`; an attachment's `sid` is its two SIDs joined by `/` (parent first).

use crate::model::{CredentialListSid, CredentialSid, PhoneNumberSid, TrunkSid};
use serde::ser::SerializeStruct;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioResource {
    Trunk {
        trunk_sid: TrunkSid,
    },
    CredentialList {
        list_sid: CredentialListSid,
    },
    /// One SIP credential in a credential list.
    Credential {
        list_sid: CredentialListSid,
        credential_sid: CredentialSid,
    },
    /// An imported number's place on the trunk (left when a forced delete could not give it back).
    TrunkPhoneNumber {
        trunk_sid: TrunkSid,
        number_sid: PhoneNumberSid,
    },
    /// The credential list's attachment to the trunk.
    TrunkCredentialList {
        trunk_sid: TrunkSid,
        list_sid: CredentialListSid,
    },
}

impl TwilioResource {
    pub const KINDS: [&'static str; 5] =
        ["trunk", "credentialList", "credential", "trunkPhoneNumber", "trunkCredentialList"];

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Trunk { .. } => "trunk",
            Self::CredentialList { .. } => "credentialList",
            Self::Credential { .. } => "credential",
            Self::TrunkPhoneNumber { .. } => "trunkPhoneNumber",
            Self::TrunkCredentialList { .. } => "trunkCredentialList",
        }
    }

    pub fn sid(&self) -> String {
        match self {
            Self::Trunk { trunk_sid } => trunk_sid.to_string(),
            Self::CredentialList { list_sid } => list_sid.to_string(),
            Self::Credential { list_sid, credential_sid } => format!("{list_sid}/{credential_sid}"),
            Self::TrunkPhoneNumber { trunk_sid, number_sid } => format!("{trunk_sid}/{number_sid}"),
            Self::TrunkCredentialList { trunk_sid, list_sid } => format!("{trunk_sid}/{list_sid}"),
        }
    }

    /// The resource a stored `{kind, sid}` names; None for anything else.
    pub fn parse(kind: &str, sid: &str) -> Option<Self> {
        let pair = || sid.split_once('/');
        Some(match kind {
            "trunk" => Self::Trunk { trunk_sid: TrunkSid::parse(sid).ok()? },
            "credentialList" => Self::CredentialList { list_sid: CredentialListSid::parse(sid).ok()? },
            "credential" => {
                let (list, credential) = pair()?;
                Self::Credential {
                    list_sid: CredentialListSid::parse(list).ok()?,
                    credential_sid: CredentialSid::parse(credential).ok()?,
                }
            }
            "trunkPhoneNumber" => {
                let (trunk, number) = pair()?;
                Self::TrunkPhoneNumber {
                    trunk_sid: TrunkSid::parse(trunk).ok()?,
                    number_sid: PhoneNumberSid::parse(number).ok()?,
                }
            }
            "trunkCredentialList" => {
                let (trunk, list) = pair()?;
                Self::TrunkCredentialList {
                    trunk_sid: TrunkSid::parse(trunk).ok()?,
                    list_sid: CredentialListSid::parse(list).ok()?,
                }
            }
            _ => return None,
        })
    }

    /// Removal order: attachments first, then trunks, then credential lists (with their credentials).
    pub fn removal_rank(&self) -> u8 {
        match self {
            Self::TrunkCredentialList { .. } | Self::Credential { .. } | Self::TrunkPhoneNumber { .. } => 0,
            Self::Trunk { .. } => 1,
            Self::CredentialList { .. } => 2,
        }
    }

    /// The trunk an attachment hangs on: deleting that trunk removes the attachment too.
    pub fn attached_to(&self) -> Option<&TrunkSid> {
        match self {
            Self::TrunkCredentialList { trunk_sid, .. } | Self::TrunkPhoneNumber { trunk_sid, .. } => Some(trunk_sid),
            _ => None,
        }
    }
}

impl serde::Serialize for TwilioResource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("TwilioResource", 2)?;
        fields.serialize_field("kind", self.kind())?;
        fields.serialize_field("sid", &self.sid())?;
        fields.end()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for TwilioResource {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .description(Some("A Twilio resource; an attachment's `sid` is its two SIDs joined by `/`, parent first."))
            .property("kind", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(Self::KINDS)))
            .required("kind")
            .property("sid", ObjectBuilder::new().schema_type(Type::String))
            .required("sid")
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for TwilioResource {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(prefix: &str, digit: char) -> String {
        format!("{prefix}{}", digit.to_string().repeat(32))
    }

    #[test]
    fn every_kind_round_trips_through_kind_and_sid() {
        let trunk_sid = TrunkSid::parse(&sid("TK", '1')).unwrap();
        let list_sid = CredentialListSid::parse(&sid("CL", '2')).unwrap();
        let resources = [
            TwilioResource::Trunk { trunk_sid: trunk_sid.clone() },
            TwilioResource::CredentialList { list_sid: list_sid.clone() },
            TwilioResource::Credential {
                list_sid: list_sid.clone(),
                credential_sid: CredentialSid::parse(&sid("CR", '3')).unwrap(),
            },
            TwilioResource::TrunkPhoneNumber {
                trunk_sid: trunk_sid.clone(),
                number_sid: PhoneNumberSid::parse(&sid("PN", '4')).unwrap(),
            },
            TwilioResource::TrunkCredentialList { trunk_sid, list_sid },
        ];
        assert_eq!(resources.each_ref().map(TwilioResource::kind), TwilioResource::KINDS);
        for resource in resources {
            assert_eq!(TwilioResource::parse(resource.kind(), &resource.sid()), Some(resource.clone()));
            let json = serde_json::to_value(&resource).unwrap();
            assert_eq!(json, serde_json::json!({"kind": resource.kind(), "sid": resource.sid()}));
        }
    }

    #[test]
    fn unknown_kinds_and_malformed_sids_name_nothing() {
        assert_eq!(TwilioResource::parse("application", &sid("AP", '1')), None);
        assert_eq!(TwilioResource::parse("trunk", &sid("CL", '1')), None);
        assert_eq!(TwilioResource::parse("trunkPhoneNumber", &sid("TK", '1')), None);
    }
}
