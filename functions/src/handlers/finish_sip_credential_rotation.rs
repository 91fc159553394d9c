//! `POST /api/v1/providers/{id}/sip-credential/rotate/finish`: ends a rotation's overlap now,
//! removing the replaced SIP credential (see [`crate::provider::sip_rotation`]).

use crate::gateway::json_response;
use crate::handlers::provider_path;
use crate::provider::sip_rotation::finish_sip_credential_rotation;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(serve(&request, Box::pin(finish(services, &request))).await)
}

async fn finish(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let (org, id) = provider_path(request)?;
    Ok(json_response(StatusCode::OK, &Box::pin(finish_sip_credential_rotation(services, &org, id)).await?))
}
