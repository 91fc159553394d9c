//! `DELETE /api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}`: takes the number off
//! the trunk and gives back the voice configuration it had before import (see
//! [`crate::provider::give_back::remove_number`]). Answers 200 with `{phoneNumberSid, restored,
//! reason}`. The number stays in the customer's account and can be imported again.

use crate::gateway::{json_response, path_uuid};
use crate::handlers::provider_path;
use crate::provider::give_back::remove_number;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(serve(&request, remove(services, &request)).await)
}

async fn remove(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let ((org, id), number_id) = ApiError::both(provider_path(request), path_uuid(request, "phoneNumberId"))?;
    Ok(json_response(StatusCode::OK, &Box::pin(remove_number(services, &org, id, number_id)).await?))
}
