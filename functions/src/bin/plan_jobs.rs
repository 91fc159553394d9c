//! `plan-jobs`: started by EventBridge Scheduler with `{"job": "reverify"}` or
//! `{"job": "sweep-orphans"}`; queues one work item per provider or leftover record.
use functions::handlers::plan_jobs;
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use shared::queue::Queue;
use shared::storage::ProviderStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let table = shared::config::table_name_from_env()?;
    let queue_url = shared::config::required_queue_url("JOBS_QUEUE_URL")?;
    let aws = shared::tls::function_sdk_config().await;
    let store = ProviderStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    let queue = Queue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
    let (store, queue) = (&store, &queue);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        Box::pin(async move { Ok::<_, Error>(plan_jobs::handle(store, queue, &event.payload).await?) })
    }))
    .await
}
