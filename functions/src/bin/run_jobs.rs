//! `run-jobs`: consumes the jobs queue (SQS event source), one work item per message.
use functions::handlers::run_jobs;
use functions::services::Services;
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use shared::deadline::reserves::ANSWER;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        Box::pin(async move {
            let deadline = shared::deadline::from_epoch_millis(event.context.deadline, ANSWER);
            Ok::<_, Error>(shared::deadline::within(deadline, run_jobs::handle(services, &event.payload)).await)
        })
    }))
    .await
}
