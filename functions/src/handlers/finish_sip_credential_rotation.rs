//! `POST /api/v1/providers/{id}/sip-credential/rotate/finish`: ends a rotation's overlap now,
//! removing the replaced SIP credential (see [`crate::provider::sip_rotation`]).

use crate::handlers::provider_path;
use crate::provider::sip_rotation::finish_sip_credential_rotation;
use crate::services::Services;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::within;
use shared::http::json_response;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(within(answer_deadline(&request), Box::pin(finish(services, &request))).await)
}

async fn finish(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let (org, id) = provider_path(request)?;
    Ok(json_response(StatusCode::OK, &finish_sip_credential_rotation(services, &org, id).await?))
}
