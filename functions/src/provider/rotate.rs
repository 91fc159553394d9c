//! Rotating a provider's auth token: validate the new token with Twilio, then
//! re-encrypt it under a fresh data key and refresh the verification with it. A rejected token
//! changes nothing. Allowed while the provider is being deleted (the next delete step uses it).

use crate::provider::problems;
use crate::provider::record::{Change, load_provider, owner_of, save_with_retry};
use crate::provider::verify::{finished_in_time, same_references, verify_with_account};
use crate::services::Services;
use shared::ApiError;
use shared::crypto::SecretKind;
use shared::dto::RotateAuthToken;
use shared::model::{OrganizationId, TwilioCredentials};
use shared::store::ProviderRecord;
use shared::twilio::TwilioErrorKind;
use uuid::Uuid;

/// How many verifications a rotation runs at most (the first and two more) when repairs or
/// updates keep changing what it verified.
const VERIFICATIONS: u32 = 3;

/// Sets the provider's new auth token, once Twilio accepts it; returns the provider as saved.
pub async fn rotate_auth_token(
    services: &Services,
    org: &OrganizationId,
    id: Uuid,
    command: RotateAuthToken,
) -> Result<ProviderRecord, ApiError> {
    // Allowed while deleting: a delete stuck on a token the customer rotated in Twilio
    // continues with the new one.
    let record = load_provider(&services.store, org, id).await?;
    let creds = TwilioCredentials {
        account_sid: record.account_sid.clone(),
        auth_token: command.auth_token,
        region: record.twilio_region,
    };
    // Validate first: a rejected token must change nothing.
    let account = services.twilio.fetch_account(&creds).await.map_err(|e| match e.kind() {
        TwilioErrorKind::Rejected | TwilioErrorKind::NotFound => problems::rejected_in(creds.region, &format!(
            "The stored token of account {} is unchanged. Copy the current token from the Twilio Console (Account Info).",
            record.account_sid
        )),
        _ => problems::twilio_problem("validating the new auth token", e),
    })?;
    // The checks and the new data key do not depend on each other.
    let owner = owner_of(&record);
    let (verification, data_key) = tokio::join!(
        verify_with_account(services, &record, &creds, Ok(account.clone())),
        services.envelope.generate_data_key(&owner)
    );
    let data_key = data_key?;
    let sealed = data_key.seal(SecretKind::AuthToken, creds.auth_token.expose());
    drop(data_key);
    let (mut verified, mut verification) = (record.clone(), verification);
    let mut verifications = 1;
    let saved = loop {
        // A verification the deadline cut short says nothing: the token is saved without it.
        let in_time = finished_in_time().is_ok();
        let mut verify_again = false;
        let saved = save_with_retry(&services.store, verified.clone(), |record| {
            record.auth_token = sealed.clone();
            // A repair or update that changed what was verified meanwhile makes this result
            // stale: it is run again on the newer record, or, after that too has changed
            // repeatedly, left to the next verification (the token is saved either way).
            if same_references(&verified, record) {
                if in_time {
                    verification.apply_to(record);
                }
            } else if in_time && verifications < VERIFICATIONS {
                verify_again = true;
                return Ok(Change::Keep);
            }
            Ok(Change::Save)
        })
        .await?;
        if !verify_again {
            break saved;
        }
        verifications += 1;
        verification = verify_with_account(services, &saved, &creds, Ok(account.clone())).await;
        verified = saved;
    };
    tracing::info!(organization_id = %org, provider_id = %id, "twilio auth token rotated");
    Ok(saved)
}
