//! `POST /api/v1/providers/{id}/repair`: fixes what verification finds fixable (see
//! [`crate::provider::repair`]).

use crate::gateway::json_response;
use crate::handlers::requested_provider;
use crate::provider::repair::repair_provider;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    // Boxed: the repair's state machine is large, and a caller's stack (a 2 MiB worker
    // thread in tests) should not have to hold it.
    respond(serve(&request, Box::pin(run(services, &request))).await)
}

async fn run(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = requested_provider(&services.store, request).await?;
    Ok(json_response(StatusCode::OK, &Box::pin(repair_provider(services, record)).await?))
}
