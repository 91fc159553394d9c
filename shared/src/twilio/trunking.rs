//! Elastic SIP Trunking v1: trunks, credential lists and credentials, origination URLs,
//! and the numbers on a trunk.

use super::types::trunk_form;
use super::{
    Credential, CredentialList, IncomingPhoneNumber, OriginationTarget, OriginationUrl, Trunk, TrunkCredentialList,
    TrunkPhoneNumber, TwilioClient, TwilioError,
};
use crate::model::{
    CredentialListSid, CredentialSid, OriginationUrlSid, PhoneNumberSid, SipPassword, TrunkSettings, TrunkSid,
    TwilioCredentials,
};
use reqwest::Method;

impl TwilioClient {
    /// `POST /v1/Trunks`
    pub async fn create_trunk(
        &self,
        creds: &TwilioCredentials,
        friendly_name: &str,
        domain_name: &str,
        settings: &TrunkSettings,
    ) -> Result<Trunk, TwilioError> {
        let mut form = vec![("FriendlyName", friendly_name), ("DomainName", domain_name)];
        form.extend(trunk_form(settings));
        self.json(creds, Method::POST, self.trunking_url(creds, "Trunks"), &form).await
    }

    /// `GET /v1/Trunks/{Sid}`
    pub async fn fetch_trunk(&self, creds: &TwilioCredentials, trunk_sid: &TrunkSid) -> Result<Trunk, TwilioError> {
        self.json(creds, Method::GET, self.trunking_url(creds, &format!("Trunks/{trunk_sid}")), &[]).await
    }

    /// `POST /v1/Trunks/{Sid}` with the settings the service keeps on a trunk.
    pub async fn update_trunk(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        settings: &TrunkSettings,
    ) -> Result<Trunk, TwilioError> {
        let mut form = trunk_form(settings);
        // An empty URL takes disaster recovery off the trunk, as Twilio's own clients clear a field.
        if settings.disaster_recovery.is_none() {
            form.push(("DisasterRecoveryUrl", ""));
        }
        self.json(creds, Method::POST, self.trunking_url(creds, &format!("Trunks/{trunk_sid}")), &form).await
    }

    /// `DELETE /v1/Trunks/{Sid}`
    pub async fn delete_trunk(&self, creds: &TwilioCredentials, trunk_sid: &TrunkSid) -> Result<(), TwilioError> {
        self.no_content(creds, Method::DELETE, self.trunking_url(creds, &format!("Trunks/{trunk_sid}"))).await
    }

    /// `GET /v1/Trunks`, every page (at most `max_items`).
    pub async fn list_trunks(&self, creds: &TwilioCredentials, max_items: usize) -> Result<Vec<Trunk>, TwilioError> {
        self.list_all(creds, self.trunking_url(creds, "Trunks?PageSize=100"), "trunks", max_items).await
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists.json`
    pub async fn create_credential_list(
        &self,
        creds: &TwilioCredentials,
        friendly_name: &str,
    ) -> Result<CredentialList, TwilioError> {
        let form = [("FriendlyName", friendly_name)];
        self.json(creds, Method::POST, self.account_url(creds, "/SIP/CredentialLists.json"), &form).await
    }

    /// `DELETE /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{Sid}.json`; the list's
    /// credentials go with it.
    pub async fn delete_credential_list(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
    ) -> Result<(), TwilioError> {
        self.no_content(
            creds,
            Method::DELETE,
            self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}.json")),
        )
        .await
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{Sid}.json`
    pub async fn fetch_credential_list(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
    ) -> Result<CredentialList, TwilioError> {
        self.json(creds, Method::GET, self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}.json")), &[])
            .await
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists.json`, every page (at most `max_items`).
    pub async fn list_credential_lists(
        &self,
        creds: &TwilioCredentials,
        max_items: usize,
    ) -> Result<Vec<CredentialList>, TwilioError> {
        self.list_all(
            creds,
            self.account_url(creds, "/SIP/CredentialLists.json?PageSize=100"),
            "credential_lists",
            max_items,
        )
        .await
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CredentialListSid}/Credentials.json`
    pub async fn create_credential(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
        username: &str,
        password: &SipPassword,
    ) -> Result<Credential, TwilioError> {
        let form = [("Username", username), ("Password", password.expose())];
        let url = self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}/Credentials.json"));
        self.json(creds, Method::POST, url, &form).await
    }

    /// `DELETE /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CredentialListSid}/Credentials/{Sid}.json`
    pub async fn delete_credential(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
        credential_sid: &CredentialSid,
    ) -> Result<(), TwilioError> {
        let url =
            self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}/Credentials/{credential_sid}.json"));
        self.no_content(creds, Method::DELETE, url).await
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CredentialListSid}/Credentials.json`, every page.
    pub async fn list_credentials(
        &self,
        creds: &TwilioCredentials,
        list_sid: &CredentialListSid,
        max_items: usize,
    ) -> Result<Vec<Credential>, TwilioError> {
        let url = self.account_url(creds, &format!("/SIP/CredentialLists/{list_sid}/Credentials.json?PageSize=100"));
        self.list_all(creds, url, "credentials", max_items).await
    }

    /// `POST /v1/Trunks/{TrunkSid}/OriginationUrls`
    pub async fn create_origination_url(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        target: OriginationTarget<'_>,
    ) -> Result<OriginationUrl, TwilioError> {
        let (priority, weight) = (target.target.priority.to_string(), target.target.weight.to_string());
        let form = [
            ("SipUrl", target.target.uri.as_str()),
            ("FriendlyName", target.friendly_name),
            ("Enabled", "true"),
            ("Priority", priority.as_str()),
            ("Weight", weight.as_str()),
        ];
        self.json(creds, Method::POST, self.trunking_url(creds, &format!("Trunks/{trunk_sid}/OriginationUrls")), &form)
            .await
    }

    /// `POST /v1/Trunks/{TrunkSid}/OriginationUrls/{Sid}`: points an existing origination URL at
    /// the target, with its priority and weight, and enables it.
    pub async fn update_origination_url(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        sid: &OriginationUrlSid,
        target: OriginationTarget<'_>,
    ) -> Result<OriginationUrl, TwilioError> {
        let (priority, weight) = (target.target.priority.to_string(), target.target.weight.to_string());
        let form = [
            ("SipUrl", target.target.uri.as_str()),
            ("Enabled", "true"),
            ("Priority", priority.as_str()),
            ("Weight", weight.as_str()),
        ];
        let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/OriginationUrls/{sid}"));
        self.json(creds, Method::POST, url, &form).await
    }

    /// `DELETE /v1/Trunks/{TrunkSid}/OriginationUrls/{Sid}`.
    pub async fn delete_origination_url(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        sid: &OriginationUrlSid,
    ) -> Result<(), TwilioError> {
        let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/OriginationUrls/{sid}"));
        self.no_content(creds, Method::DELETE, url).await
    }

    /// `GET /v1/Trunks/{TrunkSid}/OriginationUrls`, every page.
    pub async fn list_origination_urls(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        max_items: usize,
    ) -> Result<Vec<OriginationUrl>, TwilioError> {
        let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/OriginationUrls?PageSize=100"));
        self.list_all(creds, url, "origination_urls", max_items).await
    }

    /// `POST /v1/Trunks/{TrunkSid}/CredentialLists`
    pub async fn attach_credential_list(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        list_sid: &CredentialListSid,
    ) -> Result<TrunkCredentialList, TwilioError> {
        let form = [("CredentialListSid", list_sid.as_str())];
        self.json(creds, Method::POST, self.trunking_url(creds, &format!("Trunks/{trunk_sid}/CredentialLists")), &form)
            .await
    }

    /// `DELETE /v1/Trunks/{TrunkSid}/CredentialLists/{Sid}`
    pub async fn detach_credential_list(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        list_sid: &CredentialListSid,
    ) -> Result<(), TwilioError> {
        self.no_content(
            creds,
            Method::DELETE,
            self.trunking_url(creds, &format!("Trunks/{trunk_sid}/CredentialLists/{list_sid}")),
        )
        .await
    }

    /// `GET /v1/Trunks/{TrunkSid}/CredentialLists`, every page.
    pub async fn list_trunk_credential_lists(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        max_items: usize,
    ) -> Result<Vec<TrunkCredentialList>, TwilioError> {
        let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/CredentialLists?PageSize=100"));
        self.list_all(creds, url, "credential_lists", max_items).await
    }

    /// Puts a number on the trunk: its own `TrunkSid` (UpdateIncomingPhoneNumber), the way that
    /// works in every Region and moves it off whatever it was on in one update.
    pub async fn attach_phone_number(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        number_sid: &PhoneNumberSid,
    ) -> Result<(), TwilioError> {
        self.move_number_to_trunk(creds, number_sid, trunk_sid).await.map(drop)
    }

    /// Takes a number off the trunk, leaving its voice URL (if any) to route it. US1: `DELETE
    /// /v1/Trunks/{TrunkSid}/PhoneNumbers/{Sid}`. IE1 and AU1 have no such subresource: an
    /// empty `TrunkSid` in the number's own update, sent only while the number is on this
    /// trunk (an empty value clears whatever trunk it is on, the customer's own included);
    /// a number no longer on the trunk is answered 404, as the subresource would.
    pub async fn detach_phone_number(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        number_sid: &PhoneNumberSid,
    ) -> Result<(), TwilioError> {
        if creds.region.has_trunk_phone_numbers() {
            let url = self.trunking_url(creds, &format!("Trunks/{trunk_sid}/PhoneNumbers/{number_sid}"));
            return self.no_content(creds, Method::DELETE, url).await;
        }
        let number = self.fetch_incoming_number(creds, number_sid).await?;
        if number.trunk_sid.as_ref() != Some(trunk_sid) {
            return Err(TwilioError::Api {
                status: 404,
                code: Some(20404),
                message: "the number is not on the trunk".to_owned(),
            });
        }
        let url = self.account_url(creds, &format!("/IncomingPhoneNumbers/{number_sid}.json"));
        self.json::<serde_json::Value>(creds, Method::POST, url, &[("TrunkSid", "")]).await.map(drop)
    }

    /// The numbers on a trunk (at most `max_items`): the account's incoming numbers whose
    /// `trunk_sid` is the trunk's, read in pages of 1,000 (Twilio's largest). The trunk's own
    /// PhoneNumbers list exists in US1 only; this works in every Region.
    pub async fn list_trunk_phone_numbers(
        &self,
        creds: &TwilioCredentials,
        trunk_sid: &TrunkSid,
        max_items: usize,
    ) -> Result<Vec<TrunkPhoneNumber>, TwilioError> {
        let url = self.account_url(creds, "/IncomingPhoneNumbers.json?PageSize=1000");
        let numbers: Vec<IncomingPhoneNumber> = self.list_all(creds, url, "incoming_phone_numbers", usize::MAX).await?;
        Ok(numbers
            .into_iter()
            .filter(|n| n.trunk_sid.as_ref() == Some(trunk_sid))
            .take(max_items)
            .map(|n| TrunkPhoneNumber { sid: n.sid, phone_number: Some(n.phone_number) })
            .collect())
    }
}
