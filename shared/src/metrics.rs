//! Metrics in CloudWatch Embedded Metric Format: one JSON line on stdout per data point, which
//! CloudWatch Logs turns into a metric (no agent, no extra request). One namespace; dimensions
//! kept small (never an organization or a provider id).

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "TwilioProviderService";

/// Metric units as CloudWatch names them.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// The function emitting (`AWS_LAMBDA_FUNCTION_NAME`; `local` outside Lambda): the one
/// dimension every metric has, so an alarm can watch one function.
fn function_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into()))
}

/// The `level` a metric line carries. With JSON logs, Lambda drops lines below the function's
/// application log level and reads a line with no level as INFO: at WARN or above every
/// metric (and the alarms on them) would vanish, so metric lines then carry that level.
fn level_for(application_log_level: Option<&str>) -> &'static str {
    match application_log_level.map(str::to_ascii_uppercase).as_deref() {
        Some("WARN") => "WARN",
        Some("ERROR") => "ERROR",
        Some("FATAL") => "FATAL",
        _ => "INFO",
    }
}

/// The level of this function's metric lines, from the log level Lambda gives it.
fn level() -> &'static str {
    static LEVEL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    LEVEL.get_or_init(|| level_for(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref()))
}

/// The EMF document for one data point: `Function` plus `dimensions` (name and value pairs, at
/// most two more).
pub fn document(name: &str, value: f64, unit: Unit, dimensions: &[(&str, &str)]) -> Value {
    let mut all = vec![("Function", function_name())];
    all.extend_from_slice(dimensions);
    let dimensions = all.as_slice();
    let mut root = Map::new();
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": [{"Name": name, "Unit": unit.as_str()}],
            }],
        }),
    );
    root.insert("level".into(), Value::String(level().into()));
    for (dimension, value) in dimensions {
        root.insert((*dimension).into(), Value::String((*value).into()));
    }
    root.insert(name.into(), json!(value));
    Value::Object(root)
}

/// One audit line: `audit` naming the action, the fields, and the level metric lines carry,
/// so that no `ApplicationLogLevel` filters it out (a trail with holes is no trail).
pub fn audit_document(action: &str, fields: &[(&str, &str)]) -> Value {
    let mut root = Map::new();
    root.insert("timestamp".into(), Value::String(crate::time::Timestamp::now().to_string()));
    root.insert("level".into(), Value::String(level().into()));
    root.insert("audit".into(), Value::String(action.into()));
    root.insert("function".into(), Value::String(function_name().into()));
    for (name, value) in fields {
        root.insert((*name).into(), Value::String((*value).into()));
    }
    Value::Object(root)
}

/// Writes one audit line (see [`audit_document`]) to stdout, beside the metric lines.
pub fn audit(action: &str, fields: &[(&str, &str)]) {
    println!("{}", audit_document(action, fields));
}

/// Writes one data point. Stdout is where Lambda's EMF extraction reads it (beside the log
/// lines, which are also JSON in Lambda).
pub fn emit(name: &str, value: f64, unit: Unit, dimensions: &[(&str, &str)]) {
    println!("{}", document(name, value, unit, dimensions));
}

/// A count of one.
pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    emit(name, 1.0, Unit::Count, dimensions);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_embedded_metric_format() {
        let doc = document("TwilioRequests", 1.0, Unit::Count, &[("Operation", "CreateTrunk"), ("Outcome", "ok")]);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function", "Operation", "Outcome"]]));
        assert_eq!(directive["Metrics"][0], json!({"Name": "TwilioRequests", "Unit": "Count"}));
        assert_eq!((&doc["Operation"], &doc["TwilioRequests"]), (&json!("CreateTrunk"), &json!(1.0)));
        assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
        assert_eq!(doc["level"], "INFO");
    }

    #[test]
    fn metric_lines_pass_the_functions_log_level_filter() {
        for (configured, level) in [
            (None, "INFO"),
            (Some("DEBUG"), "INFO"),
            (Some("INFO"), "INFO"),
            (Some("warn"), "WARN"),
            (Some("FATAL"), "FATAL"),
        ] {
            assert_eq!(level_for(configured), level, "{configured:?}");
        }
    }
}
