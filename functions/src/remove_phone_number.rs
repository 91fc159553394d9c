//! `DELETE /api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}`: takes the number off
//! the trunk, gives back the voice configuration it had before import (unless the customer
//! changed it since: then it is left as they set it), and forgets it. Answers 200 with
//! `{phoneNumberSid, restored, reason}`. The number stays in the customer's account and can be
//! imported again.

use crate::numbers::{KeyCache, ReleaseError, Released, release_number};
use crate::providers::{load_provider, refuse_if_deleting, stored_credentials, stored_credentials_error};
use crate::services::Services;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::within;
use shared::dto::RemovedNumber;
use shared::http::{json_response, organization_id, path_uuid};
use shared::store::StoreError;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(within(answer_deadline(&request), remove(services, &request)).await)
}

async fn remove(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let org = organization_id(request)?;
    let id = path_uuid(request, "id")?;
    let number_id = path_uuid(request, "phoneNumberId")?;
    let record = load_provider(&services.store, &org, id).await?;
    refuse_if_deleting(&record)?;
    let number = services
        .store
        .get_number(&org, id, number_id)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(|| ApiError::NotFound(format!("Provider {id} has no imported number {number_id}.")))?;
    let creds = stored_credentials(services, &record).await?;
    let mut keys = KeyCache::default();
    keys.load(services, &record, std::slice::from_ref(&number)).await.map_err(ApiError::unavailable)?;
    let released = release_number(services, &creds, &record, &number, &keys).await.map_err(|e| match e {
        ReleaseError::Twilio(step, e) => stored_credentials_error(step, &record, e),
        ReleaseError::Secret(e) => ApiError::unavailable(e),
    })?;
    services.store.remove_number(&org, &number).await.map_err(|e| match e {
        // Removed by a concurrent request: the end state is the one asked for.
        StoreError::NumberGone => ApiError::NotFound(format!("Provider {id} has no imported number {number_id}.")),
        StoreError::ProviderGone => ApiError::Conflict(format!("Provider {id} is being deleted.")),
        other => ApiError::unavailable(other),
    })?;
    let (restored, reason) = match released {
        Released::Restored | Released::Gone => (true, None),
        Released::LeftAsCustomerSet(reason) => (false, Some(reason)),
    };
    tracing::info!(organization_id = %org, provider_id = %id, phone_number_sid = %number.phone_number_sid, restored, reason = reason.as_deref().unwrap_or(""), "number removed");
    let body = RemovedNumber { phone_number_sid: number.phone_number_sid, restored, reason };
    Ok(json_response(StatusCode::OK, &body))
}
