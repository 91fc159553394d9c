//! Twilio's own OpenAPI documents, as the fake's rule book: every request's path, query and
//! form parameters are checked against the schemas in `twilio-oai/operations.json` (generated
//! from the official specs by `twilio-oai/generate.py`). What Twilio would refuse, the fake
//! refuses too, and records so a test can assert the service never sent it.

use regex::Regex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

#[derive(Debug, Deserialize)]
struct Document {
    operations: Vec<Operation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub operation_id: String,
    pub method: String,
    pub path: String,
    path_params: BTreeMap<String, Schema>,
    query: BTreeMap<String, Schema>,
    form: BTreeMap<String, Schema>,
    required: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Schema {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "enum")]
    allowed: Option<Vec<String>>,
    pattern: Option<String>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    format: Option<String>,
}

fn operations() -> &'static [Operation] {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    &DOCUMENT
        .get_or_init(|| {
            serde_json::from_str(include_str!("../twilio-oai/operations.json")).expect("operations.json is valid")
        })
        .operations
}

fn patterns() -> &'static std::sync::Mutex<HashMap<String, Regex>> {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<String, Regex>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Why a value breaks its schema, if it does.
fn violates(schema: &Schema, value: &str) -> Option<String> {
    match schema.kind.as_deref() {
        Some("integer") if value.parse::<i64>().is_err() => return Some("is not an integer".into()),
        Some("number") if value.parse::<f64>().is_err() => return Some("is not a number".into()),
        Some("boolean") if !matches!(value, "true" | "false" | "True" | "False") => {
            return Some("is not a boolean".into());
        }
        _ => {}
    }
    if let Some(allowed) = &schema.allowed
        && !allowed.iter().any(|a| a == value)
    {
        return Some(format!("is not one of {allowed:?}"));
    }
    let chars = value.chars().count();
    if schema.min_length.is_some_and(|min| chars < min) || schema.max_length.is_some_and(|max| chars > max) {
        return Some(format!("has {chars} characters, outside {:?}..{:?}", schema.min_length, schema.max_length));
    }
    if let Ok(number) = value.parse::<f64>()
        && (schema.minimum.is_some_and(|min| number < min) || schema.maximum.is_some_and(|max| number > max))
    {
        return Some(format!("is outside {:?}..{:?}", schema.minimum, schema.maximum));
    }
    if let Some(pattern) = &schema.pattern {
        let mut cache = patterns().lock().expect("pattern cache");
        let regex =
            cache.entry(pattern.clone()).or_insert_with(|| Regex::new(pattern).expect("the spec's patterns compile"));
        if !regex.is_match(value) {
            return Some(format!("does not match {pattern}"));
        }
    }
    // An empty URL is how Twilio clears one; anything else must be an absolute URI.
    if schema.format.as_deref() == Some("uri") && !value.is_empty() && url::Url::parse(value).is_err() {
        return Some("is not an absolute URI".into());
    }
    None
}

/// The operation a method and path (as sent, `.json` suffix included) name, with its path
/// parameters.
pub fn find(method: &str, path: &str) -> Option<(&'static Operation, Vec<(String, String)>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    operations().iter().filter(|op| op.method == method).find_map(|op| {
        let template: Vec<&str> = op.path.trim_matches('/').split('/').collect();
        if template.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (t, s) in template.iter().zip(&segments) {
            // `{Sid}.json` matches `AC….json`.
            let (t_stem, s_stem) = match (t.strip_suffix(".json"), s.strip_suffix(".json")) {
                (Some(t), Some(s)) => (t, s),
                (None, None) => (*t, *s),
                _ => return None,
            };
            match t_stem.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                Some(name) => params.push((name.to_owned(), s_stem.to_owned())),
                None if t_stem == s_stem => {}
                None => return None,
            }
        }
        Some((op, params))
    })
}

/// Everything about the request that breaks Twilio's spec; empty when it is valid.
pub fn check(method: &str, path: &str, query: Option<&str>, form: &[(String, String)]) -> Vec<String> {
    let Some((op, path_params)) = find(method, path) else {
        return vec![format!("{method} {path} is not an operation of Twilio's API")];
    };
    let mut problems = Vec::new();
    let id = &op.operation_id;
    for (name, value) in &path_params {
        if let Some(why) = op.path_params.get(name).and_then(|schema| violates(schema, value)) {
            problems.push(format!("{id}: path parameter {name} {why}"));
        }
    }
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect();
    for (name, value) in &query {
        match op.query.get(name) {
            None => problems.push(format!("{id}: unknown query parameter {name}")),
            Some(schema) => {
                if let Some(why) = violates(schema, value) {
                    problems.push(format!("{id}: query parameter {name} {why}"));
                }
            }
        }
    }
    for (name, value) in form {
        match op.form.get(name) {
            None => problems.push(format!("{id}: unknown parameter {name}")),
            Some(schema) => {
                if let Some(why) = violates(schema, value) {
                    problems.push(format!("{id}: parameter {name}={value:?} {why}"));
                }
            }
        }
    }
    for name in &op.required {
        if !form.iter().any(|(n, _)| n == name) {
            problems.push(format!("{id}: required parameter {name} is missing"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn requests_are_held_to_the_spec() {
        let number = format!("/2010-04-01/Accounts/AC{0}/IncomingPhoneNumbers/PN{0}.json", "a".repeat(32));
        assert!(check("POST", &number, None, &form(&[("VoiceUrl", "https://example.com/v")])).is_empty());
        assert!(check("POST", &number, None, &form(&[("VoiceUrl", "")])).is_empty(), "empty clears");
        assert_eq!(check("POST", &number, None, &form(&[("VoiceApplicationSid", "")])).len(), 1);
        assert_eq!(check("POST", &number, None, &form(&[("VoiceMethod", "PUT")])).len(), 1);
        assert_eq!(check("POST", &number, None, &form(&[("Voiceurl", "https://x")])).len(), 1, "names are exact");
        let trunks = "/v1/Trunks";
        assert!(check("GET", trunks, Some("PageSize=100&Page=1&PageToken=PT1"), &[]).is_empty());
        assert_eq!(check("GET", trunks, Some("PageSize=1001"), &[]).len(), 1);
        assert_eq!(check("GET", trunks, Some("Limit=5"), &[]).len(), 1);
        let origination = format!("/v1/Trunks/TK{}/OriginationUrls", "b".repeat(32));
        let problems = check("POST", &origination, None, &form(&[("SipUrl", "sip:x"), ("Enabled", "yes")]));
        assert_eq!(
            problems.len(),
            1 + 3,
            "Enabled is no boolean; Weight, Priority, FriendlyName missing: {problems:?}"
        );
        assert_eq!(check("GET", "/v1/Trunks/nope", None, &[]).len(), 1, "path parameters too");
        assert_eq!(check("PATCH", trunks, None, &[]).len(), 1);
    }
}
