//! Repairing a provider: verify, fix what is fixable, verify again and store the result.
//! Fixable: a deleted trunk (a new one, with a new domain and termination URI), a deleted or
//! detached credential list, a missing SIP credential (a new password), a missing,
//! disabled or misdirected origination URL, a `TransferMode` that differs from the stored
//! `supportsCallTransfer`, and imported numbers that are on no trunk. A number the customer
//! moved to another trunk is reported, never taken back.
//!
//! Safe to repeat: a repair of a healthy provider changes nothing and reports every action
//! `skipped`. Each action stands alone; new Twilio resources that the record must point at are
//! written in one conditional write after their Twilio work succeeded, and removed again if
//! that write fails, so a failure half-way leaves the provider no worse than before. Before
//! each is created, the repair's intent names it: a repair that dies before that write leaves
//! the intent, and the orphan sweeper removes what it names.

use crate::provider::cleanup::{record_for_sweeper, remove_or_record};
use crate::provider::create::{
    FRIENDLY_NAME_MAX_CHARS, create_trunk, domain_name, find_list_by_name, find_trunk_by_domain, fresh_sip_username,
    new_domain_labels, truncate_chars,
};
use crate::provider::record::{load_provider, owner_of, refuse_if_deleting, stored_credentials, under_lease};
use crate::provider::release::{KeyCache, release_with, voice_fields_as_imported};
use crate::provider::verify::{Verification, origination_friendly_name, verify, verify_as_saved};
use crate::services::Services;
use futures::StreamExt;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::crypto::{CryptoError, DataKey, SecretKind};
use shared::deadline::within;
use shared::dto::{RepairAction, RepairResponse, RepairResult, VerifyResponse};
use shared::model::{
    CheckName, CheckStatus, CredentialListSid, PhoneNumberSid, SipPassword, TrunkSid, TwilioCredentials, TwilioRegion,
};
use shared::store::{
    Change, Intent, IntentKey, NewResources, PhoneNumberRecord, ProviderRecord, SipCredentialRecord, StoreError,
};
use shared::twilio::TwilioResource;
use shared::twilio::{OriginationTarget, OriginationUrl};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How many items a repair reads from one Twilio list at most.
const LIST_CAP: usize = 10_000;
/// Numbers put back on the trunk at the same time.
const NUMBER_CONCURRENCY: usize = 5;
/// Time a repair keeps back from putting numbers back, for its last verification and the save.
const FINISH_RESERVE: Duration = Duration::from_secs(5);
/// Time the last verification leaves for the save.
const SAVE_RESERVE: Duration = Duration::from_millis(1500);
/// A number is not started with less time than this left before that.
const NUMBER_MIN_TIME: Duration = Duration::from_secs(1);
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
        let result = shared::item::variant_name(&action.result);
        shared::metrics::count("RepairActions", &[("Action", &action.action), ("Result", &result)]);
    }
    tracing::info!(
        organization_id = %record.organization_id,
        provider_id = %record.id,
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
                tracing::error!(provider_id = %record.id, error = %e, "could not record the repair's intent; nothing is created");
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

    /// The trunk exists with the stored transfer mode and `Secure`, or a new one replaces a
    /// deleted one.
    async fn trunk(&mut self) {
        let twilio = &self.services.twilio;
        let old_sid = self.record.trunk_sid.clone();
        let expected = self.record.trunk_settings();
        let expected_mode = expected.transfer_mode;
        match twilio.fetch_trunk(self.creds, &old_sid).await {
            Ok(trunk) => {
                self.note("recreateTrunk", &old_sid, RepairResult::Skipped, "The SIP trunk exists.");
                self.trunk_sid = Some(old_sid.clone());
                let mode_right = trunk.transfer_mode.as_deref() == Some(expected_mode.as_str());
                let secure_right = trunk.secure.unwrap_or(false) == expected.secure;
                let recovery_right = trunk.disaster_recovery() == expected.disaster_recovery;
                let updated = if mode_right && secure_right && recovery_right {
                    None
                } else {
                    Some(twilio.update_trunk(self.creds, &old_sid, &expected).await)
                };
                let recovery = match &expected.disaster_recovery {
                    Some(r) => format!("disaster recovery {} {}", r.method, r.url),
                    None => "no disaster recovery".to_owned(),
                };
                let checks = [
                    (
                        "setTransferMode",
                        mode_right,
                        format!("TransferMode {expected_mode}, as supportsCallTransfer asks"),
                    ),
                    ("setSecureTrunking", secure_right, format!("Secure {}, as secureTrunking asks", expected.secure)),
                    ("setDisasterRecovery", recovery_right, format!("{recovery}, as stored")),
                ];
                for (action, right, message) in checks {
                    let (result, message) = match (&updated, right) {
                        (None, _) | (Some(_), true) => (RepairResult::Skipped, format!("The trunk has {message}.")),
                        (Some(Ok(_)), false) => (RepairResult::Done, format!("Set the trunk to {message}.")),
                        (Some(Err(e)), false) => {
                            (RepairResult::Failed, format!("Could not set the trunk to {message}: {e}."))
                        }
                    };
                    self.note(action, &old_sid, result, message);
                }
            }
            Err(e) if e.is_not_found() => {
                let name = truncate_chars(&self.record.name, FRIENDLY_NAME_MAX_CHARS);
                let labels = new_domain_labels();
                if !self.intend(|new| new.trunk_domains.extend(labels.iter().map(|l| domain_name(l)))).await {
                    let message = format!("The SIP trunk {old_sid} was deleted; {NOT_RECORDED}");
                    self.note("recreateTrunk", &old_sid, RepairResult::Failed, message);
                    return;
                }
                match create_trunk(twilio, self.creds, &name, &expected, &labels).await {
                    Ok((trunk, label)) => {
                        self.created.push(TwilioResource::Trunk { trunk_sid: trunk.sid.clone() });
                        let message = format!(
                            "The SIP trunk {old_sid} was deleted; created {} with domain {} (the termination URI changes).",
                            trunk.sid,
                            domain_name(&label)
                        );
                        self.note("recreateTrunk", &trunk.sid, RepairResult::Done, message);
                        self.trunk_sid = Some(trunk.sid.clone());
                        self.new.trunk = Some((trunk.sid, label));
                    }
                    Err((e, label)) => {
                        if e.is_outcome_unknown() {
                            let found = find_trunk_by_domain(twilio, self.creds, &domain_name(&label)).await;
                            self.created.extend(found);
                        }
                        let message =
                            format!("The SIP trunk {old_sid} was deleted and a new one could not be created: {e}.");
                        self.note("recreateTrunk", &old_sid, RepairResult::Failed, message);
                    }
                }
            }
            Err(e) => self.note(
                "recreateTrunk",
                &old_sid,
                RepairResult::Failed,
                format!("Could not read the SIP trunk: {e}."),
            ),
        }
    }

    /// The credential list exists, holds the provider's SIP credential and is on the trunk.
    async fn credentials(&mut self) {
        let twilio = &self.services.twilio;
        let list_sid = self.record.credential_list_sid.clone();
        let (list, stored) = tokio::join!(
            twilio.fetch_credential_list(self.creds, &list_sid),
            self.services.store.get_sip_credential(&self.record.organization_id, self.record.id)
        );
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(provider_id = %self.record.id, error = %e, "could not read the SIP credential record");
                let message = "Could not read the stored SIP credential; retry.";
                self.note("recreateSipCredential", &list_sid, RepairResult::Failed, message);
                return;
            }
        };
        let list_sid = match list {
            Ok(_) => {
                self.note("recreateCredentialList", &list_sid, RepairResult::Skipped, "The credential list exists.");
                self.sip_credential_in(&list_sid, stored.as_ref()).await;
                list_sid
            }
            Err(e) if e.is_not_found() => match self.new_credential_list().await {
                Some(new_sid) => new_sid,
                None => return,
            },
            Err(e) => {
                let message = format!("Could not read the credential list: {e}.");
                self.note("recreateCredentialList", &list_sid, RepairResult::Failed, message);
                return;
            }
        };
        self.attach_list(&list_sid).await;
    }

    /// The stored SIP credential is in the list, or a new one (new password) is added.
    async fn sip_credential_in(&mut self, list_sid: &CredentialListSid, stored: Option<&SipCredentialRecord>) {
        let listed = self.services.twilio.list_credentials(self.creds, list_sid, LIST_CAP).await;
        let listed = match listed {
            Ok(listed) => listed,
            Err(e) => {
                let message = format!("Could not list the credential list's SIP credentials: {e}.");
                self.note("recreateSipCredential", list_sid, RepairResult::Failed, message);
                return;
            }
        };
        if let Some(stored) = stored {
            self.remove_unknown_credentials(list_sid, stored, &listed).await;
        }
        if let Some(stored) = stored.filter(|s| listed.iter().any(|c| c.sid == s.credential_sid)) {
            let message = format!("The credential list holds the SIP user {}.", stored.username);
            self.note("recreateSipCredential", &stored.credential_sid, RepairResult::Skipped, message);
            return;
        }
        // A rotation's previous credential still in the list keeps working until its overlap ends.
        let previous = stored
            .and_then(|s| s.previous.clone())
            .filter(|previous| listed.iter().any(|c| c.sid == previous.credential_sid));
        match self.new_sip_credential(list_sid, previous).await {
            Ok(credential) => {
                let message = format!(
                    "The SIP credential was missing from the list; created {} for user {} with a new password.",
                    credential.credential_sid, credential.username
                );
                self.note("recreateSipCredential", &credential.credential_sid, RepairResult::Done, message);
                self.created.push(TwilioResource::Credential {
                    list_sid: list_sid.clone(),
                    credential_sid: credential.credential_sid.clone(),
                });
                self.new.sip_credential = Some(credential);
            }
            Err(message) => self.note("recreateSipCredential", list_sid, RepairResult::Failed, message),
        }
    }

    /// A new credential list with a new SIP credential, for a list that was deleted.
    async fn new_credential_list(&mut self) -> Option<CredentialListSid> {
        let twilio = &self.services.twilio;
        let old_sid = self.record.credential_list_sid.clone();
        let name = format!("voice-ai-{}-{}", self.record.id, shared::time::unix_now());
        if !self.intend(|new| new.list_names.push(name.clone())).await {
            let message = format!("The credential list {old_sid} was deleted; {NOT_RECORDED}");
            self.note("recreateCredentialList", &old_sid, RepairResult::Failed, message);
            return None;
        }
        let list = match twilio.create_credential_list(self.creds, &name).await {
            Ok(list) => list,
            Err(e) => {
                if e.is_outcome_unknown() {
                    let found = find_list_by_name(twilio, self.creds, &name).await;
                    self.discard(found.into_iter().collect()).await;
                }
                let message =
                    format!("The credential list {old_sid} was deleted and a new one could not be created: {e}.");
                self.note("recreateCredentialList", &old_sid, RepairResult::Failed, message);
                return None;
            }
        };
        self.created.push(TwilioResource::CredentialList { list_sid: list.sid.clone() });
        match self.new_sip_credential(&list.sid, None).await {
            Ok(credential) => {
                let message = format!(
                    "The credential list {old_sid} was deleted; created {} with SIP user {} and a new password.",
                    list.sid, credential.username
                );
                self.note("recreateCredentialList", &list.sid, RepairResult::Done, message);
                self.new.credential_list_sid = Some(list.sid.clone());
                self.new.sip_credential = Some(credential);
                Some(list.sid)
            }
            Err(message) => {
                // A list without the provider's credential is of no use: it goes now, whatever
                // else the repair saves (the list takes any credential made in it along).
                self.discard(vec![TwilioResource::CredentialList { list_sid: list.sid.clone() }]).await;
                self.note("recreateCredentialList", &old_sid, RepairResult::Failed, message);
                None
            }
        }
    }

    /// Removes at once what a failed step made (recorded for the sweeper if it cannot be), so
    /// that nothing the record will not name stays in the account, whatever the rest of the
    /// repair saves; a credential left with the provider's username would block every later
    /// repair.
    async fn discard(&mut self, resources: Vec<TwilioResource>) {
        if resources.is_empty() {
            return;
        }
        self.created.retain(|made| !resources.contains(made));
        let owner = owner_of(self.record);
        remove_or_record(self.services, self.creds, &owner, &resources, self.data_key.as_ref()).await;
    }

    /// Credentials in the provider's list that are neither its current nor its previous one
    /// (what a rotation that died left, or one added by hand) authenticate calls nobody
    /// expects: they are removed.
    async fn remove_unknown_credentials(
        &mut self,
        list_sid: &CredentialListSid,
        stored: &SipCredentialRecord,
        listed: &[shared::twilio::Credential],
    ) {
        let unknown: Vec<&shared::twilio::Credential> = listed.iter().filter(|c| !stored.is_known(&c.sid)).collect();
        if unknown.is_empty() {
            let message = "The credential list holds no SIP credential but the provider's own.";
            self.note("removeUnknownSipCredentials", list_sid, RepairResult::Skipped, message);
            return;
        }
        let (twilio, creds) = (&self.services.twilio, self.creds);
        let removals = unknown.iter().map(|c| async move {
            let resource = TwilioResource::Credential { list_sid: list_sid.clone(), credential_sid: c.sid.clone() };
            (c, twilio.remove(creds, &resource).await)
        });
        let (mut removed, mut failed) = (Vec::new(), Vec::new());
        for (credential, result) in futures::future::join_all(removals).await {
            match result {
                Ok(()) => removed.push(format!("{} ({})", credential.sid, credential.username)),
                Err(e) => failed.push(format!("{} ({}): {e}", credential.sid, credential.username)),
            }
        }
        let (result, message) = match failed.is_empty() {
            true => (
                RepairResult::Done,
                format!("Removed SIP credentials the provider does not use: {}.", removed.join(", ")),
            ),
            false => (
                RepairResult::Failed,
                format!("Could not remove SIP credentials the provider does not use: {}.", failed.join("; ")),
            ),
        };
        self.note("removeUnknownSipCredentials", list_sid, result, message);
    }

    /// Creates a new SIP user for the provider in a list with a new password, sealed for
    /// storage; `previous` (a rotation's, still valid) stays beside it.
    async fn new_sip_credential(
        &mut self,
        list_sid: &CredentialListSid,
        previous: Option<shared::store::PreviousSipCredential>,
    ) -> Result<SipCredentialRecord, String> {
        if self.data_key.is_none() {
            match self.services.envelope.generate_data_key(&owner_of(self.record)).await {
                Ok(key) => self.data_key = Some(key),
                Err(e) => {
                    tracing::error!(provider_id = %self.record.id, error = %e, "no data key for a new SIP password");
                    return Err("Could not encrypt a new SIP password (KMS); nothing was created.".into());
                }
            }
        }
        let username = fresh_sip_username(self.record.id);
        if !self.intend(|new| new.credentials.push((list_sid.clone(), username.clone()))).await {
            return Err(format!("The SIP credential is missing; {NOT_RECORDED}"));
        }
        let data_key = self.data_key.as_ref().expect("set above");
        let password = SipPassword::generate();
        let twilio = &self.services.twilio;
        match twilio.create_credential(self.creds, list_sid, &username, &password).await {
            Ok(credential) => Ok(SipCredentialRecord {
                provider_id: self.record.id,
                username: credential.username,
                credential_sid: credential.sid,
                credential_list_sid: list_sid.clone(),
                password: data_key.seal(SecretKind::SipPassword, password.expose()),
                previous,
            }),
            Err(e) => {
                if e.is_outcome_unknown() {
                    let listed = twilio.list_credentials(self.creds, list_sid, LIST_CAP).await.unwrap_or_default();
                    let made: Vec<TwilioResource> = listed
                        .into_iter()
                        .filter(|c| c.username == username)
                        .map(|c| TwilioResource::Credential { list_sid: list_sid.clone(), credential_sid: c.sid })
                        .collect();
                    self.discard(made).await;
                }
                Err(format!("Could not create the SIP credential: {e}."))
            }
        }
    }

    async fn attach_list(&mut self, list_sid: &CredentialListSid) {
        let twilio = &self.services.twilio;
        let trunk_sid = self.trunk_sid.clone().expect("credentials run only with a trunk");
        let fresh = self.trunk_is_new() || self.new.credential_list_sid.is_some();
        if !fresh {
            match twilio.list_trunk_credential_lists(self.creds, &trunk_sid, LIST_CAP).await {
                Ok(attached) if attached.iter().any(|a| &a.sid == list_sid) => {
                    let message = "The credential list is attached to the trunk.";
                    self.note("attachCredentialList", list_sid, RepairResult::Skipped, message);
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    let message = format!("Could not read the trunk's credential lists: {e}.");
                    self.note("attachCredentialList", list_sid, RepairResult::Failed, message);
                    return;
                }
            }
        }
        match twilio.attach_credential_list(self.creds, &trunk_sid, list_sid).await {
            Ok(_) => {
                let message = format!("Attached the credential list to the trunk {trunk_sid}.");
                self.note("attachCredentialList", list_sid, RepairResult::Done, message);
            }
            Err(e) => {
                let message = format!("Could not attach the credential list to the trunk: {e}.");
                self.note("attachCredentialList", list_sid, RepairResult::Failed, message);
            }
        }
    }

    /// Every platform ingress has an enabled origination URL on the trunk with its priority and
    /// weight. The service's own origination URLs (found by their friendly name) are updated,
    /// reused for an ingress that has none, or removed when they name no ingress (the
    /// deployment's PLATFORM_SIP_URI changed); the customer's others are left.
    async fn origination(&mut self) {
        let (twilio, creds) = (&self.services.twilio, self.creds);
        let trunk_sid = self.trunk_sid.clone().expect("origination runs only with a trunk");
        let platform = &self.services.platform_sip_uris;
        let friendly_name = origination_friendly_name(self.record.id);
        let existing = if self.trunk_is_new() {
            Vec::new()
        } else {
            match twilio.list_origination_urls(creds, &trunk_sid, LIST_CAP).await {
                Ok(urls) => urls,
                Err(e) => {
                    let message = format!("Could not read the trunk's origination URLs: {e}.");
                    self.note("setOriginationUrl", &trunk_sid, RepairResult::Failed, message);
                    return;
                }
            }
        };
        let own = |u: &&OriginationUrl| u.friendly_name.as_deref() == Some(friendly_name.as_str());
        let mut spare: Vec<&OriginationUrl> =
            existing.iter().filter(own).filter(|u| platform.target_of(&u.sip_url).is_none()).collect();
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for target in platform.targets() {
            let pointing: Vec<&OriginationUrl> = existing.iter().filter(|u| target.uri.matches(&u.sip_url)).collect();
            let right = |u: &&&OriginationUrl| {
                u.enabled
                    && u.priority == Some(u32::from(target.priority))
                    && u.weight == Some(u32::from(target.weight))
            };
            if pointing.iter().any(|u| right(&u)) {
                continue;
            }
            let wanted = OriginationTarget { target, friendly_name: &friendly_name };
            let reused = pointing.iter().copied().find(|u| own(u)).or_else(|| spare.pop());
            let result = match reused {
                Some(url) => twilio.update_origination_url(creds, &trunk_sid, &url.sid, wanted).await,
                None => twilio.create_origination_url(creds, &trunk_sid, wanted).await,
            };
            let what = format!("{} (priority {}, weight {})", target.uri, target.priority, target.weight);
            match result {
                Ok(url) => {
                    done.push(format!("{} {} at {what}", if reused.is_some() { "pointed" } else { "added" }, url.sid))
                }
                Err(e) => failed.push(format!("{what}: {e}")),
            }
        }
        for url in spare {
            match twilio.delete_origination_url(creds, &trunk_sid, &url.sid).await {
                Ok(()) => done.push(format!("removed {} ({}), which names no platform ingress", url.sid, url.sip_url)),
                Err(e) if e.is_not_found() => {}
                Err(e) => failed.push(format!("removing {} ({}): {e}", url.sid, url.sip_url)),
            }
        }
        let (result, message) = match (done.is_empty(), failed.is_empty()) {
            (true, true) => (RepairResult::Skipped, format!("Inbound calls go to the platform ({platform}).")),
            (_, true) => (RepairResult::Done, format!("Origination URLs set, enabled: {}.", done.join("; "))),
            (_, false) => (
                RepairResult::Failed,
                format!(
                    "Could not set every origination URL: {}{}.",
                    failed.join("; "),
                    if done.is_empty() { String::new() } else { format!(" (done: {})", done.join("; ")) }
                ),
            ),
        };
        self.note("setOriginationUrl", &trunk_sid, result, message);
    }

    /// Imported numbers on no trunk go back on the provider's trunk.
    async fn numbers(&mut self) {
        let twilio = &self.services.twilio;
        let trunk_sid = self.trunk_sid.clone().expect("numbers run only with a trunk");
        let imported = match self.services.store.all_numbers(&self.record.organization_id, self.record.id).await {
            Ok(imported) => imported,
            Err(e) => {
                tracing::error!(provider_id = %self.record.id, error = %e, "could not read the imported numbers");
                self.note(
                    "reattachNumbers",
                    &trunk_sid,
                    RepairResult::Failed,
                    "Could not read the imported numbers; retry.",
                );
                return;
            }
        };
        self.imported = Some(imported.clone());
        let on_trunk: HashSet<PhoneNumberSid> = if self.trunk_is_new() || imported.is_empty() {
            HashSet::new()
        } else {
            match twilio.list_trunk_phone_numbers(self.creds, &trunk_sid, LIST_CAP).await {
                Ok(numbers) => numbers.into_iter().map(|n| n.sid).collect(),
                Err(e) => {
                    let message = format!("Could not list the trunk's numbers: {e}.");
                    self.note("reattachNumbers", &trunk_sid, RepairResult::Failed, message);
                    return;
                }
            }
        };
        let missing: Vec<_> = imported.iter().filter(|n| !on_trunk.contains(&n.phone_number_sid)).collect();
        if missing.is_empty() {
            let message = format!("All {} imported numbers are on the trunk.", imported.len());
            self.note("reattachNumbers", &trunk_sid, RepairResult::Skipped, message);
            return;
        }
        let missing: Vec<PhoneNumberRecord> = missing.into_iter().cloned().collect();
        let total = missing.len();
        // The routing each number had before import, to tell a number the customer re-routed
        // from one that merely fell off the trunk (one KMS call per data key). A key that cannot
        // be opened fails only its own numbers (they are not put back unchecked); KMS itself
        // failing stops the loading, as every further call would fail too.
        let mut keys = KeyCache::default();
        for number in &missing {
            match keys.load(self.services, self.record, std::slice::from_ref(number)).await {
                Ok(()) => {}
                Err(e @ CryptoError::Kms(_)) => {
                    tracing::warn!(provider_id = %self.record.id, error = %e, "KMS failed opening numbers' routing before import");
                    break;
                }
                Err(e) => {
                    tracing::warn!(provider_id = %self.record.id, phone_number_sid = %number.phone_number_sid, error = %e, "cannot open a number's routing before import");
                }
            }
        }
        let keys = &keys;
        // Numbers are started only while one can finish with time left to verify and save: a
        // repair stopped by its deadline would leave a rebuilt trunk out of the record.
        let until = shared::deadline::remaining().map(|left| Instant::now() + left.saturating_sub(FINISH_RESERVE));
        let in_time = move || until.is_none_or(|until| Instant::now() + NUMBER_MIN_TIME <= until);
        let (services, provider, creds, trunk_sid) = (self.services, self.record, self.creds, &trunk_sid);
        let outcomes: Vec<RepairAction> = futures::stream::iter(missing)
            .take_while(|_| std::future::ready(in_time()))
            .map(|number| within(until, reattach_number(services, provider, creds, keys, trunk_sid, number)))
            .buffered(NUMBER_CONCURRENCY)
            .collect()
            .await;
        let not_started = total - outcomes.len();
        self.actions.extend(outcomes);
        if not_started > 0 {
            let message = format!(
                "{not_started} of {total} numbers on no trunk were not put back: the repair ran out of time. Repeat the repair to put back the rest."
            );
            self.note("reattachNumbers", trunk_sid, RepairResult::Failed, message);
        }
    }

    /// IE1 and AU1: every imported number on the trunk has its calls processed in the provider's
    /// Region again (import set it so; the customer may have changed it since). Each is read
    /// first and set only where it differs; numbers are started only while there is time.
    async fn voice_regions(&mut self) {
        // Without the imported numbers `numbers` has said so already.
        let Some(imported) = self.imported.take().filter(|_| self.creds.region != TwilioRegion::Us1) else {
            return;
        };
        if imported.is_empty() {
            // Nothing to route: no need to list the trunk's numbers again.
            let (trunk_sid, region) =
                (self.trunk_sid.clone().expect("numbers run only with a trunk"), self.creds.region);
            let message = format!("All 0 numbers on the trunk have their calls processed in {region}.");
            self.note("routeNumbers", &trunk_sid, RepairResult::Skipped, message);
            return;
        }
        let (twilio, creds) = (&self.services.twilio, self.creds);
        let trunk_sid = self.trunk_sid.clone().expect("numbers run only with a trunk");
        // Read again: `numbers` has just put some back.
        let on_trunk = match twilio.list_trunk_phone_numbers(creds, &trunk_sid, LIST_CAP).await {
            Ok(on_trunk) => on_trunk,
            Err(e) => {
                let message = format!(
                    "Could not list the trunk's numbers: {e}; their inbound processing Region was not checked. Retry."
                );
                self.note("routeNumbers", &trunk_sid, RepairResult::Failed, message);
                return;
            }
        };
        let on_trunk: HashSet<PhoneNumberSid> = on_trunk.into_iter().map(|n| n.sid).collect();
        let numbers: Vec<String> =
            imported.into_iter().filter(|n| on_trunk.contains(&n.phone_number_sid)).map(|n| n.phone_number).collect();
        let until = shared::deadline::remaining().map(|left| Instant::now() + left.saturating_sub(FINISH_RESERVE));
        let wanted = creds.region.as_str();
        let (mut set, mut failed, mut not_started) = (0, Vec::new(), 0);
        for chunk in numbers.chunks(NUMBER_CONCURRENCY) {
            if until.is_some_and(|until| Instant::now() + NUMBER_MIN_TIME > until) {
                not_started += chunk.len();
                continue;
            }
            let fixes = chunk.iter().map(|number| async move {
                let result = match twilio.fetch_voice_region(creds, number).await {
                    Ok(region) if region == wanted => Ok(false),
                    Ok(_) => twilio.set_voice_region(creds, number, wanted).await.map(|()| true),
                    Err(e) => Err(e),
                };
                (number, result)
            });
            for (number, result) in within(until, futures::future::join_all(fixes)).await {
                match result {
                    Ok(changed) => set += usize::from(changed),
                    Err(e) => failed.push(format!("{number}: {e}")),
                }
            }
        }
        let region = creds.region;
        let (result, message) = match (set, failed.len(), not_started) {
            (0, 0, 0) => (
                RepairResult::Skipped,
                format!("All {} numbers on the trunk have their calls processed in {region}.", numbers.len()),
            ),
            (set, 0, 0) => (RepairResult::Done, format!("{set} numbers have their calls processed in {region} again.")),
            (set, _, _) => (
                RepairResult::Failed,
                format!(
                    "{set} numbers have their calls processed in {region} again; {} could not be set ({}) and {not_started} were not started (out of time). Repeat the repair.",
                    failed.len(),
                    failed.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
                ),
            ),
        };
        self.note("routeNumbers", &trunk_sid, result, message);
    }

    /// Verifies the provider as repaired and stores the result with the new references (one
    /// conditional write). If that write fails, what was made for the new references is
    /// removed and their actions are reported failed.
    async fn finish(mut self) -> Result<(Vec<RepairAction>, VerifyResponse), ApiError> {
        let services = self.services;
        let mut repaired = self.record.clone();
        self.new.apply_to(&mut repaired);
        // Twilio's reads end in time for the save.
        let until = shared::deadline::remaining().map(|left| Instant::now() + left.saturating_sub(SAVE_RESERVE));
        let new_credential = self.new.sip_credential.as_ref();
        let after = within(until, Box::pin(verify_as_saved(services, &repaired, self.creds, new_credential))).await;
        let has_new_references = self.new.trunk.is_some() || self.new.sip_credential.is_some();
        if !has_new_references {
            // Whatever a failed step made (a list whose credential failed) goes again.
            self.undo_created().await;
            let event = self.event(&after);
            let verification = after.store_as(services, repaired, &event).await?;
            return Ok((self.actions, verification));
        }
        match self.save_new_references(&after).await {
            Ok(()) => Ok((self.actions, after.into_response())),
            Err(error) => {
                self.undo_created().await;
                for action in self.actions.iter_mut().filter(|a| a.result == RepairResult::Done) {
                    if matches!(
                        action.action.as_str(),
                        "recreateTrunk" | "recreateCredentialList" | "recreateSipCredential"
                    ) {
                        action.result = RepairResult::Failed;
                        action.message = format!("{} It was undone: the provider could not be saved.", action.message);
                    }
                }
                Err(error)
            }
        }
    }

    /// Removes what this repair created (what cannot be removed is recorded as left behind),
    /// then its intent.
    async fn undo_created(&mut self) {
        let owner = owner_of(self.record);
        remove_or_record(self.services, self.creds, &owner, &self.created, self.data_key.as_ref()).await;
        if let Some(intent) = self.intent.take()
            && let Err(e) = self.services.store.forget_intent(&intent.key).await
        {
            tracing::warn!(provider_id = %self.record.id, error = %e, "could not remove a repair's intent; the sweeper will");
        }
    }

    /// The repair's event: what it did, to which resources, and the verification after.
    fn event(&self, after: &Verification) -> AuditEvent {
        let done = self.actions.iter().filter(|a| a.result == RepairResult::Done);
        let described: Vec<String> = done.clone().map(|a| format!("{} {}", a.action, a.resource)).collect();
        let mut event = AuditEvent::new(&self.record.organization_id, self.record.id, Action::Repair)
            .sids(done.map(|a| a.resource.clone()).filter(|r| r.len() == 34))
            .outcome(after.status_name())
            .detail(described.join("; "));
        if let Some(credential) = &self.new.sip_credential {
            event = event.sid(&credential.credential_sid);
        }
        event
    }

    /// Writes the new references and the verification, conditional on the record's version.
    /// A concurrent change to anything else is re-applied on; a concurrent repair or delete
    /// (the references changed, or a delete started) wins.
    async fn save_new_references(&self, after: &Verification) -> Result<(), ApiError> {
        let store = &self.services.store;
        let mut current = self.record.clone();
        for attempt in 1..=SAVE_ATTEMPTS {
            if attempt > 1 && self.kept_already(&current).await {
                return Ok(());
            }
            let moved = current.trunk_sid != self.record.trunk_sid
                || current.credential_list_sid != self.record.credential_list_sid;
            if moved || current.deletion.is_some() {
                return Err(ApiError::Conflict(format!(
                    "Provider {} was repaired or deleted by another request at the same time; nothing of this repair was kept.",
                    self.record.id
                )));
            }
            let mut updated = current.clone();
            self.new.apply_to(&mut updated);
            after.apply_to(&mut updated);
            updated.version = current.version + 1;
            updated.updated_at = shared::time::Timestamp::now();
            let intent = self.intent.as_ref().map(|intent| &intent.key);
            let event = self.event(after);
            match store
                .replace_provider_and_credential(&updated, self.new.sip_credential.as_ref(), intent, Some(&event))
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::VersionConflict) if attempt < SAVE_ATTEMPTS => {
                    current = load_provider(store, &self.record.organization_id, self.record.id).await?;
                }
                Err(StoreError::VersionConflict) => {
                    return Err(ApiError::Conflict(format!(
                        "Provider {} was changed by other requests at the same time; retry the repair.",
                        self.record.id
                    )));
                }
                Err(e) => {
                    return match load_provider(store, &self.record.organization_id, self.record.id).await {
                        Ok(now) if self.kept_already(&now).await => Ok(()),
                        _ => Err(e.into()),
                    };
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Whether this repair's own write is already stored, though its answer was lost after it
    /// committed (the SDK's retry then meets the new version): the record holds the new
    /// references, or, when only the SIP credential is new, the stored credential is the new
    /// one. What it names must then not be rolled back.
    async fn kept_already(&self, current: &ProviderRecord) -> bool {
        let mut ours = self.record.clone();
        self.new.apply_to(&mut ours);
        if ours.trunk_sid != self.record.trunk_sid || ours.credential_list_sid != self.record.credential_list_sid {
            return current.trunk_sid == ours.trunk_sid && current.credential_list_sid == ours.credential_list_sid;
        }
        let Some(new) = &self.new.sip_credential else { return false };
        self.services.store.sip_credential_is_current(&self.record.organization_id, new).await
    }
}

/// Puts an imported number back on the trunk if it is on no trunk, has no voice application and
/// its voice fields are as import left them: a number moved to another trunk, given an
/// application or pointed at another voice URL is the customer's choice and stays so
/// (attaching would take its calls away).
async fn reattach_number(
    services: &Services,
    provider: &ProviderRecord,
    creds: &TwilioCredentials,
    keys: &KeyCache,
    trunk_sid: &TrunkSid,
    number: PhoneNumberRecord,
) -> RepairAction {
    let twilio = &services.twilio;
    let sid = &number.phone_number_sid;
    let current = match twilio.fetch_incoming_number(creds, sid).await {
        Ok(current) => current,
        Err(e) if e.is_not_found() => {
            let message =
                format!("{} is no longer in the Twilio account; remove it from the provider.", number.phone_number);
            return action("reattachNumber", sid, RepairResult::Failed, message);
        }
        Err(e) => {
            let message = format!("Could not read {}: {e}.", number.phone_number);
            return action("reattachNumber", sid, RepairResult::Failed, message);
        }
    };
    if let Some(other) = current.trunk_sid.as_ref().filter(|t| *t != trunk_sid) {
        let message = format!(
            "{} was moved to another trunk ({other}); it was left there. Remove it from the provider, or move it back in Twilio and repair again.",
            number.phone_number
        );
        return action("reattachNumber", sid, RepairResult::Skipped, message);
    }
    if let Some(application) = current.voice_routing().voice_application_sid {
        let message = format!(
            "{} was given a voice application ({application}) after import; it was left so. Remove it from the provider, or take the application off in Twilio and repair again.",
            number.phone_number
        );
        return action("reattachNumber", sid, RepairResult::Skipped, message);
    }
    let previous = match keys.previous_routing(&number) {
        Ok(previous) => previous,
        Err(e) => {
            let message = format!("Could not open the routing {} had before import: {e}.", number.phone_number);
            return action("reattachNumber", sid, RepairResult::Failed, message);
        }
    };
    if !voice_fields_as_imported(&current.voice_routing(), &previous) {
        let message = format!(
            "{}'s voice URL was changed after it left the trunk; it was left as set. Remove it from the provider, or set its voice URL back in Twilio and repair again.",
            number.phone_number
        );
        return action("reattachNumber", sid, RepairResult::Skipped, message);
    }
    if let Err(e) = twilio.attach_phone_number(creds, trunk_sid, sid).await {
        let message = format!("Could not put {} back on the trunk: {e}.", number.phone_number);
        return action("reattachNumber", sid, RepairResult::Failed, message);
    }
    // A removal or delete running meanwhile may have given the number back and forgotten it
    // after it was read: then it is given back again, or it would stay on the trunk unrecorded.
    let store = &services.store;
    if let Ok(None) = store.get_number(&provider.organization_id, provider.id, number.id).await {
        // Given back from the trunk it was just put on (a rebuilt one is not yet the record's).
        let given_back = release_with(twilio, creds, trunk_sid, sid, &previous).await.map(drop);
        return match given_back {
            Ok(()) => {
                let message = format!(
                    "{} was removed from the provider meanwhile; it was left off the trunk.",
                    number.phone_number
                );
                action("reattachNumber", sid, RepairResult::Skipped, message)
            }
            Err(e) => {
                tracing::error!(provider_id = %provider.id, phone_number_sid = %sid, error = %e, "a number removed during repair is on the trunk");
                let leftover =
                    TwilioResource::TrunkPhoneNumber { trunk_sid: trunk_sid.clone(), number_sid: sid.clone() };
                if let Err(e) = record_for_sweeper(services, provider, &[leftover], std::slice::from_ref(&number)).await
                {
                    tracing::error!(provider_id = %provider.id, phone_number_sid = %sid, error = %e, "could not record it for the orphan sweeper");
                }
                let message = format!(
                    "{} was removed from the provider meanwhile, and could not be taken off the trunk again: {e}.",
                    number.phone_number
                );
                action("reattachNumber", sid, RepairResult::Failed, message)
            }
        };
    }
    let message = format!("Put {} back on the trunk {trunk_sid}.", number.phone_number);
    action("reattachNumber", sid, RepairResult::Done, message)
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
