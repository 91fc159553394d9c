//! `POST /api/v1/providers/{id}/sip-credential/rotate`
use functions::handlers::rotate_sip_credential;
use functions::http_runtime::run;
use functions::services::Services;
use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env().await?;
    run(service_fn(|request| Box::pin(rotate_sip_credential::handle(&services, request)))).await
}
