//! `POST /api/v1/providers/twilio`: creates a provider (see [`crate::provider::create`]) and
//! answers 201 with its location; `Idempotency-Key` honoured.

use crate::gateway::{json_response_builder, organization_id};
use crate::handlers::idempotency::idempotent;
use crate::provider::create::{Deadlines, create_provider};
use crate::services::Services;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::reserves::ROLLBACK;
use shared::dto::{CreateTwilioProvider, TwilioProviderResponse};
use shared::model::OrganizationId;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    let parse = |request: &Request| {
        ApiError::both(
            organization_id(request),
            crate::gateway::json_body(request).and_then(CreateTwilioProvider::from_fields),
        )
    };
    let work = idempotent(&services.idempotency, &request, parse, |parsed| create(services, &request, parsed));
    respond(shared::audit::acting_as(crate::requester(&request), work).await)
}

async fn create(
    services: &Services,
    request: &Request,
    (organization_id, command): (OrganizationId, CreateTwilioProvider),
) -> Result<Response<Body>, ApiError> {
    let deadlines = Deadlines { work: crate::gateway::deadline(request, ROLLBACK), rollback: answer_deadline(request) };
    // Boxed: provisioning is a large state machine.
    let record = Box::pin(create_provider(services, organization_id, command, deadlines)).await?;
    let body = serde_json::to_string(&TwilioProviderResponse::from(&record)).expect("response DTOs serialize");
    Ok(json_response_builder(StatusCode::CREATED)
        .header("location", format!("/api/v1/providers/twilio/{}", record.id))
        .body(Body::from(body))
        .expect("headers are valid"))
}
