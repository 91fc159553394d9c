//! `continue-deletions`: consumes the deletion queue (SQS event source).
use functions::handlers::continue_deletions;
use functions::services::Services;
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use shared::deadline::reserves::ANSWER;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env_for_deletion().await?;
    let services = &services;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        Box::pin(async move {
            let deadline = shared::deadline::from_epoch_millis(event.context.deadline, ANSWER);
            let answer = shared::deadline::within(deadline, continue_deletions::handle(services, &event.payload)).await;
            Ok::<_, Error>(answer)
        })
    }))
    .await
}
