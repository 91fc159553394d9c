//! `get-sip-credential`: invoked directly by the call engine (Lambda Invoke), not routed.
use functions::handlers::get_sip_credential;
use functions::provider::sip_credential::SipCredentialReader;
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    functions::logging::init();
    let reader = SipCredentialReader::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        Box::pin(get_sip_credential::handle(&reader, event))
    }))
    .await
}
