//! `POST /api/v1/providers/{id}/verify`: runs every check now and stores the result (see
//! [`crate::provider::verify`]).

use crate::gateway::json_response;
use crate::handlers::requested_provider;
use crate::provider::verify::verify_provider;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(serve(&request, run(services, &request)).await)
}

async fn run(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = requested_provider(&services.store, request).await?;
    Ok(json_response(StatusCode::OK, &Box::pin(verify_provider(services, record)).await?))
}
