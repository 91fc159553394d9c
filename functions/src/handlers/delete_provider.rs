//! `DELETE /api/v1/providers/{id}[?force=true]`, with `{"authToken": …}` when the provider's
//! API key was minted by the service (to delete it): 204 once deleted, 202 with the progress
//! while the deletion queue continues it, 200 with what was left behind when forced (see
//! [`crate::provider::delete`]).

use crate::gateway::{json_response, query_param};
use crate::handlers::provider_path;
use crate::provider::delete::{Deletion, delete_step};
use crate::services::Services;
use crate::{respond, serve};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::{DeletionInProgress, DeletionView, ForcedDeletion};
use shared::model::AuthToken;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(serve(&request, delete(services, &request)).await)
}

fn parse_force(request: &Request) -> Result<bool, ApiError> {
    match query_param(request, "force") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::validation("force", "must be true or false")),
    }
}

/// The optional body: `{"authToken": …}`, only to delete an API key the service minted.
fn parse_body(request: &Request) -> Result<Option<AuthToken>, ApiError> {
    let Some(mut fields) = crate::gateway::json_body_or_empty(request)? else { return Ok(None) };
    let token = fields.optional("authToken", |s| AuthToken::parse(s).map_err(str::to_owned));
    fields.finish()?;
    Ok(token)
}

async fn delete(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let ((org, id), force) = ApiError::both(provider_path(request), parse_force(request))?;
    let auth_token = parse_body(request)?;
    // Boxed: a delete step is a large state machine.
    Ok(match Box::pin(delete_step(services, &org, id, force, auth_token)).await? {
        Deletion::Deleted => Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).expect("static"),
        Deletion::Forced(left_behind) => json_response(StatusCode::OK, &ForcedDeletion::new(id, left_behind)),
        Deletion::Continuing(record) => {
            let state = record.deletion.as_ref().expect("a continuing delete is marked");
            let body = DeletionInProgress { deletion: DeletionView::of(state, record.phone_number_count) };
            json_response(StatusCode::ACCEPTED, &body)
        }
    })
}
