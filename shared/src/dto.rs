//! The public API's request and response shapes (JSON, camelCase).

mod credentials;
mod numbers;
mod provider;
pub use credentials::{
    NewCredential, PreviousSipCredentialView, ReplaceCredentials, RotateAuthToken, RotateSipCredential,
    SIP_OVERLAP_DEFAULT_SECONDS, SIP_OVERLAP_MAX_SECONDS, SipCredentialState, SipCredentialView,
};
pub use numbers::{
    AvailableNumber, AvailableNumbers, CapabilitiesView, EventPage, IMPORT_MAX_NUMBERS, ImportError, ImportNumbers,
    ImportResult, PhoneNumberPage, PhoneNumberResponse, RemovedNumber,
};
pub use provider::{
    CreateTwilioProvider, DeletionInProgress, DeletionView, DisasterRecoveryFields, ForcedDeletion, LEFT_BEHIND_SAMPLE,
    LeftBehind, ProviderPage, ProviderResponse, ProviderType, RepairAction, RepairResponse, RepairResult,
    TwilioProviderResponse, UpdateTwilioProvider, VerifyResponse,
};

use crate::model::{Region, TwilioRegion};

pub const NAME_MAX_CHARS: usize = 100;

/// A provider's display name: 1 to 100 characters, not blank. Surrounding white space is trimmed.
pub fn parse_name(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("must not be blank".into());
    }
    if trimmed.chars().count() > NAME_MAX_CHARS {
        return Err(format!("must be at most {NAME_MAX_CHARS} characters"));
    }
    Ok(trimmed.to_owned())
}

pub fn parse_twilio_region(value: &str) -> Result<TwilioRegion, String> {
    TwilioRegion::parse(value).ok_or_else(|| {
        let allowed: Vec<&str> = TwilioRegion::ALL.iter().map(|r| r.as_str()).collect();
        format!("must be one of {} (the Twilio Region that holds the account)", allowed.join(", "))
    })
}

pub fn parse_region(value: &str) -> Result<Region, String> {
    Region::parse(value).ok_or_else(|| {
        let allowed: Vec<&str> = Region::ALL.iter().map(|r| r.as_str()).collect();
        format!("must be one of {}", allowed.join(", "))
    })
}

/// Request bodies as the OpenAPI document describes them. The handlers parse bodies field by
/// field (to report every failing field at once); tests keep these in step with the parsers.
#[cfg(feature = "openapi")]
pub mod request_schemas {
    use crate::model::{Region, TwilioRegion};
    use utoipa::ToSchema;

    /// `POST /api/v1/providers/twilio`
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct CreateTwilioProviderRequest {
        /// The Twilio Account SID.
        #[schema(pattern = "^AC[a-f0-9]{32}$")]
        pub account_sid: String,
        /// The Twilio Auth Token; stored encrypted, never returned. Give it, or an API key
        /// (`apiKeySid` with `apiKeySecret`), never both.
        #[schema(pattern = "^[a-f0-9]{32}$", format = Password, write_only)]
        pub auth_token: Option<String>,
        /// An API key of the account (Standard or Main), instead of the Auth Token.
        #[schema(pattern = "^SK[a-f0-9]{32}$")]
        pub api_key_sid: Option<String>,
        /// The API key's secret; stored encrypted, never returned.
        #[schema(pattern = "^[A-Za-z0-9]{32}$", format = Password, write_only)]
        pub api_key_secret: Option<String>,
        /// With `authToken`: mint a Standard API key in the account and store only the key
        /// (the token is used for the mint and forgotten). Default false.
        pub mint_api_key: Option<bool>,
        /// Display name, 1 to 100 characters, not blank.
        // The pattern: at least one character that is not white space as `str::trim` counts it.
        #[schema(
            min_length = 1,
            max_length = 100,
            pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
        )]
        pub name: String,
        /// The edge location of the termination URI; absent or null: the Twilio Region's own
        /// edge for ie1 and au1, else the one closest to the deployment.
        pub region: Option<Region>,
        /// The Twilio Region that holds the account (its auth token is valid there only) and
        /// where the provider's trunk, credential list and numbers' configuration are made.
        /// Default us1; fixed once the provider exists.
        pub twilio_region: Option<TwilioRegion>,
        /// Enables call transfer on the trunk (`TransferMode` enable-all). Default false.
        pub supports_call_transfer: Option<bool>,
        /// TLS signalling and SRTP media only on the trunk (`Secure`). Default false; true needs
        /// a platform SIP ingress with `;transport=tls`.
        pub secure_trunking: Option<bool>,
        /// Where Twilio sends calls when every origination URL fails (your own TwiML, a
        /// voicemail or a human line): an https URL without user-info, at most 1024 characters.
        #[schema(max_length = 1024, pattern = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,4})?([/?#][!-~]*)?$")]
        pub disaster_recovery_url: Option<String>,
        /// `GET` or `POST` (default); only with `disasterRecoveryUrl`.
        pub disaster_recovery_method: Option<DisasterRecoveryMethod>,
    }

    #[derive(ToSchema)]
    #[allow(clippy::upper_case_acronyms, reason = "as Twilio names them")]
    pub enum DisasterRecoveryMethod {
        GET,
        POST,
    }

    /// `PUT /api/v1/providers/twilio/{id}`: only the fields present change.
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct UpdateTwilioProviderRequest {
        /// Display name, 1 to 100 characters, not blank.
        #[schema(
            min_length = 1,
            max_length = 100,
            pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
        )]
        pub name: Option<String>,
        pub region: Option<Region>,
        /// Fixed once the provider exists: only its current value is accepted.
        pub twilio_region: Option<TwilioRegion>,
        pub supports_call_transfer: Option<bool>,
        pub secure_trunking: Option<bool>,
        /// As on create; null takes disaster recovery off the trunk.
        #[schema(max_length = 1024, pattern = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,4})?([/?#][!-~]*)?$")]
        pub disaster_recovery_url: Option<String>,
        /// `GET` or `POST` (default); only with `disasterRecoveryUrl`.
        pub disaster_recovery_method: Option<DisasterRecoveryMethod>,
    }

    /// `PATCH /api/v1/providers/twilio/{id}/auth-token`
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct RotateAuthTokenRequest {
        #[schema(pattern = "^[a-f0-9]{32}$", format = Password, write_only)]
        pub auth_token: String,
    }

    /// `PATCH /api/v1/providers/{id}/credentials`: as on create, `authToken` (optionally with
    /// `mintApiKey`) or `apiKeySid` with `apiKeySecret`.
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct ReplaceCredentialsRequest {
        #[schema(pattern = "^[a-f0-9]{32}$", format = Password, write_only)]
        pub auth_token: Option<String>,
        #[schema(pattern = "^SK[a-f0-9]{32}$")]
        pub api_key_sid: Option<String>,
        #[schema(pattern = "^[A-Za-z0-9]{32}$", format = Password, write_only)]
        pub api_key_secret: Option<String>,
        pub mint_api_key: Option<bool>,
    }

    /// `DELETE /api/v1/providers/{id}`: a body only when the provider's API key was minted by
    /// the service, which deleting it needs the account's Auth Token for (400 without it then;
    /// not used otherwise).
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct DeleteProviderRequest {
        #[schema(pattern = "^[a-f0-9]{32}$", format = Password, write_only)]
        pub auth_token: Option<String>,
    }

    /// `POST /api/v1/providers/twilio/{id}/import-numbers`
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct ImportNumbersRequest {
        /// 1 to 100 unique phone number SIDs.
        #[schema(min_items = 1, max_items = 100, inline)]
        pub phone_number_sids: Vec<PhoneNumberSid>,
    }

    #[derive(ToSchema)]
    #[schema(pattern = "^PN[a-f0-9]{32}$")]
    pub struct PhoneNumberSid(pub String);

    /// `POST /api/v1/providers/{id}/sip-credential/rotate`
    #[derive(ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct RotateSipCredentialRequest {
        /// How long the replaced credential keeps working, in seconds (default 3600).
        #[schema(minimum = 0, maximum = 86400)]
        pub overlap_seconds: Option<u64>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use crate::request::JsonFields;
    use crate::twilio::TwilioResource;
    use uuid::Uuid;

    fn parse(body: &str) -> Result<CreateTwilioProvider, ApiError> {
        CreateTwilioProvider::from_fields(JsonFields::from_slice(body.as_bytes())?)
    }

    #[test]
    fn names_every_failing_field_without_echoing_values() {
        let err = parse(r#"{"accountSid":"AC123","authToken":"SECRETSECRET","name":"  ","region":"mars","supportsCallTransfer":"yes"}"#)
            .unwrap_err();
        let ApiError::Validation(errors) = &err else { panic!("{err:?}") };
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["accountSid", "authToken", "name", "region", "supportsCallTransfer"]
        );
        let body = serde_json::to_string(&err.to_problem()).unwrap();
        assert!(!body.contains("SECRETSECRET") && !body.contains("mars"), "{body}");
    }

    /// A misspelt field is named, not dropped: `supportCallTransfer` would otherwise create a
    /// trunk without transfer. Long or odd names are shown shortened and printable.
    #[test]
    fn unknown_fields_are_named() {
        let body = format!(
            r#"{{"accountSid":"AC{}","authToken":"{}","name":"Main","supportCallTransfer":true,"{}":1,"a\u0007b":2}}"#,
            "0".repeat(32),
            "f".repeat(32),
            "x".repeat(100)
        );
        let ApiError::Validation(errors) = parse(&body).unwrap_err() else { panic!() };
        let shortened = format!("{}…", "x".repeat(64));
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["a\u{fffd}b", "supportCallTransfer", shortened.as_str()]);
        assert!(errors["supportCallTransfer"][0].contains("not a field"), "{errors:?}");
    }

    #[test]
    fn missing_fields_are_required() {
        let ApiError::Validation(errors) = parse("{}").unwrap_err() else { panic!() };
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["accountSid", "authToken", "name"]);
        assert_eq!(errors["name"], ["is required"]);
    }

    #[test]
    fn accepts_a_valid_body_with_defaults() {
        let ok = parse(&format!(
            r#"{{"accountSid":"AC{}","authToken":"{}","name":" Main ","region":null}}"#,
            "0".repeat(32),
            "f".repeat(32)
        ))
        .unwrap();
        assert_eq!(ok.name, "Main");
        assert_eq!(ok.region, None);
        assert!(!ok.supports_call_transfer);
    }

    #[test]
    fn update_refuses_credentials_and_accepts_partial_bodies() {
        let update = |body: &str| UpdateTwilioProvider::from_fields(JsonFields::from_slice(body.as_bytes()).unwrap());
        let ApiError::Validation(errors) = update(r#"{"accountSid":"AC1","authToken":"x","name":"ok"}"#).unwrap_err()
        else {
            panic!()
        };
        assert!(errors["authToken"][0].contains("/credentials"));
        assert!(errors.contains_key("accountSid"));
        assert_eq!(
            update(r#"{"region":"ie1"}"#).unwrap(),
            UpdateTwilioProvider { region: Some(Region::Ie1), ..Default::default() }
        );
        assert!(update("{}").unwrap().is_empty());
        assert!(update(r#"{"name":""}"#).is_err());
    }

    #[test]
    fn import_names_every_bad_entry() {
        let parse = |body: &str| ImportNumbers::from_fields(JsonFields::from_slice(body.as_bytes()).unwrap());
        let good = format!("PN{}", "a".repeat(32));
        let body = serde_json::json!({"phoneNumberSids": [good, "PN1", good, 7]}).to_string();
        let ApiError::Validation(errors) = parse(&body).unwrap_err() else { panic!() };
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["phoneNumberSids[1]", "phoneNumberSids[2]", "phoneNumberSids[3]"]
        );
        assert!(parse(r#"{"phoneNumberSids": []}"#).is_err());
        assert!(parse(r#"{}"#).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("PN{i:032x}")).collect();
        assert!(parse(&serde_json::json!({ "phoneNumberSids": many }).to_string()).is_err());
        assert_eq!(
            parse(&serde_json::json!({"phoneNumberSids": [good]}).to_string()).unwrap().phone_number_sids.len(),
            1
        );
    }

    /// A forced delete's answer lists a bounded sample of what Twilio still holds, with the
    /// count: ten thousand numbers left behind is still a small answer.
    #[test]
    fn a_forced_deletion_lists_a_sample_and_the_count() {
        let trunk_sid = crate::model::TrunkSid::parse(&format!("TK{}", "a".repeat(32))).unwrap();
        let left: Vec<LeftBehind> = (0..10_000)
            .map(|_| LeftBehind {
                resource: TwilioResource::Trunk { trunk_sid: trunk_sid.clone() },
                error: "x".repeat(200),
            })
            .collect();
        let answer = ForcedDeletion::new(Uuid::nil(), left);
        assert_eq!((answer.left_behind.len(), answer.left_behind_count), (LEFT_BEHIND_SAMPLE, 10_000));
        assert!(serde_json::to_string(&answer).unwrap().len() < 64 * 1024);
    }

    #[test]
    fn name_length_counts_characters() {
        assert!(parse_name(&"é".repeat(100)).is_ok());
        assert!(parse_name(&"é".repeat(101)).is_err());
    }
}
