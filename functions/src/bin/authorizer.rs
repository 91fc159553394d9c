//! The API Gateway Lambda authorizer: API key -> organization.
use functions::handlers::authorizer;
use lambda_http::lambda_runtime::{self, Error, service_fn};
use shared::storage::api_keys::ApiKeyStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let table = shared::config::table_name_from_env()?;
    let aws = shared::tls::function_sdk_config().await;
    let keys = ApiKeyStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    lambda_runtime::run(service_fn(|event| Box::pin(authorizer::handle(&keys, event)))).await
}
