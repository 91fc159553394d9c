//! `PATCH /api/v1/providers/twilio/{id}/auth-token`
use functions::handlers::rotate_twilio_auth_token;
use functions::http_runtime::run;
use functions::services::Services;
use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env().await?;
    run(service_fn(|request| Box::pin(rotate_twilio_auth_token::handle(&services, request)))).await
}
