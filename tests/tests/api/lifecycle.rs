//! Get, list, update, auth-token rotation and delete, against moto and the fake Twilio.

use crate::harness::{Req, TestEnv, create_provider, random_token, status_and_body};
use functions::handlers::{
    delete_provider, get_provider, get_twilio_provider, list_providers, rotate_twilio_auth_token,
    update_twilio_provider,
};
use integration_tests::fake_twilio::FaultAction;
use serde_json::{Value, json};
use shared::crypto::{SecretKind, SecretOwner};
use shared::model::OrganizationId;
use uuid::Uuid;

const ORG: &str = "org-acme";
const OTHER_ORG: &str = "org-other";
const TWILIO_PATH: &str = "/api/v1/providers/twilio/{id}";
const GENERIC_PATH: &str = "/api/v1/providers/{id}";

async fn setup() -> (TestEnv, String, String, Value) {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(&env, ORG, &sid, &token).await;
    (env, sid, token, provider)
}

fn id_of(provider: &Value) -> String {
    provider["id"].as_str().unwrap().to_owned()
}

fn assert_problem(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
}

async fn stored(env: &TestEnv, org: &str, id: &str) -> Option<shared::storage::ProviderRecord> {
    env.services.store.get_provider(&OrganizationId::parse(org).unwrap(), id.parse().unwrap()).await.unwrap()
}

#[tokio::test]
async fn get_returns_the_provider_and_hides_other_organizations() {
    let (env, _, token, provider) = setup().await;
    let id = id_of(&provider);
    let store = &env.services.store;

    for path in [TWILIO_PATH, GENERIC_PATH] {
        let get = |org: &str, id: &str| Req::new("GET", path).org(org).param("id", id).build();
        let handler_output = |req| async {
            if path == TWILIO_PATH {
                get_twilio_provider::handle(store, req).await
            } else {
                get_provider::handle(store, req).await
            }
        };
        let response = handler_output(get(ORG, &id)).await.unwrap();
        let (status, body) = status_and_body(&response);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, provider, "GET shows the provider as create returned it");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert!(!body.to_string().contains(&token));

        let (status, missing) = status_and_body(&handler_output(get(ORG, &Uuid::now_v7().to_string())).await.unwrap());
        assert_problem(status, &missing, 404);
        let (status, foreign) = status_and_body(&handler_output(get(OTHER_ORG, &id)).await.unwrap());
        assert_problem(status, &foreign, 404);
        assert_eq!(foreign["title"], missing["title"]);
        let (status, body) = status_and_body(&handler_output(get(ORG, "not-a-uuid")).await.unwrap());
        assert_problem(status, &body, 400);
        assert!(body["errors"]["id"].is_array());
        let (status, body) =
            status_and_body(&handler_output(Req::new("GET", path).param("id", &id).build()).await.unwrap());
        assert_problem(status, &body, 401);
    }
    // No KMS and no Twilio call: the fake saw only the create's requests.
    let before = env.fake.request_log().len();
    get_twilio_provider::handle(store, Req::new("GET", TWILIO_PATH).org(ORG).param("id", &id).build()).await.unwrap();
    assert_eq!(env.fake.request_log().len(), before);
}

#[tokio::test]
async fn list_pages_newest_first_and_rejects_bad_tokens_and_limits() {
    let env = TestEnv::new().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (sid, token) = env.fake.add_account("active", "Full");
        ids.push(id_of(&create_provider(&env, ORG, &sid, &token).await));
    }
    let (sid, token) = env.fake.add_account("active", "Full");
    create_provider(&env, OTHER_ORG, &sid, &token).await;
    ids.reverse();

    let list = |req| list_providers::handle(&env.services.store, req);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = Req::new("GET", "/api/v1/providers").org(ORG).query("limit", "2");
        if let Some(t) = &token {
            req = req.query("nextToken", t);
        }
        let (status, page) = status_and_body(&list(req.build()).await.unwrap());
        assert_eq!(status, 200, "{page}");
        assert!(page.as_object().unwrap().contains_key("nextToken"));
        seen.extend(page["items"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page["nextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every provider of the organization, newest first, each once");

    let (status, page) = status_and_body(&list(Req::new("GET", "/api/v1/providers").org(ORG).build()).await.unwrap());
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert_eq!(page["items"][0]["providerType"], "twilio");
    assert!(page["nextToken"].is_null());

    for limit in ["0", "101", "ten", "-1"] {
        let (status, body) = status_and_body(
            &list(Req::new("GET", "/api/v1/providers").org(ORG).query("limit", limit).build()).await.unwrap(),
        );
        assert_problem(status, &body, 400);
    }
    // A token issued to another organization, and a tampered one.
    let (_, other_page) = status_and_body(
        &list(Req::new("GET", "/api/v1/providers").org(ORG).query("limit", "1").build()).await.unwrap(),
    );
    let foreign = other_page["nextToken"].as_str().unwrap().to_owned();
    for bad in [foreign.as_str(), "garbage", "cDEub3JnLWFjbWUueHl6"] {
        let (status, body) = status_and_body(
            &list(Req::new("GET", "/api/v1/providers").org(OTHER_ORG).query("nextToken", bad).build()).await.unwrap(),
        );
        assert_problem(status, &body, 400);
    }
}

fn put(org: &str, id: &str, body: &str) -> lambda_http::Request {
    Req::new("PUT", TWILIO_PATH).org(org).param("id", id).body(body).build()
}

/// An update running in the background, for what happens while it runs.
fn spawn_update(
    env: &TestEnv,
    id: &str,
    body: &str,
) -> tokio::task::JoinHandle<Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>> {
    let (services, id, body) = (env.services.clone(), id.to_owned(), body.to_owned());
    tokio::spawn(async move { update_twilio_provider::handle(&services, put(ORG, &id, &body)).await })
}

#[tokio::test]
async fn update_changes_only_given_fields_and_transfer_mode_goes_to_twilio_first() {
    let (env, sid, _, provider) = setup().await;
    let id = id_of(&provider);
    let update = |req| update_twilio_provider::handle(&env.services, req);

    let (status, body) = status_and_body(&update(put(ORG, &id, r#"{"name":"Renamed"}"#)).await.unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Renamed");
    assert_eq!(body["region"], provider["region"]);
    assert_eq!(body["supportsCallTransfer"], provider["supportsCallTransfer"]);

    let (status, body) =
        status_and_body(&update(put(ORG, &id, r#"{"region":"de1","supportsCallTransfer":true}"#)).await.unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Renamed");
    assert_eq!(body["region"], "de1");
    let label = env.fake.trunks_of(&sid)[0].domain_name.trim_end_matches(".pstn.twilio.com").to_owned();
    assert_eq!(body["terminationUri"], format!("sip:{label}.pstn.frankfurt.twilio.com"));
    assert_eq!(body["trunkSid"], provider["trunkSid"], "the trunk stays");
    assert_eq!(env.fake.trunks_of(&sid)[0].transfer_mode, "enable-all");

    // An empty body changes nothing.
    let before = stored(&env, ORG, &id).await.unwrap();
    let (status, body) = status_and_body(&update(put(ORG, &id, "")).await.unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored(&env, ORG, &id).await.unwrap(), before);

    // Credentials are not changed here; bad fields are named.
    let (status, body) =
        status_and_body(&update(put(ORG, &id, r#"{"authToken":"x","accountSid":"y"}"#)).await.unwrap());
    assert_problem(status, &body, 400);
    assert!(body["errors"]["authToken"][0].as_str().unwrap().contains("/credentials"));
    let (status, body) = status_and_body(&update(put(ORG, &id, r#"{"name":" ","region":"xx1"}"#)).await.unwrap());
    assert_problem(status, &body, 400);
    assert_eq!(body["errors"].as_object().unwrap().len(), 2);

    let (status, body) = status_and_body(&update(put(OTHER_ORG, &id, r#"{"name":"Mine"}"#)).await.unwrap());
    assert_problem(status, &body, 404);
    let (status, body) = status_and_body(&update(put(ORG, "nope", r#"{"name":"Mine"}"#)).await.unwrap());
    assert_problem(status, &body, 400);
    assert_eq!(stored(&env, ORG, &id).await.unwrap(), before);
}

#[tokio::test]
async fn a_twilio_failure_leaves_the_record_unchanged() {
    let (env, sid, _, provider) = setup().await;
    let id = id_of(&provider);
    let before = stored(&env, ORG, &id).await.unwrap();
    env.fake.inject("update_trunk", FaultAction::Fail { status: 500, code: 20500 }, None);
    let response =
        update_twilio_provider::handle(&env.services, put(ORG, &id, r#"{"name":"New","supportsCallTransfer":true}"#))
            .await
            .unwrap();
    let (status, body) = status_and_body(&response);
    assert_problem(status, &body, 502);
    assert!(body["detail"].as_str().unwrap().contains("transfer mode"), "{body}");
    assert_eq!(stored(&env, ORG, &id).await.unwrap(), before);
    assert_eq!(env.fake.trunks_of(&sid)[0].transfer_mode, "disable-all");
}

/// Two updates of `supportsCallTransfer` that both set the trunk, and a repair (which sets it
/// from the record it read): while one sets the trunk and saves, the others are refused (409),
/// so the trunk's TransferMode and the stored value agree; retried afterwards, they run.
#[tokio::test(flavor = "multi_thread")]
async fn transfer_changes_and_repairs_never_overlap() {
    let (env, sid, _, provider) = setup().await;
    let id = id_of(&provider);
    // A verification that saw the trunk drift: an update then sets the trunk even when the
    // value it asks for is the stored one (so both updates call Twilio).
    env.fake.state().trunks.values_mut().for_each(|t| t.transfer_mode = "enable-all".into());
    let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", &id).build();
    functions::handlers::verify_provider::handle(&env.services, req).await.unwrap();
    env.fake.state().trunks.values_mut().for_each(|t| t.transfer_mode = "disable-all".into());

    // A's change reaches Twilio, then A waits before saving.
    env.fake.inject("update_trunk", FaultAction::Delay(std::time::Duration::from_millis(800)), Some(1));
    let first = spawn_update(&env, &id, r#"{"supportsCallTransfer":true}"#);
    env.fake.until_faults_taken().await;
    let second = update_twilio_provider::handle(&env.services, put(ORG, &id, r#"{"supportsCallTransfer":false}"#))
        .await
        .unwrap();
    let (status, body) = status_and_body(&second);
    assert_problem(status, &body, 409);
    let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id).build();
    let (status, body) =
        status_and_body(&functions::handlers::repair_provider::handle(&env.services, req).await.unwrap());
    assert_problem(status, &body, 409);
    let (status, body) = status_and_body(&first.await.unwrap().unwrap());
    assert_eq!(status, 200, "{body}");
    let agree = |env: &TestEnv, record: &shared::storage::ProviderRecord| {
        let mode = env.fake.trunks_of(&sid)[0].transfer_mode.clone();
        let expected = if record.supports_call_transfer { "enable-all" } else { "disable-all" };
        assert_eq!(mode, expected, "stored {} but the trunk is {mode}", record.supports_call_transfer);
    };
    let record = stored(&env, ORG, &id).await.unwrap();
    assert!(record.supports_call_transfer);
    agree(&env, &record);

    // Retried once A is done, B runs.
    let (status, body) = status_and_body(
        &update_twilio_provider::handle(&env.services, put(ORG, &id, r#"{"supportsCallTransfer":false}"#))
            .await
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let record = stored(&env, ORG, &id).await.unwrap();
    assert!(!record.supports_call_transfer);
    agree(&env, &record);
}

/// What other requests save while a transfer change holds the lease (an import here) is
/// re-applied under it: one call to Twilio, and both saved.
#[tokio::test(flavor = "multi_thread")]
async fn an_import_during_a_transfer_change_is_re_applied_not_redone() {
    let (env, sid, _, provider) = setup().await;
    let id = id_of(&provider);
    let number = env.fake.add_incoming_number(&sid, "+15550600001", None);
    env.fake.inject("update_trunk", FaultAction::Delay(std::time::Duration::from_millis(800)), Some(1));
    let updating = spawn_update(&env, &id, r#"{"supportsCallTransfer":true}"#);
    env.fake.until_faults_taken().await;
    let body = json!({"phoneNumberSids": [number]}).to_string();
    let req = Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(ORG).param("id", &id).body(&body);
    let (status, imported) =
        status_and_body(&functions::handlers::import_numbers::handle(&env.services, req.build()).await.unwrap());
    assert_eq!((status, imported["successCount"].as_u64()), (200, Some(1)), "{imported}");
    let (status, body) = status_and_body(&updating.await.unwrap().unwrap());
    assert_eq!(status, 200, "{body}");
    let record = stored(&env, ORG, &id).await.unwrap();
    assert!(record.supports_call_transfer);
    assert_eq!(record.phone_number_count, 1);
    assert_eq!(env.fake.trunks_of(&sid)[0].transfer_mode, "enable-all");
    let sets = env.fake.request_log().iter().filter(|r| r.step == "update_trunk").count();
    assert_eq!(sets, 1, "decided once");
}

/// A rotation whose verification was under way while a repair rebuilt the trunk sets the token
/// but keeps the repair's newer result: its own verified a trunk that is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_never_overwrites_what_a_repair_verified_meanwhile() {
    let (env, _, token, provider) = setup().await;
    let id = id_of(&provider);
    let old_trunk = provider["trunkSid"].as_str().unwrap().to_owned();
    // The rotation's verification has read the trunk; its read of the origination URLs is
    // answered late.
    env.fake.inject("list_origination_urls", FaultAction::Delay(std::time::Duration::from_millis(800)), Some(1));
    let rotating = {
        let (services, id, body) = (env.services.clone(), id.clone(), json!({ "authToken": token }).to_string());
        tokio::spawn(async move { rotate_twilio_auth_token::handle(&services, patch_token(ORG, &id, &body)).await })
    };
    env.fake.until_faults_taken().await;
    env.fake.state().trunks.remove(&old_trunk);
    let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id).build();
    let (status, repaired) =
        status_and_body(&functions::handlers::repair_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{repaired}");
    let new_trunk = stored(&env, ORG, &id).await.unwrap().trunk_sid.to_string();
    assert_ne!(new_trunk, old_trunk);

    let (status, body) = status_and_body(&rotating.await.unwrap().unwrap());
    assert_eq!(status, 200, "{body}");
    let record = stored(&env, ORG, &id).await.unwrap();
    let trunk_check = record
        .verification_details
        .unwrap()
        .into_iter()
        .find(|c| c.check_name == shared::model::CheckName::Trunk)
        .unwrap();
    assert_eq!(trunk_check.details["trunkSid"], new_trunk.as_str(), "the repair's result stays: {trunk_check:?}");
    assert_eq!(record.verification_status, shared::model::VerificationStatus::Verified);
}

#[tokio::test]
async fn concurrent_updates_never_lose_a_write() {
    let (env, _, _, provider) = setup().await;
    let id = id_of(&provider);
    let names: Vec<String> = (0..20).map(|i| format!("name-{i}")).collect();
    let responses = futures::future::join_all(names.iter().map(|name| {
        update_twilio_provider::handle(&env.services, put(ORG, &id, &json!({ "name": name }).to_string()))
    }))
    .await;
    let mut succeeded = 0;
    for response in &responses {
        let (status, body) = status_and_body(response.as_ref().unwrap());
        assert!(status == 200 || status == 409, "{status} {body}");
        succeeded += usize::from(status == 200);
    }
    assert!(succeeded >= 1);
    let record = stored(&env, ORG, &id).await.unwrap();
    assert!(names.contains(&record.name));
    // Every successful write bumped the version exactly once.
    assert_eq!(record.version, 1 + succeeded as u64);
}

fn patch_token(org: &str, id: &str, body: &str) -> lambda_http::Request {
    Req::new("PATCH", "/api/v1/providers/twilio/{id}/auth-token").org(org).param("id", id).body(body).build()
}

#[tokio::test]
async fn rotating_the_auth_token_validates_it_first() {
    let (env, sid, old_token, provider) = setup().await;
    let id = id_of(&provider);
    let rotate = |req| rotate_twilio_auth_token::handle(&env.services, req);
    let before = stored(&env, ORG, &id).await.unwrap();

    // Twilio rejects it: nothing changes, byte for byte.
    let (status, body) = status_and_body(
        &rotate(patch_token(ORG, &id, &json!({"authToken": random_token()}).to_string())).await.unwrap(),
    );
    assert_problem(status, &body, 422);
    assert_eq!(stored(&env, ORG, &id).await.unwrap().credential, before.credential);

    // Bad bodies, ids and organizations.
    for body in [r#"{}"#, r#"{"authToken":"ABC"}"#, r#"{"authToken":12}"#] {
        let (status, problem) = status_and_body(&rotate(patch_token(ORG, &id, body)).await.unwrap());
        assert_problem(status, &problem, 400);
        assert!(problem["errors"]["authToken"].is_array());
    }
    let new_token = random_token();
    let (status, body) = status_and_body(
        &rotate(patch_token(OTHER_ORG, &id, &json!({"authToken": new_token}).to_string())).await.unwrap(),
    );
    assert_problem(status, &body, 404);
    let (status, body) =
        status_and_body(&rotate(patch_token(ORG, "x", &json!({"authToken": new_token}).to_string())).await.unwrap());
    assert_problem(status, &body, 400);

    // Twilio accepts it: a new ciphertext under a fresh data key that opens to the new token.
    env.fake.set_auth_token(&sid, &new_token);
    let (status, body) =
        status_and_body(&rotate(patch_token(ORG, &id, &json!({"authToken": new_token}).to_string())).await.unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains(&new_token));
    assert_eq!(body["verificationStatus"], "verified");
    let after = stored(&env, ORG, &id).await.unwrap();
    assert_ne!(after.credential.secret.ciphertext, before.credential.secret.ciphertext);
    assert_ne!(after.credential.secret.encrypted_data_key, before.credential.secret.encrypted_data_key);
    let owner = SecretOwner { organization_id: OrganizationId::parse(ORG).unwrap(), provider_id: id.parse().unwrap() };
    let opened = env.services.envelope.open(&owner, SecretKind::AuthToken, &after.credential.secret).await.unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), new_token);
    assert_ne!(secrecy::ExposeSecret::expose_secret(&opened), old_token);
    assert!(after.last_verified_at.is_some());
    assert!(!env.scan_table_text().await.contains(&new_token));
}

fn delete(org: &str, id: &str) -> Req {
    Req::new("DELETE", GENERIC_PATH).org(org).param("id", id)
}

async fn assert_twilio_clean(env: &TestEnv, sid: &str) {
    assert!(env.fake.trunks_of(sid).is_empty(), "trunk left");
    assert!(env.fake.credential_lists_of(sid).is_empty(), "credential list left");
    assert!(env.fake.credentials_of(sid).is_empty(), "credential left");
}

#[tokio::test]
async fn delete_cleans_twilio_and_every_record() {
    let (env, sid, token, provider) = setup().await;
    let id = id_of(&provider);
    let remove = |req| delete_provider::handle(&env.services, req);

    let (status, body) = status_and_body(&remove(delete(OTHER_ORG, &id).build()).await.unwrap());
    assert_problem(status, &body, 404);
    let (status, body) = status_and_body(&remove(delete(ORG, "123").build()).await.unwrap());
    assert_problem(status, &body, 400);
    let (status, body) = status_and_body(&remove(delete(ORG, &id).query("force", "maybe").build()).await.unwrap());
    assert_problem(status, &body, 400);
    assert_eq!(env.fake.trunks_of(&sid).len(), 1, "nothing removed by rejected requests");

    let response = remove(delete(ORG, &id).build()).await.unwrap();
    assert_eq!(response.status(), 204);
    assert_twilio_clean(&env, &sid).await;
    assert_eq!(env.item_count().await, 0, "every record removed");
    let (status, body) = status_and_body(&remove(delete(ORG, &id).build()).await.unwrap());
    assert_problem(status, &body, 404);
    // The Account SID can be connected again.
    create_provider(&env, ORG, &sid, &token).await;
}

#[tokio::test]
async fn a_failed_delete_is_marked_and_a_retry_converges() {
    for step in ["detach_credential_list", "delete_trunk", "delete_credential_list"] {
        let (env, sid, _, provider) = setup().await;
        let id = id_of(&provider);
        env.fake.inject(step, FaultAction::Fail { status: 500, code: 20500 }, None);
        let (status, body) =
            status_and_body(&delete_provider::handle(&env.services, delete(ORG, &id).build()).await.unwrap());
        if step == "detach_credential_list" {
            // Deleting the trunk removes the attachment too, so a failed detach is not a leftover.
            assert_eq!(status, 204, "{body}");
            assert_twilio_clean(&env, &sid).await;
            continue;
        }
        assert_problem(status, &body, 502);
        assert!(body["detail"].as_str().unwrap().contains("DELETE again"), "{body}");

        // Visible as being deleted; updates are refused meanwhile.
        let get = Req::new("GET", TWILIO_PATH).org(ORG).param("id", &id).build();
        let (status, shown) = status_and_body(&get_twilio_provider::handle(&env.services.store, get).await.unwrap());
        assert_eq!(status, 200);
        assert_eq!(shown["deletion"]["status"], "deleting", "{shown}");
        let (status, body) = status_and_body(
            &update_twilio_provider::handle(&env.services, put(ORG, &id, r#"{"name":"x"}"#)).await.unwrap(),
        );
        assert_problem(status, &body, 409);

        env.fake.clear_faults();
        let response = delete_provider::handle(&env.services, delete(ORG, &id).build()).await.unwrap();
        assert_eq!(response.status(), 204, "retry after a failure at {step}");
        assert_twilio_clean(&env, &sid).await;
        assert_eq!(env.item_count().await, 0);
    }
}

#[tokio::test]
async fn force_delete_with_a_revoked_token_lists_what_was_left() {
    let (env, sid, _, provider) = setup().await;
    let id = id_of(&provider);
    env.fake.set_auth_token(&sid, &random_token());

    let (status, body) =
        status_and_body(&delete_provider::handle(&env.services, delete(ORG, &id).build()).await.unwrap());
    assert_problem(status, &body, 502);
    assert!(stored(&env, ORG, &id).await.unwrap().deletion.is_some());

    let response =
        delete_provider::handle(&env.services, delete(ORG, &id).query("force", "true").build()).await.unwrap();
    let (status, body) = status_and_body(&response);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], true);
    let kinds: Vec<&str> = body["leftBehind"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"trunk") && kinds.contains(&"credentialList"), "{body}");
    // Only the records of what was left (one per resource), for the orphan sweeper.
    assert_eq!(env.item_count().await, kinds.len(), "{body}");
    assert_eq!(env.scan_table_text().await.matches("ORPHAN#").count(), kinds.len(), "what was left is recorded");
    assert_eq!(env.fake.trunks_of(&sid).len(), 1, "the trunk could not be removed with a revoked token");
}
