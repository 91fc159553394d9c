//! `continue-deletions`: the deletion queue's consumer, running the next step of a delete that ran out of time.
//! Why some failed steps are retried and others dropped: docs/decisions/delete-in-steps.md.

use crate::provider::delete::{continue_deletion, is_passing};
use crate::services::Services;
use serde_json::{Value, json};
use shared::ApiError;
use shared::audit::{Actor, acting_as};
use shared::model::OrganizationId;
use shared::queue::ContinueDeletion;

/// Processes an SQS event; the answer lists the messages to deliver again.
pub async fn handle(services: &Services, event: &Value) -> Value {
    let mut failures = Vec::new();
    for record in event["Records"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let message_id = record["messageId"].as_str().unwrap_or_default();
        let message = record["body"].as_str().and_then(|body| serde_json::from_str::<ContinueDeletion>(body).ok());
        let Some((org, message)) = message.and_then(|m| OrganizationId::parse(&m.organization_id).map(|org| (org, m)))
        else {
            tracing::error!(message_id, "deletion message is not a ContinueDeletion; dropped");
            continue;
        };
        let step = continue_deletion(services, &org, message.provider_id);
        match Box::pin(acting_as(Actor::job("continue-deletions"), step)).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(ApiError::NotFound(_)) => {
                tracing::warn!(organization_id = %org, provider_id = %message.provider_id, "deletion message for a provider that is not being deleted; dropped");
            }
            // Every number was tried and some (or a trunk resource) could not be given back: a
            // delivery again would start the whole pass over, and go round as long as Twilio
            // keeps failing them. The provider shows why (`lastError`); DELETE again retries.
            Err(e @ ApiError::TwilioFailed { .. }) => {
                tracing::error!(organization_id = %org, provider_id = %message.provider_id, error = %e, "delete stopped with Twilio resources it could not give back (see the provider's deletion.lastError); DELETE again to retry");
            }
            Err(e) if is_passing(&e) => {
                tracing::warn!(organization_id = %org, provider_id = %message.provider_id, error = %e, "delete step failed; SQS delivers it again");
                failures.push(json!({"itemIdentifier": message_id}));
            }
            Err(e) => {
                tracing::error!(organization_id = %org, provider_id = %message.provider_id, error = %e, "delete stopped and needs a person (see the provider's deletion.lastError); DELETE again after fixing it");
            }
        }
    }
    json!({"batchItemFailures": failures})
}
