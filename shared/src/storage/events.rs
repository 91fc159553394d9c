//! Audit events as stored: `EVENT#{providerId}#{eventId}` items of the organization's
//! partition (the event id is a UUIDv7, so they sort by time), with `expiresAt` for DynamoDB's
//! TTL. Deleting a provider leaves them; they go when their retention ends.

use super::{ProviderStore, StoreError, decode_page_token, encode_page_token};
use crate::audit::{Action, Actor, AuditEvent};
use crate::model::OrganizationId;
use crate::storage::item::{Fields, Item, n, org_key, org_partition, put_new, s};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// How long events are kept unless the deployment says otherwise (`EVENT_RETENTION_DAYS`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 86_400);

fn events_prefix(provider_id: Uuid) -> String {
    format!("EVENT#{provider_id}#")
}

/// Which of a provider's events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub action: Option<Action>,
    /// Events at or after this time.
    pub since: Option<Timestamp>,
    /// Events at or before this time.
    pub until: Option<Timestamp>,
}

/// The lowest or highest UUIDv7 (as text, which sorts as the number) of a millisecond: the
/// key bounds of a time range.
fn uuid_bound(millis: u64, highest: bool) -> String {
    let base = u128::from(millis) << 80;
    let value = if highest { base | ((1u128 << 80) - 1) } else { base };
    Uuid::from_u128(value).to_string()
}

/// The first millisecond of a (whole-second) time.
fn millis(at: &Timestamp) -> u64 {
    u64::try_from(at.unix_seconds()).unwrap_or_default() * 1000
}

impl AuditEvent {
    fn sort_key(&self) -> String {
        format!("{}{}", events_prefix(self.provider_id), self.id)
    }

    fn to_item(&self, retention: Duration) -> Item {
        let mut item = org_key(&self.organization_id, self.sort_key());
        let expires_at = super::epoch_seconds() + retention.as_secs();
        let fingerprints =
            self.secret_fingerprints.iter().map(|(name, print)| (name.clone(), s(print.clone()))).collect();
        item.extend([
            ("entity".to_owned(), s("event")),
            ("organizationId".to_owned(), s(self.organization_id.as_str())),
            ("providerId".to_owned(), s(self.provider_id.to_string())),
            ("id".to_owned(), s(self.id.to_string())),
            ("at".to_owned(), s(self.at.clone())),
            ("action".to_owned(), s(self.action.as_str())),
            ("actorKind".to_owned(), s(self.actor.kind.clone())),
            ("twilioSids".to_owned(), AttributeValue::L(self.twilio_sids.iter().cloned().map(s).collect())),
            ("outcome".to_owned(), s(self.outcome.clone())),
            ("secretFingerprints".to_owned(), AttributeValue::M(fingerprints)),
            ("expiresAt".to_owned(), n(expires_at)),
        ]);
        if let Some(id) = &self.actor.id {
            item.insert("actorId".to_owned(), s(id.clone()));
        }
        if let Some(detail) = &self.detail {
            item.insert("detail".to_owned(), s(detail.clone()));
        }
        item
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let f = Fields(item);
        let strings = |name: &str| -> Result<Vec<String>, StoreError> {
            match item.get(name) {
                Some(AttributeValue::L(list)) => Ok(list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()),
                _ => Err(StoreError::Corrupt(format!("attribute {name} is not a list"))),
            }
        };
        let fingerprints = match item.get("secretFingerprints") {
            Some(AttributeValue::M(map)) => {
                map.iter().filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone()))).collect()
            }
            _ => Default::default(),
        };
        Ok(Self {
            id: f.uuid("id")?,
            organization_id: f.organization_id("organizationId")?,
            provider_id: f.uuid("providerId")?,
            at: f.timestamp("at")?,
            action: f.parsed("action", |v| Action::parse(v).ok_or(()))?,
            actor: Actor { kind: f.string("actorKind")?, id: f.opt_string("actorId")? },
            twilio_sids: strings("twilioSids")?,
            outcome: f.string("outcome")?,
            secret_fingerprints: fingerprints,
            detail: f.opt_string("detail")?,
        })
    }
}

impl ProviderStore {
    /// The event's write, for the transaction of the change it records.
    pub(crate) fn event_put(&self, event: &AuditEvent) -> TransactWriteItem {
        put_new(&self.table, event.to_item(self.event_retention))
    }

    /// Records an event on its own: for what changes nothing in the table (a read of the SIP
    /// password), or a change with no transaction of its own.
    pub async fn record_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        crate::storage::item::put(&self.client, &self.table, event.to_item(self.event_retention)).await
    }

    /// A provider's events, newest first, `limit` evaluated at a time (an action filter may
    /// leave a page short, its token going on). The page token is the listing's own.
    pub async fn list_events(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        filter: &EventFilter,
        limit: i32,
        page_token: Option<&str>,
    ) -> Result<(Vec<AuditEvent>, Option<String>), StoreError> {
        let prefix = events_prefix(provider_id);
        let from = format!("{prefix}{}", uuid_bound(filter.since.as_ref().map_or(0, millis), false));
        let until = filter.until.as_ref().map_or((1 << 48) - 1, |until| millis(until) + 999);
        let to = format!("{prefix}{}", uuid_bound(until, true));
        // A token from a listing of other times would start outside this one's key range,
        // which DynamoDB refuses: it is the listing's bad token.
        let after = page_token.map(|token| decode_page_token(org, &prefix, token)).transpose()?;
        if after.as_ref().is_some_and(|after| *after < from || *after > to) {
            return Err(StoreError::BadPageToken);
        }
        let mut values = HashMap::from([
            (":pk".to_owned(), org_partition(org)),
            (":from".to_owned(), s(from)),
            (":to".to_owned(), s(to)),
        ]);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(limit);
        if let Some(action) = filter.action {
            values.insert(":action".to_owned(), s(action.as_str()));
            query = query.filter_expression("#action = :action").expression_attribute_names("#action", "action");
        }
        if let Some(after) = after {
            query = query.set_exclusive_start_key(Some(org_key(org, after)));
        }
        let output = query.set_expression_attribute_values(Some(values)).send().await.map_err(StoreError::request)?;
        let events = output.items.unwrap_or_default().iter().map(AuditEvent::from_item).collect::<Result<_, _>>()?;
        let next = output
            .last_evaluated_key
            .and_then(|key| key.get("sk").and_then(|sk| sk.as_s().ok()).map(|sk| encode_page_token(org, sk)));
        Ok((events, next))
    }

    /// Whether a page token is one of this provider's event listing.
    pub fn check_events_page_token(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
        token: &str,
    ) -> Result<(), StoreError> {
        decode_page_token(org, &events_prefix(provider_id), token).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_items() {
        let org = OrganizationId::parse("org-a").unwrap();
        let event = AuditEvent::new(&org, Uuid::now_v7(), Action::Import)
            .sid("PN0123")
            .secret("sipPassword", "x".repeat(32).as_str())
            .detail("one number");
        let item = event.to_item(DEFAULT_RETENTION);
        assert_eq!(AuditEvent::from_item(&item).unwrap(), event);
        let expires: u64 = item["expiresAt"].as_n().unwrap().parse().unwrap();
        assert!(expires >= super::super::epoch_seconds() + DEFAULT_RETENTION.as_secs() - 5);
        assert!(!item.contains_key("jobProviderId"), "the jobs planner never sees events");
    }

    #[test]
    fn time_bounds_enclose_every_event_of_their_millisecond() {
        let id = Uuid::now_v7();
        let ms = u64::try_from(id.as_u128() >> 80).unwrap();
        let text = id.to_string();
        assert!(uuid_bound(ms, false) <= text && text <= uuid_bound(ms, true));
        assert!(uuid_bound(ms + 1, false) > text && uuid_bound(ms - 1, true) < text);
    }
}
