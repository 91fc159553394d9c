//! `PATCH /api/v1/providers/twilio/{id}/auth-token`: validate the new token with Twilio, then
//! re-encrypt it under a fresh data key and refresh the verification with it. A rejected token
//! changes nothing. Allowed while the provider is being deleted (the next delete step uses it).

use crate::providers::{load_provider, owner_of, save_with_retry};
use crate::services::Services;
use crate::twilio_errors;
use crate::verification::verify_with_account;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::crypto::SecretKind;
use shared::deadline::within;
use shared::dto::{RotateAuthToken, TwilioProviderResponse};
use shared::http::{json_response, organization_id, path_uuid};
use shared::model::TwilioCredentials;
use shared::twilio::TwilioErrorKind;

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(within(answer_deadline(&request), rotate(services, &request)).await)
}

async fn rotate(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let org = organization_id(request)?;
    let id = path_uuid(request, "id")?;
    let command = RotateAuthToken::from_request(request)?;
    // Allowed while deleting: a delete stuck on a token the customer rotated in Twilio
    // continues with the new one.
    let record = load_provider(&services.store, &org, id).await?;
    let creds = TwilioCredentials { account_sid: record.account_sid.clone(), auth_token: command.auth_token };
    // Validate first: a rejected token must change nothing.
    let account = services.twilio.fetch_account(&creds).await.map_err(|e| match e.kind() {
        TwilioErrorKind::Rejected | TwilioErrorKind::NotFound => twilio_errors::rejected(&format!(
            "The stored token of account {} is unchanged. Copy the current token from the Twilio Console (Account Info).",
            record.account_sid
        )),
        _ => twilio_errors::twilio_problem("validating the new auth token", e),
    })?;
    // The checks and the new data key do not depend on each other.
    let owner = owner_of(&record);
    let (verification, data_key) = tokio::join!(
        verify_with_account(services, &record, &creds, Ok(account)),
        services.envelope.generate_data_key(&owner)
    );
    let data_key = data_key.map_err(ApiError::unavailable)?;
    let sealed = data_key.seal(SecretKind::AuthToken, creds.auth_token.expose());
    drop(data_key);
    let saved = save_with_retry(&services.store, record, |record| {
        record.auth_token = sealed.clone();
        verification.apply_to(record);
        Ok(())
    })
    .await?;
    tracing::info!(organization_id = %org, provider_id = %id, "twilio auth token rotated");
    Ok(json_response(StatusCode::OK, &TwilioProviderResponse::from(&saved)))
}
