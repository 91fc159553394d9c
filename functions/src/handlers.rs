//! One handler per Lambda binary, named as the binary: it reads the event (organization from
//! the authorizer context, path, query and body parsed into typed commands), runs a workflow
//! of [`crate::provider`] and renders its outcome (problem+json for errors). [`idempotency`]
//! is the `Idempotency-Key` wrapper the creating handlers share.

pub mod authorizer;
pub mod continue_deletions;
pub mod create_twilio_provider;
pub mod delete_provider;
pub mod finish_sip_credential_rotation;
pub mod get_provider;
pub mod get_sip_credential;
pub mod get_twilio_provider;
pub mod idempotency;
pub mod import_numbers;
pub mod list_available_numbers;
pub mod list_events;
pub mod list_phone_numbers;
pub mod list_providers;
pub mod plan_jobs;
pub mod remove_phone_number;
pub mod repair_provider;
pub mod replace_twilio_credentials;
pub mod rotate_sip_credential;
pub mod rotate_twilio_auth_token;
pub mod run_jobs;
pub mod update_twilio_provider;
pub mod verify_provider;

use crate::provider::record::load_provider;
use lambda_http::Request;
use shared::ApiError;
use shared::model::OrganizationId;
use shared::storage::{ProviderRecord, ProviderStore};
use uuid::Uuid;

/// The organization a request acts for and the provider its path names (`{id}`): 401 without
/// an authorizer context, 400 for a malformed id.
pub fn provider_path(request: &Request) -> Result<(OrganizationId, Uuid), ApiError> {
    Ok((crate::gateway::organization_id(request)?, crate::gateway::path_uuid(request, "id")?))
}

/// The provider the request names, loaded within its organization: another organization's is
/// a 404 exactly like a missing one.
pub async fn requested_provider(store: &ProviderStore, request: &Request) -> Result<ProviderRecord, ApiError> {
    let (org, id) = provider_path(request)?;
    load_provider(store, &org, id).await
}
