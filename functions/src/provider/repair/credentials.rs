//! Repairing the credential list: it exists, holds the provider's SIP credential (and no
//! unknown one) and is attached to the trunk.

use super::{LIST_CAP, NOT_RECORDED, Repair};
use crate::provider::cleanup::remove_or_record;
use crate::provider::create::{find_list_by_name, fresh_sip_username};
use crate::provider::record::owner_of;
use shared::crypto::SecretKind;
use shared::dto::RepairResult;
use shared::model::{CredentialListSid, SipPassword};
use shared::storage::{PreviousSipCredential, SipCredentialRecord};
use shared::twilio::{Credential, TwilioResource};

impl Repair<'_> {
    /// The credential list exists, holds the provider's SIP credential and is on the trunk.
    pub(super) async fn credentials(&mut self) {
        let twilio = &self.services.twilio;
        let list_sid = self.record.credential_list_sid.clone();
        let (list, stored) = tokio::join!(
            twilio.fetch_credential_list(self.creds, &list_sid),
            self.services.store.get_sip_credential(&self.record.organization_id, self.record.id)
        );
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(error = %e, "could not read the SIP credential record");
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
        listed: &[Credential],
    ) {
        let unknown: Vec<&Credential> = listed.iter().filter(|c| !stored.is_known(&c.sid)).collect();
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
        previous: Option<PreviousSipCredential>,
    ) -> Result<SipCredentialRecord, String> {
        if self.data_key.is_none() {
            match self.services.envelope.generate_data_key(&owner_of(self.record)).await {
                Ok(key) => self.data_key = Some(key),
                Err(e) => {
                    tracing::error!(error = %e, "no data key for a new SIP password");
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
}
