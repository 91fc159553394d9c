//! `PUT /api/v1/providers/twilio/{id}`: partial update of name, region, supportsCallTransfer
//! (see [`crate::provider::update`]).

use crate::gateway::json_response;
use crate::handlers::provider_path;
use crate::provider::update::update_provider;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::{TwilioProviderResponse, UpdateTwilioProvider};

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(serve(&request, update(services, &request)).await)
}

async fn update(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let ((org, id), update) = ApiError::both(
        provider_path(request),
        crate::gateway::json_body_or_empty(request).and_then(UpdateTwilioProvider::from_optional_fields),
    )?;
    let saved = Box::pin(update_provider(services, &org, id, update)).await?;
    Ok(json_response(StatusCode::OK, &TwilioProviderResponse::from(&saved)))
}
