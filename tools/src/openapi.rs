//! The OpenAPI 3.1 document of the whole API, generated: schemas are derived from the DTOs
//! (utoipa), paths come from the route table. `openapi.json` at the repository root is this
//! document; a test fails when it is out of date (regenerate with
//! `cargo run -p tools --bin openapi > openapi.json`).
//!
//! It describes what a caller really gets, from the functions and from API Gateway in front of
//! them: every status with its content types (API Gateway's own answers are `application/json`
//! `{"message": …}`, the functions' errors `application/problem+json`), the query parameters'
//! exact domains, and links from a created provider (and an import) to the operations that take
//! its id, so that stateful tools can chain calls. `scripts/lib/schemathesis.sh` holds
//! `local-api` to it.

use functions::routes::{Endpoint, ROUTES, Route};
use serde_json::json;
use shared::dto::request_schemas::*;
use shared::dto::*;
use shared::error::Problem;
use shared::model::{CheckStatus, Region, VerificationCheck, VerificationStatus};
use std::collections::BTreeSet;
use utoipa::OpenApi;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ContentBuilder, KnownFormat, Ref, RefOr, Required, ResponseBuilder, SchemaFormat};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Twilio provider service",
        description = "Connects an organization's own Twilio account (Elastic SIP trunk, credential list, SIP credentials) to the voice-AI platform.\n\nEvery route is behind API Gateway (HTTP API) and its Lambda authorizer: send `Authorization: Bearer <API key>`. API Gateway answers some requests itself, as `application/json` `{\"message\": …}`: 401 without the header, 403 when the authorizer denies the key, 429 when throttled, 500 when a function fails, 503 when it does not answer in time. Everything else comes from the functions: JSON bodies, and RFC 9457 `application/problem+json` errors.",
        version = "1.0.0"
    ),
    components(schemas(
        CreateTwilioProviderRequest,
        UpdateTwilioProviderRequest,
        RotateAuthTokenRequest,
        ReplaceCredentialsRequest,
        DeleteProviderRequest,
        ImportNumbersRequest,
        RotateSipCredentialRequest,
        SipCredentialState,
        SipCredentialView,
        PreviousSipCredentialView,
        TwilioProviderResponse,
        ProviderResponse,
        ProviderPage,
        ProviderType,
        DeletionView,
        DeletionInProgress,
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
        EventPage,
        shared::audit::AuditEvent,
        shared::audit::Action,
        shared::audit::Actor,
        ImportResult,
        ImportError,
        Problem,
        GatewayMessage
    ))
)]
struct Components;

/// What API Gateway answers itself, as `application/json`, when it refuses a request before the
/// function runs or gets no usable answer from it: `Unauthorized` (401), `Forbidden` (403),
/// `Too Many Requests` (429), `Internal Server Error` (500), `Service Unavailable` (503).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct GatewayMessage {
    message: String,
}

/// What the document says about one endpoint.
struct Spec {
    summary: &'static str,
    request: Option<&'static str>,
    /// (status, description, schema; None for an empty body)
    success: &'static [(&'static str, &'static str, Option<&'static str>)],
    /// The function's own error statuses; [`COMMON_ERRORS`] are added to every operation.
    errors: &'static [&'static str],
    query: &'static [Query],
}

/// Statuses every operation can answer: API Gateway's authorizer (401, 403), its throttling
/// (429), a failed or timed-out function (500, 503), and the function's own 401, 500 and 503.
const COMMON_ERRORS: &[&str] = &["401", "403", "429", "500", "503"];

/// The query parameters, each with its exact domain.
#[derive(Clone, Copy)]
enum Query {
    Limit,
    NextToken,
    Force,
    ProviderId,
    Action,
    Since,
    Until,
}

const PAGING: &[Query] = &[Query::Limit, Query::NextToken];
const EVENT_QUERY: &[Query] = &[Query::Limit, Query::NextToken, Query::Action, Query::Since, Query::Until];
const EVENTS_QUERY: &[Query] =
    &[Query::ProviderId, Query::Limit, Query::NextToken, Query::Action, Query::Since, Query::Until];

fn spec(endpoint: Endpoint) -> Spec {
    use Endpoint::*;
    match endpoint {
        CreateTwilioProvider => Spec {
            summary: "Create a Twilio provider: validate the credentials, provision the SIP trunk, store",
            request: Some("CreateTwilioProviderRequest"),
            success: &[("201", "Created; `Location` names the provider.", Some("TwilioProviderResponse"))],
            errors: &["400", "409", "413", "415", "422", "502"],
            query: &[],
        },
        GetTwilioProvider => Spec {
            summary: "Get a Twilio provider",
            request: None,
            success: &[("200", "The provider.", Some("TwilioProviderResponse"))],
            errors: &["400", "404"],
            query: &[],
        },
        GetProvider => Spec {
            summary: "Get a provider of any type (`providerType` is the discriminator)",
            request: None,
            success: &[("200", "The provider.", Some("ProviderResponse"))],
            errors: &["400", "404"],
            query: &[],
        },
        ListProviders => Spec {
            summary: "List the organization's providers, newest first",
            request: None,
            success: &[("200", "A page of providers.", Some("ProviderPage"))],
            errors: &["400"],
            query: PAGING,
        },
        UpdateTwilioProvider => Spec {
            summary: "Partially update a Twilio provider",
            request: Some("UpdateTwilioProviderRequest"),
            success: &[("200", "The updated provider.", Some("TwilioProviderResponse"))],
            errors: &["400", "404", "409", "413", "415", "422", "502"],
            query: &[],
        },
        RotateTwilioAuthToken => Spec {
            summary: "Replace the stored auth token after Twilio accepts it",
            request: Some("RotateAuthTokenRequest"),
            success: &[("200", "The provider with refreshed verification.", Some("TwilioProviderResponse"))],
            errors: &["400", "404", "409", "413", "415", "422", "502"],
            query: &[],
        },
        ReplaceTwilioCredentials => Spec {
            summary: "Replace the stored Twilio credential (auth token or API key) after Twilio accepts it",
            request: Some("ReplaceCredentialsRequest"),
            success: &[("200", "The provider with refreshed verification.", Some("TwilioProviderResponse"))],
            errors: &["400", "404", "409", "413", "415", "422", "502"],
            query: &[],
        },
        DeleteProvider => Spec {
            summary: "Delete a provider, cleaning up its Twilio resources",
            request: Some("DeleteProviderRequest"),
            success: &[
                ("204", "Deleted; nothing of it is left in Twilio.", None),
                ("200", "Force-deleted; lists the Twilio resources left behind.", Some("ForcedDeletion")),
                (
                    "202",
                    "Still deleting (many numbers to give back): the deletion goes on in the background; `GET` shows its progress, and `DELETE` again continues it.",
                    Some("DeletionInProgress"),
                ),
            ],
            errors: &["400", "404", "409", "422", "502"],
            query: &[Query::Force],
        },
        ListProviderEvents => Spec {
            summary: "List a provider's audit trail, newest first",
            request: None,
            success: &[(
                "200",
                "A page of events (an `action` filter may leave a page short; `nextToken` goes on).",
                Some("EventPage"),
            )],
            errors: &["400", "404"],
            query: EVENT_QUERY,
        },
        ListEvents => Spec {
            summary: "List a provider's audit trail by its id, a deleted provider's included",
            request: None,
            success: &[("200", "A page of events; none for a provider the organization never had.", Some("EventPage"))],
            errors: &["400"],
            query: EVENTS_QUERY,
        },
        ListAvailableNumbers => Spec {
            summary: "List the incoming phone numbers of the provider's Twilio account",
            request: None,
            success: &[("200", "The account's numbers.", Some("AvailableNumbers"))],
            errors: &["400", "404", "422", "502"],
            query: &[],
        },
        ImportNumbers => Spec {
            summary: "Import numbers onto the provider's trunk",
            request: Some("ImportNumbersRequest"),
            success: &[("200", "Per-number results.", Some("ImportResult"))],
            errors: &["400", "404", "409", "413", "415", "422"],
            query: &[],
        },
        ListPhoneNumbers => Spec {
            summary: "List the provider's imported numbers",
            request: None,
            success: &[("200", "A page of imported numbers.", Some("PhoneNumberPage"))],
            errors: &["400", "404"],
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
            errors: &["400", "404", "409", "422", "502"],
            query: &[],
        },
        VerifyProvider => Spec {
            summary: "Run every verification check now",
            request: None,
            success: &[("200", "The checks and the overall status.", Some("VerifyResponse"))],
            errors: &["400", "404", "409", "422"],
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
            errors: &["400", "404", "409", "422"],
            query: &[],
        },
        RotateSipCredential => Spec {
            summary: "Rotate the generated SIP credential: a new one becomes current, the replaced one keeps working for the overlap",
            request: Some("RotateSipCredentialRequest"),
            success: &[(
                "200",
                "The current credential and the previous one with its expiry (no passwords: the call engine reads them through `get-sip-credential`).",
                Some("SipCredentialState"),
            )],
            errors: &["400", "404", "409", "413", "415", "422", "502"],
            query: &[],
        },
        FinishSipCredentialRotation => Spec {
            summary: "End a SIP credential rotation's overlap now: the replaced credential is removed from Twilio",
            request: None,
            success: &[(
                "200",
                "The current credential; `previous` is null. Without a rotation under way nothing changes.",
                Some("SipCredentialState"),
            )],
            errors: &["400", "404", "409", "422", "502"],
            query: &[],
        },
    }
}

fn query_parameter(query: Query) -> Parameter {
    let (name, description, schema) = match query {
        Query::Limit => (
            "limit",
            "Page size: a whole number from 1 to 100 (default 20). Anything else is a 400 naming `limit`.",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(100))
                .default(Some(json!(20))),
        ),
        Query::NextToken => (
            "nextToken",
            "The `nextToken` of the previous page, exactly as returned: an opaque base64url string, valid for the same listing and organization only. Any other value is a 400 naming `nextToken`.",
            ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).pattern(Some("^[A-Za-z0-9_-]+$")),
        ),
        Query::Force => (
            "force",
            "`true` removes the records even when Twilio cannot be cleaned up, and answers 200 with what was left behind. Only `true` and `false` are accepted (400 otherwise).",
            ObjectBuilder::new().schema_type(Type::Boolean).default(Some(json!(false))),
        ),
        Query::ProviderId => (
            "providerId",
            "The provider whose events to list (a UUID; required): a deleted provider's too, until their retention ends.",
            ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        ),
        Query::Action => (
            "action",
            "Only events of this action.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(shared::audit::Action::ALL.iter().map(|a| a.as_str()))),
        ),
        Query::Since => (
            "since",
            "Only events at or after this time (RFC 3339).",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        ),
        Query::Until => (
            "until",
            "Only events at or before this time (RFC 3339; not before `since`).",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        ),
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(if matches!(query, Query::ProviderId) { Required::True } else { Required::False })
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// The operations that take an `Idempotency-Key` (functions::handlers::idempotency).
const IDEMPOTENT: &[Endpoint] =
    &[Endpoint::CreateTwilioProvider, Endpoint::ImportNumbers, Endpoint::RotateSipCredential];

fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: the same key with the same request (method, path and body) from the same organization within 24 hours answers the first response again (with `Idempotent-Replayed: true`) without doing anything twice; the same key with a different request is a 422, and while the first request still runs a 409. 1 to 255 printable ASCII characters (400 otherwise); white space at either end is not part of a header value.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[!-~]([ -~]{0,253}[!-~])?$"))))
        .build()
}

/// A status as the function answers it (problem+json), if it does.
fn problem_description(status: &str) -> Option<&'static str> {
    Some(match status {
        "400" => "Malformed request, or invalid fields or parameters (every failing one is named in `errors`).",
        "401" => "From the function: no organization in the authorizer context (`/problems/unauthorized`).",
        "404" => "No such resource in this organization.",
        "409" => "Conflict with the current state.",
        "413" => "Body larger than 256 KiB.",
        "415" => "Body is not JSON.",
        "422" => {
            "Twilio refused the credentials or the request (`/problems/twilio-rejected`), or an account limit was reached (`/problems/twilio-limit-reached`)."
        }
        "500" => "From the function: a bug (`/problems/internal-error`); no internals in the body.",
        "502" => "Twilio failed; nothing was left half-done.",
        "503" => {
            "From the function: Twilio rate-limited (`/problems/twilio-rate-limited`, with `Retry-After`), or storage/KMS unavailable (`/problems/service-unavailable`); retry later."
        }
        _ => return None,
    })
}

/// A status as API Gateway answers it itself (`application/json` `{"message"}`), if it does.
fn gateway_answer(status: &str) -> Option<(&'static str, &'static str)> {
    Some(match status {
        "401" => (
            "From API Gateway: no `Authorization` header (or an empty one); the authorizer is not called.",
            "Unauthorized",
        ),
        "403" => ("From API Gateway: the authorizer denied the API key (unknown, malformed or revoked).", "Forbidden"),
        "429" => ("From API Gateway: the request is over the API's throttling limits.", "Too Many Requests"),
        "500" => ("From API Gateway: the function failed without answering.", "Internal Server Error"),
        "503" => {
            ("From API Gateway: the function did not answer within the integration timeout.", "Service Unavailable")
        }
        _ => return None,
    })
}

/// What a status also means on an operation that takes an `Idempotency-Key`.
fn idempotency_description(status: &str) -> Option<&'static str> {
    match status {
        "409" => Some("Or: the first request with this `Idempotency-Key` still runs."),
        "422" => {
            Some("Or: this `Idempotency-Key` was used for a different request (`/problems/idempotency-key-reused`).")
        }
        _ => None,
    }
}

fn error_response(status: &str, endpoint: Endpoint) -> utoipa::openapi::Response {
    let problem = problem_description(status);
    let gateway = gateway_answer(status);
    let idempotency = idempotency_description(status).filter(|_| IDEMPOTENT.contains(&endpoint));
    // The operations that decrypt a provider's stored credentials (create has none yet; a
    // rotation replaces them).
    let stored = (status == "422"
        && !matches!(
            endpoint,
            Endpoint::CreateTwilioProvider | Endpoint::RotateTwilioAuthToken | Endpoint::ReplaceTwilioCredentials
        ))
    .then_some("Or: the stored credentials cannot be decrypted (`/problems/stored-secret-unusable`).");
    let description: Vec<&str> =
        [gateway.map(|(d, _)| d), problem, stored, idempotency].into_iter().flatten().collect();
    assert!(!description.is_empty(), "no description of status {status}");
    let mut response = ResponseBuilder::new().description(description.join(" "));
    if problem.is_some() {
        response = response.content(
            "application/problem+json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
        );
    }
    if let Some((_, message)) = gateway {
        response = response.content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("GatewayMessage")))
                .example(Some(json!({ "message": message })))
                .build(),
        );
    }
    response.build()
}

/// A link from an operation's success response to an operation that takes what it returned.
struct OperationLink {
    status: &'static str,
    target: &'static Route,
    /// (parameter, runtime expression)
    parameters: LinkParameters,
}

type LinkParameters = &'static [(&'static str, &'static str)];

/// The links of an operation (named after their target's function).
fn links(route: &Route) -> Vec<OperationLink> {
    let (status, parameters): (&str, LinkParameters) = match route.endpoint {
        Endpoint::CreateTwilioProvider => ("201", &[("id", "$response.body#/id")]),
        Endpoint::ImportNumbers => {
            ("200", &[("id", "$request.path.id"), ("phoneNumberId", "$response.body#/imported/0/id")])
        }
        _ => return Vec::new(),
    };
    ROUTES
        .iter()
        .filter(|target| match route.endpoint {
            // Everything that takes a provider id, from the id of the one just created.
            Endpoint::CreateTwilioProvider => target.path.contains("{id}") && !target.path.contains("{phoneNumberId}"),
            // The removal of a number just imported.
            _ => target.endpoint == Endpoint::RemovePhoneNumber,
        })
        .map(|target| OperationLink { status, target, parameters })
        .collect()
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

/// What the derived request schemas cannot say (utoipa's derive has no `uniqueItems` and no
/// schema that forbids a property): import SIDs are unique, and an update must not carry the
/// account or the token at all (400, even as null).
fn refine_request_schemas(components: &mut utoipa::openapi::Components) {
    fn object<'a>(components: &'a mut utoipa::openapi::Components, name: &str) -> &'a mut utoipa::openapi::Object {
        match components.schemas.get_mut(name) {
            Some(RefOr::T(Schema::Object(object))) => object,
            _ => panic!("{name} is not an object schema"),
        }
    }
    match object(components, "ImportNumbersRequest").properties.get_mut("phoneNumberSids") {
        Some(RefOr::T(Schema::Array(array))) => array.unique_items = true,
        _ => panic!("ImportNumbersRequest.phoneNumberSids is not an array schema"),
    }
    // The parsers refuse fields they do not define (400 naming each).
    for name in [
        "CreateTwilioProviderRequest",
        "UpdateTwilioProviderRequest",
        "RotateAuthTokenRequest",
        "ReplaceCredentialsRequest",
        "DeleteProviderRequest",
        "ImportNumbersRequest",
        "RotateSipCredentialRequest",
    ] {
        object(components, name).additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    }
    // `accountSid` and `authToken` are refused by name (400) like any field the schema does not
    // define; the object's description says why, as generators refuse an `enum: []` that says it.
    object(components, "UpdateTwilioProviderRequest").description = Some(
        "`PUT /api/v1/providers/twilio/{id}`: only the fields present change. `accountSid` cannot \
         change (create a new provider for another Twilio account) and the credential changes through \
         `PATCH /api/v1/providers/{id}/credentials`: either is a 400 here."
            .to_owned(),
    );
}

/// The tags that group the operations (a generated client's modules), in the document's order.
const TAGS: &[(&str, &str)] = &[
    ("providers", "Create, read, update, list and delete providers; rotate the stored auth token."),
    ("phone numbers", "The account's numbers: list those available, import them onto the trunk, remove them."),
    ("verification and repair", "Check the provider against Twilio, and put back what drifted."),
    ("SIP credential", "Rotate the generated SIP credential without dropping a call."),
    ("audit", "What the service did for a provider, who asked, and when."),
];

fn tag(endpoint: Endpoint) -> &'static str {
    use Endpoint::*;
    match endpoint {
        CreateTwilioProvider
        | GetTwilioProvider
        | GetProvider
        | ListProviders
        | UpdateTwilioProvider
        | RotateTwilioAuthToken
        | ReplaceTwilioCredentials
        | DeleteProvider => TAGS[0].0,
        ListAvailableNumbers | ImportNumbers | ListPhoneNumbers | RemovePhoneNumber => TAGS[1].0,
        VerifyProvider | RepairProvider => TAGS[2].0,
        RotateSipCredential | FinishSipCredentialRotation => TAGS[3].0,
        ListProviderEvents | ListEvents => TAGS[4].0,
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Components::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    refine_request_schemas(components);
    doc.tags = Some(
        TAGS.iter().map(|(name, about)| TagBuilder::new().name(*name).description(Some(*about)).build()).collect(),
    );
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("API key").build()),
    );
    for route in ROUTES {
        let spec = spec(route.endpoint);
        let mut operation = OperationBuilder::new()
            .operation_id(Some(route.function))
            .tag(tag(route.endpoint))
            .summary(Some(spec.summary))
            .security(SecurityRequirement::new("apiKey", Vec::<String>::new()));
        for segment in route.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .description(Some("A UUID (400 otherwise)."))
                        .schema(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
                        )),
                );
            }
        }
        for query in spec.query {
            operation = operation.parameter(query_parameter(*query));
        }
        let idempotent = IDEMPOTENT.contains(&route.endpoint);
        if idempotent {
            operation = operation.parameter(idempotency_key());
        }
        if let Some(schema) = spec.request {
            // An update may come without a body at all (no bytes): nothing changes.
            let optional = matches!(
                route.endpoint,
                Endpoint::UpdateTwilioProvider | Endpoint::RotateSipCredential | Endpoint::DeleteProvider
            );
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(if optional { Required::False } else { Required::True }))
                    .description(
                        optional.then_some("Optional: without a body (no bytes at all) every field takes its default."),
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build(),
                    )
                    .build(),
            ));
        }
        let links = links(route);
        for (status, description, schema) in spec.success {
            let mut response = ResponseBuilder::new().description(*description);
            if let Some(schema) = schema {
                response = response.content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name(*schema))).build(),
                );
            }
            if idempotent {
                response = response.header(
                    "Idempotent-Replayed",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["true"])))
                        .description(Some("`true` on the first response given again for a repeated `Idempotency-Key`."))
                        .build(),
                );
            }
            if *status == "201" {
                response = response.header(
                    "Location",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String))
                        .description(Some("The created resource's path."))
                        .build(),
                );
            }
            for OperationLink { target, parameters, .. } in links.iter().filter(|link| link.status == *status) {
                // utoipa 5.5 serializes `Link::operation_id` as `operation_id`; OpenAPI says
                // `operationId`, so it goes in as a (flattened) field of its own.
                let mut link = LinkBuilder::new()
                    .description(format!("{} {}", target.method, target.path))
                    .extensions(Some(Extensions::from_iter([("operationId", target.function)])));
                for (parameter, expression) in *parameters {
                    link = link.parameter(*parameter, *expression);
                }
                response = response.link(target.function, link.build());
            }
            operation = operation.response(*status, response.build());
        }
        let errors: BTreeSet<&str> = spec.errors.iter().chain(COMMON_ERRORS).copied().collect();
        for status in errors {
            operation = operation.response(status, error_response(status, route.endpoint));
        }
        doc.paths.add_path_operation(route.path, vec![method(route.method)], operation.build());
    }
    doc
}

pub fn document_json() -> String {
    let mut text = document().to_pretty_json().expect("the document serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions::routes::{AUTHORIZER_FUNCTION, QUEUE_FUNCTIONS, SCHEDULED_FUNCTION, SIP_CREDENTIAL_FUNCTION};
    use serde_json::{Value, json};
    use shared::request::JsonFields;
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
        let expected: BTreeSet<&str> = [AUTHORIZER_FUNCTION, SCHEDULED_FUNCTION, SIP_CREDENTIAL_FUNCTION]
            .into_iter()
            .chain(QUEUE_FUNCTIONS)
            .collect();
        assert_eq!(unrouted, expected);
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
        type Parser = fn(JsonFields) -> Option<shared::ApiError>;
        let parsers: [(&str, Parser); 5] = [
            ("CreateTwilioProviderRequest", |f| CreateTwilioProvider::from_fields(f).err()),
            ("ReplaceCredentialsRequest", |f| ReplaceCredentials::from_fields(f).err()),
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
            // And a field the schema does not define is refused, as `additionalProperties: false` says.
            assert_eq!(doc["components"]["schemas"][schema]["additionalProperties"], json!(false), "{schema}");
            let body = json!({ "notAField": true }).to_string();
            let error = parse(JsonFields::from_slice(body.as_bytes()).unwrap()).expect("an unknown field is an error");
            let shared::ApiError::Validation(errors) = error else { panic!("{schema}: not a validation error") };
            assert!(errors.contains_key("notAField"), "{schema}: an unknown field is not named: {errors:?}");
        }
    }

    /// A generated client groups operations by tag (one module each): every operation has
    /// exactly one of the document's tags, and every tag is used.
    #[test]
    fn every_operation_has_one_of_the_documents_tags() {
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        let tags: BTreeSet<&str> =
            doc["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        let mut used = BTreeSet::new();
        for (method, path, operation) in operations(&doc) {
            let operation_tags = operation["tags"].as_array().map(Vec::as_slice).unwrap_or_default();
            let [tag] = operation_tags else { panic!("{method} {path}: tags {operation_tags:?}") };
            assert!(tags.contains(tag.as_str().unwrap()), "{method} {path}: {tag} is not a document tag");
            used.insert(tag.as_str().unwrap());
        }
        assert_eq!(used, tags);
    }

    /// No schema carries an empty `enum` (JSON Schema asks for at least one value, and client
    /// generators refuse the document).
    #[test]
    fn no_schema_has_an_empty_enum() {
        fn visit(value: &Value, at: &str) {
            match value {
                Value::Object(map) => {
                    assert!(map.get("enum") != Some(&json!([])), "{at}: enum: []");
                    map.iter().for_each(|(key, value)| visit(value, &format!("{at}/{key}")));
                }
                Value::Array(items) => items.iter().for_each(|value| visit(value, at)),
                _ => {}
            }
        }
        visit(&serde_json::from_str(&document_json()).unwrap(), "#");
    }

    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                all.push((method.to_uppercase(), path.clone(), operation));
            }
        }
        all
    }

    /// API Gateway answers 401 (no `Authorization`), 403 (key denied), 429, 500 and 503 itself,
    /// as `application/json` `{"message"}`; the function answers 401, 500 and 503 as problems.
    #[test]
    fn every_operation_documents_what_api_gateway_answers() {
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        let gateway = json!({"$ref": "#/components/schemas/GatewayMessage"});
        let problem = json!({"$ref": "#/components/schemas/Problem"});
        for (method, path, operation) in operations(&doc) {
            let responses = &operation["responses"];
            for (status, message, also_problem) in [
                ("401", "Unauthorized", true),
                ("403", "Forbidden", false),
                ("429", "Too Many Requests", false),
                ("500", "Internal Server Error", true),
                ("503", "Service Unavailable", true),
            ] {
                let content = &responses[status]["content"];
                assert_eq!(content["application/json"]["schema"], gateway, "{method} {path} {status}");
                assert_eq!(content["application/json"]["example"], json!({ "message": message }));
                assert_eq!(
                    content["application/problem+json"]["schema"] == problem,
                    also_problem,
                    "{method} {path} {status}"
                );
            }
        }
        assert_eq!(doc["components"]["schemas"]["GatewayMessage"]["required"], json!(["message"]));
    }

    /// Every link names an operation of the document, only parameters it has, and takes values
    /// from fields the response schema has.
    #[test]
    fn links_lead_to_real_operations_and_parameters() {
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        let all = operations(&doc);
        let mut count = 0;
        for (method, path, operation) in &all {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let Some(links) = response.get("links").and_then(Value::as_object) else { continue };
                for (name, link) in links {
                    count += 1;
                    assert!(link.get("operation_id").is_none(), "{name}: `operationId`, not `operation_id`");
                    let target_id = link["operationId"].as_str().unwrap();
                    let (_, _, target) = all
                        .iter()
                        .find(|(_, _, o)| o["operationId"] == target_id)
                        .unwrap_or_else(|| panic!("{method} {path} {status} {name}: no operation {target_id}"));
                    let names: BTreeSet<&str> =
                        target["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
                    for (parameter, expression) in link["parameters"].as_object().unwrap() {
                        assert!(names.contains(parameter.as_str()), "{name}: {target_id} has no parameter {parameter}");
                        let expression = expression.as_str().unwrap();
                        if let Some(pointer) = expression.strip_prefix("$response.body#") {
                            // The pointer's steps through the response schema: properties, and
                            // array items for numeric steps.
                            let mut schema = &response["content"]["application/json"]["schema"];
                            for step in pointer.split('/').skip(1) {
                                if let Some(reference) = schema["$ref"].as_str() {
                                    let name = reference.rsplit('/').next().unwrap();
                                    schema = &doc["components"]["schemas"][name];
                                }
                                schema = if step.parse::<usize>().is_ok() {
                                    &schema["items"]
                                } else {
                                    &schema["properties"][step]
                                };
                                assert!(!schema.is_null(), "{name}: {expression} leaves the response schema");
                            }
                        } else {
                            let parameter = expression.strip_prefix("$request.path.").expect("a known expression");
                            assert!(path.contains(&format!("{{{parameter}}}")), "{name}: {expression}");
                        }
                    }
                }
            }
        }
        // Create leads to every operation on a provider id; import to the removal of the number.
        assert_eq!(count, ROUTES.iter().filter(|r| r.path.contains("{id}")).count());
    }

    /// `limit` is documented as exactly the range the handlers accept.
    #[test]
    fn paging_limit_is_documented_as_parsed() {
        use lambda_http::RequestExt;
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        let parameters = doc["paths"]["/api/v1/providers"]["get"]["parameters"].as_array().unwrap();
        let limit = parameters.iter().find(|p| p["name"] == "limit").unwrap();
        let (min, max) = (limit["schema"]["minimum"].as_i64().unwrap(), limit["schema"]["maximum"].as_i64().unwrap());
        for value in ["-1", "0", "1", "20", "100", "101", "1.5", "x", ""] {
            let request = lambda_http::Request::default().with_query_string_parameters(
                std::collections::HashMap::from([("limit".to_owned(), value.to_owned())]),
            );
            let parsed = functions::handlers::list_providers::parse_limit(&request).is_ok();
            let documented = value.parse::<i64>().is_ok_and(|n| (min..=max).contains(&n));
            assert_eq!(parsed, documented, "limit={value}");
        }
    }
}
