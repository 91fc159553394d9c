//! A provider's audit trail, newest first, paged like the other listings and filtered by `action`, `since` and `until`,
//! by `GET /api/v1/providers/{id}/events` or `GET /api/v1/events?providerId=`. More: docs/api.md#audit-trail.

use crate::gateway::{json_response, organization_id, query_param};
use crate::handlers::list_providers::parse_limit;
use crate::handlers::provider_path;
use crate::provider::record::load_provider;
use crate::respond;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::ApiError;
use shared::audit::Action;
use shared::dto::EventPage;
use shared::model::OrganizationId;
use shared::storage::{EventFilter, ProviderStore};
use shared::time::Timestamp;
use uuid::Uuid;

/// `GET /api/v1/providers/{id}/events`
pub async fn handle_provider(store: &ProviderStore, request: Request) -> Result<Response<Body>, Error> {
    respond(list(store, &request, provider_path(&request), true).await)
}

/// `GET /api/v1/events?providerId=`
pub async fn handle(store: &ProviderStore, request: Request) -> Result<Response<Body>, Error> {
    let path = ApiError::both(organization_id(&request), provider_id_param(&request));
    respond(list(store, &request, path, false).await)
}

fn provider_id_param(request: &Request) -> Result<Uuid, ApiError> {
    match query_param(request, "providerId") {
        None => Err(ApiError::validation("providerId", "is required (the provider's id, a UUID)")),
        Some(id) => Uuid::parse_str(id).map_err(|_| ApiError::validation("providerId", "must be a UUID")),
    }
}

/// `action`, `since` and `until`, each named when it is wrong.
fn parse_filter(request: &Request) -> Result<EventFilter, ApiError> {
    let mut errors = shared::error::FieldErrors::new();
    let action = query_param(request, "action").and_then(|value| {
        let parsed = Action::parse(value);
        if parsed.is_none() {
            let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
            errors.insert("action".into(), vec![format!("must be one of {}", known.join(", "))]);
        }
        parsed
    });
    let mut time = |name: &str| {
        query_param(request, name).and_then(|value| match instant(value) {
            Some(at) => Some(at),
            None => {
                errors.insert(name.into(), vec![Timestamp::FORMAT.to_owned()]);
                None
            }
        })
    };
    let (since, until) = (time("since"), time("until"));
    if let (Some(since), Some(until)) = (&since, &until)
        && since.unix_seconds() > until.unix_seconds()
    {
        errors.insert("until".into(), vec!["must not be before since".into()]);
    }
    if errors.is_empty() { Ok(EventFilter { action, since, until }) } else { Err(ApiError::Validation(errors)) }
}

/// An RFC 3339 date-time, `Z` or with an offset (`+09:00`), as the UTC second it names.
fn instant(value: &str) -> Option<Timestamp> {
    if let Ok(at) = Timestamp::parse(value) {
        return Some(Timestamp::from_unix(at.unix_seconds()));
    }
    let split = value.len().checked_sub(6).filter(|at| value.is_char_boundary(*at))?;
    let (local, offset) = value.split_at(split);
    let sign = match offset.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 || offset[1..].len() != 5 {
        return None;
    }
    let utc = Timestamp::parse(&format!("{local}Z")).ok()?;
    Some(Timestamp::from_unix(utc.unix_seconds() - sign * (hours * 3600 + minutes * 60)))
}

async fn list(
    store: &ProviderStore,
    request: &Request,
    path: Result<(OrganizationId, Uuid), ApiError>,
    provider_must_exist: bool,
) -> Result<Response<Body>, ApiError> {
    let token = query_param(request, "nextToken");
    // The token names the provider, so it is checked once the provider is known to be good.
    let token_check = match (&path, token) {
        (Ok((org, id)), Some(token)) => store.check_events_page_token(org, *id, token).map_err(Into::into),
        _ => Ok(()),
    };
    let query = ApiError::both(parse_limit(request), parse_filter(request));
    let (((org, id), (limit, filter)), ()) = ApiError::both(ApiError::both(path, query), token_check)?;
    if provider_must_exist {
        load_provider(store, &org, id).await?;
    }
    let (items, next_token) = store.list_events(&org, id, &filter, limit, token).await?;
    Ok(json_response(StatusCode::OK, &EventPage { items, next_token }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_an_offset_name_their_utc_second() {
        let utc = |text: &str| instant(text).map(|at| at.to_string());
        assert_eq!(utc("2026-12-07T20:49:18Z").as_deref(), Some("2026-12-07T20:49:18Z"));
        assert_eq!(utc("2026-12-08T05:49:18+09:00").as_deref(), Some("2026-12-07T20:49:18Z"));
        assert_eq!(utc("2026-12-07T19:49:18-01:00").as_deref(), Some("2026-12-07T20:49:18Z"));
        for bad in ["yesterday", "2026-12-07T20:49:18", "2026-12-07T20:49:18+24:00", "2026-12-07T20:49:18*01:00"] {
            assert_eq!(utc(bad), None, "{bad}");
        }
    }
}
