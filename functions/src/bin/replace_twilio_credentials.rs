//! `PATCH /api/v1/providers/{id}/credentials`
use functions::handlers::replace_twilio_credentials;
use functions::http_runtime::run;
use functions::services::Services;
use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env().await?;
    run(service_fn(|request| Box::pin(replace_twilio_credentials::handle(&services, request)))).await
}
