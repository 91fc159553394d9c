//! `PUT /api/v1/providers/twilio/{id}`: partial update of name, region, supportsCallTransfer.
//! A transfer change goes to Twilio first; if Twilio fails, nothing changes locally.

use crate::providers::{
    load_provider, refuse_if_deleting, save_with_retry, stored_credentials, stored_credentials_error,
};
use crate::services::Services;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::within;
use shared::dto::{TwilioProviderResponse, UpdateTwilioProvider};
use shared::http::{json_response, organization_id, path_uuid};
use shared::model::transfer_mode;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(within(answer_deadline(&request), update(services, &request)).await)
}

async fn update(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let org = organization_id(request)?;
    let id = path_uuid(request, "id")?;
    let update = UpdateTwilioProvider::from_request(request)?;
    let record = load_provider(&services.store, &org, id).await?;
    if update.is_empty() {
        return Ok(json_response(StatusCode::OK, &TwilioProviderResponse::from(&record)));
    }
    refuse_if_deleting(&record)?;
    if let Some(wanted) = update.supports_call_transfer.filter(|wanted| *wanted != record.supports_call_transfer) {
        let creds = stored_credentials(services, &record).await?;
        services
            .twilio
            .update_trunk_transfer_mode(&creds, &record.trunk_sid, transfer_mode(wanted))
            .await
            .map_err(|e| stored_credentials_error("changing the trunk's transfer mode", &record, e))?;
    }
    let saved = save_with_retry(&services.store, record, |record| {
        refuse_if_deleting(record)?;
        if let Some(name) = &update.name {
            record.name = name.clone();
        }
        if let Some(region) = update.region {
            record.region = region;
            // The trunk and its domain stay; only the edge in the termination URI changes.
            let label = record.domain_name.strip_suffix(".pstn.twilio.com").unwrap_or(&record.domain_name).to_owned();
            record.termination_uri = region.termination_uri(&label);
        }
        if let Some(supports) = update.supports_call_transfer {
            record.supports_call_transfer = supports;
        }
        Ok(())
    })
    .await?;
    tracing::info!(organization_id = %org, provider_id = %id, "twilio provider updated");
    Ok(json_response(StatusCode::OK, &TwilioProviderResponse::from(&saved)))
}
