//! `PATCH /api/v1/providers/twilio/{id}/auth-token`
use functions::{rotate_auth_token, services::Services};
use lambda_http::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env().await?;
    run(service_fn(|request| rotate_auth_token::handle(&services, request))).await
}
