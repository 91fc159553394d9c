//! SQS queues for work that outlives one invocation: a provider deletion that runs out of time
//! continues from a message, and the scheduled jobs fan out one message per provider. Messages
//! are JSON; sends go in batches of ten (SQS's limit), and a batch entry SQS refuses is sent
//! again once before the send fails.

use crate::error::Cause;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
#[error("SQS request failed: {}", crate::error::chain(.0))]
pub struct QueueError(#[source] Cause);

/// One queue, by URL. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct Queue {
    sqs: Arc<Sqs>,
    url: String,
}

/// The SQS client, or what builds it at the first send.
#[derive(Debug)]
struct Sqs {
    client: OnceLock<aws_sdk_sqs::Client>,
    config: Option<aws_config::SdkConfig>,
}

/// SQS accepts at most ten messages per batch.
const BATCH: usize = 10;
/// Batches in flight at once in [`Queue::send_all`].
const SENDS_AT_ONCE: usize = 8;

impl Queue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { sqs: Arc::new(Sqs { client: OnceLock::from(sqs), config: None }), url: url.into() }
    }

    /// A queue whose SQS client is built at the first send: for a function that seldom sends
    /// (a delete that finishes in time never does), so that its cold start does not build it.
    pub fn built_at_first_send(aws: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self { sqs: Arc::new(Sqs { client: OnceLock::new(), config: Some(aws.clone()) }), url: url.into() }
    }

    fn client(&self) -> &aws_sdk_sqs::Client {
        self.sqs.client.get_or_init(|| {
            aws_sdk_sqs::Client::new(
                self.sqs.config.as_ref().expect("a queue without a client keeps its configuration"),
            )
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send<T: Serialize>(&self, message: &T) -> Result<(), QueueError> {
        self.send_all(std::slice::from_ref(message)).await
    }

    /// Sends every message, ten per request, a few requests at once (a planner queueing tens
    /// of thousands of items would otherwise spend most of its time waiting on each answer).
    pub async fn send_all<T: Serialize>(&self, messages: &[T]) -> Result<(), QueueError> {
        use futures::{StreamExt, TryStreamExt};
        // The futures are made up front: a stream that maps borrowed chunks to futures makes
        // the whole future not provably `Send` (a higher-ranked lifetime), which axum requires.
        let sends: Vec<_> = messages.chunks(BATCH).map(|chunk| self.send_batch(chunk)).collect();
        futures::stream::iter(sends).buffer_unordered(SENDS_AT_ONCE).try_collect().await
    }

    async fn send_batch<T: Serialize>(&self, chunk: &[T]) -> Result<(), QueueError> {
        let mut pending: Vec<(String, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| (i.to_string(), serde_json::to_string(m).expect("messages serialize")))
            .collect();
        for attempt in 1..=2 {
            let entries = pending
                .iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder().id(id).message_body(body).build().expect("id and body set")
                })
                .collect();
            let output = self
                .client()
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError(Cause::sdk(e)))?;
            let failed: Vec<String> = output.failed().iter().map(|f| f.id().to_owned()).collect();
            pending.retain(|(id, _)| failed.contains(id));
            if pending.is_empty() {
                return Ok(());
            }
            if attempt == 2 {
                return Err(QueueError(Cause::message(format!("SQS refused {} of the messages", pending.len()))));
            }
        }
        Ok(())
    }
}

/// Continue deleting a provider (the deletion queue's message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContinueDeletion {
    pub organization_id: String,
    pub provider_id: Uuid,
    // Whether the delete is forced is the record's to say (`deletionForced`), not a message's.
}

/// The scheduled jobs, one message per provider (the jobs queue's message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Job {
    /// Re-verify a provider against Twilio.
    Reverify,
    /// Retry removing the Twilio resources a failed rollback left behind for a provider.
    SweepOrphans,
}

impl Job {
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobItem {
    pub job: Job,
    pub organization_id: String,
    pub provider_id: Uuid,
    /// The sweep's override of the age at which an intent counts as abandoned (an operator's
    /// `graceSeconds`); absent: the age each intent recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_kebab_case() {
        assert_eq!(Job::parse("sweep-orphans"), Some(Job::SweepOrphans));
        assert_eq!(Job::parse("reverify"), Some(Job::Reverify));
        assert_eq!(Job::parse("other"), None);
        let item =
            JobItem { job: Job::Reverify, organization_id: "o".into(), provider_id: Uuid::nil(), grace_seconds: None };
        assert!(serde_json::to_string(&item).unwrap().contains("\"job\":\"reverify\""));
    }

    #[test]
    fn a_queue_built_at_first_send_has_no_client_until_then() {
        let aws = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let queue = Queue::built_at_first_send(&aws, "https://sqs.us-east-1.amazonaws.com/1/q");
        let copy = queue.clone();
        assert!(queue.sqs.client.get().is_none());
        copy.client();
        assert!(queue.sqs.client.get().is_some(), "clones share the client");
    }
}
