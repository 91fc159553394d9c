//! A forced delete's end: what Twilio still holds is recorded for the sweeper, and the
//! records go anyway.

use super::{Deletion, continue_later, deleted_as_read, out_of_time, resources_of};
use crate::provider::cleanup::record_for_sweeper;
use crate::provider::record::load_provider;
use crate::services::Services;
use shared::ApiError;
use shared::audit::{Action, AuditEvent};
use shared::dto::LeftBehind;
use shared::storage::{PhoneNumberRecord, ProviderRecord};
use shared::twilio::TwilioResource;

/// Numbers a forced delete records for the sweeper and forgets at a time.
const FORCED_PAGE: i32 = 100;

/// A forced delete that cannot use Twilio at all (`reason`): everything, the trunk's resources
/// too, is left for the sweeper.
pub(super) async fn force_without_twilio(
    services: &Services,
    record: ProviderRecord,
    reason: String,
    why: &str,
) -> Result<Deletion, ApiError> {
    let left = resources_of(&record).into_iter().map(|r| (r, reason.clone())).collect();
    finish_forced(services, record, left, &reason, why).await
}

/// A forced delete's end: what is left is recorded for the sweeper (with the token the
/// record holds then, envelope-encrypted: a rotation during the delete counts, and the same
/// owner, so the sweeper can open it), then the records go, as they were when recorded.
/// `left` is what this step could not remove; every number still recorded (an earlier step
/// may have failed on it) and, while any is, the trunk's resources are left too, for
/// `reason` unless `left` says otherwise. The numbers go a page at a time, each page recorded
/// and then forgotten, with time checked before each: whatever their count, a step that runs
/// short keeps what it did and the deletion queue goes on from the rest.
pub(super) async fn finish_forced(
    services: &Services,
    record: ProviderRecord,
    mut left: Vec<(TwilioResource, String)>,
    reason: &str,
    why: &str,
) -> Result<Deletion, ApiError> {
    let (org, id) = (record.organization_id.clone(), record.id);
    let mut left_behind = Vec::new();
    loop {
        let (numbers, _) = services.store.list_numbers(&org, id, FORCED_PAGE, None).await?;
        if numbers.is_empty() {
            break;
        }
        if out_of_time() {
            return continue_later(services, record, None, None).await;
        }
        let current = load_provider(&services.store, &org, id).await?;
        left_behind.extend(record_left(services, &current, &numbers, &mut left, reason).await?);
        services.store.forget_numbers(&org, &numbers).await?;
    }
    // Numbers that were left (by this step or an earlier one) hold the trunk: its resources
    // stay for the sweeper with them.
    if !left_behind.is_empty() || numbers_left_for_sweeper(services, &record).await? {
        for resource in resources_of(&record) {
            if !left.iter().any(|(listed, _)| *listed == resource) {
                left.push((resource, "not removed: numbers were left".to_owned()));
            }
        }
    }
    let mut attempt = 0;
    loop {
        let current = load_provider(&services.store, &org, id).await?;
        let mut rest = left.clone();
        let recorded = record_left(services, &current, &[], &mut rest, reason).await?;
        let event = AuditEvent::new(&org, id, Action::DeleteForced)
            .sids(rest.iter().chain(&left).map(|(resource, _)| resource.sid()))
            .outcome(if left.is_empty() { "succeeded" } else { "left-behind" })
            .detail(format!("{} Twilio resources left for the orphan sweeper", left.len()));
        if deleted_as_read(services, &current, &event, &mut attempt).await? {
            left_behind.extend(recorded);
            break;
        }
    }
    tracing::warn!(
        left_behind = left_behind.len(),
        why,
        "provider force-deleted; what Twilio still holds is recorded for the sweeper"
    );
    Ok(if left_behind.is_empty() { Deletion::Deleted } else { Deletion::Forced(left_behind) })
}

/// Whether an earlier step of this forced delete left numbers for the sweeper: they may still
/// be on the trunk, so it must stay.
pub(super) async fn numbers_left_for_sweeper(services: &Services, record: &ProviderRecord) -> Result<bool, ApiError> {
    let leftovers = services.store.leftover_resources(&record.organization_id, record.id).await?;
    Ok(leftovers.iter().any(|resource| matches!(resource, TwilioResource::TrunkPhoneNumber { .. })))
}

/// Records for the sweeper what a forced delete leaves: `numbers` (each with its error from
/// `left`, else `reason`; taken out of `left`) or, with none, what `left` holds. Returns what
/// was recorded.
async fn record_left(
    services: &Services,
    record: &ProviderRecord,
    numbers: &[PhoneNumberRecord],
    left: &mut Vec<(TwilioResource, String)>,
    reason: &str,
) -> Result<Vec<LeftBehind>, ApiError> {
    let recorded: Vec<(TwilioResource, String)> = if numbers.is_empty() {
        std::mem::take(left)
    } else {
        numbers
            .iter()
            .map(|n| {
                let resource = TwilioResource::TrunkPhoneNumber {
                    trunk_sid: record.trunk_sid.clone(),
                    number_sid: n.phone_number_sid.clone(),
                };
                let error = match left.iter().position(|(listed, _)| *listed == resource) {
                    Some(at) => left.swap_remove(at).1,
                    None => reason.to_owned(),
                };
                (resource, error)
            })
            .collect()
    };
    if !recorded.is_empty() {
        // Recorded before the records go: a forced delete never forgets what it leaves.
        let resources: Vec<TwilioResource> = recorded.iter().map(|(resource, _)| resource.clone()).collect();
        record_for_sweeper(services, record, &resources, numbers).await?;
    }
    Ok(recorded.into_iter().map(|(resource, error)| LeftBehind { resource, error }).collect())
}
