//! Phone numbers: import requests and results, numbers available and imported.

use crate::error::ApiError;
use crate::model::{PhoneNumberSid, TrunkSid};
use crate::request::JsonFields;
use crate::storage::{PhoneNumberRecord, ProviderRecord};
use crate::time::Timestamp;
use crate::twilio::{Capabilities, IncomingPhoneNumber};
use serde::Serialize;
use uuid::Uuid;

use super::{DeletionView, ProviderType, TwilioProviderResponse};

pub const IMPORT_MAX_NUMBERS: usize = 100;

/// `POST /api/v1/providers/twilio/{id}/import-numbers`, parsed.
#[derive(Debug)]
pub struct ImportNumbers {
    pub phone_number_sids: Vec<PhoneNumberSid>,
}

impl ImportNumbers {
    pub fn from_fields(mut fields: JsonFields) -> Result<Self, ApiError> {
        const FIELD: &str = "phoneNumberSids";
        let mut sids = Vec::new();
        match fields.raw(FIELD).cloned() {
            None => fields.add_error(FIELD, "is required"),
            Some(serde_json::Value::Array(mut values)) => {
                // Held to its limit before its entries are looked at: 130,000 entries are one
                // error, not 130,000.
                if values.is_empty() || values.len() > IMPORT_MAX_NUMBERS {
                    fields.add_error(FIELD, format!("must hold 1 to {IMPORT_MAX_NUMBERS} phone number SIDs"));
                    values.clear();
                }
                for (index, value) in values.iter().enumerate() {
                    let entry = format!("{FIELD}[{index}]");
                    match value.as_str().map(PhoneNumberSid::parse) {
                        Some(Ok(sid)) if sids.contains(&sid) => fields.add_error(&entry, "is a duplicate"),
                        Some(Ok(sid)) => sids.push(sid),
                        _ => fields.add_error(&entry, PhoneNumberSid::FORMAT),
                    }
                }
            }
            Some(_) => fields.add_error(FIELD, "must be an array of phone number SIDs"),
        }
        fields.finish()?;
        Ok(Self { phone_number_sids: sids })
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CapabilitiesView {
    pub voice: bool,
    pub sms: bool,
    pub mms: bool,
    pub fax: bool,
}

impl From<&Capabilities> for CapabilitiesView {
    fn from(c: &Capabilities) -> Self {
        Self { voice: c.voice, sms: c.sms, mms: c.mms, fax: c.fax }
    }
}

/// A number in the customer's Twilio account, as `available-numbers` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AvailableNumber {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^PN[a-f0-9]{32}$"))]
    pub phone_number_sid: PhoneNumberSid,
    pub phone_number: String,
    pub friendly_name: Option<String>,
    pub capabilities: CapabilitiesView,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^TK[a-f0-9]{32}$"))]
    pub trunk_sid: Option<TrunkSid>,
    /// Already imported into this provider.
    pub imported: bool,
    /// Routes voice somewhere importing would replace: a voice URL, an application, or
    /// another SIP trunk (then `trunkSid` says which). Given back when the number is removed.
    pub voice_routing_configured: bool,
}

impl AvailableNumber {
    /// `own_trunk_sid`: the provider's trunk, which is not routing to replace.
    pub fn new(number: &IncomingPhoneNumber, imported: bool, own_trunk_sid: &TrunkSid) -> Self {
        let mut routing = number.voice_routing();
        routing.trunk_sid = routing.trunk_sid.filter(|trunk| trunk != own_trunk_sid);
        Self {
            phone_number_sid: number.sid.clone(),
            phone_number: number.phone_number.clone(),
            friendly_name: number.friendly_name.clone(),
            capabilities: number.capabilities.as_ref().map(CapabilitiesView::from).unwrap_or(CapabilitiesView {
                voice: false,
                sms: false,
                mms: false,
                fax: false,
            }),
            trunk_sid: number.trunk_sid.clone(),
            imported,
            voice_routing_configured: routing.routes_voice(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AvailableNumbers {
    pub items: Vec<AvailableNumber>,
    /// True when the account has more numbers than the listing cap.
    pub truncated: bool,
}

/// An imported number.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberResponse {
    pub id: Uuid,
    pub provider_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^PN[a-f0-9]{32}$"))]
    pub phone_number_sid: PhoneNumberSid,
    pub phone_number: String,
    pub friendly_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub imported_at: Timestamp,
    /// The voice URL the number had before import (user-info, query values and token-like path
    /// segments masked).
    pub previous_voice_url: Option<String>,
    pub previous_voice_application_sid: Option<String>,
    /// The whole voice configuration before import (URLs masked); given back on removal.
    pub previous_routing: crate::model::VoiceRouting,
}

impl From<&PhoneNumberRecord> for PhoneNumberResponse {
    fn from(n: &PhoneNumberRecord) -> Self {
        Self {
            id: n.id,
            provider_id: n.provider_id,
            phone_number_sid: n.phone_number_sid.clone(),
            phone_number: n.phone_number.clone(),
            friendly_name: n.friendly_name.clone(),
            imported_at: n.imported_at.clone(),
            previous_voice_url: n.previous_routing.voice_url.clone(),
            previous_voice_application_sid: n.previous_routing.voice_application_sid.clone(),
            previous_routing: n.previous_routing.clone(),
        }
    }
}

/// A page of a provider's audit trail, newest first.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub items: Vec<crate::audit::AuditEvent>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberPage {
    pub items: Vec<PhoneNumberResponse>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImportError {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^PN[a-f0-9]{32}$"))]
    pub phone_number_sid: PhoneNumberSid,
    /// `not_found`, `not_voice_capable`, `already_imported`, `credentials_rejected`,
    /// `twilio_error`, `storage_error`, `not_attempted` (the request ran out of time before this
    /// number).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    pub success_count: usize,
    pub failed_count: usize,
    pub imported: Vec<PhoneNumberResponse>,
    pub errors: Vec<ImportError>,
    /// What the imported numbers will not do, though imported: a Trial account's limits.
    pub warnings: Vec<String>,
}

impl From<&ProviderRecord> for TwilioProviderResponse {
    fn from(record: &ProviderRecord) -> Self {
        Self {
            name: record.name.clone(),
            provider_type: ProviderType::Twilio,
            account_sid: record.account_sid.clone(),
            credential_type: record.credential.credential_type(),
            api_key_sid: record.credential.api_key.as_ref().map(|key| key.sid.clone()),
            api_key_minted: record.credential.minted_key().is_some(),
            id: record.id,
            verification_status: record.verification_status,
            last_verified_at: record.last_verified_at.clone(),
            phone_number_count: record.phone_number_count,
            verification_details: record.verification_details.clone(),
            trunk_sid: record.trunk_sid.clone(),
            termination_uri: record.termination_uri.clone(),
            region: record.region,
            twilio_region: record.twilio_region,
            secure_trunking: record.secure_trunking,
            disaster_recovery_url: record.disaster_recovery.as_ref().map(|r| r.url.clone()),
            disaster_recovery_method: record.disaster_recovery.as_ref().map(|r| r.method.clone()),
            supports_call_transfer: record.supports_call_transfer,
            deletion: record.deletion.as_ref().map(|state| DeletionView::of(state, record.phone_number_count)),
        }
    }
}

/// The 200 body of `DELETE …/phone-numbers/{phoneNumberId}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RemovedNumber {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^PN[a-f0-9]{32}$"))]
    pub phone_number_sid: PhoneNumberSid,
    /// Whether the number's previous voice configuration was given back. False when the
    /// customer changed the number since import: it is then left as they set it.
    pub restored: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
