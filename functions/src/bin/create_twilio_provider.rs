//! `POST /api/v1/providers/twilio`
use functions::handlers::create_twilio_provider;
use functions::http_runtime::run;
use functions::services::Services;
use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env().await?;
    run(service_fn(|request| Box::pin(create_twilio_provider::handle(&services, request)))).await
}
