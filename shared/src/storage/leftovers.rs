//! Leftovers: Twilio resources the service created but could not remove, kept for the sweeper.

use super::item::{
    Fields, Item, JOB_PROVIDER_ID, leftover_sort_key, leftovers_prefix, legacy_leftovers_sort_key, org_key,
    query_prefix, s, secret,
};
use super::{ProviderStore, SealedCredential, StoreError, condition_held, twilio_region_of};
use crate::crypto::EncryptedSecret;
use crate::model::{AccountSid, OrganizationId, TwilioRegion, VoiceRouting};
use crate::time::Timestamp;
use crate::twilio::TwilioResource;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use uuid::Uuid;

/// One Twilio resource that a failed rollback, an undo or a forced delete left in a customer's
/// account, kept until the sweeper removes it: one item each, so recording one never
/// overwrites another and a provider's leftovers stay bounded by DynamoDB's item size one by one.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub organization_id: OrganizationId,
    pub provider_id: Uuid,
    pub account_sid: AccountSid,
    /// The Twilio Region the resource is in.
    pub twilio_region: TwilioRegion,
    /// The provider's credential when it was left; absent when it could not be encrypted (KMS
    /// was the failure). The sweeper prefers the live provider's current one.
    pub credential: Option<SealedCredential>,
    pub resource: TwilioResource,
    /// For a number left on the trunk: the routing it had before import (masked; the exact
    /// one sealed), so that the sweeper gives it back as a removal would.
    pub previous_routing: Option<VoiceRouting>,
    pub previous_routing_sealed: Option<EncryptedSecret>,
    pub created_at: Timestamp,
    /// Twilio rejected this token: the sweeper stops trying it (logged once) until the provider
    /// has another one; an operator removes the resource by hand otherwise.
    pub stuck: Option<(String, EncryptedSecret)>,
    /// Which recording of the resource this is (set when it is written): the sweeper forgets
    /// or marks only the one it read, never one recorded again since.
    pub record_id: Option<Uuid>,
}

impl Leftover {
    /// A resource to record as left behind now (a number adds the routing it had).
    pub fn new(
        organization_id: OrganizationId,
        provider_id: Uuid,
        account_sid: AccountSid,
        twilio_region: TwilioRegion,
        credential: Option<SealedCredential>,
        resource: TwilioResource,
    ) -> Self {
        Self {
            organization_id,
            provider_id,
            account_sid,
            twilio_region,
            credential,
            resource,
            previous_routing: None,
            previous_routing_sealed: None,
            created_at: Timestamp::now(),
            stuck: None,
            record_id: None,
        }
    }

    pub(super) fn key(&self) -> Item {
        org_key(&self.organization_id, leftover_sort_key(self.provider_id, &self.resource))
    }

    /// The condition that the stored item is this recording (an item written before recordings
    /// had ids has none).
    pub(super) fn same_recording(&self) -> &'static str {
        if self.record_id.is_some() {
            "recordId = :id"
        } else {
            "attribute_exists(pk) AND attribute_not_exists(recordId)"
        }
    }

    pub(super) fn record_id_value(&self) -> Option<HashMap<String, AttributeValue>> {
        self.record_id.map(|id| HashMap::from([(":id".to_owned(), s(id.to_string()))]))
    }

    /// The item of a new recording of it.
    pub(super) fn recorded(&self) -> Item {
        Self { record_id: Some(Uuid::now_v7()), ..self.clone() }.to_item()
    }

    pub(super) fn to_item(&self) -> Item {
        let mut item = self.key();
        item.extend([
            ("entity".to_owned(), s("orphan")),
            ("organizationId".to_owned(), s(self.organization_id.as_str())),
            ("providerId".to_owned(), s(self.provider_id.to_string())),
            (JOB_PROVIDER_ID.to_owned(), s(self.provider_id.to_string())),
            ("accountSid".to_owned(), s(self.account_sid.as_str())),
            ("twilioRegion".to_owned(), s(self.twilio_region.as_str())),
            ("kind".to_owned(), s(self.resource.kind())),
            ("sid".to_owned(), s(self.resource.sid())),
            ("createdAt".to_owned(), s(self.created_at.clone())),
        ]);
        if let Some(id) = self.record_id {
            item.insert("recordId".to_owned(), s(id.to_string()));
        }
        if let Some(credential) = &self.credential {
            credential.put(&mut item);
        }
        if let Some(routing) = &self.previous_routing {
            item.insert("previousRouting".to_owned(), s(serde_json::to_string(routing).expect("routing serializes")));
        }
        if let Some(sealed) = &self.previous_routing_sealed {
            item.insert("previousRoutingSealed".to_owned(), secret(sealed));
        }
        if let Some((reason, token)) = &self.stuck {
            item.insert("stuckReason".to_owned(), s(reason.clone()));
            item.insert("stuckToken".to_owned(), secret(token));
        }
        item
    }

    /// `Ok(None)`: a resource this service does not create (never removed, so never swept).
    pub(super) fn from_item(item: &Item) -> Result<Option<Self>, StoreError> {
        let f = Fields(item);
        let (kind, sid) = (f.string("kind")?, f.string("sid")?);
        let Some(resource) = TwilioResource::parse(&kind, &sid) else {
            if TwilioResource::KINDS.contains(&kind.as_str()) {
                return Err(StoreError::Corrupt(format!("leftover {kind} has a malformed sid")));
            }
            tracing::warn!(kind, sid, "leftover record names an unknown resource; skipped");
            return Ok(None);
        };
        let stuck = match (f.opt_string("stuckReason")?, f.opt_secret("stuckToken")?) {
            (Some(reason), Some(token)) => Some((reason, token)),
            _ => None,
        };
        Ok(Some(Self {
            organization_id: f.organization_id("organizationId")?,
            provider_id: f.uuid("providerId")?,
            account_sid: f.parsed("accountSid", AccountSid::parse)?,
            twilio_region: twilio_region_of(item)?,
            credential: SealedCredential::read_opt(&f)?,
            resource,
            previous_routing: f.json("previousRouting")?,
            previous_routing_sealed: f.opt_secret("previousRoutingSealed")?,
            created_at: f.timestamp("createdAt")?,
            stuck,
            record_id: f.opt_string("recordId")?.and_then(|id| Uuid::parse_str(&id).ok()),
        }))
    }
}

impl ProviderStore {
    /// Records resources left in a customer's account, for the clean-up job: one item each (a
    /// resource recorded again replaces its own item only), in batches.
    pub async fn record_leftovers(&self, leftovers: &[Leftover]) -> Result<(), StoreError> {
        let puts: Vec<_> = leftovers
            .iter()
            .map(|leftover| {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(leftover.recorded()))
                    .build()
                    .expect("item set");
                aws_sdk_dynamodb::types::WriteRequest::builder().put_request(put).build()
            })
            .collect();
        self.batch_write(puts).await
    }

    /// Forgets a leftover the sweeper removed (or found gone): the recording it read only, not
    /// one of the same resource recorded again since.
    pub async fn forget_leftover(&self, leftover: &Leftover) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(leftover.key()))
            .condition_expression(leftover.same_recording())
            .set_expression_attribute_values(leftover.record_id_value())
            .send()
            .await;
        condition_held(result).map(drop)
    }

    /// Marks a leftover as stuck on a token Twilio rejects (the recording it read only).
    pub async fn mark_leftover_stuck(&self, leftover: &Leftover) -> Result<(), StoreError> {
        let Some((reason, token)) = &leftover.stuck else { return Ok(()) };
        debug_assert!(!reason.is_empty() && !token.ciphertext.is_empty());
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(leftover.to_item()))
            .condition_expression(leftover.same_recording())
            .set_expression_attribute_values(leftover.record_id_value())
            .send()
            .await;
        condition_held(result).map(drop)
    }

    /// Rewrites a provider's leftover record of the earlier format (one `ORPHAN#{providerId}`
    /// item listing every resource) as one item per resource, then deletes it. Returns how
    /// many resources it held (0: there was none).
    pub async fn migrate_legacy_leftovers(&self, org: &OrganizationId, provider_id: Uuid) -> Result<usize, StoreError> {
        let key = org_key(org, legacy_leftovers_sort_key(provider_id));
        let Some(item) = self.get_item(key.clone()).await? else { return Ok(0) };
        let f = Fields(&item);
        let list =
            f.get("resources")?.as_l().map_err(|_| StoreError::Corrupt("attribute resources is not a list".into()))?;
        let (account_sid, credential, created_at) =
            (f.parsed("accountSid", AccountSid::parse)?, SealedCredential::read_opt(&f)?, f.timestamp("createdAt")?);
        // The earlier format predates Twilio Regions: every such resource is US1's.
        let region = TwilioRegion::Us1;
        let mut leftovers = Vec::with_capacity(list.len());
        for entry in list {
            let entry = Fields(entry.as_m().map_err(|_| StoreError::Corrupt("a resource is not a map".into()))?);
            let (kind, sid) = (entry.string("kind")?, entry.string("sid")?);
            let Some(resource) = TwilioResource::parse(&kind, &sid) else {
                if TwilioResource::KINDS.contains(&kind.as_str()) {
                    return Err(StoreError::Corrupt(format!("leftover {kind} has a malformed sid")));
                }
                // Not something this service creates: never removed, so never swept.
                continue;
            };
            leftovers.push(Leftover {
                created_at: created_at.clone(),
                ..Leftover::new(org.clone(), provider_id, account_sid.clone(), region, credential.clone(), resource)
            });
        }
        // Each written only where no record of its own exists (a newer one keeps its routing).
        for leftover in &leftovers {
            let written = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(leftover.recorded()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            condition_held(written)?;
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(leftovers.len())
    }

    /// A provider's leftovers (every page). An unreadable one is an error for that one only.
    pub async fn leftovers_of(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Vec<Result<Leftover, StoreError>>, StoreError> {
        let items = query_prefix(&self.client, &self.table, org, &leftovers_prefix(provider_id)).await?;
        Ok(items.iter().filter_map(|item| Leftover::from_item(item).transpose()).collect())
    }

    /// The resources recorded as left behind for a provider (readable ones).
    pub async fn leftover_resources(
        &self,
        org: &OrganizationId,
        provider_id: Uuid,
    ) -> Result<Vec<TwilioResource>, StoreError> {
        Ok(self.leftovers_of(org, provider_id).await?.into_iter().flatten().map(|l| l.resource).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrunkSid;
    use crate::time::Timestamp;

    #[test]
    fn leftover_records_skip_resources_this_service_does_not_create() {
        let org = OrganizationId::parse("org-a").unwrap();
        let trunk_sid = TrunkSid::parse(&format!("TK{}", "1".repeat(32))).unwrap();
        let leftover = Leftover {
            organization_id: org,
            provider_id: Uuid::nil(),
            account_sid: AccountSid::parse(&format!("AC{}", "2".repeat(32))).unwrap(),
            twilio_region: TwilioRegion::Au1,
            credential: None,
            resource: TwilioResource::Trunk { trunk_sid: trunk_sid.clone() },
            previous_routing: None,
            previous_routing_sealed: None,
            created_at: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
            stuck: None,
            record_id: None,
        };
        let item = leftover.to_item();
        let read = Leftover::from_item(&item).unwrap().unwrap();
        assert_eq!(read.resource, TwilioResource::Trunk { trunk_sid });
        let mut other = item.clone();
        other.insert("kind".to_owned(), s("application"));
        assert!(Leftover::from_item(&other).unwrap().is_none());
    }
}
