//! The hourly EventBridge-scheduled job: re-verifies every provider and sweeps leftover Twilio resources.
use functions::{reverify_all, services::Services};
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env().await?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<serde_json::Value>| async {
        Ok::<_, Error>(reverify_all::hourly(&services).await?)
    }))
    .await
}
