//! `GET /api/v1/providers/twilio/{id}/available-numbers`: the incoming numbers of the
//! customer's Twilio account, marked as imported or carrying voice routing import would replace.

use crate::providers::{requested_provider, stored_credentials, stored_credentials_error};
use crate::services::Services;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::within;
use shared::dto::{AvailableNumber, AvailableNumbers};
use shared::http::json_response;
use shared::model::PhoneNumberSid;
use std::collections::HashSet;

/// The most numbers listed; `truncated` says when the account has more.
pub const AVAILABLE_NUMBERS_CAP: usize = 1000;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(within(answer_deadline(&request), list(services, &request)).await)
}

async fn list(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = requested_provider(&services.store, request).await?;
    let (org, id) = (record.organization_id.clone(), record.id);
    let creds = stored_credentials(services, &record).await?;
    let (numbers, imported) = tokio::join!(
        services.twilio.list_incoming_numbers(&creds, AVAILABLE_NUMBERS_CAP + 1),
        services.store.all_numbers(&org, id)
    );
    let mut numbers =
        numbers.map_err(|e| stored_credentials_error("listing the account's phone numbers", &record, e))?;
    let imported: HashSet<PhoneNumberSid> =
        imported.map_err(ApiError::unavailable)?.into_iter().map(|n| n.phone_number_sid).collect();
    let truncated = numbers.len() > AVAILABLE_NUMBERS_CAP;
    numbers.truncate(AVAILABLE_NUMBERS_CAP);
    let items = numbers.iter().map(|n| AvailableNumber::new(n, imported.contains(&n.sid), &record.trunk_sid)).collect();
    Ok(json_response(StatusCode::OK, &AvailableNumbers { items, truncated }))
}
