//! Verification: the one routine that checks a provider against Twilio, used by the verify
//! endpoint, by repair, by auth-token rotation and by the hourly job (create builds the same
//! checks from what it just provisioned). Each check says what to do when it does not pass.
//!
//! `credentials` runs first (nothing else can run without it); then `account`, and, for an
//! active account, `permissions`, `trunk`, `credentialList`, `origination` and `phoneNumbers`
//! concurrently.
//! A check that could not run is reported as skipped, never dropped.

use crate::provider::record::{Change, refuse_if_deleting, save_with_retry, stored_credentials};
use crate::services::Services;
use serde_json::{Value, json};
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::dto::VerifyResponse;
use shared::model::{
    CheckName, CheckStatus, PhoneNumberSid, PlatformSipUris, PlatformTarget, TransferMode, TwilioCredentials,
    VerificationCheck, VerificationStatus, carries_tls, overall_status,
};
use shared::store::{ProviderRecord, SipCredentialRecord};
use shared::twilio::{Account, OriginationUrl, Trunk, TwilioError, TwilioErrorKind};
use std::collections::HashSet;
use uuid::Uuid;

/// Checks read every page of a Twilio list: a cap would turn the items past it into false
/// findings ("detached" numbers). What they store stays bounded by [`DETAILS_CAP`].
const LIST_CAP: usize = usize::MAX;
const LATER_CHECKS: [CheckName; 6] = [
    CheckName::Permissions,
    CheckName::Trunk,
    CheckName::SecureTrunking,
    CheckName::CredentialList,
    CheckName::Origination,
    CheckName::PhoneNumbers,
];
/// How many items a check lists in its details at most (counts are always complete).
const DETAILS_CAP: usize = 50;

pub struct Verification {
    pub status: VerificationStatus,
    pub checks: Vec<VerificationCheck>,
    pub verified_at: shared::time::Timestamp,
}

impl Verification {
    fn new(checks: Vec<VerificationCheck>) -> Self {
        let status = overall_status(&checks);
        let verification = Self { status, checks, verified_at: shared::time::Timestamp::now() };
        shared::metrics::count("VerificationResults", &[("Status", &verification.status_name())]);
        verification
    }

    /// Writes the result into a record's verification fields.
    pub fn apply_to(&self, record: &mut ProviderRecord) {
        record.verification_status = self.status;
        record.last_verified_at = Some(self.verified_at.clone());
        record.verification_details = Some(self.checks.clone());
    }

    /// Stores the result on the provider (refused once a delete has started). A result computed
    /// against a record whose credentials, references or expectations changed meanwhile (a
    /// rotation, a repair, an update) never overwrites the newer record: the answer is then what
    /// that record holds.
    pub async fn store(self, services: &Services, record: ProviderRecord) -> Result<VerifyResponse, ApiError> {
        let event = AuditEvent::new(&record.organization_id, record.id, Action::Verify).outcome(self.status_name());
        self.store_as(services, record, &event).await
    }

    /// As [`Self::store`], recorded as `event` (a repair that changed nothing the record holds).
    pub async fn store_as(
        self,
        services: &Services,
        record: ProviderRecord,
        event: &AuditEvent,
    ) -> Result<VerifyResponse, ApiError> {
        let verified = record.clone();
        let saved = save_with_retry(&services.store, record, Some(event), |current| {
            refuse_if_deleting(current)?;
            if !same_inputs(&verified, current) {
                return Ok(Change::Keep);
            }
            self.apply_to(current);
            Ok(Change::Save)
        })
        .await?;
        if same_inputs(&verified, &saved) {
            return Ok(self.into_response());
        }
        tracing::info!(provider_id = %saved.id, "provider changed while it was verified; the newer record's result stays");
        Ok(match (saved.verification_details, saved.last_verified_at) {
            (Some(checks), Some(last_verified_at)) => {
                VerifyResponse { status: saved.verification_status, checks, last_verified_at }
            }
            _ => self.into_response(),
        })
    }

    /// The status as the API names it (`verified`, `warning`, `failed`).
    pub fn status_name(&self) -> String {
        shared::item::variant_name(&self.status)
    }

    pub fn into_response(self) -> VerifyResponse {
        VerifyResponse { status: self.status, checks: self.checks, last_verified_at: self.verified_at }
    }
}

/// Whether the invocation's deadline passed while it verified: what Twilio was then not asked,
/// or not heard from, says nothing about the provider, so such a result is not stored.
pub fn finished_in_time() -> Result<(), ApiError> {
    match shared::deadline::remaining() {
        Some(left) if left.is_zero() => Err(ApiError::unavailable("the verification did not finish in time")),
        _ => Ok(()),
    }
}

/// Runs every check now with the stored credentials and stores the result.
pub async fn verify_provider(services: &Services, record: ProviderRecord) -> Result<VerifyResponse, ApiError> {
    refuse_if_deleting(&record)?;
    let creds = stored_credentials(services, &record).await?;
    let verification = verify(services, &record, &creds).await;
    finished_in_time()?;
    let (org, id) = (record.organization_id.clone(), record.id);
    let response = verification.store(services, record).await?;
    tracing::info!(organization_id = %org, provider_id = %id, status = ?response.status, "provider verified");
    Ok(response)
}

/// Whether two versions of a record would be verified the same way: same credentials, same
/// Twilio resources, same expectations.
fn same_inputs(a: &ProviderRecord, b: &ProviderRecord) -> bool {
    a.credential == b.credential && same_references(a, b)
}

/// The inputs of a verification but the token: what a rotation, which brings its own token,
/// checks before it stores the verification it ran with that token.
pub fn same_references(a: &ProviderRecord, b: &ProviderRecord) -> bool {
    a.account_sid == b.account_sid
        && a.trunk_sid == b.trunk_sid
        && a.credential_list_sid == b.credential_list_sid
        && a.domain_name == b.domain_name
        && a.trunk_settings() == b.trunk_settings()
}

/// Which credential a check used: its kind, and a key's SID.
fn credential_details(creds: &TwilioCredentials) -> Value {
    json!({"credentialType": creds.credential_type(), "apiKeySid": creds.api_key_sid()})
}

pub fn credentials_passed(creds: &TwilioCredentials) -> VerificationCheck {
    let message = match creds.api_key_sid() {
        None => "Twilio accepted the Account SID and Auth Token.".to_owned(),
        Some(sid) => format!("Twilio accepted API key {sid} for account {}.", creds.account_sid),
    };
    VerificationCheck::new(CheckName::Credentials, CheckStatus::Passed, message, credential_details(creds))
}

/// `account` with an API key that may not read the account (a Standard key: Twilio keeps
/// `/Accounts` to the Auth Token and Main keys). Twilio refuses a suspended or closed
/// account's credentials, so a key it accepts shows the account active; its type is unknown.
pub fn account_unreadable_with_key(creds: &TwilioCredentials) -> VerificationCheck {
    VerificationCheck::new(
        CheckName::Account,
        CheckStatus::Passed,
        format!(
            "The Twilio account is active: Twilio accepted API key {} (it refuses a suspended or closed account's credentials). A Standard key may not read the account, so its type (Trial or Full) is unknown.",
            creds.api_key_sid().map(|sid| sid.as_str()).unwrap_or_default()
        ),
        json!({"status": "active", "type": "unknown", "derived": true}),
    )
}

/// What a Twilio Trial account will not do, which calls on it meet at call time.
pub const TRIAL_LIMITS: &str = "This is a Twilio Trial account: it holds one SIP trunk and one phone number, its calls can only reach and come from verified numbers (caller IDs verified in the Console), and each call plays a trial notice first. Upgrade the account in the Twilio Console to lift the limits.";

/// `account`: active passes, a Trial account warns (with its limits), anything else fails.
pub fn account_check(account: &Account) -> VerificationCheck {
    let details = json!({"status": account.status, "type": account.account_type});
    if account.status != "active" {
        return VerificationCheck::new(
            CheckName::Account,
            CheckStatus::Failed,
            format!(
                "The Twilio account {} is {}; only active accounts can place calls. Reactivate it in the Twilio Console.",
                account.sid, account.status
            ),
            details,
        );
    }
    if account.account_type == "Trial" {
        return VerificationCheck::new(CheckName::Account, CheckStatus::Warning, TRIAL_LIMITS, details);
    }
    VerificationCheck::new(CheckName::Account, CheckStatus::Passed, "The Twilio account is active.", details)
}

fn skipped(name: CheckName, because: &str) -> VerificationCheck {
    VerificationCheck::new(name, CheckStatus::Warning, format!("Skipped: {because}."), json!({"skipped": true}))
}

/// A Twilio error met by a check: a denial or a missing resource is a finding (failed); a
/// transient error means the check could not finish (warning).
fn twilio_finding(name: CheckName, what: &str, e: &TwilioError, details: Value) -> VerificationCheck {
    if matches!(e.kind(), TwilioErrorKind::Rejected | TwilioErrorKind::Denied) {
        VerificationCheck::new(
            name,
            CheckStatus::Failed,
            format!("Twilio denied access to {what} ({e}). Give the credentials permission to manage SIP trunking."),
            details,
        )
    } else if e.is_not_found() {
        VerificationCheck::new(name, CheckStatus::Failed, format!("{what} no longer exists in Twilio."), details)
    } else {
        VerificationCheck::new(
            name,
            CheckStatus::Warning,
            format!("Could not check {what}: {e}. It will be checked again."),
            details,
        )
    }
}

/// The checks when the account fetch fails: a rejection fails `credentials` and `account`
/// alike (Twilio's 401 does not say whether the token is wrong or the account suspended or
/// closed); a denial passes `credentials` and fails `permissions`; anything else could not
/// be checked. Whatever could not run is reported as skipped.
fn unverifiable(record: &ProviderRecord, creds: &TwilioCredentials, e: &TwilioError) -> Vec<VerificationCheck> {
    let skip =
        |names: &[CheckName], because: &str| names.iter().map(|name| skipped(*name, because)).collect::<Vec<_>>();
    match e.kind() {
        TwilioErrorKind::Rejected | TwilioErrorKind::NotFound => {
            shared::metrics::count("CredentialsRejected", &[]);
            let message = format!(
                "{} {} If the account was suspended or closed, reactivate it in the Twilio Console.",
                crate::provider::problems::rejected_text(creds),
                crate::provider::problems::set_credentials_hint(record.id),
            );
            let mut details = credential_details(creds);
            details["code"] = json!(e.code());
            let mut checks = vec![
                VerificationCheck::new(CheckName::Credentials, CheckStatus::Failed, message.clone(), details.clone()),
                VerificationCheck::new(CheckName::Account, CheckStatus::Failed, message, details),
            ];
            checks.extend(skip(&LATER_CHECKS, "Twilio rejected the credentials"));
            checks
        }
        TwilioErrorKind::Denied => {
            let mut checks = vec![
                credentials_passed(creds),
                skipped(CheckName::Account, "the credentials may not read the account"),
                VerificationCheck::new(
                    CheckName::Permissions,
                    CheckStatus::Failed,
                    format!(
                        "Twilio denied these credentials permission for reading the account ({e}). Use credentials that may read the account and manage Elastic SIP Trunking. {}",
                        crate::provider::problems::DENIED_OR_SUSPENDED
                    ),
                    json!({"denied": ["reading the account"]}),
                ),
            ];
            checks.extend(skip(&LATER_CHECKS[1..], "the credentials may not read the account"));
            checks
        }
        _ => {
            let mut checks = vec![VerificationCheck::new(
                CheckName::Credentials,
                CheckStatus::Warning,
                format!("Could not reach Twilio: {e}. It will be checked again."),
                json!({}),
            )];
            checks.extend(skip(&[CheckName::Account], "the credentials could not be checked"));
            checks.extend(skip(&LATER_CHECKS, "the credentials could not be checked"));
            checks
        }
    }
}

/// Runs every check for the provider with the given credentials.
pub async fn verify(services: &Services, record: &ProviderRecord, creds: &TwilioCredentials) -> Verification {
    verify_as_saved(services, record, creds, None).await
}

/// As [`verify`], with the provider's SIP credential as the caller has it: one a repair is
/// about to save (the checks look for it, not the stored one it replaces), or one just read.
pub async fn verify_as_saved(
    services: &Services,
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    new_credential: Option<&SipCredentialRecord>,
) -> Verification {
    if account_type_known(record) {
        let trunk = services.twilio.fetch_trunk(creds, &record.trunk_sid).await;
        // Only an answer about the trunk itself (found, or 404) shows that Twilio accepted the
        // credentials. A 403 may be a suspended or closed account (Twilio's 20403), and a
        // transient failure shows nothing: then the account is read for what it is.
        let account = match &trunk {
            Err(e) if !e.is_not_found() => Some(services.twilio.fetch_account(creds).await),
            _ => None,
        };
        run_checks(services, record, creds, account, trunk, new_credential).await
    } else {
        let (account, trunk) =
            tokio::join!(services.twilio.fetch_account(creds), services.twilio.fetch_trunk(creds, &record.trunk_sid));
        run_checks(services, record, creds, Some(account), trunk, new_credential).await
    }
}

/// Runs every check, given the account as the caller read it (None: the credentials may not read it).
pub async fn verify_with_account(
    services: &Services,
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    account: Option<&Account>,
) -> Verification {
    let trunk = services.twilio.fetch_trunk(creds, &record.trunk_sid).await;
    run_checks(services, record, creds, account.map(|account| Ok(account.clone())), trunk, None).await
}

/// Whether the last check saw a paid (Full) account: then the account needs no read of its
/// own while the trunk can be read. Twilio refuses a suspended or closed account's credentials
/// (401 or 403), so an answer about the trunk proves it active; only a Trial account's upgrade
/// would go unnoticed, so a Trial (or unknown) account is read every time.
fn account_type_known(record: &ProviderRecord) -> bool {
    record.verification_details.iter().flatten().any(|check| {
        check.check_name == CheckName::Account && check.status == CheckStatus::Passed && check.details["type"] == "Full"
    })
}

/// The reads behind the checks, each resource once: the trunk (already read, as the first
/// answer that can make the rest meaningless), then its credential lists, the list's
/// credentials, its origination URLs and its numbers side by side with the table's records.
async fn run_checks(
    services: &Services,
    record: &ProviderRecord,
    creds: &TwilioCredentials,
    account: Option<Result<Account, TwilioError>>,
    trunk: Result<Trunk, TwilioError>,
    new_credential: Option<&SipCredentialRecord>,
) -> Verification {
    // A rejection (401) from any first read makes every other check meaningless; but an API
    // key refused the account alone is a Standard key (Twilio keeps `/Accounts` to the Auth
    // Token and Main keys): the trunk's answer says whether Twilio accepts it.
    let with_key = creds.api_key_sid().is_some();
    let account_refused = |e: &TwilioError| matches!(e.kind(), TwilioErrorKind::Rejected | TwilioErrorKind::Denied);
    let rejection = match (&account, &trunk) {
        (Some(Err(e)), _)
            if !with_key
                && matches!(
                    e.kind(),
                    TwilioErrorKind::Rejected | TwilioErrorKind::NotFound | TwilioErrorKind::Denied
                ) =>
        {
            Some(e)
        }
        (_, Err(e)) if e.kind() == TwilioErrorKind::Rejected => Some(e),
        _ => None,
    };
    if let Some(e) = rejection {
        return Verification::new(unverifiable(record, creds, e));
    }
    let account_check = match &account {
        Some(Ok(account)) => account_check(account),
        Some(Err(e)) if with_key && account_refused(e) => match &trunk {
            Err(e) if !e.is_not_found() => twilio_finding(CheckName::Account, "the account", e, json!({})),
            _ => account_unreadable_with_key(creds),
        },
        Some(Err(e)) => twilio_finding(CheckName::Account, "the account", e, json!({})),
        // An API key that may not read the account, and no earlier check that saw it paid.
        None if with_key && !account_type_known(record) => account_unreadable_with_key(creds),
        None => VerificationCheck::new(
            CheckName::Account,
            CheckStatus::Passed,
            "The Twilio account is active: Twilio accepted its credentials (it refuses a suspended or closed account's), and it was a paid account at the last check.",
            json!({"status": "active", "type": "Full", "derived": true}),
        ),
    };
    if account_check.status == CheckStatus::Failed {
        let mut checks = vec![credentials_passed(creds), account_check];
        checks.extend(LATER_CHECKS.iter().map(|name| skipped(*name, "the Twilio account is not active")));
        return Verification::new(checks);
    }

    let twilio = &services.twilio;
    let trunk_exists = trunk.is_ok();
    // Why the checks on the trunk are skipped when it was not read: only a 404 means deleted.
    let trunk_gone = match &trunk {
        Err(e) if e.is_not_found() => "the SIP trunk was deleted",
        _ => "the SIP trunk could not be read",
    };
    let store = &services.store;
    let (attached, credentials, origination, (imported, numbers), sip) = tokio::join!(
        async {
            match trunk_exists {
                true => Some(twilio.list_trunk_credential_lists(creds, &record.trunk_sid, LIST_CAP).await),
                false => None,
            }
        },
        twilio.list_credentials(creds, &record.credential_list_sid, LIST_CAP),
        async {
            match trunk_exists {
                true => Some(twilio.list_origination_urls(creds, &record.trunk_sid, LIST_CAP).await),
                false => None,
            }
        },
        async {
            // The trunk's numbers are read only when there are imported numbers to look for.
            let imported = store.all_numbers(&record.organization_id, record.id).await;
            let on_trunk = match &imported {
                Ok(numbers) if trunk_exists && !numbers.is_empty() => {
                    let (listed, regions) = tokio::join!(
                        twilio.list_trunk_phone_numbers(creds, &record.trunk_sid, LIST_CAP),
                        voice_regions(twilio, creds, numbers)
                    );
                    Some((listed, regions))
                }
                _ => None,
            };
            (imported, on_trunk)
        },
        async {
            match new_credential {
                Some(credential) => Ok(Some(credential.clone())),
                None => store.get_sip_credential(&record.organization_id, record.id).await,
            }
        },
    );

    // `permissions`: derived from what the reads above already proved, no probes of its own.
    let mut denied = Vec::new();
    let reads: [(&str, Option<&TwilioError>); 5] = [
        ("reading SIP trunks", trunk.as_ref().err()),
        ("reading the trunk's credential lists", attached.as_ref().and_then(|r| r.as_ref().err())),
        ("reading credential lists", credentials.as_ref().err()),
        ("reading origination URLs", origination.as_ref().and_then(|r| r.as_ref().err())),
        ("reading the trunk's phone numbers", numbers.as_ref().and_then(|(r, _)| r.as_ref().err())),
    ];
    for (what, error) in reads {
        if error.is_some_and(|e| e.kind() == TwilioErrorKind::Denied) {
            denied.push(what);
        }
    }
    let permissions = if denied.is_empty() {
        VerificationCheck::new(
            CheckName::Permissions,
            CheckStatus::Passed,
            "The credentials may read the trunk, its credential lists, origination URLs and numbers (proved by the reads of the other checks).",
            json!({}),
        )
    } else {
        VerificationCheck::new(
            CheckName::Permissions,
            CheckStatus::Failed,
            format!(
                "Twilio denied these credentials permission for {}. Use credentials that may manage Elastic SIP Trunking, credential lists and phone numbers. {}",
                denied.join(", "),
                crate::provider::problems::DENIED_OR_SUSPENDED
            ),
            json!({"denied": denied}),
        )
    };
    Verification::new(vec![
        credentials_passed(creds),
        account_check,
        permissions,
        trunk_check(record, &trunk),
        match (&trunk, &origination) {
            (Ok(trunk), Some(Ok(urls))) => secure_trunking_check(record, trunk, urls, &services.platform_sip_uris),
            _ => skipped(CheckName::SecureTrunking, "the trunk or its origination URLs could not be read"),
        },
        match attached {
            Some(attached) => credential_list_check(record, &attached, &credentials, sip),
            None => skipped(CheckName::CredentialList, trunk_gone),
        },
        match origination {
            Some(Ok(urls)) => {
                origination_check(&urls, &services.platform_sip_uris, &origination_friendly_name(record.id))
            }
            Some(Err(e)) => twilio_finding(
                CheckName::Origination,
                &format!("the origination URLs of trunk {}", record.trunk_sid),
                &e,
                json!({"expected": expected_origination(&services.platform_sip_uris)}),
            ),
            None => skipped(CheckName::Origination, trunk_gone),
        },
        match (trunk_exists, imported) {
            (false, _) => skipped(CheckName::PhoneNumbers, trunk_gone),
            (true, imported) => phone_numbers_check(record, imported, numbers),
        },
    ])
}

/// `secureTrunking`: the trunk's `Secure` is the stored setting, and a secure trunk's
/// origination URLs ask for TLS (Twilio sends a secure trunk's calls encrypted only).
fn secure_trunking_check(
    record: &ProviderRecord,
    trunk: &Trunk,
    urls: &[OriginationUrl],
    platform: &PlatformSipUris,
) -> VerificationCheck {
    let (secure, expected) = (trunk.secure.unwrap_or(false), record.secure_trunking);
    let plain: Vec<&str> =
        urls.iter().filter(|u| u.enabled && !carries_tls(&u.sip_url)).map(|u| u.sip_url.as_str()).collect();
    let details = json!({"secure": secure, "expectedSecure": expected, "originationUrlsWithoutTls": plain});
    let check =
        |status, message: String| VerificationCheck::new(CheckName::SecureTrunking, status, message, details.clone());
    match (secure, expected) {
        (true, false) => check(
            CheckStatus::Failed,
            "The trunk takes TLS and SRTP only (Secure) but secureTrunking is false: a call engine dialling it without TLS is refused (Twilio error 32209). Run repair, or set secureTrunking to true with PUT.".to_owned(),
        ),
        (false, true) => check(
            CheckStatus::Warning,
            "secureTrunking is true but the trunk takes unencrypted calls (Secure is off): calls are not kept private. Run repair.".to_owned(),
        ),
        (true, true) if !platform.uses_tls() || !plain.is_empty() => check(
            CheckStatus::Failed,
            format!(
                "The trunk is secure, but {} not ask for TLS (;transport=tls): Twilio cannot bring inbound calls to the platform. Deploy with a PLATFORM_SIP_URI that ends in ;transport=tls and run repair.",
                if plain.is_empty() { format!("the platform's SIP ingress ({platform}) does") } else { format!("its origination URLs {} do", plain.join(", ")) }
            ),
        ),
        (true, true) => check(
            CheckStatus::Passed,
            "The trunk takes TLS signalling and SRTP media only, and its origination URLs ask for TLS.".to_owned(),
        ),
        (false, false) => check(
            CheckStatus::Passed,
            "The trunk takes unencrypted calls, as secureTrunking (false) asks.".to_owned(),
        ),
    }
}

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
    let reaches = |u: &OriginationUrl, target: &PlatformTarget| u.enabled && target.uri.matches(&u.sip_url);
    let as_configured = |target: &PlatformTarget| {
        urls.iter().any(|u| {
            reaches(u, target)
                && u.priority == Some(u32::from(target.priority))
                && u.weight == Some(u32::from(target.weight))
        })
    };
    let off: Vec<String> = platform
        .targets()
        .iter()
        .filter(|t| !as_configured(t))
        .map(|t| format!("{} (priority {}, weight {})", t.uri, t.priority, t.weight))
        .collect();
    let stale: Vec<String> = urls
        .iter()
        .filter(|u| {
            u.enabled && u.friendly_name.as_deref() == Some(own_name) && platform.target_of(&u.sip_url).is_none()
        })
        .map(|u| format!("{} ({})", u.sid, u.sip_url))
        .collect();
    if off.is_empty() && !stale.is_empty() {
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
    if off.is_empty() {
        return VerificationCheck::new(
            CheckName::Origination,
            CheckStatus::Passed,
            format!("Inbound calls to the provider's numbers go to the platform ({platform})."),
            details,
        );
    }
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

fn trunk_check(record: &ProviderRecord, trunk: &Result<Trunk, TwilioError>) -> VerificationCheck {
    let expected_mode = TransferMode::for_call_transfer(record.supports_call_transfer);
    let details =
        json!({"trunkSid": record.trunk_sid, "domainName": record.domain_name, "expectedTransferMode": expected_mode});
    let trunk = match trunk {
        Ok(trunk) => trunk,
        Err(e) if e.is_not_found() => {
            return VerificationCheck::new(
                CheckName::Trunk,
                CheckStatus::Failed,
                format!(
                    "The SIP trunk {} was deleted in Twilio; calls cannot be routed. Run repair (POST /api/v1/providers/{}/repair) to build a new one.",
                    record.trunk_sid, record.id
                ),
                details,
            );
        }
        Err(e) => return twilio_finding(CheckName::Trunk, &format!("the SIP trunk {}", record.trunk_sid), e, details),
    };
    let domain = trunk.domain_name.clone().unwrap_or_default();
    let mode = trunk.transfer_mode.clone().unwrap_or_default();
    let (recovery, expected_recovery) = (trunk.disaster_recovery(), record.disaster_recovery.clone());
    let details = json!({
        "trunkSid": trunk.sid, "domainName": domain, "transferMode": mode, "expectedTransferMode": expected_mode,
        "disasterRecoveryUrl": recovery.as_ref().map(|r| &r.url),
        "expectedDisasterRecoveryUrl": expected_recovery.as_ref().map(|r| &r.url),
    });
    if !domain.eq_ignore_ascii_case(&record.domain_name) {
        return VerificationCheck::new(
            CheckName::Trunk,
            CheckStatus::Failed,
            format!(
                "The trunk's domain is {domain:?} but the provider's termination URI {} expects {}; calls will not reach the trunk. Restore the domain name in Twilio.",
                record.termination_uri, record.domain_name
            ),
            details,
        );
    }
    if mode != expected_mode.as_str() {
        return VerificationCheck::new(
            CheckName::Trunk,
            CheckStatus::Warning,
            format!(
                "The trunk's TransferMode is {mode:?} but supportsCallTransfer is {}; call transfers will not behave as configured. Run repair, or set supportsCallTransfer again with PUT.",
                record.supports_call_transfer
            ),
            details,
        );
    }
    if recovery != expected_recovery {
        let describe = |r: &Option<shared::model::DisasterRecovery>| match r {
            Some(r) => format!("{} {}", r.method, r.url),
            None => "none".to_owned(),
        };
        return VerificationCheck::new(
            CheckName::Trunk,
            CheckStatus::Warning,
            format!(
                "The trunk's disaster recovery is {} but the provider's is {}: when the platform cannot take a call, it will not go where configured. Run repair, or set disasterRecoveryUrl again with PUT.",
                describe(&recovery),
                describe(&expected_recovery)
            ),
            details,
        );
    }
    VerificationCheck::new(
        CheckName::Trunk,
        CheckStatus::Passed,
        "The SIP trunk exists with the expected domain and transfer mode.",
        details,
    )
}

/// `credentialList`: the list (its credentials readable proves it exists) is attached to the
/// trunk and holds the provider's SIP credential.
fn credential_list_check(
    record: &ProviderRecord,
    attached: &Result<Vec<shared::twilio::TrunkCredentialList>, TwilioError>,
    credentials: &Result<Vec<shared::twilio::Credential>, TwilioError>,
    sip: Result<Option<shared::store::SipCredentialRecord>, shared::store::StoreError>,
) -> VerificationCheck {
    let list_sid = &record.credential_list_sid;
    let details = json!({"credentialListSid": list_sid, "trunkSid": record.trunk_sid});
    let credentials = match credentials {
        Ok(credentials) => credentials,
        Err(e) if e.is_not_found() => {
            return VerificationCheck::new(
                CheckName::CredentialList,
                CheckStatus::Failed,
                format!(
                    "The credential list {list_sid} no longer exists in Twilio; SIP calls cannot authenticate. Run repair."
                ),
                details,
            );
        }
        Err(e) => {
            return twilio_finding(CheckName::CredentialList, &format!("the credential list {list_sid}"), e, details);
        }
    };
    match attached {
        Ok(attached) if attached.iter().any(|a| &a.sid == list_sid) => {}
        Ok(_) => {
            return VerificationCheck::new(
                CheckName::CredentialList,
                CheckStatus::Failed,
                format!(
                    "The credential list {list_sid} is not attached to the trunk {}; SIP calls cannot authenticate. Run repair.",
                    record.trunk_sid
                ),
                details,
            );
        }
        Err(e) => {
            return twilio_finding(
                CheckName::CredentialList,
                &format!("the credential lists of trunk {}", record.trunk_sid),
                e,
                details,
            );
        }
    }
    let sip = match sip {
        Ok(Some(sip)) => sip,
        Ok(None) => {
            return VerificationCheck::new(
                CheckName::CredentialList,
                CheckStatus::Failed,
                "The provider's SIP credential record is missing.",
                details,
            );
        }
        Err(e) => {
            // The cause (AWS text) goes to the log; the stored check says what happened.
            tracing::error!(provider_id = %record.id, error = %e, "could not read the SIP credential record");
            return VerificationCheck::new(
                CheckName::CredentialList,
                CheckStatus::Warning,
                "Could not read the stored SIP credential (storage unavailable). It will be checked again.",
                json!({"code": "storage_unavailable", "credentialListSid": list_sid, "trunkSid": record.trunk_sid}),
            );
        }
    };
    if !credentials.iter().any(|c| c.sid == sip.credential_sid) {
        return VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Failed,
            format!(
                "The SIP credential {} ({}) was removed from the credential list; calls cannot authenticate. Run repair to issue a new one.",
                sip.credential_sid, sip.username
            ),
            details,
        );
    }
    let listed = |sid: &shared::model::CredentialSid| credentials.iter().any(|c| &c.sid == sid);
    let unknown: Vec<String> =
        credentials.iter().filter(|c| !sip.is_known(&c.sid)).map(|c| format!("{} ({})", c.sid, c.username)).collect();
    let previous = sip.previous.as_ref();
    let mut details =
        json!({"credentialListSid": list_sid, "credentialSid": sip.credential_sid, "username": sip.username});
    if let Some(previous) = previous {
        details["previous"] = json!({
            "credentialSid": previous.credential_sid,
            "username": previous.username,
            "expiresAt": previous.expires_at,
        });
    }
    if !unknown.is_empty() {
        details["unknownCredentials"] = json!(unknown);
        return VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Warning,
            format!(
                "The credential list holds SIP credentials the provider does not use: {}. They authenticate calls nobody expects; run repair to remove them.",
                unknown.join(", ")
            ),
            details,
        );
    }
    match previous {
        Some(previous) if !listed(&previous.credential_sid) => VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Warning,
            format!(
                "The previous SIP credential {} ({}) was removed from the list before its overlap ends ({}); call engines still using it cannot authenticate. Finish the rotation.",
                previous.credential_sid, previous.username, previous.expires_at
            ),
            details,
        ),
        Some(previous) => VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Passed,
            format!(
                "The credential list is attached to the trunk and holds the SIP user {}, and {} until its overlap ends ({}).",
                sip.username, previous.username, previous.expires_at
            ),
            details,
        ),
        None => VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Passed,
            format!("The credential list is attached to the trunk and holds the SIP user {}.", sip.username),
            details,
        ),
    }
}

/// How many imported numbers of an IE1 or AU1 provider have their inbound processing Region read
/// per verification (one Routes request each): a sample, so that the hourly re-verification of
/// a provider with thousands of numbers stays a few requests. Repair reads them all.
const VOICE_REGION_SAMPLE: usize = 20;

/// The inbound processing Region of a sample of the imported numbers, for providers outside US1
/// (import points them at the provider's Region); empty in US1.
async fn voice_regions(
    twilio: &shared::twilio::TwilioClient,
    creds: &TwilioCredentials,
    numbers: &[shared::store::PhoneNumberRecord],
) -> Vec<(String, Result<String, TwilioError>)> {
    if creds.region == shared::model::TwilioRegion::Us1 {
        return Vec::new();
    }
    let sample = numbers.iter().take(VOICE_REGION_SAMPLE).map(|n| n.phone_number.clone());
    let reads = sample.map(|number| async move {
        let region = twilio.fetch_voice_region(creds, &number).await;
        (number, region)
    });
    futures::future::join_all(reads).await
}

type TrunkNumbers =
    (Result<Vec<shared::twilio::TrunkPhoneNumber>, TwilioError>, Vec<(String, Result<String, TwilioError>)>);

fn phone_numbers_check(
    record: &ProviderRecord,
    imported: Result<Vec<shared::store::PhoneNumberRecord>, shared::store::StoreError>,
    on_trunk: Option<TrunkNumbers>,
) -> VerificationCheck {
    let imported = match imported {
        Ok(imported) => imported,
        Err(e) => {
            tracing::error!(provider_id = %record.id, error = %e, "could not read the imported numbers");
            return VerificationCheck::new(
                CheckName::PhoneNumbers,
                CheckStatus::Warning,
                "Could not read the imported numbers (storage unavailable). They will be checked again.",
                json!({"code": "storage_unavailable"}),
            );
        }
    };
    if imported.is_empty() {
        return VerificationCheck::new(
            CheckName::PhoneNumbers,
            CheckStatus::Passed,
            "No numbers are imported yet.",
            json!({"imported": 0}),
        );
    }
    let (on_trunk, regions) = match on_trunk {
        Some((listed, regions)) => (Some(listed), regions),
        None => (None, Vec::new()),
    };
    let on_trunk: HashSet<PhoneNumberSid> = match on_trunk {
        Some(Ok(numbers)) => numbers.into_iter().map(|n| n.sid).collect(),
        Some(Err(e)) => {
            return twilio_finding(
                CheckName::PhoneNumbers,
                &format!("the numbers of trunk {}", record.trunk_sid),
                &e,
                json!({}),
            );
        }
        None => {
            return VerificationCheck::new(
                CheckName::PhoneNumbers,
                CheckStatus::Warning,
                "Could not list the trunk's numbers. They will be checked again.",
                json!({}),
            );
        }
    };
    let detached: Vec<&shared::store::PhoneNumberRecord> =
        imported.iter().filter(|n| !on_trunk.contains(&n.phone_number_sid)).collect();
    let elsewhere: Vec<(&String, &String)> = regions
        .iter()
        .filter_map(|(number, region)| region.as_ref().ok().map(|region| (number, region)))
        .filter(|(_, region)| region.as_str() != record.twilio_region.as_str())
        .collect();
    if detached.is_empty() && !elsewhere.is_empty() {
        return VerificationCheck::new(
            CheckName::PhoneNumbers,
            CheckStatus::Warning,
            format!(
                "All {} imported numbers are on the trunk, but {} of the {} checked have their calls processed in another Twilio Region than {}, where the trunk is: those calls do not reach the platform. Run repair to set it back.",
                imported.len(),
                elsewhere.len(),
                regions.len(),
                record.twilio_region
            ),
            json!({
                "imported": imported.len(),
                "voiceRegionChecked": regions.len(),
                "otherVoiceRegion": elsewhere
                    .iter()
                    .map(|(number, region)| json!({"phoneNumber": number, "voiceRegion": region}))
                    .collect::<Vec<_>>(),
            }),
        );
    }
    if detached.is_empty() {
        return VerificationCheck::new(
            CheckName::PhoneNumbers,
            CheckStatus::Passed,
            format!("All {} imported numbers are on the trunk.", imported.len()),
            json!({"imported": imported.len()}),
        );
    }
    VerificationCheck::new(
        CheckName::PhoneNumbers,
        CheckStatus::Warning,
        format!(
            "{} of {} imported numbers are no longer on the trunk and will not reach the platform. Run repair to put back those on no trunk (a number given a voice application since is left so).",
            detached.len(),
            imported.len()
        ),
        json!({
            "imported": imported.len(),
            "detachedCount": detached.len(),
            "detached": detached
                .iter()
                .take(DETAILS_CAP)
                .map(|n| json!({"phoneNumberSid": n.phone_number_sid, "phoneNumber": n.phone_number, "id": n.id}))
                .collect::<Vec<_>>(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::model::AccountSid;

    #[test]
    fn inactive_accounts_fail_and_trials_warn() {
        let account = |status: &str, kind: &str| Account {
            sid: AccountSid::parse(&format!("AC{}", "1".repeat(32))).unwrap(),
            status: status.into(),
            account_type: kind.into(),
            friendly_name: None,
        };
        assert_eq!(account_check(&account("suspended", "Full")).status, CheckStatus::Failed);
        assert!(account_check(&account("closed", "Full")).message.contains("closed"));
        assert_eq!(account_check(&account("active", "Trial")).status, CheckStatus::Warning);
        assert_eq!(account_check(&account("active", "Full")).status, CheckStatus::Passed);
    }

    #[test]
    fn transient_errors_warn_and_denials_fail() {
        let denied = TwilioError::Api { status: 403, code: Some(20403), message: "no".into() };
        assert_eq!(twilio_finding(CheckName::Trunk, "y", &denied, json!({})).status, CheckStatus::Failed);
        let busy = TwilioError::Api { status: 503, code: None, message: "busy".into() };
        assert_eq!(twilio_finding(CheckName::Trunk, "y", &busy, json!({})).status, CheckStatus::Warning);
    }
}
