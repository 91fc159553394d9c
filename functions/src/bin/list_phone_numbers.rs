//! `GET /api/v1/providers/twilio/{id}/phone-numbers`
use functions::handlers::list_phone_numbers;
use functions::http_runtime::run;
use functions::services::store_from_env;
use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let store = store_from_env().await?;
    run(service_fn(|request| Box::pin(list_phone_numbers::handle(&store, request)))).await
}
