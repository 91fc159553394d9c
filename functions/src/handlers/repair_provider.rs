//! `POST /api/v1/providers/{id}/repair`: fixes what verification finds fixable (see
//! [`crate::provider::repair`]).

use crate::handlers::requested_provider;
use crate::provider::repair::repair_provider;
use crate::services::Services;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::within;
use shared::http::json_response;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    // Boxed: the repair's state machine is large, and a caller's stack (a 2 MiB worker
    // thread in tests) should not have to hold it.
    respond(within(answer_deadline(&request), Box::pin(run(services, &request))).await)
}

async fn run(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = requested_provider(&services.store, request).await?;
    Ok(json_response(StatusCode::OK, &repair_provider(services, record).await?))
}
