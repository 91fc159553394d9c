//! The functions' log subscriber: the Lambda runtime's own defaults (level from
//! `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO; JSON when `AWS_LAMBDA_LOG_FORMAT` is
//! `JSON`), with one floor no configuration can lower: the runtime crates never log at TRACE.
//!
//! Why: at TRACE, `lambda_runtime` writes every raw invocation event, which carries the
//! `authToken` of a create or rotation and the `Authorization: Bearer` API key of every
//! request. Turning TRACE on while troubleshooting must not put those in CloudWatch.

use lambda_http::tracing::subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
use lambda_http::tracing::subscriber::{Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};
use std::str::FromStr;

/// The crates whose TRACE events carry raw invocation events (headers and bodies).
const RAW_EVENT_CRATES: [&str; 3] = ["lambda_runtime", "lambda_runtime_api_client", "lambda_http"];

/// What those crates may log at most, whatever level is asked for.
pub const RAW_EVENT_FLOOR: LevelFilter = LevelFilter::DEBUG;

/// The filter every function's logs pass: the configured level, capped for the runtime crates.
pub fn filter() -> impl lambda_http::tracing::subscriber::layer::Filter<lambda_http::tracing::subscriber::Registry> {
    let configured = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    let level = configured.ok().and_then(|v| LevelFilter::from_str(&v).ok()).unwrap_or(LevelFilter::INFO);
    let requested = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    let floor = RAW_EVENT_CRATES.iter().fold(Targets::new().with_default(LevelFilter::TRACE), |targets, name| {
        targets.with_target(*name, RAW_EVENT_FLOOR)
    });
    requested.and(floor)
}

/// Installs the subscriber; call once, first thing in `main`.
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let layer = fmt::layer().with_target(false).without_time();
    let layer = if json { layer.json().boxed() } else { layer.boxed() };
    lambda_http::tracing::subscriber::registry().with(layer.with_filter(filter())).init();
}
