//! Creating a provider: validate the credentials with Twilio, provision an Elastic SIP trunk with a credential list and
//! a generated SIP credential in the customer's account, and store it all. Why: docs/decisions/create-intent-first.md.

mod resources;

pub(crate) use resources::{
    FRIENDLY_NAME_MAX_CHARS, create_trunk, domain_name, find_list_by_name, find_trunk_by_domain, fresh_sip_username,
    new_domain_labels, truncate_chars,
};

use crate::provider::cleanup::remove_or_record;
use crate::provider::credentials::{Accepted, accept, forget_minted, involving};
use crate::provider::problems::twilio_problem;
use crate::provider::verify::{credentials_passed, origination_check, origination_friendly_name};
use crate::services::Services;
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
use shared::storage::{
    Change, Intent, IntentKey, NewResources, ProviderRecord, SealedCredential, SipCredentialRecord, StoreError,
};
use shared::time::Timestamp;
use shared::twilio::TwilioResource;
use shared::twilio::{Credential, CredentialList, OriginationTarget, OriginationUrl, Trunk};
use uuid::Uuid;

/// Until when provisioning may run, and until when its rollback may.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deadlines {
    pub work: Option<std::time::Instant>,
    pub rollback: Option<std::time::Instant>,
}

/// The whole create flow; on error nothing is stored and nothing is left in Twilio (or what
/// could not be removed is logged and recorded for clean-up).
#[tracing::instrument(skip_all, fields(organization_id = %organization_id, provider_id = tracing::field::Empty))]
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
    tracing::Span::current().record("provider_id", tracing::field::display(provider_id));
    let owner = SecretOwner { organization_id, provider_id };
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
    create_accepted(services, &command, deadlines, &owner, &accepted, &data_key).await
}

/// From the credentials Twilio accepted and the data key on: the intent, then provisioning; on
/// failure what was created goes again (the minted key last), and nothing is stored.
async fn create_accepted(
    services: &Services,
    command: &CreateTwilioProvider,
    deadlines: Deadlines,
    owner: &SecretOwner,
    accepted: &Accepted,
    data_key: &DataKey,
) -> Result<ProviderRecord, ApiError> {
    let provider_id = owner.provider_id;
    let names = NewNames::for_provider(provider_id);
    let intent = new_intent(owner, accepted, data_key, &names);
    if let Err(e) = services.store.record_intent(&intent).await {
        within(deadlines.rollback, forget_minted(services, accepted)).await;
        return Err(e.into());
    }
    let creds = &accepted.creds;
    let mut saga = Saga { services, creds, owner, step: "trunk-list", unknown: Vec::new(), created: Vec::new() };
    let provisioned =
        Provisioned { account_check: accepted.account_check.clone(), data_key, intent: &intent, names: &names };
    let result = within(deadlines.work, provision(&mut saga, command, provider_id, provisioned)).await;
    match result {
        Ok(record) => {
            tracing::info!(trunk_sid = %record.trunk_sid, "twilio provider created");
            shared::metrics::count("ProvidersCreated", &[]);
            Ok(record)
        }
        Err(error) => {
            shared::metrics::count("CreateRollbacks", &[("Step", saga.step)]);
            within(deadlines.rollback, async {
                saga.roll_back(data_key).await;
                // The key goes last: the rollback removed the rest with it.
                forget_minted(services, accepted).await;
                // What could not be removed is recorded as left behind by now; were the
                // intent kept, the sweeper would only find the same.
                if let Err(e) = services.store.forget_intent(&intent.key).await {
                    tracing::warn!(error = %e, "could not remove a rolled-back create's intent; the sweeper will");
                }
            })
            .await;
            Err(error)
        }
    }
}

/// The intent naming what a create is about to make, with the token sealed: stored before
/// anything is created.
fn new_intent(owner: &SecretOwner, accepted: &Accepted, data_key: &DataKey, names: &NewNames) -> Intent {
    let creds = &accepted.creds;
    let new = NewResources {
        trunk_domains: names.domain_labels.iter().map(|label| domain_name(label)).collect(),
        list_names: vec![names.list.clone()],
        ..NewResources::default()
    };
    Intent::now(
        IntentKey::new(owner.organization_id.clone(), owner.provider_id),
        creds.account_sid.clone(),
        creds.region,
        SealedCredential::seal(data_key, creds, accepted.minted),
        Change::NewResources(new),
    )
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

/// What the two round trips made.
struct Made {
    trunk: Trunk,
    domain_label: String,
    list: CredentialList,
    credential: Credential,
    originations: Vec<OriginationUrl>,
    origination_name: String,
}

/// Two dependent Twilio round trips: (trunk || credential list), then (credential ||
/// attachment || origination URL), the intent learning the new SIDs beside the second; then
/// the record, stored.
async fn provision(
    saga: &mut Saga<'_>,
    command: &CreateTwilioProvider,
    provider_id: Uuid,
    start: Provisioned<'_>,
) -> Result<ProviderRecord, ApiError> {
    let Provisioned { account_check, data_key, intent, names } = start;
    let trunk_name = truncate_chars(&command.name, FRIENDLY_NAME_MAX_CHARS);
    let settings =
        TrunkSettings::new(command.supports_call_transfer, command.secure_trunking, command.disaster_recovery.clone());
    let (trunk, domain_label, list) = trunk_and_list(saga, &trunk_name, &settings, names).await?;

    saga.step = "credential-attachment-origination";
    let password = SipPassword::generate();
    let origination_name = origination_friendly_name(provider_id);
    let (credential, originations) =
        credential_attachment_origination(saga, intent, &trunk, &list, &password, &origination_name).await?;

    let made = Made { trunk, domain_label, list, credential, originations, origination_name };
    let checks = created_checks(saga, account_check, &settings, &made);
    let record = new_record(saga, command, &intent.credential, &made, checks);
    let sip_credential = SipCredentialRecord {
        provider_id,
        username: made.credential.username.clone(),
        credential_sid: made.credential.sid.clone(),
        credential_list_sid: made.list.sid.clone(),
        password: data_key.seal(SecretKind::SipPassword, password.expose()),
        previous: None,
    };
    saga.step = "store";
    let resources = [made.trunk.sid.to_string(), made.list.sid.to_string(), made.credential.sid.to_string()];
    let event = AuditEvent::new(&record.organization_id, provider_id, Action::Create)
        .sids(resources.into_iter().chain(made.originations.iter().map(|o| o.sid.to_string())))
        .secret("sipPassword", password.expose());
    let event = involving(event, saga.creds);
    match saga.services.store.insert_provider(&record, &sip_credential, &intent.key, &event).await {
        Ok(()) => Ok(record),
        Err(StoreError::AccountTaken) => Err(account_taken(&saga.creds.account_sid)),
        Err(e) => Err(e.into()),
    }
}

/// The first round trip: the trunk (a domain name that is taken giving way to the next label)
/// beside the credential list. What was made, or may have been, is on the saga.
async fn trunk_and_list(
    saga: &mut Saga<'_>,
    trunk_name: &str,
    settings: &TrunkSettings,
    names: &NewNames,
) -> Result<(Trunk, String, CredentialList), ApiError> {
    let twilio = &saga.services.twilio;
    let creds = saga.creds;
    let list_name = &names.list;
    let (trunk, list) = tokio::join!(
        create_trunk(twilio, creds, trunk_name, settings, &names.domain_labels),
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
    Ok((trunk, domain_label, list))
}

/// The second round trip: the SIP credential, the list's attachment and one origination URL
/// per platform ingress, side by side, the intent learning the new SIDs beside them.
async fn credential_attachment_origination(
    saga: &mut Saga<'_>,
    intent: &Intent,
    trunk: &Trunk,
    list: &CredentialList,
    password: &SipPassword,
    origination_name: &str,
) -> Result<(Credential, Vec<OriginationUrl>), ApiError> {
    let twilio = &saga.services.twilio;
    let creds = saga.creds;
    let provider_id = saga.owner.provider_id;
    let username = provider_id.simple().to_string();
    let platform = &saga.services.platform_sip_uris;
    // One origination URL per platform ingress, side by side.
    let originations = futures::future::join_all(platform.targets().iter().map(|target| {
        twilio.create_origination_url(creds, &trunk.sid, OriginationTarget { target, friendly_name: origination_name })
    }));
    let mut known = intent.clone();
    if let Change::NewResources(new) = &mut known.change {
        saga.created.iter().for_each(|resource| new.add_known(resource));
    }
    // Deleting the trunk removes its origination URLs and its attachment, and deleting the
    // list its credential: the rollback and the intent need no entry for those.
    let (credential, attachment, originations, intent_updated) = tokio::join!(
        twilio.create_credential(creds, &list.sid, &username, password),
        twilio.attach_credential_list(creds, &trunk.sid, &list.sid),
        originations,
        saga.services.store.record_intent(&known),
    );
    if let Err(e) = intent_updated {
        // The intent still names both by their unique names.
        tracing::warn!(error = %e, "could not record the new SIDs in the create's intent");
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
    Ok((credential, originations))
}

/// The checks a new provider passed as it was made.
fn created_checks(
    saga: &Saga<'_>,
    account_check: VerificationCheck,
    settings: &TrunkSettings,
    made: &Made,
) -> Vec<VerificationCheck> {
    let (trunk, list, credential) = (&made.trunk, &made.list, &made.credential);
    let platform = &saga.services.platform_sip_uris;
    vec![
        credentials_passed(saga.creds),
        account_check,
        VerificationCheck::new(
            CheckName::Trunk,
            CheckStatus::Passed,
            format!("Created SIP trunk {} with domain {}.", trunk.sid, domain_name(&made.domain_label)),
            json!({"trunkSid": trunk.sid, "domainName": domain_name(&made.domain_label), "transferMode": settings.transfer_mode, "secure": settings.secure}),
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
        origination_check(&made.originations, platform, &made.origination_name),
    ]
}

/// The new provider's record, as the round trips made it.
fn new_record(
    saga: &Saga<'_>,
    command: &CreateTwilioProvider,
    credential: &SealedCredential,
    made: &Made,
    checks: Vec<VerificationCheck>,
) -> ProviderRecord {
    let now = Timestamp::now();
    let region = command.region.or(command.twilio_region.default_edge()).unwrap_or(saga.services.default_region);
    ProviderRecord {
        organization_id: saga.owner.organization_id.clone(),
        id: saga.owner.provider_id,
        name: command.name.clone(),
        account_sid: saga.creds.account_sid.clone(),
        credential: credential.clone(),
        region,
        twilio_region: command.twilio_region,
        supports_call_transfer: command.supports_call_transfer,
        secure_trunking: command.secure_trunking,
        disaster_recovery: command.disaster_recovery.clone(),
        trunk_sid: made.trunk.sid.clone(),
        domain_name: domain_name(&made.domain_label),
        termination_uri: region.termination_uri(&made.domain_label, command.secure_trunking),
        credential_list_sid: made.list.sid.clone(),
        verification_status: overall_status(&checks),
        last_verified_at: Some(now.clone()),
        verification_details: Some(checks),
        phone_number_count: 0,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
        deletion: None,
    }
}

/// A create whose outcome is unknown (timed out, or the connection broke off).
enum UnknownOutcome {
    Trunk { domain_name: String },
    CredentialList { friendly_name: String },
}

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
