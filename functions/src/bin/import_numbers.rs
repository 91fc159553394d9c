//! `POST /api/v1/providers/twilio/{id}/import-numbers`
use functions::{import_numbers, services::Services};
use lambda_http::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    run(service_fn(|request| import_numbers::handle(&services, request))).await
}
