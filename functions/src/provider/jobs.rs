//! The scheduled jobs at any size: the planner (`plan-jobs`) queues one message per provider, the worker (`run-jobs`)
//! runs each. Why: docs/decisions/scheduled-jobs-plan-and-run.md.

use crate::provider::{reverify, sweep};
use crate::services::Services;
use serde::Serialize;
use shared::audit::{Actor, acting_as};
use shared::model::OrganizationId;
use shared::queue::{Job, JobItem};
use shared::storage::{Backfill, JobsSource, ProviderStore, StoreError};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Store(#[from] shared::storage::StoreError),
    #[error(transparent)]
    Queue(#[from] shared::queue::QueueError),
    #[error("the schedule's input names no known job: {0}")]
    UnknownJob(String),
    #[error("graceSeconds is a whole number of seconds, for sweep-orphans only: {0}")]
    BadGrace(String),
}

/// Pages through the jobs index and hands each page of work items to `page` (the jobs queue
/// in Lambda, an in-process list for `admin run-job`). Returns how many items were planned.
///
/// Until the index's backfill is done, and again each day after, the items without the index's
/// key (written before the index, or since by code from before it) are found by a scan of the
/// table first, a page at a time: each page's items get the key and are planned at once (the
/// index may not show them yet), and where the scan stands is recorded, so a planner stopped
/// midway goes on from there the next time.
pub async fn plan<F, Fut>(
    store: &ProviderStore,
    job: Job,
    grace: Option<Duration>,
    mut page: F,
) -> Result<usize, PlanError>
where
    F: FnMut(Vec<JobItem>) -> Fut,
    Fut: Future<Output = Result<(), PlanError>>,
{
    // The sweeper's work: resources left behind, and changes whose writer may have died.
    let entities: &[&str] = match job {
        Job::Reverify => &["provider"],
        Job::SweepOrphans => &["orphan", "intent"],
    };
    let mut planned = 0;
    // A provider's leftovers are one item each, and the backfill and the index may both show
    // an item: each provider is planned once.
    let mut seen = std::collections::HashSet::new();
    let mut queue = async |ids: Vec<(OrganizationId, Uuid)>| {
        let items = ids
            .into_iter()
            .filter(|(_, provider_id)| seen.insert(*provider_id))
            .map(|(org, provider_id)| JobItem {
                job,
                organization_id: org.to_string(),
                provider_id,
                grace_seconds: grace.map(|grace| grace.as_secs()),
            })
            .collect::<Vec<_>>();
        planned += items.len();
        if items.is_empty() { Ok(()) } else { page(items).await }
    };
    if let Backfill::From(mut cursor) = store.jobs_index_backfill().await? {
        loop {
            let (found, next) = store.backfill_jobs_index(cursor.take()).await?;
            let found = found.into_iter().filter(|(e, _, _)| entities.contains(&e.as_str()));
            queue(found.map(|(_, org, id)| (org, id)).collect()).await?;
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        tracing::info!("jobs index backfilled");
    }
    planned_from_index(store, entities, &mut queue).await?;
    tracing::info!(job = ?job, planned, "job planned");
    Ok(planned)
}

/// Queues the providers of every item of these entities, from the jobs index (the table while
/// the index is still being built).
async fn planned_from_index(
    store: &ProviderStore,
    entities: &[&str],
    queue: &mut impl AsyncFnMut(Vec<(OrganizationId, Uuid)>) -> Result<(), PlanError>,
) -> Result<(), PlanError> {
    let (mut source, mut cursor) = (JobsSource::Index, None);
    loop {
        let (ids, next) = match store.scan_ids(entities, source, cursor.take()).await {
            Ok(page) => page,
            // Just added to a table with items, DynamoDB is still building it: the table is
            // read instead, from its start (what was queued already is not queued again).
            Err(StoreError::IndexNotReady) if source == JobsSource::Index => {
                tracing::warn!("the jobs index is still being built; this run reads the table");
                source = JobsSource::Table;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        queue(ids).await?;
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// What one work item came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worked {
    Reverify(reverify::Outcome),
    Sweep(sweep::Outcome),
}

/// Does one work item. `Err` is worth retrying (storage, KMS or queue unavailable).
pub async fn work(services: &Services, item: &JobItem) -> Result<Worked, String> {
    let grace = item.grace_seconds.map(Duration::from_secs);
    let org = OrganizationId::parse(&item.organization_id).ok_or("the item names no valid organization")?;
    let actor = Actor::job(&shared::storage::item::variant_name(&item.job));
    acting_as(actor, async {
        match item.job {
            // Boxed: verification is a large state machine.
            Job::Reverify => Box::pin(reverify::reverify_one(services, &org, item.provider_id))
                .await
                .map(Worked::Reverify)
                .map_err(|e| e.to_string()),
            Job::SweepOrphans => Box::pin(sweep::sweep_one(services, &org, item.provider_id, grace))
                .await
                .map(Worked::Sweep)
                .map_err(|e| e.to_string()),
        }
    })
    .await
}

/// A whole job run in-process (`admin run-job`): the same planner and worker code, the queue
/// replaced by a list, items worked `concurrency` at a time.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InProcessRun {
    pub job: Job,
    pub planned: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<reverify::Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphans: Option<sweep::SweepSummary>,
    /// Items that failed for a reason worth retrying.
    pub retry: usize,
}

pub async fn run_in_process(
    services: &Services,
    job: Job,
    concurrency: usize,
    grace: Option<Duration>,
) -> Result<InProcessRun, PlanError> {
    use futures::StreamExt;
    let items = std::sync::Mutex::new(Vec::new());
    let planned = plan(&services.store, job, grace, |page| {
        items.lock().expect("planner list").extend(page);
        async { Ok(()) }
    })
    .await?;
    let items = items.into_inner().expect("planner list");
    let results: Vec<Result<Worked, String>> =
        futures::stream::iter(&items).map(|item| work(services, item)).buffer_unordered(concurrency).collect().await;
    let mut run = InProcessRun {
        job,
        planned,
        verification: (job == Job::Reverify).then(reverify::Summary::default),
        orphans: (job == Job::SweepOrphans).then(sweep::SweepSummary::default),
        retry: 0,
    };
    for result in results {
        match result {
            Ok(Worked::Reverify(outcome)) => run.verification.get_or_insert_with(Default::default).add(outcome),
            Ok(Worked::Sweep(outcome)) => run.orphans.get_or_insert_with(Default::default).add(outcome),
            Err(_) => run.retry += 1,
        }
    }
    Ok(run)
}
