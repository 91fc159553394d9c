//! `local-api`: every route of the API on localhost, through the same authorizer logic and
//! handlers as in AWS. Same configuration as the functions (`TABLE_NAME`, `KMS_KEY_ID`,
//! `TWILIO_*_BASE_URL*` (each Twilio Region's hosts), `PLATFORM_SIP_URI`, `AWS_ENDPOINT_URL*`, `AWS_REGION`).
//!
//!   local-api [--listen 127.0.0.1:3000] [--bootstrap]
//!
//! `--bootstrap` first creates the table, the KMS key (and alias) and the deletion queue when
//! they are missing; without it, `DELETION_QUEUE_URL` names the queue. Deletes that run out of
//! time continue from that queue, consumed in-process as `continue-deletions` would.

use functions::services::Services;
use shared::config::{ConfigError, StorageConfig, TwilioConfig, default_region_from_env, platform_sip_uris_from_env};
use shared::queue::Queue;
use shared::storage::api_keys::ApiKeyStore;
use shared::twilio::TwilioClient;
use std::process::ExitCode;
use std::sync::Arc;
use tools::local_api::{LocalApi, router};

const OPENAPI: &str = include_str!("../../../openapi.json");

#[tokio::main]
async fn main() -> ExitCode {
    functions::logging::init();
    let mut listen = "127.0.0.1:3000".to_owned();
    let mut bootstrap = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next() {
                Some(value) => listen = value,
                None => return usage("--listen needs HOST:PORT"),
            },
            "--bootstrap" => bootstrap = true,
            "-h" | "--help" => {
                println!("usage: local-api [--listen HOST:PORT] [--bootstrap]");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let config = (|| {
        Ok::<_, ConfigError>((StorageConfig::from_env()?, TwilioConfig::from_env()?, platform_sip_uris_from_env()?))
    })();
    let (storage, twilio, platform_sip_uris) = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("local-api: {e}");
            return ExitCode::from(2);
        }
    };
    let aws = shared::tls::aws_sdk_config().await;
    if bootstrap && let Err(e) = tools::bootstrap::bootstrap(&aws, &storage).await {
        eprintln!("local-api: bootstrap failed: {e}");
        return ExitCode::from(1);
    }
    // Deletes that run out of time continue from the deletion queue, consumed here as the
    // continue-deletions function's event source would.
    let queue_url = match (std::env::var("DELETION_QUEUE_URL").ok().filter(|u| !u.is_empty()), bootstrap) {
        (Some(url), _) => url,
        (None, true) => match tools::bootstrap::deletion_queue(&aws, &storage).await {
            Ok(url) => url,
            Err(e) => {
                eprintln!("local-api: bootstrap failed: {e}");
                return ExitCode::from(1);
            }
        },
        (None, false) => {
            eprintln!(
                "local-api: environment variable DELETION_QUEUE_URL is required (or --bootstrap to create the queue)"
            );
            return ExitCode::from(2);
        }
    };
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let services =
        Services::new(&aws, &storage, TwilioClient::new(&twilio), default_region_from_env(), platform_sip_uris)
            .with_deletions(Queue::new(sqs.clone(), queue_url.clone()));
    tokio::spawn(tools::deletion_consumer::run(services.clone(), sqs, queue_url));
    let keys = ApiKeyStore::new(aws_sdk_dynamodb::Client::new(&aws), storage.table_name.clone());
    let api = Arc::new(LocalApi { services, keys, openapi: OPENAPI });
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("local-api: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("local-api listening on http://{listen}");
    let server = axum::serve(listener, router(api)).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    match server.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-api: {e}");
            ExitCode::from(1)
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("local-api: {problem}\nusage: local-api [--listen HOST:PORT] [--bootstrap]");
    ExitCode::from(2)
}
