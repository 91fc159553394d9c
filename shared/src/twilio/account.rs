//! The 2010 API (the account, its API keys, its phone numbers and applications) and a
//! number's Routes (its voice Region).

use super::{Account, Application, IncomingPhoneNumber, NewApiKey, NumberRoutes, Probe, TwilioClient, TwilioError};
use crate::model::{ApiKeySid, PhoneNumberSid, TrunkSid, TwilioCredentials};
use reqwest::Method;

impl TwilioClient {
    /// `GET /2010-04-01/Accounts/{Sid}.json`: also how credentials are validated.
    pub async fn fetch_account(&self, creds: &TwilioCredentials) -> Result<Account, TwilioError> {
        self.json(creds, Method::GET, self.account_url(creds, ".json"), &[]).await
    }

    /// One item of a listing the service relies on: how an API key, which may not read the
    /// account, is checked for what the service needs (each a cheap read).
    pub async fn probe(&self, creds: &TwilioCredentials, probe: Probe) -> Result<(), TwilioError> {
        let url = match probe {
            Probe::Trunks => self.trunking_url(creds, "Trunks?PageSize=1"),
            Probe::CredentialLists => self.account_url(creds, "/SIP/CredentialLists.json?PageSize=1"),
            Probe::IncomingNumbers => self.account_url(creds, "/IncomingPhoneNumbers.json?PageSize=1"),
        };
        self.json::<serde::de::IgnoredAny>(creds, Method::GET, url, &[]).await.map(drop)
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Keys.json`: a Standard API key (the 2010 API
    /// makes no other kind). Needs the Auth Token or a Main key.
    pub async fn create_api_key(
        &self,
        creds: &TwilioCredentials,
        friendly_name: &str,
    ) -> Result<NewApiKey, TwilioError> {
        self.json(creds, Method::POST, self.account_url(creds, "/Keys.json"), &[("FriendlyName", friendly_name)]).await
    }

    /// `DELETE /2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json`; already gone (404) counts as
    /// deleted. Needs the Auth Token or a Main key.
    pub async fn delete_api_key(&self, creds: &TwilioCredentials, key_sid: &ApiKeySid) -> Result<(), TwilioError> {
        match self.no_content(creds, Method::DELETE, self.account_url(creds, &format!("/Keys/{key_sid}.json"))).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json`, every page (at most `max_items`).
    pub async fn list_incoming_numbers(
        &self,
        creds: &TwilioCredentials,
        max_items: usize,
    ) -> Result<Vec<IncomingPhoneNumber>, TwilioError> {
        let url = self.account_url(creds, "/IncomingPhoneNumbers.json?PageSize=100");
        self.list_all(creds, url, "incoming_phone_numbers", max_items).await
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json`
    pub async fn fetch_incoming_number(
        &self,
        creds: &TwilioCredentials,
        sid: &PhoneNumberSid,
    ) -> Result<IncomingPhoneNumber, TwilioError> {
        self.json(creds, Method::GET, self.account_url(creds, &format!("/IncomingPhoneNumbers/{sid}.json")), &[]).await
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json` with `TrunkSid`:
    /// puts the number on that trunk (off any other) in one update; Twilio drops its voice
    /// application.
    pub async fn move_number_to_trunk(
        &self,
        creds: &TwilioCredentials,
        sid: &PhoneNumberSid,
        trunk_sid: &TrunkSid,
    ) -> Result<IncomingPhoneNumber, TwilioError> {
        let url = self.account_url(creds, &format!("/IncomingPhoneNumbers/{sid}.json"));
        self.json(creds, Method::POST, url, &[("TrunkSid", trunk_sid.as_str())]).await
    }

    /// The same with `VoiceApplicationSid`: the application routes the number's calls, and
    /// Twilio takes it off its trunk in the same update.
    pub async fn set_voice_application(
        &self,
        creds: &TwilioCredentials,
        sid: &PhoneNumberSid,
        application_sid: &str,
    ) -> Result<IncomingPhoneNumber, TwilioError> {
        let url = self.account_url(creds, &format!("/IncomingPhoneNumbers/{sid}.json"));
        self.json(creds, Method::POST, url, &[("VoiceApplicationSid", application_sid)]).await
    }

    /// `GET /v2/PhoneNumbers/{PhoneNumber}` (Routes, on the credentials' Region's host): the
    /// Region that processes the number's calls. A number never given one is answered 404 and
    /// is processed in US1.
    pub async fn fetch_voice_region(
        &self,
        creds: &TwilioCredentials,
        phone_number: &str,
    ) -> Result<String, TwilioError> {
        match self.json::<NumberRoutes>(creds, Method::GET, self.routes_url(creds, phone_number), &[]).await {
            Ok(routes) => Ok(routes.voice_region.filter(|r| !r.is_empty()).unwrap_or_else(|| "us1".to_owned())),
            Err(e) if e.is_not_found() => Ok("us1".to_owned()),
            Err(e) => Err(e),
        }
    }

    /// `POST /v2/PhoneNumbers/{PhoneNumber}` with `VoiceRegion`: the Region that processes the
    /// number's calls from now on (Twilio takes up to five minutes to apply it).
    pub async fn set_voice_region(
        &self,
        creds: &TwilioCredentials,
        phone_number: &str,
        voice_region: &str,
    ) -> Result<(), TwilioError> {
        let url = self.routes_url(creds, phone_number);
        self.json::<serde_json::Value>(creds, Method::POST, url, &[("VoiceRegion", voice_region)]).await.map(drop)
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/Applications/{Sid}.json`
    pub async fn fetch_application(
        &self,
        creds: &TwilioCredentials,
        application_sid: &str,
    ) -> Result<Application, TwilioError> {
        let url = self.account_url(creds, &format!("/Applications/{application_sid}.json"));
        self.json(creds, Method::GET, url, &[]).await
    }
}
