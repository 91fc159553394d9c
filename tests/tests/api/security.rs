//! Hostile input and cross-organization access, for every endpoint of the route table.

use crate::harness::{Req, TestEnv, create_provider, status_and_body, table_snapshot, twilio_snapshot};
use functions::routes::{Endpoint, ROUTES};
use proptest::prelude::*;
use serde_json::{Value, json};

const ORG: &str = "org-owner";
const OTHER: &str = "org-intruder";

/// A valid body for each endpoint that takes one (so that only the organization differs).
fn valid_body(endpoint: Endpoint, number_sid: &str) -> Option<String> {
    match endpoint {
        Endpoint::UpdateTwilioProvider => Some(json!({"name": "Taken over", "supportsCallTransfer": true}).to_string()),
        Endpoint::RotateTwilioAuthToken | Endpoint::ReplaceTwilioCredentials => {
            Some(json!({"authToken": "f".repeat(32)}).to_string())
        }
        Endpoint::ImportNumbers => Some(json!({"phoneNumberSids": [number_sid]}).to_string()),
        _ => None,
    }
}

#[tokio::test]
async fn another_organization_gets_404_everywhere_and_changes_nothing() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    let imported = env.fake.add_incoming_number(&sid, "+15550005000", Some("https://example.com/x"));
    let free = env.fake.add_incoming_number(&sid, "+15550005001", None);
    let body = json!({ "phoneNumberSids": [imported] }).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(ORG).param("id", &id).body(&body).build();
    functions::handlers::import_numbers::handle(&env.services, req).await.unwrap();
    let number_id = env
        .services
        .store
        .all_numbers(&shared::model::OrganizationId::parse(ORG).unwrap(), id.parse().unwrap())
        .await
        .unwrap()[0]
        .id
        .to_string();

    let (twilio_before, table_before) = (twilio_snapshot(&env, &sid), table_snapshot(&env).await);
    for route in ROUTES.iter().filter(|r| r.endpoint != Endpoint::CreateTwilioProvider) {
        let mut req = Req::new(route.method, route.path).org(OTHER);
        if route.path.contains("{id}") {
            req = req.param("id", &id);
        }
        if route.path.contains("{phoneNumberId}") {
            req = req.param("phoneNumberId", &number_id);
        }
        if route.endpoint == Endpoint::ListEvents {
            req = req.query("providerId", &id);
        }
        if let Some(body) = valid_body(route.endpoint, &free) {
            req = req.body(&body);
        }
        let response = route.endpoint.call(&env.services, req.build()).await.unwrap();
        let (status, body) = status_and_body(&response);
        // The listings by organization answer the intruder's own (empty) list.
        if matches!(route.endpoint, Endpoint::ListProviders | Endpoint::ListEvents) {
            assert_eq!((status, body["items"].as_array().map(Vec::len)), (200, Some(0)), "{}: {body}", route.function);
        } else {
            assert_eq!(status, 404, "{}: {body}", route.function);
            assert_eq!(response.headers()["content-type"], "application/problem+json");
        }
    }
    assert_eq!(twilio_snapshot(&env, &sid), twilio_before, "Twilio changed");
    assert_eq!(table_snapshot(&env).await, table_before, "the table changed");
}

#[tokio::test]
async fn responses_with_provider_data_are_not_cacheable() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    for route in ROUTES.iter().filter(|r| r.method == "GET" || r.endpoint == Endpoint::VerifyProvider) {
        let mut req = Req::new(route.method, route.path).org(ORG);
        if route.path.contains("{id}") {
            req = req.param("id", &id);
        }
        if route.endpoint == Endpoint::ListEvents {
            req = req.query("providerId", &id);
        }
        let response = route.endpoint.call(&env.services, req.build()).await.unwrap();
        assert_eq!(response.status(), 200, "{}", route.function);
        assert_eq!(response.headers()["cache-control"], "no-store", "{}", route.function);
    }
}

#[tokio::test]
async fn bodies_over_256_kib_are_413_before_parsing() {
    let env = TestEnv::new().await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(300 * 1024));
    for route in
        // Verify, repair and a rotation's finish take no body.
        ROUTES.iter().filter(|r| {
            matches!(r.method, "POST" | "PUT" | "PATCH")
                && !matches!(
                    r.endpoint,
                    Endpoint::VerifyProvider | Endpoint::RepairProvider | Endpoint::FinishSipCredentialRotation
                )
        })
    {
        let mut req = Req::new(route.method, route.path).org(ORG).body(&huge);
        if route.path.contains("{id}") {
            req = req.param("id", &uuid::Uuid::now_v7().to_string());
        }
        let (status, body) = status_and_body(&route.endpoint.call(&env.services, req.build()).await.unwrap());
        assert_eq!(status, 413, "{}: {body}", route.function);
    }
}

/// A body just under 256 KiB of one array of 130,000 entries, or of thousands of unknown fields,
/// is a 400 of at most 64 KB that says how many failing fields it left out: an array is held
/// to its limit before its entries are looked at, and the fields named are capped.
#[tokio::test]
async fn a_body_of_thousands_of_mistakes_gets_a_small_answer() {
    let env = TestEnv::new().await;
    let id = uuid::Uuid::now_v7().to_string();
    let entries = format!("{{\"phoneNumberSids\":[{}0]}}", "0,".repeat(129_999));
    let mut unknown = String::from("{");
    for i in 0.. {
        if unknown.len() > 250 * 1024 {
            break;
        }
        unknown.push_str(&format!("\"f{i}\":0,"));
    }
    unknown.push_str("\"name\":7}");
    for (endpoint, path, body) in [
        (Endpoint::ImportNumbers, "/api/v1/providers/twilio/{id}/import-numbers", &entries),
        (Endpoint::CreateTwilioProvider, "/api/v1/providers/twilio", &unknown),
    ] {
        assert!(body.len() < 256 * 1024, "{endpoint:?}: {} bytes", body.len());
        let req = Req::new("POST", path).org(ORG).param("id", &id).body(body).build();
        let response = endpoint.call(&env.services, req).await.unwrap();
        let (status, problem) = status_and_body(&response);
        assert_eq!(status, 400, "{endpoint:?}");
        let size = problem.to_string().len();
        assert!(size <= 64 * 1024, "{endpoint:?}: a problem of {size} bytes");
        let named = problem["errors"].as_object().unwrap();
        match endpoint {
            Endpoint::ImportNumbers => assert_eq!(named.keys().collect::<Vec<_>>(), ["phoneNumberSids"], "{problem}"),
            _ => assert!(problem["errorsOmitted"].as_u64().unwrap() > 10_000, "{problem}"),
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "AC[a-f0-9]{32}".prop_map(Value::String),
        "[a-f0-9]{32}".prop_map(Value::String),
        "PN[a-f0-9]{32}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("accountSid".to_owned()),
                    Just("authToken".to_owned()),
                    Just("name".to_owned()),
                    Just("region".to_owned()),
                    Just("supportsCallTransfer".to_owned()),
                    Just("phoneNumberSids".to_owned()),
                    ".{0,12}".prop_map(|s: String| s),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
struct Hostile {
    route: usize,
    body: Option<String>,
    content_type: Option<String>,
    id: String,
    number_id: String,
    query: Vec<(String, String)>,
    idempotency_key: Option<String>,
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let body = prop_oneof![
        Just(None),
        ".{0,200}".prop_map(Some),
        json_value().prop_map(|v| Some(v.to_string())),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| Some(String::from_utf8_lossy(&b).into_owned())),
    ];
    let content_type = prop_oneof![
        Just(Some("application/json".to_owned())),
        Just(Some("application/json; charset=utf-8".to_owned())),
        Just(Some("text/plain".to_owned())),
        Just(Some("application/problem+json".to_owned())),
        Just(None),
        "[ -~]{0,30}".prop_map(Some),
    ];
    let id = prop_oneof![
        Just(uuid::Uuid::now_v7().to_string()),
        "[A-Za-z0-9._~-]{0,40}",
        Just("00000000-0000-0000-0000-000000000000".to_owned())
    ];
    let query = prop::collection::vec(
        (
            prop_oneof![Just("limit".to_owned()), Just("nextToken".to_owned()), Just("force".to_owned()), "[a-z]{1,8}"],
            "[A-Za-z0-9._~=-]{0,40}",
        ),
        0..4,
    );
    let idempotency_key = prop_oneof![Just(None), "[ -~]{0,300}".prop_map(Some)];
    (0..ROUTES.len(), body, content_type, id.clone(), id, query, idempotency_key).prop_map(
        |(route, body, content_type, id, number_id, query, idempotency_key)| Hostile {
            route,
            body,
            content_type,
            id,
            number_id,
            query,
            idempotency_key,
        },
    )
}

/// Never a 5xx, never a panic, and every 4xx is problem+json with its status.
#[test]
fn hostile_requests_get_clean_client_errors() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let env = runtime.block_on(TestEnv::new());
    let config = ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(input in hostile())| {
        let route = &ROUTES[input.route];
        let mut req = Req::new(route.method, route.path).org(ORG).param("id", &input.id).param("phoneNumberId", &input.number_id);
        let mut headers = serde_json::Map::new();
        if let Some(content_type) = &input.content_type {
            headers.insert("content-type".into(), json!(content_type));
        }
        if let Some(key) = &input.idempotency_key {
            headers.insert("idempotency-key".into(), json!(key));
        }
        req = req.headers(Value::Object(headers));
        if let Some(body) = &input.body {
            req = req.body(body);
        }
        for (name, value) in &input.query {
            req = req.query(name, value);
        }
        let response = runtime.block_on(route.endpoint.call(&env.services, req.build())).unwrap();
        let status = response.status().as_u16();
        prop_assert!(status < 500, "{} answered {status}: {:?}", route.function, response.body());
        if status >= 400 {
            prop_assert_eq!(response.headers()["content-type"].to_str().unwrap(), "application/problem+json");
            let body: Value = serde_json::from_slice(response.body()).unwrap();
            prop_assert_eq!(body["status"].as_u64(), Some(u64::from(status)));
        }
    });
}

/// The authorizer against the table: a valid key (any case of the scheme) is allowed, unknown
/// and revoked ones denied; a table that cannot be read is an error, not a denial API Gateway
/// would cache.
#[tokio::test]
async fn the_authorizer_allows_valid_keys_and_caches_no_denial_when_the_table_fails() {
    use functions::handlers::authorizer::authorize;
    use shared::storage::api_keys::ApiKeyStore;
    let (env, proxy) = crate::harness::TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let keys = ApiKeyStore::new(aws_sdk_dynamodb::Client::new(&env.service_aws), env.table.clone());
    let org = shared::model::OrganizationId::parse(ORG).unwrap();
    let (info, key) = keys.create(&org, None).await.unwrap();
    for scheme in ["Bearer", "bearer"] {
        let decision = authorize(&keys, Some(&format!("{scheme} {}", key.expose()))).await.unwrap();
        assert!(decision.is_authorized, "{scheme}");
        assert_eq!(decision.context["organizationId"], ORG);
        assert_eq!(decision.context["apiKeyId"], info.key_id.as_str(), "the key's id for the access logs");
    }
    let (head, last) = key.expose().split_at(key.expose().len() - 1);
    let unknown = format!("Bearer {head}{}", if last == "A" { "B" } else { "A" });
    assert!(!authorize(&keys, Some(&unknown)).await.unwrap().is_authorized);

    proxy.fail("DynamoDB_20120810.GetItem", None);
    assert!(authorize(&keys, Some(&format!("Bearer {}", key.expose()))).await.is_err(), "no decision to cache");
    proxy.clear();
    assert!(keys.revoke(&info.key_id).await.unwrap());
    assert!(!authorize(&keys, Some(&format!("Bearer {}", key.expose()))).await.unwrap().is_authorized);
}

/// A request names all its mistakes at once: a bad path id does not hide a bad body field or
/// query parameter.
#[tokio::test]
async fn path_body_and_query_mistakes_are_named_together() {
    use functions::handlers::{delete_provider, list_phone_numbers, remove_phone_number, update_twilio_provider};
    let env = TestEnv::new().await;
    let fields = |body: &Value| {
        let mut names: Vec<String> = body["errors"].as_object().unwrap().keys().cloned().collect();
        names.sort();
        names
    };
    let req = Req::new("PUT", "/api/v1/providers/twilio/{id}").org(ORG).param("id", "xyz").body(r#"{"name": ""}"#);
    let (status, body) = status_and_body(&update_twilio_provider::handle(&env.services, req.build()).await.unwrap());
    assert_eq!((status, fields(&body)), (400, vec!["id".to_owned(), "name".to_owned()]), "{body}");
    // A body that is not JSON at all is named too, under `body`.
    let req = Req::new("PUT", "/api/v1/providers/twilio/{id}").org(ORG).param("id", "xyz").body("{name");
    let (status, body) = status_and_body(&update_twilio_provider::handle(&env.services, req.build()).await.unwrap());
    assert_eq!((status, fields(&body)), (400, vec!["body".to_owned(), "id".to_owned()]), "{body}");
    assert!(body["errors"]["body"][0].as_str().unwrap().contains("not valid JSON"), "{body}");
    let req = Req::new("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
        .org(ORG)
        .param("id", "xyz")
        .param("phoneNumberId", "abc");
    let (status, body) = status_and_body(&remove_phone_number::handle(&env.services, req.build()).await.unwrap());
    assert_eq!((status, fields(&body)), (400, vec!["id".to_owned(), "phoneNumberId".to_owned()]), "{body}");
    let req =
        Req::new("GET", "/api/v1/providers/twilio/{id}/phone-numbers").org(ORG).param("id", "xyz").query("limit", "0");
    let (status, body) = status_and_body(&list_phone_numbers::handle(&env.services.store, req.build()).await.unwrap());
    assert_eq!((status, fields(&body)), (400, vec!["id".to_owned(), "limit".to_owned()]), "{body}");
    // A bad page token is named with the limit, before anything is read.
    let req = Req::new("GET", "/api/v1/providers").org(ORG).query("limit", "0").query("nextToken", "garbage");
    let (status, body) =
        status_and_body(&functions::handlers::list_providers::handle(&env.services.store, req.build()).await.unwrap());
    assert_eq!((status, fields(&body)), (400, vec!["limit".to_owned(), "nextToken".to_owned()]), "{body}");
    let req = Req::new("GET", "/api/v1/providers/twilio/{id}/phone-numbers")
        .org(ORG)
        .param("id", &uuid::Uuid::now_v7().to_string())
        .query("limit", "0")
        .query("nextToken", "garbage");
    let (status, body) = status_and_body(&list_phone_numbers::handle(&env.services.store, req.build()).await.unwrap());
    assert_eq!((status, fields(&body)), (400, vec!["limit".to_owned(), "nextToken".to_owned()]), "{body}");
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", "xyz").query("force", "yes");
    let (status, body) = status_and_body(&delete_provider::handle(&env.services, req.build()).await.unwrap());
    assert_eq!((status, fields(&body)), (400, vec!["force".to_owned(), "id".to_owned()]), "{body}");
}
