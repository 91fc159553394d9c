//! `DELETE /api/v1/providers/{id}`
use functions::handlers::delete_provider;
use functions::http_runtime::run;
use functions::services::Services;
use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let services = Services::from_env_for_deletion().await?;
    run(service_fn(|request| Box::pin(delete_provider::handle(&services, request)))).await
}
