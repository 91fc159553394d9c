//! `GET /api/v1/events?providerId=`
use functions::handlers::list_events;
use functions::http_runtime::run;
use functions::services::store_from_env;
use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let store = store_from_env().await?;
    run(service_fn(|request| Box::pin(list_events::handle(&store, request)))).await
}
