//! `POST /api/v1/providers/{id}/verify`: runs every check now and stores the result.

use crate::providers::{refuse_if_deleting, requested_provider, save_with_retry, stored_credentials};
use crate::services::Services;
use crate::verification::verify;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::within;
use shared::dto::VerifyResponse;
use shared::http::json_response;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(within(answer_deadline(&request), run(services, &request)).await)
}

async fn run(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = requested_provider(&services.store, request).await?;
    let (org, id) = (record.organization_id.clone(), record.id);
    refuse_if_deleting(&record)?;
    let creds = stored_credentials(services, &record).await?;
    let verification = verify(services, &record, &creds).await;
    save_with_retry(&services.store, record, |record| {
        refuse_if_deleting(record)?;
        verification.apply_to(record);
        Ok(())
    })
    .await?;
    tracing::info!(organization_id = %org, provider_id = %id, status = ?verification.status, "provider verified");
    let body = VerifyResponse {
        status: verification.status,
        checks: verification.checks,
        last_verified_at: verification.verified_at,
    };
    Ok(json_response(StatusCode::OK, &body))
}
