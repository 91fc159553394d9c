//! The Lambda handlers. Each binary in `src/bin` builds its dependencies once (Init phase)
//! and runs one of these handlers; tests call the handlers directly.

pub mod authorizer;
pub mod available_numbers;
pub mod continue_deletions;
pub mod create_twilio_provider;
pub mod delete_provider;
pub mod get_provider;
pub mod get_twilio_provider;
pub mod idempotency;
pub mod import_numbers;
pub mod jobs;
pub mod list_phone_numbers;
pub mod list_providers;
pub mod logging;
pub mod numbers;
pub mod providers;
pub mod remove_phone_number;
pub mod repair_provider;
pub mod reverify_all;
pub mod rollback;
pub mod rotate_auth_token;
pub mod routes;
pub mod services;
pub mod sip_credential;
pub mod sweep_orphans;
pub mod twilio_errors;
pub mod update_twilio_provider;
pub mod verification;
pub mod verify_provider;

use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use std::time::{Duration, Instant};

/// Time kept back from the invocation deadline to answer.
pub const ANSWER_RESERVE: Duration = Duration::from_secs(1);
/// Time kept back from provisioning for rolling back what was created.
pub const ROLLBACK_RESERVE: Duration = Duration::from_secs(8);

/// The deadline for a handler's outbound calls: the invocation's, less time to answer.
pub fn answer_deadline(request: &Request) -> Option<Instant> {
    shared::deadline::from_request(request, ANSWER_RESERVE)
}

/// Renders a handler outcome: errors become problem+json responses, never Lambda errors.
pub fn respond(outcome: Result<Response<Body>, ApiError>) -> Result<Response<Body>, Error> {
    Ok(outcome.unwrap_or_else(ApiError::into_response))
}
