//! `POST /api/v1/providers/twilio`: creates a provider (see [`crate::provider::create`]) and
//! answers 201 with its location; `Idempotency-Key` honoured.

use crate::handlers::idempotency::idempotent;
use crate::provider::create::{Deadlines, create_provider};
use crate::services::Services;
use crate::{ROLLBACK_RESERVE, answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::{CreateTwilioProvider, TwilioProviderResponse};
use shared::http::{json_response_builder, organization_id};

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(idempotent(&services.idempotency, &request, || create(services, &request)).await)
}

async fn create(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let organization_id = organization_id(request)?;
    let command = CreateTwilioProvider::from_request(request)?;
    let deadlines = Deadlines {
        work: shared::deadline::from_request(request, ROLLBACK_RESERVE),
        rollback: answer_deadline(request),
    };
    let record = create_provider(services, organization_id, command, deadlines).await?;
    let body = serde_json::to_string(&TwilioProviderResponse::from(&record)).expect("response DTOs serialize");
    Ok(json_response_builder(StatusCode::CREATED)
        .header("location", format!("/api/v1/providers/twilio/{}", record.id))
        .body(Body::from(body))
        .expect("headers are valid"))
}
