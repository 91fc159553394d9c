//! `GET /api/v1/providers/twilio/{id}/available-numbers`: the incoming numbers of the
//! customer's Twilio account, marked as imported or carrying voice routing import would replace.

use crate::gateway::json_response;
use crate::handlers::requested_provider;
use crate::provider::import::available_numbers;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(serve(&request, list(services, &request)).await)
}

async fn list(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = requested_provider(&services.store, request).await?;
    Ok(json_response(StatusCode::OK, &available_numbers(services, &record).await?))
}
