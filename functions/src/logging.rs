//! The functions' log subscriber: the Lambda runtime's own defaults, with one floor no configuration can lower (the
//! runtime crates never log at TRACE) and a plain `RUST_LOG` parser. Why: docs/decisions/log-subscriber.md.

use lambda_http::tracing::subscriber::filter::{FilterExt, LevelFilter, Targets};
use lambda_http::tracing::subscriber::{Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};
use std::str::FromStr;

/// The crates whose TRACE events carry raw invocation events (headers and bodies).
const RAW_EVENT_CRATES: [&str; 3] = ["lambda_runtime", "lambda_runtime_api_client", "lambda_http"];

/// What those crates may log at most, whatever level is asked for.
pub const RAW_EVENT_FLOOR: LevelFilter = LevelFilter::DEBUG;

/// What was asked for: the default level is `lambda_level` (Lambda sets `AWS_LAMBDA_LOG_LEVEL`
/// from the function's `ApplicationLogLevel`), else a bare level in `rust_log`, else INFO;
/// `rust_log`'s `target=level` directives apply on top. Directives that do not parse are
/// returned so they can be reported once logging works; the rest still apply.
pub fn requested(lambda_level: Option<&str>, rust_log: Option<&str>) -> (Targets, Vec<String>) {
    let mut targets = Targets::new();
    let mut ignored = Vec::new();
    let mut default = None;
    for directive in rust_log.unwrap_or_default().split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match directive.split_once('=') {
            None => match level(directive) {
                Some(level) => default = Some(level),
                None => ignored.push(directive.to_owned()),
            },
            Some((target, level_name)) => match (is_target(target), level(level_name)) {
                (true, Some(level)) => targets = targets.with_target(target, level),
                _ => ignored.push(directive.to_owned()),
            },
        }
    }
    let lambda_level = lambda_level.and_then(|v| level(v.trim()));
    let default = lambda_level.or(default).unwrap_or(LevelFilter::INFO);
    (targets.with_default(default), ignored)
}

/// A level by name, as Lambda's `ApplicationLogLevel` names them: FATAL, which `tracing` lacks,
/// is ERROR.
fn level(name: &str) -> Option<LevelFilter> {
    if name.eq_ignore_ascii_case("fatal") { Some(LevelFilter::ERROR) } else { LevelFilter::from_str(name).ok() }
}

/// A module path such as `shared` or `aws_smithy_runtime::client` (no spans, fields or regexes).
fn is_target(target: &str) -> bool {
    !target.is_empty() && target.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-')
}

/// The filter every function's logs pass: what was asked for, capped for the runtime crates.
pub fn filter(
    requested: Targets,
) -> impl lambda_http::tracing::subscriber::layer::Filter<lambda_http::tracing::subscriber::Registry> {
    let floor = RAW_EVENT_CRATES.iter().fold(Targets::new().with_default(LevelFilter::TRACE), |targets, name| {
        targets.with_target(*name, RAW_EVENT_FLOOR)
    });
    requested.and(floor)
}

/// Installs the subscriber; call once, first thing in `main`.
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let (requested, ignored) =
        requested(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(), std::env::var("RUST_LOG").ok().as_deref());
    let layer = fmt::layer().with_target(false).without_time();
    let layer = if json { layer.json().boxed() } else { layer.boxed() };
    lambda_http::tracing::subscriber::registry().with(layer.with_filter(filter(requested))).init();
    if !ignored.is_empty() {
        tracing::warn!(?ignored, "RUST_LOG directives ignored: only `level` and `target=level` are understood");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled_level(targets: &Targets, target: &str) -> Option<LevelFilter> {
        [LevelFilter::TRACE, LevelFilter::DEBUG, LevelFilter::INFO, LevelFilter::WARN, LevelFilter::ERROR]
            .into_iter()
            .find(|level| level.into_level().is_some_and(|level| targets.would_enable(target, &level)))
    }

    #[test]
    fn lambda_level_sets_the_default_and_rust_log_adds_targets() {
        let (targets, ignored) = requested(Some("DEBUG"), Some("warn,shared=trace,aws_smithy_runtime=error"));
        assert!(ignored.is_empty());
        assert_eq!(enabled_level(&targets, "functions::handlers"), Some(LevelFilter::DEBUG));
        assert_eq!(enabled_level(&targets, "shared::twilio"), Some(LevelFilter::TRACE));
        assert_eq!(enabled_level(&targets, "aws_smithy_runtime::client"), Some(LevelFilter::ERROR));
    }

    #[test]
    fn without_lambda_level_rust_log_then_info_set_the_default() {
        assert_eq!(enabled_level(&requested(None, Some("warn")).0, "shared"), Some(LevelFilter::WARN));
        assert_eq!(enabled_level(&requested(None, Some("shared=debug")).0, "functions"), Some(LevelFilter::INFO));
        assert_eq!(enabled_level(&requested(None, None).0, "functions"), Some(LevelFilter::INFO));
        assert_eq!(enabled_level(&requested(Some("not-a-level"), None).0, "functions"), Some(LevelFilter::INFO));
        assert_eq!(enabled_level(&requested(Some("FATAL"), Some("debug")).0, "functions"), Some(LevelFilter::ERROR));
    }

    #[test]
    fn directives_that_do_not_parse_are_reported_and_the_rest_apply() {
        let (targets, ignored) = requested(None, Some("debug,[span{id=1}]=trace,shared=loud,h.*=info, "));
        assert_eq!(ignored, ["[span{id=1}]=trace", "shared=loud", "h.*=info"]);
        assert_eq!(enabled_level(&targets, "shared"), Some(LevelFilter::DEBUG));
    }
}
