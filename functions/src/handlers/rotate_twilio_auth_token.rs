//! `PATCH /api/v1/providers/twilio/{id}/auth-token`: sets a new auth token once Twilio accepts
//! it: the same operation as `PATCH .../credentials` with a token (see [`crate::provider::rotate`]).

use crate::gateway::json_response;
use crate::handlers::provider_path;
use crate::provider::rotate::replace_credentials;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::{NewCredential, RotateAuthToken, TwilioProviderResponse};

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(serve(&request, rotate(services, &request)).await)
}

async fn rotate(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let ((org, id), command) = ApiError::both(
        provider_path(request),
        crate::gateway::json_body(request).and_then(RotateAuthToken::from_fields),
    )?;
    let saved = Box::pin(replace_credentials(services, &org, id, NewCredential::AuthToken(command.auth_token))).await?;
    Ok(json_response(StatusCode::OK, &TwilioProviderResponse::from(&saved)))
}
