//! The deletion queue's event source, for `local-api`: polls the queue and hands each message
//! to the same consumer Lambda runs (`continue-deletions`), with the same time per invocation
//! as the template gives that function, deleting the message when it was handled and leaving
//! it for redelivery when the consumer reports it failed.

use functions::services::Services;
use serde_json::json;
use std::time::{Duration, Instant};

/// `ContinueDeletionsFunction`'s `Timeout` in template.yaml, less the answer reserve.
const INVOCATION_TIME: Duration = Duration::from_secs(299);

pub async fn run(services: Services, sqs: aws_sdk_sqs::Client, queue_url: String) {
    loop {
        let received =
            sqs.receive_message().queue_url(&queue_url).max_number_of_messages(1).wait_time_seconds(5).send().await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not poll the deletion queue");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        for message in messages {
            let event =
                json!({"Records": [{"messageId": message.message_id, "body": message.body, "eventSource": "aws:sqs"}]});
            let deadline = Some(Instant::now() + INVOCATION_TIME);
            let answer =
                shared::deadline::within(deadline, functions::handlers::continue_deletions::handle(&services, &event))
                    .await;
            let failed = answer["batchItemFailures"].as_array().is_some_and(|f| !f.is_empty());
            if !failed
                && let Some(handle) = message.receipt_handle
                && let Err(e) = sqs.delete_message().queue_url(&queue_url).receipt_handle(handle).send().await
            {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not delete a handled deletion message");
            }
        }
    }
}
