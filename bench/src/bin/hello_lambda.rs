//! A hello-world `lambda_runtime` function: the cold-start baseline of the benchmarks.
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move { Ok::<_, Error>(event.payload) },
    ))
    .await
}
