//! Taking an imported number back off a provider's trunk and giving the customer back the voice configuration it had
//! (number removal, a failed import, provider deletion). Why: docs/decisions/give-back-numbers.md.

use crate::provider::cleanup::record_for_sweeper;
use crate::provider::record::{
    load_provider, owner_of, refuse_if_deleting, stored_credentials, stored_credentials_error,
};
use crate::services::Services;
use secrecy::ExposeSecret;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::crypto::{CryptoError, DataKey, EncryptedSecret, SecretKind, SecretOwner};
use shared::dto::RemovedNumber;
use shared::model::{OrganizationId, PhoneNumberSid, TrunkSid, TwilioCredentials, TwilioRegion, VoiceRouting};
use shared::storage::{Change, Intent, IntentKey, PhoneNumberRecord, ProviderRecord, StoreError};
use shared::twilio::{IncomingPhoneNumber, TwilioClient, TwilioError, TwilioResource};
use uuid::Uuid;

/// What giving a number back did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GivenBack {
    /// Off the trunk, with the recorded configuration in force again.
    Restored,
    /// The number left the account (or the provider's trunk) already: nothing to give back.
    Gone,
    /// Not given back as it was, and why: the customer changed it after import (left as they
    /// set it), or its previous trunk or application no longer exists (detached).
    NotRestored(String),
}

/// Why a number could not be given back.
#[derive(Debug)]
pub enum GiveBackError {
    Twilio(&'static str, TwilioError),
    /// The recorded configuration could not be decrypted.
    Secret(CryptoError),
}

impl GiveBackError {
    /// Twilio may have done it: its answer was lost.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Twilio(_, e) if e.is_outcome_unknown())
    }
}

impl std::fmt::Display for GiveBackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Twilio(step, e) => write!(f, "failed {step}: {e}"),
            // The cause (KMS text, which can name keys and accounts) goes to the log, not here.
            Self::Secret(CryptoError::Kms(_)) => {
                write!(f, "could not read the recorded voice configuration (key service unavailable)")
            }
            Self::Secret(_) => write!(
                f,
                "its recorded voice configuration cannot be opened (damaged, or another record's), so what to give back is not known"
            ),
        }
    }
}

/// Data keys unwrapped while giving back a provider's numbers: numbers imported in one request
/// share one key, so a provider with many numbers costs one KMS call per import, not per number.
#[derive(Default)]
pub struct KeyCache(Vec<DataKey>);

impl KeyCache {
    /// Unwraps (one KMS call each) the keys these numbers need that the cache lacks.
    pub async fn load(
        &mut self,
        services: &Services,
        provider: &ProviderRecord,
        numbers: &[PhoneNumberRecord],
    ) -> Result<(), CryptoError> {
        // Collected first: a lazy iterator held across the awaits would make the future not Send.
        let sealed: Vec<&EncryptedSecret> = numbers.iter().filter_map(|n| n.previous_routing_sealed.as_ref()).collect();
        self.load_sealed(services, &owner_of(provider), sealed).await
    }

    /// Likewise for sealed routings of `owner`, however they are kept. Only the key service
    /// failing is an error; a routing whose key cannot be opened at all (damaged, or another
    /// record's) fails its own number when it is opened ([`Self::routing`]), not the others.
    pub async fn load_sealed<'a>(
        &mut self,
        services: &Services,
        owner: &SecretOwner,
        sealed: impl IntoIterator<Item = &'a EncryptedSecret>,
    ) -> Result<(), CryptoError> {
        for sealed in sealed {
            if !self.0.iter().any(|key| key.opens(sealed)) {
                match services.envelope.unwrap_key(owner, sealed).await {
                    Ok(key) => self.0.push(key),
                    Err(e @ CryptoError::Kms(_)) => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "a recorded voice configuration cannot be opened"),
                }
            }
        }
        Ok(())
    }

    /// The exact configuration a number had before import (its key loaded first).
    pub fn previous_routing(&self, number: &PhoneNumberRecord) -> Result<VoiceRouting, CryptoError> {
        self.routing(&number.previous_routing, number.previous_routing_sealed.as_ref())
    }

    /// The exact routing, from its stored (masked) and sealed forms.
    pub fn routing(
        &self,
        stored: &VoiceRouting,
        sealed: Option<&EncryptedSecret>,
    ) -> Result<VoiceRouting, CryptoError> {
        let Some(sealed) = sealed else {
            // Nothing secret in it: the stored one is exact.
            return Ok(stored.clone());
        };
        let key = self.0.iter().find(|key| key.opens(sealed)).ok_or(CryptoError::WrongContext)?;
        let json = key.open(SecretKind::VoiceRouting, sealed)?;
        serde_json::from_str(json.expose_secret()).map_err(|_| CryptoError::Malformed("voice routing is not JSON"))
    }
}

/// Removes an imported number: given back (unless the customer changed it since: then left
/// as they set it), then forgotten. An intent is recorded first: a removal that dies between
/// the give-back and forgetting the record is finished by the sweeper (which calls this
/// again), so no record outlives the number's place on the trunk for long, and no repair
/// puts a number the customer removed back on the trunk.
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %id))]
pub async fn remove_number(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    number_id: Uuid,
) -> Result<RemovedNumber, ApiError> {
    let record = load_provider(&services.store, org, id).await?;
    refuse_if_deleting(&record)?;
    let number = services
        .store
        .get_number(org, id, number_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Provider {id} has no imported number {number_id}.")))?;
    let creds = stored_credentials(services, &record).await?;
    let mut keys = KeyCache::default();
    keys.load(services, &record, std::slice::from_ref(&number)).await?;
    let intent = Intent::now(
        IntentKey::new(org.clone(), id),
        record.account_sid.clone(),
        record.twilio_region,
        record.credential.clone(),
        Change::Removal { number_id },
    );
    services.store.record_intent(&intent).await?;
    let given_back = give_back_number(services, &creds, &record, &number, &keys).await;
    if given_back.as_ref().is_err_and(|e| !e.outcome_unknown())
        && let Err(e) = services.store.forget_intent(&intent.key).await
    {
        tracing::warn!(error = %e, "could not remove a failed removal's intent; the sweeper finishes the removal");
    }
    let given_back = given_back.map_err(|e| match e {
        GiveBackError::Twilio(step, e) => stored_credentials_error(step, &record, e),
        GiveBackError::Secret(CryptoError::Kms(e)) => ApiError::unavailable(e),
        secret @ GiveBackError::Secret(_) => ApiError::StoredSecretUnusable(format!(
            "Number {} was not changed: {secret}. Set its voice routing in the Twilio Console (that takes it off the trunk), then remove it again.",
            number.phone_number_sid
        )),
    })?;
    let outcome = if matches!(given_back, GivenBack::NotRestored(_)) { "not-restored" } else { "restored" };
    let event = AuditEvent::new(org, id, Action::RemoveNumber).sid(&number.phone_number_sid).outcome(outcome);
    services.store.remove_number(org, &number, &intent.key, &event).await.map_err(|e| match e {
        // Removed by a concurrent request: the end state is the one asked for.
        StoreError::NumberGone => ApiError::NotFound(format!("Provider {id} has no imported number {number_id}.")),
        StoreError::ProviderGone => ApiError::Conflict(format!("Provider {id} is being deleted.")),
        other => other.into(),
    })?;
    put_back_off_again(services, &creds, &record, &number, &keys).await;
    let (restored, reason) = match given_back {
        GivenBack::Restored | GivenBack::Gone => (true, None),
        GivenBack::NotRestored(reason) => (false, Some(reason)),
    };
    tracing::info!(phone_number_sid = %number.phone_number_sid, restored, reason = reason.as_deref().unwrap_or(""), "number removed");
    Ok(RemovedNumber { phone_number_sid: number.phone_number_sid, restored, reason })
}

/// A repair running meanwhile may have put the number back on the trunk after it was read here
/// and before its record went (repair looks for the record after attaching; this is the other
/// side): then it is given back again, or recorded for the sweeper, never left on the trunk
/// without a record. A removal always looks; a delete step looks while a repair holds the lease.
pub(crate) async fn put_back_off_again(
    services: &Services,
    creds: &TwilioCredentials,
    record: &ProviderRecord,
    number: &PhoneNumberRecord,
    keys: &KeyCache,
) {
    let sid = &number.phone_number_sid;
    match services.twilio.fetch_incoming_number(creds, sid).await {
        Ok(current) if current.trunk_sid.as_ref() == Some(&record.trunk_sid) => {}
        _ => return,
    }
    let Err(e) = give_back_number(services, creds, record, number, keys).await else { return };
    tracing::error!(phone_number_sid = %sid, error = %e, "a removed number was put back on the trunk meanwhile and could not be taken off; recorded for the sweeper");
    let leftover = TwilioResource::TrunkPhoneNumber { trunk_sid: record.trunk_sid.clone(), number_sid: sid.clone() };
    if let Err(e) = record_for_sweeper(services, record, &[leftover], std::slice::from_ref(number)).await {
        tracing::error!(phone_number_sid = %sid, error = %e, "could not record it for the sweeper");
    }
}

/// Takes the number off the provider's trunk and gives back its previous configuration,
/// unless the customer changed it since. A 404 for the number means it left the account.
pub async fn give_back_number(
    services: &Services,
    creds: &TwilioCredentials,
    provider: &ProviderRecord,
    number: &PhoneNumberRecord,
    keys: &KeyCache,
) -> Result<GivenBack, GiveBackError> {
    let previous = match keys.previous_routing(number) {
        Ok(previous) => previous,
        Err(e @ CryptoError::Kms(_)) => return Err(GiveBackError::Secret(e)),
        Err(e) => {
            return without_routing(&services.twilio, creds, &provider.trunk_sid, &number.phone_number_sid, e).await;
        }
    };
    give_back_with(&services.twilio, creds, &provider.trunk_sid, &number.phone_number_sid, &previous).await
}

/// A number whose routing before import cannot be opened is not changed: on the trunk it
/// fails on its own (the customer can set its routing in the Console, which takes it off the
/// trunk); off it, it is as the customer set it.
async fn without_routing(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    trunk_sid: &TrunkSid,
    phone_number_sid: &PhoneNumberSid,
    unopened: CryptoError,
) -> Result<GivenBack, GiveBackError> {
    match current_number(twilio, creds, phone_number_sid).await? {
        None => Ok(GivenBack::Gone),
        Some(current) if current.voice_routing().trunk_sid.as_ref() == Some(trunk_sid) => {
            Err(GiveBackError::Secret(unopened))
        }
        Some(_) => Ok(GivenBack::NotRestored(
            "The number is off the trunk, and its voice configuration from before import could not be read; it was left as set.".to_owned(),
        )),
    }
}

/// The number as Twilio has it now; None when it left the account (404).
async fn current_number(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    phone_number_sid: &PhoneNumberSid,
) -> Result<Option<IncomingPhoneNumber>, GiveBackError> {
    match twilio.fetch_incoming_number(creds, phone_number_sid).await {
        Ok(current) => Ok(Some(current)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(GiveBackError::Twilio("reading the number", e)),
    }
}

/// [`give_back_number`] given the previous configuration in plain (as an import still has it).
pub async fn give_back_with(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    trunk_sid: &TrunkSid,
    phone_number_sid: &PhoneNumberSid,
    previous: &VoiceRouting,
) -> Result<GivenBack, GiveBackError> {
    let Some(current) = current_number(twilio, creds, phone_number_sid).await? else { return Ok(GivenBack::Gone) };
    give_back(twilio, creds, trunk_sid, &current, previous).await
}

/// Whether a number's voice fields (URLs, methods, status callback) are as import left them:
/// import changes only the trunk (Twilio drops an application then), so any other difference
/// from the routing before import is the customer's own change.
pub fn voice_fields_as_imported(now: &VoiceRouting, previous: &VoiceRouting) -> bool {
    let fields = |routing: &VoiceRouting| VoiceRouting {
        voice_application_sid: None,
        trunk_sid: None,
        voice_region: None,
        ..routing.clone()
    };
    fields(now) == fields(previous)
}

/// The decision and the one Twilio change, given the number as it is now.
async fn give_back(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    trunk_sid: &TrunkSid,
    current: &IncomingPhoneNumber,
    previous: &VoiceRouting,
) -> Result<GivenBack, GiveBackError> {
    let now = current.voice_routing();
    let on_our_trunk = now.trunk_sid.as_ref() == Some(trunk_sid);
    let untouched_fields = voice_fields_as_imported(&now, previous);
    let as_import_left_it = now.trunk_sid.is_none() && now.voice_application_sid.is_none() && untouched_fields;
    if !on_our_trunk && !as_import_left_it {
        let reason = match &now.trunk_sid {
            Some(other) => format!("The number was moved to another trunk ({other}) after import; it was left there."),
            None => "The number's voice routing was changed after import; it was left as set.".to_owned(),
        };
        return Ok(GivenBack::NotRestored(reason));
    }
    let sid = &current.sid;
    // The Region that processed its calls before import processes them again (its own
    // configuration there is as the customer left it) before this Region's is changed.
    if let Some(region) = previous.voice_region.as_deref().filter(|_| creds.region != TwilioRegion::Us1)
        && let Err(e) = twilio.set_voice_region(creds, &current.phone_number, region).await
    {
        return Err(GiveBackError::Twilio("giving the number its inbound processing Region back", e));
    }
    let target = match (&previous.trunk_sid, previous.voice_application_sid.as_deref()) {
        (Some(trunk), _) => Some(Target::Trunk(trunk)),
        (None, Some(application)) => Some(Target::Application(application)),
        (None, None) => None,
    };
    match target {
        Some(target) => {
            if let Err(e) = target.put_back(twilio, creds, sid).await {
                return refused_put_back(twilio, creds, trunk_sid, sid, target, e).await;
            }
        }
        None if on_our_trunk => detach(twilio, creds, trunk_sid, sid).await?,
        None => {}
    }
    if on_our_trunk && !untouched_fields {
        return Ok(GivenBack::NotRestored(
            "The number's voice URL was changed while it was on the trunk; it was taken off the trunk and its voice settings left as set.".to_owned(),
        ));
    }
    Ok(GivenBack::Restored)
}

/// What routed the number before import, and is put back in one update.
#[derive(Clone, Copy)]
enum Target<'a> {
    Trunk(&'a TrunkSid),
    Application(&'a str),
}

impl Target<'_> {
    async fn put_back(
        self,
        twilio: &TwilioClient,
        creds: &TwilioCredentials,
        sid: &PhoneNumberSid,
    ) -> Result<(), TwilioError> {
        match self {
            Self::Trunk(trunk) => twilio.move_number_to_trunk(creds, sid, trunk).await.map(drop),
            Self::Application(application) => twilio.set_voice_application(creds, sid, application).await.map(drop),
        }
    }

    /// Whether it is still in the account.
    async fn exists(self, twilio: &TwilioClient, creds: &TwilioCredentials) -> Result<bool, TwilioError> {
        let found = match self {
            Self::Trunk(trunk) => twilio.fetch_trunk(creds, trunk).await.map(drop),
            Self::Application(application) => twilio.fetch_application(creds, application).await.map(drop),
        };
        match found {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn step(self) -> &'static str {
        match self {
            Self::Trunk(_) => "putting the number back on its trunk",
            Self::Application(_) => "giving the number its voice application back",
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Trunk(trunk) => format!("on its previous trunk ({trunk})"),
            Self::Application(application) => format!("on its voice application ({application})"),
        }
    }
}

/// Twilio refused to put the number back. If what it was on is gone (the customer deleted the
/// trunk or application since import), the number is taken off this trunk instead, so the
/// platform stops answering it; a 404 with the target still there was the number's own.
async fn refused_put_back(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    trunk_sid: &TrunkSid,
    sid: &PhoneNumberSid,
    target: Target<'_>,
    refusal: TwilioError,
) -> Result<GivenBack, GiveBackError> {
    let refused = refusal.status().is_some_and(|s| (400..500).contains(&s) && !matches!(s, 401 | 403 | 429));
    if !refused {
        return Err(GiveBackError::Twilio(target.step(), refusal));
    }
    match target.exists(twilio, creds).await {
        Ok(true) if refusal.is_not_found() => Ok(GivenBack::Gone),
        Ok(true) => Err(GiveBackError::Twilio(target.step(), refusal)),
        Err(e) => Err(GiveBackError::Twilio("checking the number's previous routing", e)),
        Ok(false) => {
            detach(twilio, creds, trunk_sid, sid).await?;
            Ok(GivenBack::NotRestored(format!(
                "Twilio refused to put the number back {}: it is no longer in the account. The number was taken off the trunk; its voice URL routes it, if it has one.",
                target.describe()
            )))
        }
    }
}

async fn detach(
    twilio: &TwilioClient,
    creds: &TwilioCredentials,
    trunk_sid: &TrunkSid,
    sid: &PhoneNumberSid,
) -> Result<(), GiveBackError> {
    match twilio.detach_phone_number(creds, trunk_sid, sid).await {
        Err(e) if !e.is_not_found() => Err(GiveBackError::Twilio("detaching the number from the trunk", e)),
        _ => Ok(()),
    }
}
