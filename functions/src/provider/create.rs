//! Creating a provider: validate the credentials with Twilio, provision an Elastic SIP trunk
//! with a credential list and a generated SIP credential in the customer's account, and store
//! it all with the secrets envelope-encrypted.
//!
//! Critical path: the organization's duplicate check (DynamoDB) -> (account || KMS data key)
//! -> the intent (DynamoDB) -> (trunk || credential list) -> (credential || attach ||
//! origination URL) -> store: three dependent Twilio round trips. Nothing is created before
//! the account has answered and the intent naming what is about to be created (with the token
//! sealed) is stored: a create that dies at any instant leaves that intent, and the orphan
//! sweeper removes what it names. Any failure after the first Twilio resource exists removes
//! what was created, and nothing is stored.

use crate::provider::cleanup::remove_or_record;
use crate::provider::credentials::{accept, forget_minted, involving};
use crate::provider::problems::twilio_problem;
use crate::provider::verify::{credentials_passed, origination_check, origination_friendly_name};
use crate::services::Services;
use rand::RngExt;
use rand::distr::Alphanumeric;
use serde_json::json;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::crypto::{DataKey, SecretKind, SecretOwner};
use shared::deadline::within;
use shared::dto::CreateTwilioProvider;
use shared::model::{
    CheckName, CheckStatus, OrganizationId, SipPassword, TrunkSettings, TwilioCredentials, VerificationCheck,
    overall_status,
};
use shared::store::{
    Change, Intent, IntentKey, NewResources, ProviderRecord, SealedCredential, SipCredentialRecord, StoreError,
};
use shared::time::Timestamp;
use shared::twilio::TwilioResource;
use shared::twilio::{
    CODE_DOMAIN_NAME_INVALID, CODE_DOMAIN_NAME_TAKEN, OriginationTarget, Trunk, TwilioClient, TwilioError,
};
use uuid::Uuid;

/// How many fresh domain labels to try when Twilio says a domain name is taken.
const DOMAIN_NAME_ATTEMPTS: u32 = 3;
/// Twilio limits friendly names to 64 characters.
pub(crate) const FRIENDLY_NAME_MAX_CHARS: usize = 64;

/// Until when provisioning may run, and until when its rollback may.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deadlines {
    pub work: Option<std::time::Instant>,
    pub rollback: Option<std::time::Instant>,
}

/// The whole create flow; on error nothing is stored and nothing is left in Twilio (or what
/// could not be removed is logged and recorded for clean-up).
pub async fn create_provider(
    services: &Services,
    organization_id: OrganizationId,
    command: CreateTwilioProvider,
    deadlines: Deadlines,
) -> Result<ProviderRecord, ApiError> {
    // A secure trunk's inbound calls reach the platform only over TLS: refused before anything.
    if command.secure_trunking {
        refuse_secure_without_tls(&services.platform_sip_uris)?;
    }
    // The organization's duplicate first: milliseconds, and no Twilio call for it.
    if services.store.account_in_use(&organization_id, &command.account_sid).await? {
        return Err(account_taken(&command.account_sid));
    }

    let provider_id = Uuid::now_v7();
    let owner = SecretOwner { organization_id: organization_id.clone(), provider_id };
    let (accepted, data_key) = within(deadlines.work, async {
        tokio::join!(
            accept(services, &command.credential, &command.account_sid, command.twilio_region, provider_id, ""),
            services.envelope.generate_data_key(&owner)
        )
    })
    .await;
    let accepted = accepted?;
    let data_key = match data_key {
        Ok(data_key) => data_key,
        Err(e) => {
            within(deadlines.rollback, forget_minted(services, &accepted)).await;
            return Err(e.into());
        }
    };
    let creds = accepted.creds.clone();
    let names = NewNames::for_provider(provider_id);
    let new = NewResources {
        trunk_domains: names.domain_labels.iter().map(|label| domain_name(label)).collect(),
        list_names: vec![names.list.clone()],
        ..NewResources::default()
    };
    let intent = Intent::now(
        IntentKey::new(organization_id.clone(), provider_id),
        creds.account_sid.clone(),
        creds.region,
        SealedCredential::seal(&data_key, &creds, accepted.minted),
        Change::NewResources(new),
    );
    if let Err(e) = services.store.record_intent(&intent).await {
        within(deadlines.rollback, forget_minted(services, &accepted)).await;
        return Err(e.into());
    }
    let mut saga =
        Saga { services, creds: &creds, owner: &owner, step: "trunk-list", unknown: Vec::new(), created: Vec::new() };
    let provisioned = Provisioned {
        account_check: accepted.account_check.clone(),
        data_key: &data_key,
        intent: &intent,
        names: &names,
    };
    let result = within(deadlines.work, provision(&mut saga, &command, provider_id, provisioned)).await;
    match result {
        Ok(record) => {
            tracing::info!(organization_id = %organization_id, provider_id = %provider_id, trunk_sid = %record.trunk_sid, "twilio provider created");
            shared::metrics::count("ProvidersCreated", &[]);
            Ok(record)
        }
        Err(error) => {
            shared::metrics::count("CreateRollbacks", &[("Step", saga.step)]);
            within(deadlines.rollback, async {
                saga.roll_back(&data_key).await;
                // The key goes last: the rollback removed the rest with it.
                forget_minted(services, &accepted).await;
                // What could not be removed is recorded as left behind by now; were the
                // intent kept, the sweeper would only find the same.
                if let Err(e) = services.store.forget_intent(&intent.key).await {
                    tracing::warn!(provider_id = %provider_id, error = %e, "could not remove a rolled-back create's intent; the sweeper will");
                }
            })
            .await;
            Err(error)
        }
    }
}

/// The unique names of a new provider's resources, chosen before any is created so that its
/// intent can name them.
pub(crate) struct NewNames {
    /// Domain labels to try in turn, a taken one giving way to the next.
    pub domain_labels: Vec<String>,
    pub list: String,
}

impl NewNames {
    fn for_provider(provider_id: Uuid) -> Self {
        Self { domain_labels: new_domain_labels(), list: format!("voice-ai-{provider_id}") }
    }
}

/// The resources created so far, so that a failure can remove them.
struct Saga<'a> {
    services: &'a Services,
    creds: &'a TwilioCredentials,
    owner: &'a SecretOwner,
    /// The step under way, for the rollback metric.
    step: &'static str,
    /// Creates that got no answer: looked up (by their unique names) when rolling back.
    unknown: Vec<UnknownOutcome>,
    created: Vec<TwilioResource>,
}

/// What provisioning starts from: the account checked, the data key, the stored intent.
struct Provisioned<'a> {
    account_check: VerificationCheck,
    data_key: &'a DataKey,
    intent: &'a Intent,
    names: &'a NewNames,
}

/// Two dependent Twilio round trips: (trunk || credential list), then (credential ||
/// attachment || origination URL), the intent learning the new SIDs beside the second.
async fn provision(
    saga: &mut Saga<'_>,
    command: &CreateTwilioProvider,
    provider_id: Uuid,
    start: Provisioned<'_>,
) -> Result<ProviderRecord, ApiError> {
    let twilio = &saga.services.twilio;
    let creds = saga.creds;
    let trunk_name = truncate_chars(&command.name, FRIENDLY_NAME_MAX_CHARS);
    let list_name = &start.names.list;
    let settings =
        TrunkSettings::new(command.supports_call_transfer, command.secure_trunking, command.disaster_recovery.clone());
    let transfer_mode = settings.transfer_mode;

    let (trunk, list) = tokio::join!(
        create_trunk(twilio, creds, &trunk_name, &settings, &start.names.domain_labels),
        twilio.create_credential_list(creds, list_name)
    );
    match &trunk {
        Ok((trunk, _)) => saga.created.push(TwilioResource::Trunk { trunk_sid: trunk.sid.clone() }),
        Err((e, label)) if e.is_outcome_unknown() => {
            saga.unknown.push(UnknownOutcome::Trunk { domain_name: domain_name(label) })
        }
        Err(_) => {}
    }
    match &list {
        Ok(list) => saga.created.push(TwilioResource::CredentialList { list_sid: list.sid.clone() }),
        Err(e) if e.is_outcome_unknown() => {
            saga.unknown.push(UnknownOutcome::CredentialList { friendly_name: list_name.clone() })
        }
        Err(_) => {}
    }
    let (trunk, domain_label) = trunk.map_err(|(e, _)| twilio_problem("creating SIP trunks", e))?;
    let list = list.map_err(|e| twilio_problem("creating credential lists", e))?;

    saga.step = "credential-attachment-origination";
    let username = provider_id.simple().to_string();
    let password = SipPassword::generate();
    let origination_name = origination_friendly_name(provider_id);
    let platform = &saga.services.platform_sip_uris;
    // One origination URL per platform ingress, side by side.
    let originations = futures::future::join_all(platform.targets().iter().map(|target| {
        twilio.create_origination_url(creds, &trunk.sid, OriginationTarget { target, friendly_name: &origination_name })
    }));
    let mut known = start.intent.clone();
    if let Change::NewResources(new) = &mut known.change {
        saga.created.iter().for_each(|resource| new.add_known(resource));
    }
    // Deleting the trunk removes its origination URLs and its attachment, and deleting the
    // list its credential: the rollback and the intent need no entry for those.
    let (credential, attachment, originations, intent_updated) = tokio::join!(
        twilio.create_credential(creds, &list.sid, &username, &password),
        twilio.attach_credential_list(creds, &trunk.sid, &list.sid),
        originations,
        saga.services.store.record_intent(&known),
    );
    if let Err(e) = intent_updated {
        // The intent still names both by their unique names.
        tracing::warn!(%provider_id, error = %e, "could not record the new SIDs in the create's intent");
    }
    if attachment.is_ok() {
        saga.created
            .push(TwilioResource::TrunkCredentialList { trunk_sid: trunk.sid.clone(), list_sid: list.sid.clone() });
    }
    let credential = credential.map_err(|e| twilio_problem("creating SIP credentials", e))?;
    attachment.map_err(|e| twilio_problem("attaching credential lists to trunks", e))?;
    let originations = originations
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| twilio_problem("adding origination URLs to trunks", e))?;

    let data_key = start.data_key;
    let now = Timestamp::now();
    let region = command.region.or(command.twilio_region.default_edge()).unwrap_or(saga.services.default_region);
    let checks = vec![
        credentials_passed(creds),
        start.account_check,
        VerificationCheck::new(
            CheckName::Trunk,
            CheckStatus::Passed,
            format!("Created SIP trunk {} with domain {}.", trunk.sid, domain_name(&domain_label)),
            json!({"trunkSid": trunk.sid, "domainName": domain_name(&domain_label), "transferMode": transfer_mode, "secure": settings.secure}),
        ),
        VerificationCheck::new(
            CheckName::CredentialList,
            CheckStatus::Passed,
            format!(
                "Created credential list {} with SIP user {} and attached it to the trunk.",
                list.sid, credential.username
            ),
            json!({"credentialListSid": list.sid, "credentialSid": credential.sid, "username": credential.username}),
        ),
        origination_check(&originations, platform, &origination_name),
    ];
    let record = ProviderRecord {
        organization_id: saga.owner.organization_id.clone(),
        id: provider_id,
        name: command.name.clone(),
        account_sid: creds.account_sid.clone(),
        credential: start.intent.credential.clone(),
        region,
        twilio_region: command.twilio_region,
        supports_call_transfer: command.supports_call_transfer,
        secure_trunking: command.secure_trunking,
        disaster_recovery: command.disaster_recovery.clone(),
        trunk_sid: trunk.sid.clone(),
        domain_name: domain_name(&domain_label),
        termination_uri: region.termination_uri(&domain_label, command.secure_trunking),
        credential_list_sid: list.sid.clone(),
        verification_status: overall_status(&checks),
        last_verified_at: Some(now.clone()),
        verification_details: Some(checks),
        phone_number_count: 0,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
        deletion: None,
    };
    let sip_credential = SipCredentialRecord {
        provider_id,
        username: credential.username.clone(),
        credential_sid: credential.sid.clone(),
        credential_list_sid: list.sid.clone(),
        password: data_key.seal(SecretKind::SipPassword, password.expose()),
        previous: None,
    };
    saga.step = "store";
    let resources = [trunk.sid.to_string(), list.sid.to_string(), credential.sid.to_string()];
    let event = AuditEvent::new(&record.organization_id, provider_id, Action::Create)
        .sids(resources.into_iter().chain(originations.iter().map(|o| o.sid.to_string())))
        .secret("sipPassword", password.expose());
    let event = involving(event, creds);
    match saga.services.store.insert_provider(&record, &sip_credential, &start.intent.key, &event).await {
        Ok(()) => Ok(record),
        Err(StoreError::AccountTaken) => Err(account_taken(&creds.account_sid)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /v1/Trunks` with the first domain label, trying the next when the name is taken.
/// Returns the trunk and its label, or the error and the last label tried.
pub(crate) async fn create_trunk(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    friendly_name: &str,
    settings: &TrunkSettings,
    labels: &[String],
) -> Result<(Trunk, String), (TwilioError, String)> {
    let mut labels = labels.iter().peekable();
    loop {
        let label = labels.next().expect("at least one domain label").clone();
        match twilio.create_trunk(creds, friendly_name, &domain_name(&label), settings).await {
            Ok(trunk) => return Ok((trunk, label)),
            Err(e)
                if matches!(e.code(), Some(CODE_DOMAIN_NAME_TAKEN | CODE_DOMAIN_NAME_INVALID))
                    && labels.peek().is_some() =>
            {
                tracing::info!("trunk domain name taken; trying another");
            }
            Err(e) => return Err((e, label)),
        }
    }
}

/// A create whose outcome is unknown (timed out, or the connection broke off).
enum UnknownOutcome {
    Trunk { domain_name: String },
    CredentialList { friendly_name: String },
}

/// How many trunks or credential lists to look through for one created by a request of unknown
/// outcome.
const LOOKUP_MAX_ITEMS: usize = 1000;

impl Saga<'_> {
    /// Removes everything created, newest dependency first (see [`remove_or_record`]).
    async fn roll_back(&mut self, data_key: &DataKey) {
        for unknown in std::mem::take(&mut self.unknown) {
            let twilio = &self.services.twilio;
            let found = match unknown {
                UnknownOutcome::Trunk { domain_name } => find_trunk_by_domain(twilio, self.creds, &domain_name).await,
                UnknownOutcome::CredentialList { friendly_name } => {
                    find_list_by_name(twilio, self.creds, &friendly_name).await
                }
            };
            self.created.extend(found);
        }
        remove_or_record(self.services, self.creds, self.owner, &self.created, Some(data_key)).await;
    }
}

/// A create of unknown outcome (it timed out, broke off, or was answered unreadably) may have
/// happened: the trunk with this (unique) domain name, if it exists, so that a rollback removes it.
pub(crate) async fn find_trunk_by_domain(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    domain_name: &str,
) -> Option<TwilioResource> {
    match twilio.list_trunks(creds, LOOKUP_MAX_ITEMS).await {
        Ok(trunks) => trunks
            .into_iter()
            .find(|t| t.domain_name.as_deref() == Some(domain_name))
            .map(|trunk| TwilioResource::Trunk { trunk_sid: trunk.sid }),
        Err(e) => {
            tracing::error!(domain_name, error = %e, "could not check whether a trunk create of unknown outcome happened");
            None
        }
    }
}

/// Likewise for a credential list, by its unique friendly name.
pub(crate) async fn find_list_by_name(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    friendly_name: &str,
) -> Option<TwilioResource> {
    match twilio.list_credential_lists(creds, LOOKUP_MAX_ITEMS).await {
        Ok(lists) => lists
            .into_iter()
            .find(|l| l.friendly_name.as_deref() == Some(friendly_name))
            .map(|list| TwilioResource::CredentialList { list_sid: list.sid }),
        Err(e) => {
            tracing::error!(friendly_name, error = %e, "could not check whether a credential list create of unknown outcome happened");
            None
        }
    }
}

pub(crate) fn domain_name(label: &str) -> String {
    format!("{label}.pstn.twilio.com")
}

/// `vai-` and 16 random lowercase letters and digits: unique enough that a clash is rare,
/// and a valid DNS label.
fn new_domain_label() -> String {
    let suffix: String =
        rand::rng().sample_iter(Alphanumeric).map(|b| (b as char).to_ascii_lowercase()).take(16).collect();
    format!("vai-{suffix}")
}

/// A SIP username for a credential added to an existing list (a rotation's, a repair's): the
/// provider's id and a random part, 32 characters (Twilio's limit), so it never meets a
/// username the list already holds.
pub(crate) fn fresh_sip_username(provider_id: Uuid) -> String {
    let suffix: String =
        rand::rng().sample_iter(Alphanumeric).map(|b| (b as char).to_ascii_lowercase()).take(8).collect();
    format!("{}-{suffix}", &provider_id.simple().to_string()[..23])
}

/// The labels a new trunk tries in turn (a clash with another account's domain moves on).
pub(crate) fn new_domain_labels() -> Vec<String> {
    (0..DOMAIN_NAME_ATTEMPTS).map(|_| new_domain_label()).collect()
}

pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// 422 when `secureTrunking` is asked for but the platform's SIP ingress takes no TLS: Twilio
/// would send a secure trunk's calls to it encrypted, and they would fail.
pub(crate) fn refuse_secure_without_tls(platform: &shared::model::PlatformSipUris) -> Result<(), ApiError> {
    if !platform.uses_tls() {
        return Err(ApiError::Unprocessable {
            title: "Secure trunking needs a TLS SIP ingress",
            detail: format!(
                "secureTrunking makes Twilio use TLS and SRTP only, but this deployment's platform SIP ingress ({platform}) does not ask for TLS (;transport=tls) on every URI, so inbound calls could not reach it. Leave secureTrunking false, or deploy with a PLATFORM_SIP_URI whose every URI ends in ;transport=tls."
            ),
        });
    }
    Ok(())
}

fn account_taken(account_sid: &shared::model::AccountSid) -> ApiError {
    ApiError::Conflict(format!(
        "This organization already has a Twilio provider for account {account_sid}. Use that provider, or delete it first."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_labels_are_dns_safe_and_random() {
        let a = new_domain_label();
        assert!(a.len() <= 63 && a.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        assert_ne!(a, new_domain_label());
    }
}
