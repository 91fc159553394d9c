//! Repairing a provider: verify, fix what is fixable, verify again and store the result; safe to repeat.
//! Why: docs/decisions/repair-safe-to-repeat.md.

mod credentials;
mod finish;
mod numbers;
mod origination;
mod trunk;

use crate::provider::create::domain_name;
use crate::provider::record::{load_provider, refuse_if_deleting, stored_credentials, under_lease};
use crate::provider::verify::{Verification, verify};
use crate::services::Services;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::crypto::DataKey;
use shared::dto::{RepairAction, RepairResponse, RepairResult};
use shared::model::{CheckName, CheckStatus, CredentialListSid, TrunkSid, TwilioCredentials};
use shared::storage::{
    Change, Intent, IntentKey, NewResources, PhoneNumberRecord, ProviderRecord, SipCredentialRecord,
};
use shared::twilio::TwilioResource;

/// How many items a repair reads from one Twilio list at most.
const LIST_CAP: usize = 10_000;
/// Numbers put back on the trunk at the same time.
const NUMBER_CONCURRENCY: usize = 5;
/// Conditional writes of the repaired record before giving up with 409.
const SAVE_ATTEMPTS: u32 = 5;
/// Why a resource was not created: its intent could not be stored.
const NOT_RECORDED: &str =
    "nothing was created, as the repair could not record what it was about to create (storage unavailable). Retry.";

/// Repairs the provider with its stored credentials (refused while a delete is in progress).
/// One repair of a provider at a time: two (a client retrying after API Gateway's timeout while
/// the first still runs, say) would each rebuild what is missing, and the loser's rollback
/// would take numbers off the winner's new trunk. The other answers 409, as does a repair while
/// a `supportsCallTransfer` change (which holds the same lease) runs.
#[tracing::instrument(skip_all, fields(organization_id = %record.organization_id, provider_id = %record.id))]
pub async fn repair_provider(services: &Services, record: ProviderRecord) -> Result<RepairResponse, ApiError> {
    refuse_if_deleting(&record)?;
    let (org, id) = (record.organization_id.clone(), record.id);
    // Read again under the lease: a transfer change (which holds the lease too) may have set
    // the trunk and the stored value since the caller read it.
    let repaired = async {
        let record = load_provider(&services.store, &org, id).await?;
        refuse_if_deleting(&record)?;
        let creds = stored_credentials(services, &record).await?;
        repair(services, record, &creds).await
    };
    under_lease(services, &org, id, repaired).await
}

async fn repair(
    services: &Services,
    record: ProviderRecord,
    creds: &TwilioCredentials,
) -> Result<RepairResponse, ApiError> {
    let before = Box::pin(verify(services, &record, creds)).await;
    if let Some(reason) = unfixable(&before) {
        let event = AuditEvent::new(&record.organization_id, record.id, Action::Repair)
            .outcome("failed")
            .detail(reason.clone());
        let actions = vec![action("repair", record.account_sid.as_str(), RepairResult::Failed, reason)];
        let verification = before.store_as(services, record, &event).await?;
        return Ok(RepairResponse { actions, verification });
    }
    let mut run = Repair::new(services, creds, &record);
    run.trunk().await;
    if run.trunk_sid.is_some() {
        run.credentials().await;
        run.origination().await;
        run.numbers().await;
        run.voice_regions().await;
    }
    let (actions, verification) = run.finish().await?;
    for action in &actions {
        let result = shared::storage::item::variant_name(&action.result);
        shared::metrics::count("RepairActions", &[("Action", &action.action), ("Result", &result)]);
    }
    tracing::info!(
        done = actions.iter().filter(|a| a.result == RepairResult::Done).count(),
        failed = actions.iter().filter(|a| a.result == RepairResult::Failed).count(),
        status = ?verification.status,
        "provider repaired"
    );
    Ok(RepairResponse { actions, verification })
}

/// Why nothing can be repaired: Twilio rejects the credentials, cannot be reached, or the
/// account cannot be used.
fn unfixable(verification: &Verification) -> Option<String> {
    let check = |name: CheckName| verification.checks.iter().find(|c| c.check_name == name);
    if let Some(credentials) = check(CheckName::Credentials).filter(|c| c.status != CheckStatus::Passed) {
        return Some(format!("Nothing was changed: {}", credentials.message));
    }
    if let Some(account) = check(CheckName::Account).filter(|c| c.status == CheckStatus::Failed) {
        return Some(format!("Nothing was changed: {}", account.message));
    }
    None
}

fn action(action: &str, resource: impl ToString, result: RepairResult, message: impl Into<String>) -> RepairAction {
    RepairAction { action: action.to_owned(), resource: resource.to_string(), result, message: message.into() }
}

/// The record's new Twilio references, once their Twilio work succeeded.
#[derive(Default)]
struct NewReferences {
    /// The new trunk's SID and domain label.
    trunk: Option<(TrunkSid, String)>,
    credential_list_sid: Option<CredentialListSid>,
    sip_credential: Option<SipCredentialRecord>,
}

struct Repair<'a> {
    services: &'a Services,
    creds: &'a TwilioCredentials,
    record: &'a ProviderRecord,
    actions: Vec<RepairAction>,
    /// The trunk the provider uses from here on; None when it could not be read or made.
    trunk_sid: Option<TrunkSid>,
    new: NewReferences,
    /// Resources made for the new references, removed again if the record cannot be written.
    created: Vec<TwilioResource>,
    /// Names what is about to be created, once something is: written before each create.
    intent: Option<Intent>,
    data_key: Option<DataKey>,
    /// The imported numbers as `numbers` read them, for `voice_regions` after it.
    imported: Option<Vec<PhoneNumberRecord>>,
}

impl<'a> Repair<'a> {
    fn new(services: &'a Services, creds: &'a TwilioCredentials, record: &'a ProviderRecord) -> Self {
        Self {
            services,
            creds,
            record,
            actions: Vec::new(),
            trunk_sid: None,
            new: NewReferences::default(),
            created: Vec::new(),
            intent: None,
            data_key: None,
            imported: None,
        }
    }

    /// Adds what is about to be created to the repair's intent and stores it; false (and
    /// nothing may be created) when it cannot be stored.
    async fn intend(&mut self, add: impl FnOnce(&mut NewResources)) -> bool {
        let record = self.record;
        let intent = self.intent.get_or_insert_with(|| {
            Intent::now(
                IntentKey::new(record.organization_id.clone(), record.id),
                record.account_sid.clone(),
                record.twilio_region,
                record.credential.clone(),
                Change::NewResources(NewResources::default()),
            )
        });
        let Change::NewResources(new) = &mut intent.change else { unreachable!("a repair's intent is new resources") };
        add(new);
        new.known.clear();
        self.created.iter().for_each(|resource| new.add_known(resource));
        match self.services.store.record_intent(intent).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "could not record the repair's intent; nothing is created");
                false
            }
        }
    }

    fn note(&mut self, name: &str, resource: impl ToString, result: RepairResult, message: impl Into<String>) {
        self.actions.push(action(name, resource, result, message));
    }

    fn trunk_is_new(&self) -> bool {
        self.new.trunk.is_some()
    }
}

impl NewReferences {
    fn apply_to(&self, record: &mut ProviderRecord) {
        if let Some((trunk_sid, label)) = &self.trunk {
            record.trunk_sid = trunk_sid.clone();
            record.domain_name = domain_name(label);
            record.termination_uri = record.region.termination_uri(label, record.secure_trunking);
        }
        if let Some(list_sid) = &self.credential_list_sid {
            record.credential_list_sid = list_sid.clone();
        }
    }
}
