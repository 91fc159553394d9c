//! `plan-jobs`: started by EventBridge Scheduler with `{"job": "reverify"}` or
//! `{"job": "sweep-orphans"}`; queues one work item per provider or leftover record (see
//! [`crate::provider::jobs`]). An operator may add `"graceSeconds": N` to a sweep: intents N
//! seconds old count as abandoned (`admin run-job sweep-orphans --grace-seconds N` in-process).

use crate::provider::jobs::{PlanError, plan};
use serde_json::{Value, json};
use shared::queue::{Job, Queue};
use shared::storage::ProviderStore;
use std::time::Duration;

/// The job a schedule's input (`{"job": "reverify"}`) names, and a sweep's grace override.
pub fn job_of(input: &Value) -> Result<(Job, Option<Duration>), PlanError> {
    let name = input["job"].as_str().unwrap_or_default();
    let job = Job::parse(name).ok_or_else(|| PlanError::UnknownJob(input.to_string()))?;
    let grace = match &input["graceSeconds"] {
        Value::Null => None,
        seconds => match (job, seconds.as_u64()) {
            (Job::SweepOrphans, Some(seconds)) => Some(Duration::from_secs(seconds)),
            _ => return Err(PlanError::BadGrace(input.to_string())),
        },
    };
    Ok((job, grace))
}

/// Queues the job's items on the jobs queue.
pub async fn handle(store: &ProviderStore, queue: &Queue, input: &Value) -> Result<Value, PlanError> {
    let (job, grace) = job_of(input)?;
    let send =
        |items: Vec<shared::queue::JobItem>| async move { queue.send_all(&items).await.map_err(PlanError::from) };
    let planned = plan(store, job, grace, send).await?;
    Ok(json!({"job": job, "planned": planned}))
}
