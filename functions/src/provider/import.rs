//! Numbers from the customer's account onto the provider's trunk: which can be imported, and
//! the import itself, each number independently, recording the routing each had.

use crate::provider::cleanup::record_for_sweeper;
use crate::provider::give_back::give_back_with;
use crate::provider::record::{
    load_provider, owner_of, refuse_if_deleting, stored_credentials, stored_credentials_error,
};
use crate::services::Services;
use futures::StreamExt;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::crypto::{DataKey, SecretKind};
use shared::deadline::reserves::IMPORT_UNDO;
use shared::deadline::within;
use shared::dto::{AvailableNumber, AvailableNumbers, ImportError, ImportNumbers, ImportResult, PhoneNumberResponse};
use shared::model::{OrganizationId, PhoneNumberSid, TwilioCredentials, TwilioRegion, VoiceRouting};
use shared::storage::{Change, Intent, IntentKey, PhoneNumberRecord, ProviderRecord, StoreError};
use shared::twilio::{IncomingPhoneNumber, TwilioResource};
use std::collections::HashSet;
use std::time::Instant;
use uuid::Uuid;

/// Takes a number back off the trunk; if even that fails, records it for the sweeper,
/// so it is never left on the trunk with no record.
async fn undo_attach(
    services: &Services,
    creds: &TwilioCredentials,
    provider: &ProviderRecord,
    number: &PhoneNumberRecord,
    previous: &VoiceRouting,
) {
    let sid = &number.phone_number_sid;
    let Err(e) = give_back_with(&services.twilio, creds, &provider.trunk_sid, sid, previous).await else { return };
    tracing::error!(phone_number_sid = %sid, error = %e, "could not undo a number attach; recorded for the sweeper");
    let leftover = TwilioResource::TrunkPhoneNumber { trunk_sid: provider.trunk_sid.clone(), number_sid: sid.clone() };
    if let Err(e) = record_for_sweeper(services, provider, &[leftover], std::slice::from_ref(number)).await {
        tracing::error!(phone_number_sid = %sid, error = %e, "could not record an attach that could not be undone");
    }
}

/// Numbers imported at once; keeps the request rate toward Twilio modest.
const IMPORT_CONCURRENCY: usize = 4;

/// The most numbers listed; `truncated` says when the account has more.
pub const AVAILABLE_NUMBERS_CAP: usize = 1000;

/// The account's incoming numbers, marked as imported or carrying routing import would replace.
pub async fn available_numbers(services: &Services, record: &ProviderRecord) -> Result<AvailableNumbers, ApiError> {
    let creds = stored_credentials(services, record).await?;
    let (numbers, imported) = tokio::join!(
        services.twilio.list_incoming_numbers(&creds, AVAILABLE_NUMBERS_CAP + 1),
        services.store.all_numbers(&record.organization_id, record.id)
    );
    let mut numbers =
        numbers.map_err(|e| stored_credentials_error("listing the account's phone numbers", record, e))?;
    let imported: HashSet<PhoneNumberSid> = imported?.into_iter().map(|n| n.phone_number_sid).collect();
    let truncated = numbers.len() > AVAILABLE_NUMBERS_CAP;
    numbers.truncate(AVAILABLE_NUMBERS_CAP);
    let items = numbers.iter().map(|n| AvailableNumber::new(n, imported.contains(&n.sid), &record.trunk_sid)).collect();
    Ok(AvailableNumbers { items, truncated })
}

/// Whether the account was a Trial account when last verified (the `account` check's details).
fn is_trial(record: &ProviderRecord) -> bool {
    record.verification_details.iter().flatten().any(|check| {
        check.check_name == shared::model::CheckName::Account && check.details.get("type") == Some(&"Trial".into())
    })
}

/// Imports the numbers onto the provider's trunk; each succeeds or fails on its own.
#[tracing::instrument(skip_all, fields(organization_id = %org, provider_id = %id))]
pub async fn import_numbers(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    command: ImportNumbers,
) -> Result<ImportResult, ApiError> {
    let record = load_provider(&services.store, org, id).await?;
    refuse_if_deleting(&record)?;
    let creds = stored_credentials(services, &record).await?;
    // One data key for the request, fetched when the first number with URLs needs sealing.
    let data_key = tokio::sync::OnceCell::new();
    let outcomes: Vec<Result<PhoneNumberRecord, ImportError>> = futures::stream::iter(command.phone_number_sids)
        .map(|sid| import_one(services, org, &record, &creds, &data_key, sid))
        .buffered(IMPORT_CONCURRENCY)
        .collect()
        .await;
    let mut result = ImportResult {
        success_count: 0,
        failed_count: 0,
        imported: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    for outcome in outcomes {
        match outcome {
            Ok(number) => result.imported.push(PhoneNumberResponse::from(&number)),
            Err(error) => result.errors.push(error),
        }
    }
    result.success_count = result.imported.len();
    result.failed_count = result.errors.len();
    if result.success_count > 0 && is_trial(&record) {
        result.warnings.push(crate::provider::verify::TRIAL_LIMITS.to_owned());
    }
    tracing::info!(imported = result.success_count, failed = result.failed_count, "numbers imported");
    Ok(result)
}

async fn import_one(
    services: &Services,
    org: &OrganizationId,
    provider: &ProviderRecord,
    creds: &TwilioCredentials,
    data_key: &tokio::sync::OnceCell<DataKey>,
    sid: PhoneNumberSid,
) -> Result<PhoneNumberRecord, ImportError> {
    let fail = |code, message: String| ImportError { phone_number_sid: sid.clone(), code, message };
    let number = services.twilio.fetch_incoming_number(creds, &sid).await.map_err(|e| {
        if e.is_not_found() {
            fail("not_found", "The Twilio account has no such incoming phone number.".into())
        } else if e.is_authentication_failure() {
            fail("credentials_rejected", "Twilio rejected the stored credentials; rotate the auth token.".into())
        } else {
            fail("twilio_error", format!("Could not read the number: {e}"))
        }
    })?;
    // Twilio lists what a number can do; one without voice would sit on the trunk unreachable.
    if number.capabilities.as_ref().is_some_and(|c| !c.voice) {
        return Err(fail(
            "not_voice_capable",
            "The number cannot take voice calls (Twilio lists no voice capability for it); it was not imported.".into(),
        ));
    }
    if number.trunk_sid.as_ref() == Some(&provider.trunk_sid) {
        return Err(fail("already_imported", "The number is already on this provider's trunk.".into()));
    }
    // Claims are global, so they are touched only for a number the account has: another
    // organization learns nothing of numbers that are not its own (nor which one holds it).
    // The number is reserved before Twilio is touched: of two imports of it, the loser never
    // changes it in Twilio.
    let reservation = match services.store.reserve_number(org, provider.id, &sid).await {
        Ok(reservation) => reservation,
        Err(StoreError::NumberTaken) => {
            return Err(fail("already_imported", "The number is already imported into a provider.".into()));
        }
        Err(e) => {
            tracing::error!(phone_number_sid = %sid, error = %e, "could not reserve the number");
            return Err(fail("storage_error", "Could not check the number; retry.".into()));
        }
    };
    let imported = attach_and_store(services, org, provider, creds, data_key, &number, reservation).await;
    if imported.is_err()
        && let Err(e) = services.store.cancel_reservation(&sid, reservation).await
    {
        tracing::warn!(phone_number_sid = %sid, error = %e, "could not give up a number's reservation; it lapses by itself");
    }
    imported.map_err(|(code, message)| fail(code, message))
}

/// Puts a reserved number on the trunk and stores it; on any failure Twilio is left as it was.
async fn attach_and_store(
    services: &Services,
    org: &OrganizationId,
    provider: &ProviderRecord,
    creds: &TwilioCredentials,
    data_key: &tokio::sync::OnceCell<DataKey>,
    number: &IncomingPhoneNumber,
    reservation: Uuid,
) -> Result<PhoneNumberRecord, (&'static str, String)> {
    let sid = &number.sid;
    let (record, previous) = number_record(services, provider, creds, data_key, number).await?;
    // A number that cannot be both attached and undone in time is not started.
    if shared::deadline::short_of(IMPORT_UNDO * 2) {
        return Err(("not_attempted", "Not attempted: the request ran out of time. Import it again.".to_owned()));
    }
    // Recorded before the attach: an import that dies before the number is stored leaves
    // this, and the sweeper gives the number back.
    let intent = Intent::now(
        IntentKey::new(org.clone(), provider.id),
        provider.account_sid.clone(),
        provider.twilio_region,
        provider.credential.clone(),
        Change::Attach {
            trunk_sid: provider.trunk_sid.clone(),
            number_sid: sid.clone(),
            previous_routing: record.previous_routing.clone(),
            previous_routing_sealed: record.previous_routing_sealed.clone(),
            reservation,
        },
    );
    if let Err(e) = services.store.record_intent(&intent).await {
        tracing::error!(phone_number_sid = %sid, error = %e, "could not record an import's intent");
        return Err(("storage_error", "Could not record the import; the number was not changed. Retry.".to_owned()));
    }
    let stored = attach_recorded(services, org, provider, creds, &record, &previous, &intent.key).await;
    if stored.is_err()
        && let Err(e) = services.store.forget_intent(&intent.key).await
    {
        tracing::warn!(phone_number_sid = %sid, error = %e, "could not remove a failed import's intent; the sweeper will");
    }
    stored.map(|()| record)
}

/// The number's record, with the routing it has now (its voice URLs sealed with the request's
/// data key), to be given back; and that routing.
async fn number_record(
    services: &Services,
    provider: &ProviderRecord,
    creds: &TwilioCredentials,
    data_key: &tokio::sync::OnceCell<DataKey>,
    number: &IncomingPhoneNumber,
) -> Result<(PhoneNumberRecord, VoiceRouting), (&'static str, String)> {
    let mut previous = number.voice_routing();
    // Outside US1 import also points the number's calls at the provider's Region: what it
    // pointed at before is recorded with the rest, to be given back.
    if creds.region != TwilioRegion::Us1 {
        let region = services
            .twilio
            .fetch_voice_region(creds, &number.phone_number)
            .await
            .map_err(|e| ("twilio_error", format!("Could not read the number's inbound processing Region: {e}")))?;
        previous.voice_region = Some(region);
    }
    let sealed = if previous.has_urls() {
        let key = data_key
            .get_or_try_init(|| async { services.envelope.generate_data_key(&owner_of(provider)).await })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "no data key to seal a number's voice URLs");
                ("storage_error", "Could not encrypt the number's voice configuration; retry.".to_owned())
            })?;
        let json = serde_json::to_string(&previous).expect("routing serializes");
        Some(key.seal(SecretKind::VoiceRouting, &json))
    } else {
        None
    };
    let record = PhoneNumberRecord {
        id: Uuid::now_v7(),
        provider_id: provider.id,
        phone_number_sid: number.sid.clone(),
        phone_number: number.phone_number.clone(),
        friendly_name: number.friendly_name.clone(),
        previous_routing: previous.masked(),
        previous_routing_sealed: sealed,
        imported_at: shared::time::Timestamp::now(),
    };
    Ok((record, previous))
}

/// The attach and the write that makes it official (removing the intent); on failure the
/// attach is undone, or recorded as left behind.
async fn attach_recorded(
    services: &Services,
    org: &OrganizationId,
    provider: &ProviderRecord,
    creds: &TwilioCredentials,
    record: &PhoneNumberRecord,
    previous: &VoiceRouting,
    intent: &IntentKey,
) -> Result<(), (&'static str, String)> {
    let sid = &record.phone_number_sid;
    // The attach gets the time left less what undoing it may take.
    let attach_deadline = shared::deadline::remaining_less(IMPORT_UNDO).map(|left| Instant::now() + left);
    let attached = within(attach_deadline, services.twilio.attach_phone_number(creds, &provider.trunk_sid, sid)).await;
    if let Err(e) = attached {
        if e.is_outcome_unknown() {
            // The attach may have happened: undo it so Twilio matches the table.
            undo_attach(services, creds, provider, record, previous).await;
        }
        return Err(("twilio_error", format!("Could not put the number on the trunk: {e}")));
    }
    // The Region's own configuration of the number now routes to the trunk; from here its
    // calls are processed there.
    if creds.region != TwilioRegion::Us1 {
        let routed = within(
            attach_deadline,
            services.twilio.set_voice_region(creds, &record.phone_number, creds.region.as_str()),
        )
        .await;
        if let Err(e) = routed {
            undo_attach(services, creds, provider, record, previous).await;
            return Err((
                "twilio_error",
                format!("Could not have the number's calls processed in Twilio Region {}: {e}", creds.region),
            ));
        }
    }
    let event = AuditEvent::new(org, provider.id, Action::Import).sid(sid).sid(&provider.trunk_sid);
    if let Err(store_error) = services.store.insert_number(org, record, Some(intent), &event).await {
        // Not stored: take it back off the trunk so Twilio matches the table.
        undo_attach(services, creds, provider, record, previous).await;
        return Err(match store_error {
            StoreError::NumberTaken => {
                ("already_imported", "The number was imported into a provider meanwhile.".to_owned())
            }
            StoreError::ProviderGone => ("storage_error", "The provider is being deleted.".to_owned()),
            other => {
                tracing::error!(phone_number_sid = %sid, error = %other, "could not store the number");
                ("storage_error", "Could not store the number; it was taken off the trunk again. Retry.".to_owned())
            }
        });
    }
    Ok(())
}
