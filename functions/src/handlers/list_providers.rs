//! `GET /api/v1/providers?limit=&nextToken=`: the organization's providers, newest first.

use crate::gateway::{json_response, organization_id, query_param};
use crate::respond;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::{ProviderPage, ProviderResponse};
use shared::storage::ProviderStore;

pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 100;

pub async fn handle(store: &ProviderStore, request: Request) -> Result<Response<Body>, Error> {
    respond(list(store, &request).await)
}

/// `limit`: 1 to 100, default 20.
pub fn parse_limit(request: &Request) -> Result<i32, ApiError> {
    match query_param(request, "limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<i32>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| ApiError::validation("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"))),
    }
}

async fn list(store: &ProviderStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let org = organization_id(request)?;
    let token = query_param(request, "nextToken");
    let token_check = token.map_or(Ok(()), |token| store.check_providers_page_token(&org, token).map_err(Into::into));
    let (limit, ()) = ApiError::both(parse_limit(request), token_check)?;
    let (records, next_token) = store.list_providers(&org, limit, token).await?;
    let page = ProviderPage { items: records.iter().map(ProviderResponse::from).collect(), next_token };
    Ok(json_response(StatusCode::OK, &page))
}
