//! Request and response helpers shared by the handlers.

use crate::error::{ApiError, FieldErrors};
use crate::model::OrganizationId;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, http::StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

/// Bodies larger than this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A string the API Gateway Lambda authorizer put in the request's context
/// (`requestContext.authorizer.lambda.<name>`): `organizationId`, `apiKeyId`.
pub fn authorizer_field<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else { return None };
    context.authorizer.as_ref()?.fields.get(name)?.as_str()
}

/// The organization from the authorizer context. Every key and query is scoped by it.
pub fn organization_id(request: &Request) -> Result<OrganizationId, ApiError> {
    authorizer_field(request, "organizationId").and_then(OrganizationId::parse).ok_or(ApiError::Unauthorized)
}

/// A JSON response that must not be cached (it carries provider data).
pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    json_response_builder(status)
        .body(Body::from(serde_json::to_string(value).expect("response DTOs serialize")))
        .expect("static headers are valid")
}

pub fn json_response_builder(status: StatusCode) -> lambda_http::http::response::Builder {
    Response::builder().status(status).header("content-type", "application/json").header("cache-control", "no-store")
}

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
    /// Checks size (413), media type (415) and syntax (400); the body must be a JSON object.
    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        let bytes = body_bytes(request);
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
        }
        if !has_json_content_type(request) {
            return Err(ApiError::UnsupportedMediaType);
        }
        Self::from_slice(bytes)
    }

    /// Like [`Self::from_request`], but an empty body (no bytes at all) is `None`. White space
    /// alone is not empty: it is not JSON either, so it is a 400 like any other non-JSON body.
    pub fn from_request_or_empty(request: &Request) -> Result<Option<Self>, ApiError> {
        if body_bytes(request).is_empty() {
            return Ok(None);
        }
        Self::from_request(request).map(Some)
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

fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// The `{name}` path parameter as a UUID; 400 when it is not one.
pub fn path_uuid(request: &Request, name: &str) -> Result<uuid::Uuid, ApiError> {
    let value = request.path_parameters_ref().and_then(|params| params.first(name)).unwrap_or("");
    uuid::Uuid::parse_str(value).map_err(|_| ApiError::validation(name, "must be a UUID"))
}

/// A query-string parameter, if present.
pub fn query_param<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.query_string_parameters_ref().and_then(|params| params.first(name))
}

fn has_json_content_type(request: &Request) -> bool {
    let Some(value) = request.headers().get("content-type").and_then(|v| v.to_str().ok()) else {
        return false;
    };
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
