//! `plan-jobs`: started by EventBridge Scheduler with `{"job": "reverify"}` or
//! `{"job": "sweep-orphans"}`; queues one work item per provider or leftover record (see
//! [`crate::provider::jobs`]).

use crate::provider::jobs::{PlanError, plan};
use serde_json::{Value, json};
use shared::queue::{Job, Queue};
use shared::store::ProviderStore;

/// The job a schedule's input (`{"job": "reverify"}`) names.
pub fn job_of(input: &Value) -> Result<Job, PlanError> {
    let name = input["job"].as_str().unwrap_or_default();
    Job::parse(name).ok_or_else(|| PlanError::UnknownJob(input.to_string()))
}

/// Queues the job's items on the jobs queue.
pub async fn handle(store: &ProviderStore, queue: &Queue, input: &Value) -> Result<Value, PlanError> {
    let job = job_of(input)?;
    let planned =
        plan(store, job, |items| async move { queue.send_all(&items).await.map_err(PlanError::from) }).await?;
    Ok(json!({"job": job, "planned": planned}))
}
