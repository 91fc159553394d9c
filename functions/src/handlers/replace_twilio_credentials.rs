//! `PATCH /api/v1/providers/{id}/credentials`: replaces the stored Twilio credential with an
//! Auth Token or an API key (or a key minted with the token), once Twilio accepts it (see
//! [`crate::provider::rotate`]).

use crate::answer_deadline;
use crate::handlers::provider_path;
use crate::provider::rotate::replace_credentials;
use crate::respond;
use crate::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::within;
use shared::dto::{ReplaceCredentials, TwilioProviderResponse};
use shared::http::json_response;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(within(answer_deadline(&request), replace(services, &request)).await)
}

async fn replace(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let ((org, id), command) = ApiError::both(provider_path(request), ReplaceCredentials::from_request(request))?;
    let saved = Box::pin(replace_credentials(services, &org, id, command.credential)).await?;
    Ok(json_response(StatusCode::OK, &TwilioProviderResponse::from(&saved)))
}
