//! The API's routes: one source for `local-api` and for the check that `template.yaml`
//! declares exactly these (a test fails when they drift).

use crate::handlers::*;
use crate::services::Services;
use lambda_http::{Body, Error, Request, Response};

/// The HTTP functions, one per endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    CreateTwilioProvider,
    GetTwilioProvider,
    GetProvider,
    ListProviders,
    UpdateTwilioProvider,
    RotateTwilioAuthToken,
    ReplaceTwilioCredentials,
    DeleteProvider,
    ListAvailableNumbers,
    ImportNumbers,
    ListPhoneNumbers,
    RemovePhoneNumber,
    VerifyProvider,
    RepairProvider,
    RotateSipCredential,
    FinishSipCredentialRotation,
    ListProviderEvents,
    ListEvents,
}

pub struct Route {
    pub method: &'static str,
    /// API Gateway path template, `{name}` for a path parameter.
    pub path: &'static str,
    /// The Lambda binary (`[[bin]]` name and the template's `BuildProperties.Binary`).
    pub function: &'static str,
    pub endpoint: Endpoint,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/v1/providers/twilio",
        function: "create-twilio-provider",
        endpoint: Endpoint::CreateTwilioProvider,
    },
    Route {
        method: "GET",
        path: "/api/v1/providers/twilio/{id}",
        function: "get-twilio-provider",
        endpoint: Endpoint::GetTwilioProvider,
    },
    Route {
        method: "PUT",
        path: "/api/v1/providers/twilio/{id}",
        function: "update-twilio-provider",
        endpoint: Endpoint::UpdateTwilioProvider,
    },
    Route {
        method: "PATCH",
        path: "/api/v1/providers/twilio/{id}/auth-token",
        function: "rotate-twilio-auth-token",
        endpoint: Endpoint::RotateTwilioAuthToken,
    },
    Route {
        method: "PATCH",
        path: "/api/v1/providers/{id}/credentials",
        function: "replace-twilio-credentials",
        endpoint: Endpoint::ReplaceTwilioCredentials,
    },
    Route {
        method: "GET",
        path: "/api/v1/providers/twilio/{id}/available-numbers",
        function: "list-available-numbers",
        endpoint: Endpoint::ListAvailableNumbers,
    },
    Route {
        method: "POST",
        path: "/api/v1/providers/twilio/{id}/import-numbers",
        function: "import-numbers",
        endpoint: Endpoint::ImportNumbers,
    },
    Route {
        method: "GET",
        path: "/api/v1/providers/twilio/{id}/phone-numbers",
        function: "list-phone-numbers",
        endpoint: Endpoint::ListPhoneNumbers,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}",
        function: "remove-phone-number",
        endpoint: Endpoint::RemovePhoneNumber,
    },
    Route { method: "GET", path: "/api/v1/providers", function: "list-providers", endpoint: Endpoint::ListProviders },
    Route { method: "GET", path: "/api/v1/providers/{id}", function: "get-provider", endpoint: Endpoint::GetProvider },
    Route {
        method: "DELETE",
        path: "/api/v1/providers/{id}",
        function: "delete-provider",
        endpoint: Endpoint::DeleteProvider,
    },
    Route {
        method: "POST",
        path: "/api/v1/providers/{id}/verify",
        function: "verify-provider",
        endpoint: Endpoint::VerifyProvider,
    },
    Route {
        method: "POST",
        path: "/api/v1/providers/{id}/repair",
        function: "repair-provider",
        endpoint: Endpoint::RepairProvider,
    },
    Route {
        method: "POST",
        path: "/api/v1/providers/{id}/sip-credential/rotate",
        function: "rotate-sip-credential",
        endpoint: Endpoint::RotateSipCredential,
    },
    Route {
        method: "POST",
        path: "/api/v1/providers/{id}/sip-credential/rotate/finish",
        function: "finish-sip-credential-rotation",
        endpoint: Endpoint::FinishSipCredentialRotation,
    },
    Route {
        method: "GET",
        path: "/api/v1/providers/{id}/events",
        function: "list-provider-events",
        endpoint: Endpoint::ListProviderEvents,
    },
    Route { method: "GET", path: "/api/v1/events", function: "list-events", endpoint: Endpoint::ListEvents },
];

/// The functions that are not behind a route.
pub const AUTHORIZER_FUNCTION: &str = "authorizer";
/// Started by EventBridge Scheduler with the job to plan.
pub const SCHEDULED_FUNCTION: &str = "plan-jobs";
/// The SQS consumers: the jobs queue's and the deletion queue's.
pub const QUEUE_FUNCTIONS: [&str; 2] = ["run-jobs", "continue-deletions"];
/// Invoked directly by the call engine (Lambda Invoke, IAM), never through API Gateway.
pub const SIP_CREDENTIAL_FUNCTION: &str = "get-sip-credential";

impl Endpoint {
    /// Runs the endpoint's handler, as its Lambda binary would. Each is boxed: this future
    /// holds one of them, and a caller's stack should not have to hold the largest.
    pub async fn call(self, services: &Services, request: Request) -> Result<Response<Body>, Error> {
        match self {
            Self::CreateTwilioProvider => Box::pin(create_twilio_provider::handle(services, request)).await,
            Self::GetTwilioProvider => Box::pin(get_twilio_provider::handle(&services.store, request)).await,
            Self::GetProvider => Box::pin(get_provider::handle(&services.store, request)).await,
            Self::ListProviders => Box::pin(list_providers::handle(&services.store, request)).await,
            Self::UpdateTwilioProvider => Box::pin(update_twilio_provider::handle(services, request)).await,
            Self::RotateTwilioAuthToken => Box::pin(rotate_twilio_auth_token::handle(services, request)).await,
            Self::ReplaceTwilioCredentials => Box::pin(replace_twilio_credentials::handle(services, request)).await,
            Self::DeleteProvider => Box::pin(delete_provider::handle(services, request)).await,
            Self::ListAvailableNumbers => Box::pin(list_available_numbers::handle(services, request)).await,
            Self::ImportNumbers => Box::pin(import_numbers::handle(services, request)).await,
            Self::ListPhoneNumbers => Box::pin(list_phone_numbers::handle(&services.store, request)).await,
            Self::RemovePhoneNumber => Box::pin(remove_phone_number::handle(services, request)).await,
            Self::VerifyProvider => Box::pin(verify_provider::handle(services, request)).await,
            Self::RepairProvider => Box::pin(repair_provider::handle(services, request)).await,
            Self::RotateSipCredential => Box::pin(rotate_sip_credential::handle(services, request)).await,
            Self::FinishSipCredentialRotation => {
                Box::pin(finish_sip_credential_rotation::handle(services, request)).await
            }
            Self::ListProviderEvents => Box::pin(list_events::handle_provider(&services.store, request)).await,
            Self::ListEvents => Box::pin(list_events::handle(&services.store, request)).await,
        }
    }
}

/// The route a method and path match, with the path parameters.
pub fn match_route(method: &str, path: &str) -> Option<(&'static Route, Vec<(String, String)>)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    ROUTES.iter().filter(|route| route.method.eq_ignore_ascii_case(method)).find_map(|route| {
        let pattern: Vec<&str> = route.path.split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (expected, actual) in pattern.iter().zip(&segments) {
            match expected.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !actual.is_empty() => params.push((name.to_owned(), (*actual).to_owned())),
                Some(_) => return None,
                None if expected == actual => {}
                None => return None,
            }
        }
        Some((route, params))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win_over_parameters() {
        let (route, params) = match_route("GET", "/api/v1/providers/twilio/abc").unwrap();
        assert_eq!(route.function, "get-twilio-provider");
        assert_eq!(params, [("id".to_owned(), "abc".to_owned())]);
        let (route, _) = match_route("GET", "/api/v1/providers/abc").unwrap();
        assert_eq!(route.function, "get-provider");
        let (route, params) = match_route("DELETE", "/api/v1/providers/twilio/a/phone-numbers/b").unwrap();
        assert_eq!(route.function, "remove-phone-number");
        assert_eq!(params.len(), 2);
        assert!(match_route("PATCH", "/api/v1/providers").is_none());
        assert!(match_route("GET", "/api/v2/providers").is_none());
    }
}
