//! `DELETE /api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}`
use functions::handlers::remove_phone_number;
use functions::http_runtime::run;
use functions::services::Services;
use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env().await?;
    run(service_fn(|request| Box::pin(remove_phone_number::handle(&services, request)))).await
}
