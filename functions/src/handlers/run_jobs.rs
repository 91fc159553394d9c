//! `run-jobs`: consumes the jobs queue (SQS event source), one work item per message, and
//! answers SQS's partial batch response (see [`crate::provider::jobs`]).

use crate::provider::jobs::work;
use crate::services::Services;
use serde_json::{Value, json};
use shared::queue::JobItem;

/// An SQS event of work items (worked side by side; the batch size in
/// the template bounds them); the answer lists those to retry.
pub async fn handle(services: &Services, event: &Value) -> Value {
    use futures::StreamExt;
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    let failures: Vec<Value> = futures::stream::iter(records)
        .map(|record| async move {
            let message_id = record["messageId"].as_str().unwrap_or_default().to_owned();
            let Some(item) = record["body"].as_str().and_then(|body| serde_json::from_str::<JobItem>(body).ok())
            else {
                tracing::error!(message_id, "jobs message is not a JobItem; dropped");
                return None;
            };
            match work(services, &item).await {
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(job = ?item.job, organization_id = %item.organization_id, provider_id = %item.provider_id, error = %e, "job item failed; SQS delivers it again");
                    Some(json!({"itemIdentifier": message_id}))
                }
            }
        })
        .buffer_unordered(BATCH_CONCURRENCY)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    json!({"batchItemFailures": failures})
}

/// Items of one batch worked at once (the event source mapping's batch size).
const BATCH_CONCURRENCY: usize = 10;
