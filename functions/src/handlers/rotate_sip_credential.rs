//! `POST /api/v1/providers/{id}/sip-credential/rotate`: a new SIP credential becomes current,
//! the replaced one keeps working for the overlap (see [`crate::provider::sip_rotation`]);
//! `Idempotency-Key` honoured.

use crate::gateway::json_response;
use crate::handlers::idempotency::idempotent;
use crate::handlers::provider_path;
use crate::provider::sip_rotation::rotate_sip_credential;
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::RotateSipCredential;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    let parse = |request: &Request| {
        ApiError::both(
            provider_path(request),
            crate::gateway::json_body_or_empty(request).and_then(RotateSipCredential::from_optional_fields),
        )
    };
    let work = idempotent(&services.idempotency, &request, parse, |((org, id), command)| async move {
        Ok(json_response(StatusCode::OK, &Box::pin(rotate_sip_credential(services, &org, id, command)).await?))
    });
    respond(serve(&request, Box::pin(work)).await)
}
