//! The API Gateway request and response: the authorizer's context, path and query parameters,
//! the JSON body, and JSON and problem+json answers.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, http::StatusCode};
use serde::Serialize;
use shared::ApiError;
use shared::model::OrganizationId;
use shared::request::JsonFields;

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

/// The `{name}` path parameter as a UUID; 400 when it is not one.
pub fn path_uuid(request: &Request, name: &str) -> Result<uuid::Uuid, ApiError> {
    let value = request.path_parameters_ref().and_then(|params| params.first(name)).unwrap_or("");
    uuid::Uuid::parse_str(value).map_err(|_| ApiError::validation(name, "must be a UUID"))
}

/// A query-string parameter, if present.
pub fn query_param<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.query_string_parameters_ref().and_then(|params| params.first(name))
}

/// The body as a JSON object (413, 415 and 400 as [`JsonFields::from_body`] says).
pub fn json_body(request: &Request) -> Result<JsonFields, ApiError> {
    JsonFields::from_body(body_bytes(request), content_type(request))
}

/// The body as a JSON object, or `None` when there is no body at all.
pub fn json_body_or_empty(request: &Request) -> Result<Option<JsonFields>, ApiError> {
    JsonFields::from_body_or_empty(body_bytes(request), content_type(request))
}

fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

fn content_type(request: &Request) -> Option<&str> {
    request.headers().get("content-type").and_then(|v| v.to_str().ok())
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

/// The error, logged, as its problem+json answer.
pub fn problem_response(error: ApiError) -> Response<Body> {
    error.into_response().map(Body::from)
}

/// The invocation's deadline from the Lambda context, less `reserve`.
pub fn deadline(request: &Request, reserve: std::time::Duration) -> Option<std::time::Instant> {
    shared::deadline::from_epoch_millis(request.lambda_context_ref()?.deadline, reserve)
}
