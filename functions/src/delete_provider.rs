//! `DELETE /api/v1/providers/{id}[?force=true]`: clean up the customer's Twilio account
//! (take imported numbers off the trunk and restore their previous voice routing, detach the credential list, delete the trunk, delete the credential list with its
//! credentials; 404 counts as done), then delete every record of the provider.
//!
//! Resumable: a Twilio failure leaves the provider marked as being deleted and answers 502; a
//! second DELETE runs the same idempotent steps again. `force=true` removes the records even
//! when Twilio cannot be cleaned up and lists what was left behind.

use crate::numbers::{KeyCache, Released, release_number};
use crate::providers::{load_provider, save_with_retry, stored_credentials};
use crate::rollback::{TwilioResource, remove_resources};
use crate::services::Services;
use crate::{answer_deadline, respond};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::deadline::within;
use shared::dto::{ForcedDeletion, LeftBehind};
use shared::http::{json_response, organization_id, path_uuid, query_param};
use shared::store::{DeletionState, ProviderRecord};

pub async fn handle(services: &Services, request: Request) -> Result<Response<Body>, Error> {
    respond(within(answer_deadline(&request), delete(services, &request)).await)
}

fn parse_force(request: &Request) -> Result<bool, ApiError> {
    match query_param(request, "force") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::validation("force", "must be true or false")),
    }
}

fn resources_of(record: &ProviderRecord) -> Vec<TwilioResource> {
    vec![
        TwilioResource::TrunkCredentialList {
            trunk_sid: record.trunk_sid.clone(),
            list_sid: record.credential_list_sid.clone(),
        },
        TwilioResource::Trunk { trunk_sid: record.trunk_sid.clone() },
        TwilioResource::CredentialList { list_sid: record.credential_list_sid.clone() },
    ]
}

async fn delete(services: &Services, request: &Request) -> Result<Response<Body>, ApiError> {
    let org = organization_id(request)?;
    let id = path_uuid(request, "id")?;
    let force = parse_force(request)?;
    let mut record = load_provider(&services.store, &org, id).await?;
    if record.deletion.is_none() {
        record = save_with_retry(&services.store, record, |record| {
            record
                .deletion
                .get_or_insert_with(|| DeletionState { started_at: shared::time::now_rfc3339(), last_error: None });
            Ok(())
        })
        .await?;
    }

    let numbers = services.store.all_numbers(&org, id).await.map_err(ApiError::unavailable)?;
    let resources = resources_of(&record);
    let left: Vec<LeftBehind> = match stored_credentials(services, &record).await {
        Ok(creds) => {
            // Numbers first: each goes back to the routing it had before import.
            let mut left = Vec::new();
            let mut keys = KeyCache::default();
            for number in &numbers {
                match release_number(services, &creds, &record, number, &mut keys).await {
                    Ok(Released::LeftAsCustomerSet(reason)) => {
                        tracing::info!(provider_id = %id, phone_number_sid = %number.phone_number_sid, reason, "number left as the customer set it");
                    }
                    Ok(_) => {}
                    Err(e) => left.push(LeftBehind {
                        kind: "phoneNumber".into(),
                        sid: number.phone_number_sid.clone(),
                        error: e.to_string(),
                    }),
                }
            }
            left.extend(remove_resources(&services.twilio, &creds, &resources).await.into_iter().map(
                |(resource, e)| {
                    let leftover = resource.to_leftover();
                    LeftBehind { kind: leftover.kind, sid: leftover.sid, error: e.to_string() }
                },
            ));
            left
        }
        Err(e) if force => numbers
            .iter()
            .map(|number| ("phoneNumber".to_owned(), number.phone_number_sid.clone()))
            .chain(resources.iter().map(|resource| {
                let leftover = resource.to_leftover();
                (leftover.kind, leftover.sid)
            }))
            .map(|(kind, sid)| LeftBehind { kind, sid, error: e.to_string() })
            .collect(),
        Err(e) => return Err(e),
    };

    if !left.is_empty() && !force {
        let summary: Vec<String> = left.iter().map(|l| format!("{} {}: {}", l.kind, l.sid, l.error)).collect();
        let summary = summary.join("; ");
        // Best effort: the marker already exists; this only records why the delete stopped.
        let reason = summary.clone();
        if let Err(e) = save_with_retry(&services.store, record, move |record| {
            if let Some(deletion) = record.deletion.as_mut() {
                deletion.last_error = Some(reason.clone());
            }
            Ok(())
        })
        .await
        {
            tracing::warn!(provider_id = %id, error = %e, "could not record why the delete stopped");
        }
        return Err(ApiError::TwilioFailed {
            detail: format!(
                "Could not clean up Twilio: {summary}. The provider is marked as being deleted; call DELETE again to continue, or add ?force=true to remove it anyway."
            ),
            cause: None,
        });
    }

    services.store.delete_provider(&record).await.map_err(ApiError::unavailable)?;
    if left.is_empty() {
        tracing::info!(organization_id = %org, provider_id = %id, "provider deleted");
        Ok(Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).expect("static response"))
    } else {
        tracing::warn!(organization_id = %org, provider_id = %id, left_behind = ?left, "provider force-deleted; Twilio resources left behind");
        Ok(json_response(StatusCode::OK, &ForcedDeletion { id, deleted: true, left_behind: left }))
    }
}
