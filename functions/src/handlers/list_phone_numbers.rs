//! `GET /api/v1/providers/twilio/{id}/phone-numbers?limit=&nextToken=`: the provider's
//! imported numbers, paginated like the providers list.

use crate::gateway::{json_response, query_param};
use crate::handlers::list_providers::parse_limit;
use crate::handlers::provider_path;
use crate::provider::record::load_provider;
use crate::respond;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::dto::{PhoneNumberPage, PhoneNumberResponse};
use shared::storage::ProviderStore;

pub async fn handle(store: &ProviderStore, request: Request) -> Result<Response<Body>, Error> {
    respond(list(store, &request).await)
}

async fn list(store: &ProviderStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let (path, token) = (provider_path(request), query_param(request, "nextToken"));
    // The token names the provider, so it is checked once the path is known to be good.
    let token_check = match (&path, token) {
        (Ok((org, id)), Some(token)) => store.check_numbers_page_token(org, *id, token).map_err(Into::into),
        _ => Ok(()),
    };
    let (((org, id), limit), ()) = ApiError::both(ApiError::both(path, parse_limit(request)), token_check)?;
    load_provider(store, &org, id).await?;
    let (numbers, next_token) = store.list_numbers(&org, id, limit, token).await?;
    let page = PhoneNumberPage { items: numbers.iter().map(PhoneNumberResponse::from).collect(), next_token };
    Ok(json_response(StatusCode::OK, &page))
}
