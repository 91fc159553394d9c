//! The Lambda functions. Each binary in `src/bin` builds its dependencies once (Init phase)
//! and runs its handler in [`handlers`] (same name as the binary), which parses the event,
//! calls a workflow in [`provider`] with typed inputs, and renders the answer. Tests call the
//! handlers with the events users send, and the workflows directly.
//!
//! Each `main` boxes its handler's future (`Box::pin`), one small allocation per invocation:
//! inline, the runtime's future, and so `main`'s, is as large as the handler's state (~16 KB for
//! create), which tokio's `block_on` copies on the stack before the first poll; every stack page
//! that touches is a page fault in the cold start.

pub mod gateway;
pub mod handlers;
pub mod http_runtime;
pub mod logging;
pub mod provider;
pub mod routes;
pub mod services;

use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use std::time::{Duration, Instant};

/// Time kept back from the invocation deadline to answer.
pub const ANSWER_RESERVE: Duration = Duration::from_secs(1);
/// Time kept back from provisioning for rolling back what was created.
pub const ROLLBACK_RESERVE: Duration = Duration::from_secs(8);

/// The deadline for a handler's outbound calls: the invocation's, less time to answer.
pub fn answer_deadline(request: &Request) -> Option<Instant> {
    crate::gateway::deadline(request, ANSWER_RESERVE)
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
