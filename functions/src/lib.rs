//! The Lambda functions. Each binary in `src/bin` runs its handler in [`handlers`], which parses the event, calls a
//! workflow in [`provider`] with typed inputs, and renders the answer. Why: docs/decisions/handlers-and-workflows.md.

pub mod gateway;
pub mod handlers;
pub mod http_runtime;
pub mod logging;
pub mod provider;
pub mod routes;
pub mod services;

use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use std::time::Instant;

/// The deadline for a handler's outbound calls: the invocation's, less time to answer.
pub fn answer_deadline(request: &Request) -> Option<Instant> {
    crate::gateway::deadline(request, shared::deadline::reserves::ANSWER)
}

/// Runs a handler's work within [`answer_deadline`], on behalf of the API key that asked (the
/// audit trail names it).
pub async fn serve<F: Future>(request: &Request, work: F) -> F::Output {
    shared::deadline::within(answer_deadline(request), shared::audit::acting_as(requester(request), work)).await
}

/// Who asked: the API key the authorizer let the request in with (its id, never the key).
pub fn requester(request: &Request) -> shared::audit::Actor {
    shared::audit::Actor::api_key(crate::gateway::authorizer_field(request, "apiKeyId"))
}

/// Renders a handler outcome: errors become problem+json responses, never Lambda errors.
pub fn respond(outcome: Result<Response<Body>, ApiError>) -> Result<Response<Body>, Error> {
    Ok(outcome.unwrap_or_else(crate::gateway::problem_response))
}
