//! `PATCH /api/v1/providers/{id}/credentials`: replaces the stored Twilio credential with an
//! Auth Token or an API key (or a key minted with the token), once Twilio accepts it (see
//! [`crate::provider::rotate`]).

use crate::gateway::json_response;
use crate::handlers::provider_path;
use crate::provider::rotate::replace_credentials;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::{ReplaceCredentials, TwilioProviderResponse};

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(serve(&request, replace(services, &request)).await)
}

async fn replace(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let ((org, id), command) = ApiError::both(
        provider_path(request),
        crate::gateway::json_body(request).and_then(ReplaceCredentials::from_fields),
    )?;
    let saved = Box::pin(replace_credentials(services, &org, id, command.credential)).await?;
    Ok(json_response(StatusCode::OK, &TwilioProviderResponse::from(&saved)))
}
