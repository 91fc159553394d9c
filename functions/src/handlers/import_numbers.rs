//! `POST /api/v1/providers/twilio/{id}/import-numbers`: puts numbers from the customer's
//! account on the provider's trunk (see [`crate::provider::import`]); `Idempotency-Key` honoured.

use crate::gateway::json_response;
use crate::handlers::idempotency::idempotent;
use crate::handlers::provider_path;
use crate::provider::import::import_numbers;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::ImportNumbers;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    let parse = |request: &Request| {
        ApiError::both(provider_path(request), crate::gateway::json_body(request).and_then(ImportNumbers::from_fields))
    };
    let work = idempotent(&services.idempotency, &request, parse, |((org, id), command)| async move {
        Ok(json_response(StatusCode::OK, &Box::pin(import_numbers(services, &org, id, command)).await?))
    });
    respond(serve(&request, work).await)
}
