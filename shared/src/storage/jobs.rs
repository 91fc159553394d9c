//! The jobs index the planner pages through, and its backfill.

use super::item::{Fields, Item, JOB_PROVIDER_ID, JOBS_INDEX, PK, SK, jobs_index_backfill_key, s};
use super::{ProviderRecord, ProviderStore, StoreError, condition_held};
use crate::model::OrganizationId;
use crate::time::Timestamp;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

/// Where the next page of a table scan starts.
#[derive(Debug, Clone)]
pub struct ScanCursor(Item);

/// What the planner pages through (see [`ProviderStore::scan_ids`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobsSource {
    Index,
    /// The whole table: only while the index is not ready.
    Table,
}

/// Where the jobs index's backfill stands (see [`ProviderStore::backfill_jobs_index`]).
#[derive(Debug)]
pub enum Backfill {
    Done,
    /// Not done: the next page starts here (`None`: at the start of the table).
    From(Option<ScanCursor>),
}

/// Items given the jobs index's key at once during its backfill.
const BACKFILL_CONCURRENCY: usize = 16;

/// The backfill runs again this long after it was last done: code from before the index (a
/// deploy's overlap, a rollback) rewrites provider items without the index's key, and each
/// is found again within a day instead of never.
pub const BACKFILL_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

#[derive(Debug)]
pub struct ScanPage {
    pub providers: Vec<Result<ProviderRecord, StoreError>>,
    pub next: Option<ScanCursor>,
}

/// The attribute holding the provider's id on a provider (`id`) or leftover (`providerId`) item.
pub(super) fn provider_id_attribute(entity: &str) -> &'static str {
    if entity == "provider" { "id" } else { "providerId" }
}

impl ProviderStore {
    /// One page of every organization's providers, for the hourly job. An item that cannot be
    /// read is returned as an error in its place, so one bad record never hides the rest.
    pub async fn scan_providers(&self, start: Option<ScanCursor>) -> Result<ScanPage, StoreError> {
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("entity = :provider")
            .expression_attribute_values(":provider", s("provider"))
            .set_exclusive_start_key(start.map(|cursor| cursor.0))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(ScanPage {
            providers: output.items().iter().map(ProviderRecord::from_item).collect(),
            next: output.last_evaluated_key.map(ScanCursor),
        })
    }

    /// One page of the (organization, provider id) pairs of every item of `entity`
    /// (`provider` or `orphan`), for the job planner. It reads the jobs index, which holds
    /// provider and leftover items only, with just the attributes read here; or the whole table
    /// while the index is not ready ([`StoreError::IndexNotReady`]).
    pub async fn scan_ids(
        &self,
        entities: &[&str],
        source: JobsSource,
        start: Option<ScanCursor>,
    ) -> Result<(Vec<(OrganizationId, Uuid)>, Option<ScanCursor>), StoreError> {
        let id_attribute = match source {
            JobsSource::Index => JOB_PROVIDER_ID,
            JobsSource::Table => {
                let attribute = provider_id_attribute(entities[0]);
                debug_assert!(entities.iter().all(|e| provider_id_attribute(e) == attribute));
                attribute
            }
        };
        // One pass over the index for every entity asked for: a filter still reads every item.
        let names: Vec<String> = (0..entities.len()).map(|i| format!(":entity{i}")).collect();
        let values = names.iter().zip(entities).map(|(name, entity)| (name.clone(), s(*entity))).collect();
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .set_index_name((source == JobsSource::Index).then(|| JOBS_INDEX.to_owned()))
            .filter_expression(format!("entity IN ({})", names.join(", ")))
            .set_expression_attribute_values(Some(values))
            .projection_expression("organizationId, #provider")
            .expression_attribute_names("#provider", id_attribute)
            .set_exclusive_start_key(start.map(|cursor| cursor.0))
            .send()
            .await
            .map_err(|e| {
                // DynamoDB's answer while it backfills a new index ("Cannot read from
                // backfilling global secondary index").
                let backfilling = e.code() == Some("ValidationException")
                    && e.message().is_some_and(|m| m.contains("backfilling global secondary index"));
                if backfilling { StoreError::IndexNotReady } else { StoreError::request(e) }
            })?;
        let mut ids = Vec::new();
        for item in output.items() {
            let f = Fields(item);
            ids.push((f.organization_id("organizationId")?, f.uuid(id_attribute)?));
        }
        Ok((ids, output.last_evaluated_key.map(ScanCursor)))
    }

    /// Where the jobs index's backfill stands: done within the last [`BACKFILL_AGAIN_AFTER`],
    /// or where its next page starts.
    pub async fn jobs_index_backfill(&self) -> Result<Backfill, StoreError> {
        let Some(item) = self.get_item(jobs_index_backfill_key()).await? else { return Ok(Backfill::From(None)) };
        let f = Fields(&item);
        if let Some(done) = f.opt_timestamp("indexedAt")? {
            let age = crate::time::unix_now() as i64 - done.unix_seconds();
            return Ok(if age < BACKFILL_AGAIN_AFTER.as_secs() as i64 { Backfill::Done } else { Backfill::From(None) });
        }
        Ok(Backfill::From(item.get("cursor").and_then(|c| c.as_m().ok()).cloned().map(ScanCursor)))
    }

    /// One page of the backfill: gives the provider and leftover items written before the jobs
    /// index (they lack its key) their key, then records where the next page starts, or that
    /// the backfill is done. Returns each item's (entity, organization, provider id), for the
    /// planner to plan what the index could not yet show it, and where the next page starts.
    pub async fn backfill_jobs_index(
        &self,
        start: Option<ScanCursor>,
    ) -> Result<(Vec<(String, OrganizationId, Uuid)>, Option<ScanCursor>), StoreError> {
        use futures::{StreamExt, TryStreamExt};
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("entity IN (:provider, :orphan) AND attribute_not_exists(#provider)")
            .expression_attribute_values(":provider", s("provider"))
            .expression_attribute_values(":orphan", s("orphan"))
            .expression_attribute_names("#provider", JOB_PROVIDER_ID)
            .set_exclusive_start_key(start.map(|cursor| cursor.0))
            .send()
            .await
            .map_err(StoreError::request)?;
        let mut found = Vec::new();
        for item in output.items() {
            let f = Fields(item);
            let entity = f.string("entity")?;
            let provider_id = f.uuid(provider_id_attribute(&entity))?;
            let key = Item::from([(PK.to_owned(), f.get(PK)?.clone()), (SK.to_owned(), f.get(SK)?.clone())]);
            found.push((entity, f.organization_id("organizationId")?, provider_id, key));
        }
        // An item deleted since the scan read it is not written again (the condition).
        futures::stream::iter(&found)
            .map(|(_, _, provider_id, key)| async move {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key.clone()))
                    .update_expression("SET #provider = :provider")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#provider", JOB_PROVIDER_ID)
                    .expression_attribute_values(":provider", s(provider_id.to_string()))
                    .send()
                    .await;
                condition_held(result)
            })
            .buffer_unordered(BACKFILL_CONCURRENCY)
            .try_collect::<Vec<bool>>()
            .await?;
        let next = output.last_evaluated_key.map(ScanCursor);
        let mut progress = jobs_index_backfill_key();
        progress.insert("entity".to_owned(), s("jobsIndexBackfill"));
        match &next {
            Some(cursor) => progress.insert("cursor".to_owned(), AttributeValue::M(cursor.0.clone())),
            None => progress.insert("indexedAt".to_owned(), s(Timestamp::now().as_str())),
        };
        // Two planners at once (the two schedules fire together) may set the cursor back a
        // page or mark done what the other goes on with: either way a page is read again.
        crate::storage::item::put(&self.client, &self.table, progress).await?;
        Ok((found.into_iter().map(|(entity, org, provider_id, _)| (entity, org, provider_id)).collect(), next))
    }
}
