//! The OpenAPI 3.1 document of the whole API, generated: schemas are derived from the DTOs
//! (utoipa), paths come from the route table. `openapi.json` at the repository root is this
//! document; a test fails when it is out of date (regenerate with
//! `cargo run -p tools --bin openapi > openapi.json`).

use functions::routes::{Endpoint, ROUTES};
use shared::dto::request_schemas::*;
use shared::dto::*;
use shared::error::Problem;
use shared::model::{CheckStatus, Region, VerificationCheck, VerificationStatus};
use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Twilio provider service",
        description = "Connects an organization's own Twilio account (Elastic SIP trunk, credential list, SIP credentials) to the voice-AI platform.",
        version = "1.0.0"
    ),
    components(schemas(
        CreateTwilioProviderRequest,
        UpdateTwilioProviderRequest,
        RotateAuthTokenRequest,
        ImportNumbersRequest,
        TwilioProviderResponse,
        ProviderResponse,
        ProviderPage,
        ProviderType,
        DeletionView,
        Region,
        VerificationStatus,
        CheckStatus,
        VerificationCheck,
        VerifyResponse,
        RepairResponse,
        RemovedNumber,
        shared::model::VoiceRouting,
        RepairAction,
        RepairResult,
        ForcedDeletion,
        LeftBehind,
        AvailableNumbers,
        AvailableNumber,
        CapabilitiesView,
        PhoneNumberResponse,
        PhoneNumberPage,
        ImportResult,
        ImportError,
        Problem
    ))
)]
struct Components;

/// What the document says about one endpoint.
struct Spec {
    summary: &'static str,
    request: Option<&'static str>,
    /// (status, description, schema; None for an empty body)
    success: &'static [(&'static str, &'static str, Option<&'static str>)],
    errors: &'static [&'static str],
    query: &'static [(&'static str, &'static str)],
}

const PAGING: &[(&str, &str)] =
    &[("limit", "Page size, 1 to 100 (default 20)."), ("nextToken", "The `nextToken` of the previous page.")];

fn spec(endpoint: Endpoint) -> Spec {
    use Endpoint::*;
    match endpoint {
        CreateTwilioProvider => Spec {
            summary: "Create a Twilio provider: validate the credentials, provision the SIP trunk, store",
            request: Some("CreateTwilioProviderRequest"),
            success: &[("201", "Created; `Location` names the provider.", Some("TwilioProviderResponse"))],
            errors: &["400", "401", "409", "413", "415", "422", "502", "503"],
            query: &[],
        },
        GetTwilioProvider => Spec {
            summary: "Get a Twilio provider",
            request: None,
            success: &[("200", "The provider.", Some("TwilioProviderResponse"))],
            errors: &["400", "401", "404"],
            query: &[],
        },
        GetProvider => Spec {
            summary: "Get a provider of any type (`providerType` is the discriminator)",
            request: None,
            success: &[("200", "The provider.", Some("ProviderResponse"))],
            errors: &["400", "401", "404"],
            query: &[],
        },
        ListProviders => Spec {
            summary: "List the organization's providers, newest first",
            request: None,
            success: &[("200", "A page of providers.", Some("ProviderPage"))],
            errors: &["400", "401"],
            query: PAGING,
        },
        UpdateTwilioProvider => Spec {
            summary: "Partially update a Twilio provider",
            request: Some("UpdateTwilioProviderRequest"),
            success: &[("200", "The updated provider.", Some("TwilioProviderResponse"))],
            errors: &["400", "401", "404", "409", "413", "415", "422", "502", "503"],
            query: &[],
        },
        RotateTwilioAuthToken => Spec {
            summary: "Replace the stored auth token after Twilio accepts it",
            request: Some("RotateAuthTokenRequest"),
            success: &[("200", "The provider with refreshed verification.", Some("TwilioProviderResponse"))],
            errors: &["400", "401", "404", "409", "413", "415", "422", "502", "503"],
            query: &[],
        },
        DeleteProvider => Spec {
            summary: "Delete a provider, cleaning up its Twilio resources",
            request: None,
            success: &[
                ("204", "Deleted; nothing of it is left in Twilio.", None),
                ("200", "Force-deleted; lists the Twilio resources left behind.", Some("ForcedDeletion")),
            ],
            errors: &["400", "401", "404", "422", "502", "503"],
            query: &[("force", "`true` removes the records even when Twilio cannot be cleaned up.")],
        },
        ListAvailableNumbers => Spec {
            summary: "List the incoming phone numbers of the provider's Twilio account",
            request: None,
            success: &[("200", "The account's numbers.", Some("AvailableNumbers"))],
            errors: &["400", "401", "404", "422", "502", "503"],
            query: &[],
        },
        ImportNumbers => Spec {
            summary: "Import numbers onto the provider's trunk",
            request: Some("ImportNumbersRequest"),
            success: &[("200", "Per-number results.", Some("ImportResult"))],
            errors: &["400", "401", "404", "409", "413", "415", "422", "503"],
            query: &[],
        },
        ListPhoneNumbers => Spec {
            summary: "List the provider's imported numbers",
            request: None,
            success: &[("200", "A page of imported numbers.", Some("PhoneNumberPage"))],
            errors: &["400", "401", "404"],
            query: PAGING,
        },
        RemovePhoneNumber => Spec {
            summary: "Remove an imported number, giving back its previous voice configuration",
            request: None,
            success: &[(
                "200",
                "Removed. `restored` says whether the previous voice configuration was given back (false, with a reason, when the customer changed the number since import: it is left as they set it).",
                Some("RemovedNumber"),
            )],
            errors: &["400", "401", "404", "409", "422", "502", "503"],
            query: &[],
        },
        VerifyProvider => Spec {
            summary: "Run every verification check now",
            request: None,
            success: &[("200", "The checks and the overall status.", Some("VerifyResponse"))],
            errors: &["400", "401", "404", "409", "422", "503"],
            query: &[],
        },
        RepairProvider => Spec {
            summary: "Verify, fix what is fixable in Twilio (trunk, credential list, SIP credential, origination URL, transfer mode, numbers), verify again",
            request: None,
            success: &[(
                "200",
                "What was done, skipped or failed, and the verification after it. Unfixable problems (credentials rejected, account not active) are reported here, with nothing changed.",
                Some("RepairResponse"),
            )],
            errors: &["400", "401", "404", "409", "422", "503"],
            query: &[],
        },
    }
}

fn error_description(status: &str) -> &'static str {
    match status {
        "400" => "Malformed request or invalid fields (every failing field is named).",
        "401" => "No organization in the authorizer context.",
        "404" => "No such resource in this organization.",
        "409" => "Conflict with the current state.",
        "413" => "Body larger than 256 KiB.",
        "415" => "Body is not JSON.",
        "422" => {
            "Twilio refused the credentials or the request (`/problems/twilio-rejected`), or an account limit was reached (`/problems/twilio-limit-reached`)."
        }
        "502" => "Twilio failed; nothing was left half-done.",
        "503" => "Twilio rate-limited, or storage/KMS unavailable; retry later.",
        _ => "Error.",
    }
}

fn method(name: &str) -> HttpMethod {
    match name {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        other => panic!("no HTTP method {other} in the route table"),
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Components::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("API key").build()),
    );
    for route in ROUTES {
        let spec = spec(route.endpoint);
        let mut operation = OperationBuilder::new()
            .operation_id(Some(route.function))
            .summary(Some(spec.summary))
            .security(SecurityRequirement::new("apiKey", Vec::<String>::new()));
        for segment in route.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                operation = operation.parameter(
                    ParameterBuilder::new().name(name).parameter_in(ParameterIn::Path).required(Required::True).schema(
                        Some(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).format(
                            Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)),
                        )),
                    ),
                );
            }
        }
        for (name, description) in spec.query {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(*description))
                    .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String))),
            );
        }
        if let Some(schema) = spec.request {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build(),
                    )
                    .build(),
            ));
        }
        for (status, description, schema) in spec.success {
            let mut response = ResponseBuilder::new().description(*description);
            if let Some(schema) = schema {
                response = response.content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name(*schema))).build(),
                );
            }
            operation = operation.response(*status, response.build());
        }
        for status in spec.errors {
            let response = ResponseBuilder::new()
                .description(error_description(status))
                .content(
                    "application/problem+json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                )
                .build();
            operation = operation.response(*status, response);
        }
        doc.paths.add_path_operation(route.path, vec![method(route.method)], operation.build());
    }
    doc
}

/// The document as committed in `openapi.json`.
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().expect("the document serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions::routes::{AUTHORIZER_FUNCTION, SCHEDULED_FUNCTION, SIP_CREDENTIAL_FUNCTION};
    use serde_json::{Value, json};
    use shared::http::JsonFields;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn repo_file(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    #[test]
    fn committed_document_is_up_to_date() {
        assert!(
            repo_file("openapi.json") == document_json(),
            "openapi.json is stale: run `cargo run -p tools --bin openapi > openapi.json`"
        );
    }

    fn route_set() -> BTreeSet<(String, String)> {
        ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect()
    }

    #[test]
    fn document_has_exactly_the_routes() {
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        assert_eq!(documented, route_set());
    }

    /// Each function of template.yaml: (binary, Some((method, path)) for an HTTP route).
    fn template_functions() -> Vec<(String, Option<(String, String)>)> {
        let template = repo_file("template.yaml");
        let mut functions = Vec::new();
        let mut current: Option<(String, Option<String>, Option<String>)> = None;
        let mut flush = |current: &mut Option<(String, Option<String>, Option<String>)>| {
            if let Some((binary, method, path)) = current.take() {
                functions.push((binary, method.zip(path)));
            }
        };
        for line in template.lines() {
            let trimmed = line.trim();
            // A new top-level resource ends the previous one.
            if line.starts_with("  ") && !line.starts_with("   ") && trimmed.ends_with(':') {
                flush(&mut current);
            }
            if let Some(binary) = trimmed.strip_prefix("Binary: ") {
                current = Some((binary.to_owned(), None, None));
            } else if let Some((_, method, path)) = current.as_mut() {
                if let Some(m) = trimmed.strip_prefix("Method: ") {
                    *method = Some(m.to_owned());
                } else if let Some(p) = trimmed.strip_prefix("Path: ") {
                    *path = Some(p.to_owned());
                }
            }
        }
        flush(&mut current);
        functions
    }

    #[test]
    fn template_declares_exactly_the_route_table() {
        let functions = template_functions();
        let routed: BTreeSet<(String, String)> = functions.iter().filter_map(|(_, route)| route.clone()).collect();
        assert_eq!(routed, route_set(), "template.yaml routes and functions::routes::ROUTES differ");
        for route in ROUTES {
            let binary =
                functions.iter().find(|(_, r)| r.as_ref() == Some(&(route.method.to_owned(), route.path.to_owned())));
            assert_eq!(binary.map(|(b, _)| b.as_str()), Some(route.function), "{} {}", route.method, route.path);
        }
        let unrouted: BTreeSet<&str> = functions.iter().filter(|(_, r)| r.is_none()).map(|(b, _)| b.as_str()).collect();
        assert_eq!(unrouted, BTreeSet::from([AUTHORIZER_FUNCTION, SCHEDULED_FUNCTION, SIP_CREDENTIAL_FUNCTION]));
    }

    #[test]
    fn every_template_function_is_a_cargo_binary() {
        let manifest = repo_file("functions/Cargo.toml");
        for (binary, _) in template_functions() {
            assert!(manifest.contains(&format!("name = \"{binary}\"")), "{binary} is not a [[bin]] of functions");
        }
    }

    /// The documented request fields are the ones the parsers read: a wrong type in each
    /// documented field is reported under that field's name.
    #[test]
    fn request_schemas_match_the_parsers() {
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        let parsers: [(&str, fn(JsonFields) -> Option<shared::ApiError>); 4] = [
            ("CreateTwilioProviderRequest", |f| CreateTwilioProvider::from_fields(f).err()),
            ("UpdateTwilioProviderRequest", |f| UpdateTwilioProvider::from_fields(f).err()),
            ("RotateAuthTokenRequest", |f| RotateAuthToken::from_fields(f).err()),
            ("ImportNumbersRequest", |f| ImportNumbers::from_fields(f).err()),
        ];
        for (schema, parse) in parsers {
            let properties = doc["components"]["schemas"][schema]["properties"].as_object().unwrap();
            for name in properties.keys() {
                let body = json!({ name.as_str(): {"wrong": "type"} }).to_string();
                let error = parse(JsonFields::from_slice(body.as_bytes()).unwrap()).expect("a wrong type is an error");
                let shared::ApiError::Validation(errors) = error else {
                    panic!("{schema}.{name}: not a validation error")
                };
                assert!(errors.contains_key(name.as_str()), "{schema}.{name} is documented but not read: {errors:?}");
            }
        }
    }
}
