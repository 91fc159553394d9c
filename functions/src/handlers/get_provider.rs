//! `GET /api/v1/providers/{id}`: any provider type, `providerType` as the discriminator.

use crate::gateway::json_response;
use crate::handlers::requested_provider;
use crate::respond;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::ProviderResponse;
use shared::storage::ProviderStore;

pub async fn handle(store: &ProviderStore, request: Request) -> Result<Response<Body>, Error> {
    respond(get(store, &request).await)
}

async fn get(store: &ProviderStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = requested_provider(store, request).await?;
    Ok(json_response(StatusCode::OK, &ProviderResponse::from(&record)))
}
