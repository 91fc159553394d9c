//! `PATCH /api/v1/providers/twilio/{id}/auth-token`: sets a new auth token once Twilio accepts
//! it (see [`crate::provider::rotate`]).

use crate::handlers::provider_path;
use crate::provider::rotate::rotate_auth_token;
use crate::services::Services;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::within;
use shared::dto::{RotateAuthToken, TwilioProviderResponse};
use shared::http::json_response;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(within(answer_deadline(&request), rotate(services, &request)).await)
}

async fn rotate(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let ((org, id), command) = ApiError::both(provider_path(request), RotateAuthToken::from_request(request))?;
    let saved = rotate_auth_token(services, &org, id, command).await?;
    Ok(json_response(StatusCode::OK, &TwilioProviderResponse::from(&saved)))
}
