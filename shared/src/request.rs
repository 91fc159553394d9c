//! Request bodies: a JSON object read field by field, every failing field reported at once.
//! The Lambda request itself is read in the functions crate (`functions::gateway`).

use crate::error::{ApiError, FieldErrors};
use serde_json::{Map, Value};

/// Bodies larger than this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The fields of a JSON object body, read one by one so that every failing field is
/// reported at once, with messages that never echo the submitted value (it may be a secret).
pub struct JsonFields {
    fields: Map<String, Value>,
    /// The fields the parser asked for; any other field of the body is reported by `finish`
    /// (a misspelt `supportCallTransfer` must not quietly create a trunk without transfer).
    read: Vec<&'static str>,
    errors: FieldErrors,
}

impl JsonFields {
    /// Checks size (413), media type (415, from the `Content-Type` header's value) and syntax
    /// (400); the body must be a JSON object.
    pub fn from_body(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ApiError> {
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
        }
        if !content_type.is_some_and(is_json_media_type) {
            return Err(ApiError::UnsupportedMediaType);
        }
        Self::from_slice(bytes)
    }

    /// Like [`Self::from_body`], but an empty body (no bytes at all) is `None`. White space
    /// alone is not empty: it is not JSON either, so it is a 400 like any other non-JSON body.
    pub fn from_body_or_empty(bytes: &[u8], content_type: Option<&str>) -> Result<Option<Self>, ApiError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        Self::from_body(bytes, content_type).map(Some)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest("The request body is empty; a JSON object is required.".into()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => Ok(Self { fields, read: Vec::new(), errors: FieldErrors::new() }),
            Ok(_) => Err(ApiError::BadRequest("The request body must be a JSON object.".into())),
            // serde_json's syntax errors give a position, never the content.
            Err(e) => Err(ApiError::BadRequest(format!("The request body is not valid JSON: {e}."))),
        }
    }

    /// A field of the request's schema, as the body has it.
    fn get(&mut self, field: &'static str) -> Option<&Value> {
        self.read.push(field);
        self.fields.get(field)
    }

    /// Whether the body has this field at all (even as null).
    pub fn contains(&mut self, field: &'static str) -> bool {
        self.get(field).is_some()
    }

    /// A field's raw JSON value (absent or null is None), for shapes other than strings and booleans.
    pub fn raw(&mut self, field: &'static str) -> Option<&Value> {
        self.get(field).filter(|v| !v.is_null())
    }

    pub fn add_error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.entry(field.to_owned()).or_default().push(message.into());
    }

    /// A required string field, parsed; records an error and yields None when absent or bad.
    pub fn required<T>(&mut self, field: &'static str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        match self.get(field) {
            None | Some(Value::Null) => {
                self.add_error(field, "is required");
                None
            }
            Some(_) => self.optional(field, parse),
        }
    }

    /// An optional string field (absent or null is None), parsed.
    pub fn optional<T>(&mut self, field: &'static str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        match self.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match parse(s) {
                Ok(value) => Some(value),
                Err(message) => {
                    self.add_error(field, message);
                    None
                }
            },
            Some(_) => {
                self.add_error(field, "must be a string");
                None
            }
        }
    }

    /// An optional boolean field (absent or null is None).
    pub fn optional_bool(&mut self, field: &'static str) -> Option<bool> {
        match self.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.add_error(field, "must be a boolean");
                None
            }
        }
    }

    /// Ok when no field failed and the body has no field the request does not define;
    /// otherwise a 400 naming every failing and every unknown field.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let unknown: Vec<String> =
            self.fields.keys().filter(|key| !self.read.contains(&key.as_str())).map(|key| shown_name(key)).collect();
        for field in unknown {
            self.add_error(&field, "is not a field of this request; check its spelling");
        }
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::Validation(self.errors)) }
    }
}

/// An unknown field's name as an error names it: at most 64 characters, control characters
/// replaced (the name is the caller's text, and it is echoed).
fn shown_name(key: &str) -> String {
    const MAX: usize = 64;
    let mut shown: String = key.chars().take(MAX).map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    if key.chars().count() > MAX {
        shown.push('…');
    }
    shown
}

/// `application/json`, or any `application/*+json`, parameters aside.
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_failing_field() {
        let mut fields = JsonFields::from_slice(br#"{"a": 1, "c": "x", "d": "no"}"#).unwrap();
        assert!(fields.required("a", |s| Ok::<_, String>(s.to_owned())).is_none());
        assert!(fields.required("b", |s| Ok::<_, String>(s.to_owned())).is_none());
        assert_eq!(fields.optional("c", |s| Ok::<_, String>(s.to_owned())), Some("x".to_owned()));
        assert!(fields.optional_bool("d").is_none());
        let Err(ApiError::Validation(errors)) = fields.finish() else { panic!("expected a validation error") };
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["a", "b", "d"]);
    }

    #[test]
    fn rejects_non_objects_and_bad_syntax() {
        assert!(matches!(JsonFields::from_slice(b"[1]"), Err(ApiError::BadRequest(_))));
        assert!(matches!(JsonFields::from_slice(b"{\"a\":"), Err(ApiError::BadRequest(_))));
        assert!(matches!(JsonFields::from_slice(b"  "), Err(ApiError::BadRequest(_))));
    }
}
