//! A Twilio credential checked before it is stored (a create, a credential change), and the API keys the service mints.
//! Why: docs/decisions/checking-twilio-credentials.md.

use crate::provider::problems::{self, twilio_problem};
use crate::provider::verify::{account_check, account_unreadable_with_key};
use crate::services::Services;
use shared::ApiError;
use shared::audit::AuditEvent;
use shared::dto::NewCredential;
use shared::model::{
    AccountSid, ApiKeySid, CheckStatus, TwilioAuth, TwilioCredentials, TwilioRegion, VerificationCheck,
};
use shared::twilio::{Account, Probe, TwilioError, TwilioErrorKind};
use uuid::Uuid;

/// A credential Twilio accepted, as the service will use it.
#[derive(Debug)]
pub struct Accepted {
    /// What the service asks Twilio with from now on (a minted key, not the token it was
    /// minted with).
    pub creds: TwilioCredentials,
    /// `creds` is a key the service minted.
    pub minted: bool,
    /// The `account` check the acceptance shows.
    pub account_check: VerificationCheck,
    /// The account as read, when the credential may read it.
    pub account: Option<Account>,
    /// The Auth Token a key was minted with, kept in memory only: a failure later deletes
    /// the key with it.
    pub minted_with: Option<TwilioCredentials>,
}

/// Checks the credential with Twilio (and, for `mintApiKey`, mints the key); nothing is
/// stored. `unchanged` says what stays as it was when it fails (for the 422's detail).
pub async fn accept(
    services: &Services,
    credential: &NewCredential,
    account_sid: &AccountSid,
    region: TwilioRegion,
    provider_id: Uuid,
    unchanged: &str,
) -> Result<Accepted, ApiError> {
    let given = credential.credentials(account_sid, region);
    let (account, account_check) = check(services, &given, unchanged).await?;
    let account = account.ok();
    let NewCredential::MintApiKey(_) = credential else {
        return Ok(Accepted { creds: given, minted: false, account_check, account, minted_with: None });
    };
    let name = minted_key_name(provider_id);
    let key =
        services.twilio.create_api_key(&given, &name).await.map_err(|e| twilio_problem("creating an API key", e))?;
    tracing::info!(api_key_sid = %key.sid, "api key minted");
    let creds = TwilioCredentials {
        account_sid: account_sid.clone(),
        auth: TwilioAuth::ApiKey { sid: key.sid, secret: key.secret },
        region,
    };
    Ok(Accepted { creds, minted: true, account_check, account, minted_with: Some(given) })
}

/// The event with the fingerprint of the credential used (never the credential), and a key's SID.
pub fn involving(event: AuditEvent, creds: &TwilioCredentials) -> AuditEvent {
    match &creds.auth {
        TwilioAuth::AuthToken(token) => event.secret("authToken", token.expose()),
        TwilioAuth::ApiKey { sid, secret } => event.sid(sid).secret("apiKeySecret", secret.expose()),
    }
}

/// The friendly name of a key minted for a provider: says who made it and for what.
pub fn minted_key_name(provider_id: Uuid) -> String {
    format!("voice-ai provider {provider_id}")
}

/// Deletes the key a failed create or credential change minted, with the token it was minted
/// with; a key that cannot be deleted is logged by its SID (the service keeps no token to
/// delete it later).
pub async fn forget_minted(services: &Services, accepted: &Accepted) {
    let (Some(token), Some(key_sid)) = (&accepted.minted_with, accepted.creds.api_key_sid()) else { return };
    if let Err(e) = delete_minted_key(services, token, key_sid).await {
        tracing::error!(account_sid = %token.account_sid, api_key_sid = %key_sid, error = %e, "could not delete an API key the service minted for work that failed; delete it in the Twilio Console");
    }
}

/// Deletes a key the service minted, with the account's Auth Token (a Standard key may not
/// delete keys, itself included); already gone counts as deleted.
pub async fn delete_minted_key(
    services: &Services,
    token: &TwilioCredentials,
    key_sid: &ApiKeySid,
) -> Result<(), TwilioError> {
    services.twilio.delete_api_key(token, key_sid).await?;
    tracing::info!(account_sid = %token.account_sid, api_key_sid = %key_sid, "minted api key deleted");
    Ok(())
}

/// The account as read (an error for a key that may not read it) and the `account` check.
async fn check(
    services: &Services,
    creds: &TwilioCredentials,
    unchanged: &str,
) -> Result<(Result<Account, TwilioError>, VerificationCheck), ApiError> {
    let twilio = &services.twilio;
    if creds.api_key_sid().is_none() {
        let account = twilio.fetch_account(creds).await.map_err(|e| credential_error(creds, e, unchanged))?;
        let check = account_active(account_check(&account))?;
        return Ok((Ok(account), check));
    }
    let (account, trunks, lists, numbers) = tokio::join!(
        twilio.fetch_account(creds),
        twilio.probe(creds, Probe::Trunks),
        twilio.probe(creds, Probe::CredentialLists),
        twilio.probe(creds, Probe::IncomingNumbers),
    );
    let probes = Probe::ALL.into_iter().zip([trunks, lists, numbers]);
    let mut denied = Vec::new();
    for (probe, outcome) in probes {
        match outcome {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), TwilioErrorKind::Rejected | TwilioErrorKind::NotFound) => {
                return Err(credential_error(creds, e, unchanged));
            }
            Err(e) if e.kind() == TwilioErrorKind::Denied => denied.push(probe.action()),
            Err(e) => return Err(twilio_problem(&format!("checking that the API key may {}", probe.action()), e)),
        }
    }
    if !denied.is_empty() {
        return Err(ApiError::Unprocessable {
            title: "The API key lacks a permission the service needs",
            detail: format!(
                "Twilio denied API key {} permission to {}. {unchanged} Use a Standard or Main key, or a key that may manage Elastic SIP Trunking, SIP credential lists and incoming phone numbers.",
                creds.api_key_sid().map(|sid| sid.as_str()).unwrap_or_default(),
                denied.join(", "),
            ),
        });
    }
    let check = match &account {
        Ok(account) => account_active(account_check(account))?,
        Err(_) => account_unreadable_with_key(creds),
    };
    Ok((account, check))
}

/// An account that is not active cannot be connected.
fn account_active(check: VerificationCheck) -> Result<VerificationCheck, ApiError> {
    if check.status == CheckStatus::Failed {
        return Err(ApiError::Unprocessable { title: "Twilio account is not active", detail: check.message });
    }
    Ok(check)
}

/// A rejection (or an account Twilio does not know) is a 422 saying what Twilio's 401 can mean.
fn credential_error(creds: &TwilioCredentials, e: TwilioError, unchanged: &str) -> ApiError {
    match e.kind() {
        TwilioErrorKind::NotFound | TwilioErrorKind::Rejected => problems::rejected_in(
            creds,
            &format!(
                "{unchanged} Check the credential in the Twilio Console (Account Info, or API keys & tokens), and that the account is active, then try again."
            ),
        ),
        // Test credentials, among the rest, are told as `twilio_problem` tells them.
        _ => twilio_problem("reading the account", e),
    }
}
