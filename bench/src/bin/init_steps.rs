//! Where a function's init time goes: runs the steps a function's `main` runs before its first
//! poll, in the same order, and prints `[[step, microseconds], …]` as one JSON line. The
//! benchmark suite runs it in a fresh process each time (the costs are first-use costs) and
//! reports the medians next to the cold starts.
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut steps: Vec<(&str, u128)> = Vec::new();
    let mut last = Instant::now();
    let mut step = |name, steps: &mut Vec<(&str, u128)>| {
        steps.push((name, last.elapsed().as_micros()));
        last = Instant::now();
    };
    functions::logging::init();
    step("log subscriber", &mut steps);
    let tls = shared::tls::client_builder().build();
    step("TLS configuration (compiled-in roots, ring)", &mut steps);
    drop(tls);
    let aws = shared::tls::function_sdk_config().await;
    step("AWS SDK configuration (region, environment credentials)", &mut steps);
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    step("DynamoDB client", &mut steps);
    let kms = aws_sdk_kms::Client::new(&aws);
    step("KMS client", &mut steps);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    step("SQS client", &mut steps);
    let twilio =
        shared::twilio::TwilioClient::new(&shared::config::TwilioConfig::from_env().expect("Twilio configuration"));
    step("Twilio client (reqwest on the shared TLS configuration)", &mut steps);
    drop((dynamo, kms, sqs, twilio));
    let fields: Vec<String> = steps.iter().map(|(name, us)| format!("[{name:?},{us}]")).collect();
    println!("[{}]", fields.join(","));
}
