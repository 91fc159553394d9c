//! API keys instead of the Auth Token: a provider created with a Standard or Main key, one
//! whose key the service minted (and deletes with it), replacing the credential between kinds,
//! and what verification says of a key deleted in the Console.

use crate::harness::{Req, TestEnv, create_provider, random_token, status_and_body, twilio_snapshot};
use functions::handlers::{
    create_twilio_provider, delete_provider, replace_twilio_credentials, rotate_twilio_auth_token, verify_provider,
};
use integration_tests::fake_twilio::FaultAction;
use serde_json::{Value, json};
use shared::model::OrganizationId;

const ORG: &str = "org-api-keys";

async fn create(env: &TestEnv, body: Value) -> (u16, Value) {
    let req = Req::new("POST", "/api/v1/providers/twilio").org(ORG).body(&body.to_string());
    status_and_body(&Box::pin(create_twilio_provider::handle(&env.services, req.build())).await.unwrap())
}

async fn replace(env: &TestEnv, id: &str, body: Value) -> (u16, Value) {
    let req = Req::new("PATCH", "/api/v1/providers/{id}/credentials").org(ORG).param("id", id).body(&body.to_string());
    status_and_body(&Box::pin(replace_twilio_credentials::handle(&env.services, req.build())).await.unwrap())
}

async fn delete(env: &TestEnv, id: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", id).body_opt(body.as_deref());
    status_and_body(&Box::pin(delete_provider::handle(&env.services, req.build())).await.unwrap())
}

async fn verify(env: &TestEnv, id: &str) -> Value {
    let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", id);
    let (status, body) = status_and_body(&verify_provider::handle(&env.services, req.build()).await.unwrap());
    assert_eq!(status, 200, "{body}");
    body
}

fn check(checks: &Value, name: &str) -> Value {
    checks.as_array().unwrap().iter().find(|c| c["checkName"] == name).unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standard_key_creates_a_working_provider_without_reading_the_account() {
    let env = TestEnv::new().await;
    let (sid, _token) = env.fake.add_account("active", "Full");
    let (key_sid, key_secret) = env.fake.add_api_key(&sid, false);
    let (status, created) =
        create(&env, json!({"accountSid": sid, "apiKeySid": key_sid, "apiKeySecret": key_secret, "name": "Keyed"}))
            .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["credentialType"], "api_key");
    assert_eq!(created["apiKeySid"], key_sid.as_str());
    assert_eq!(created["apiKeyMinted"], false);
    assert!(!created.to_string().contains(&key_secret), "the secret is never answered");
    assert_eq!(env.fake.trunks_of(&sid).len(), 1, "the trunk was made with the key");
    let details = created["verificationDetails"].clone();
    assert_eq!(check(&details, "credentials")["details"]["credentialType"], "api_key");
    assert_eq!(check(&details, "credentials")["details"]["apiKeySid"], key_sid.as_str());
    let account = check(&details, "account");
    assert_eq!((account["status"].as_str(), account["details"]["type"].as_str()), (Some("passed"), Some("unknown")));
    // The key's own reads decided it: Twilio refused it the account (20003) as a Standard key.
    let log = env.fake.request_log();
    assert!(log.iter().any(|r| r.step == "fetch_account" && r.status == 401), "{log:?}");
    for step in ["list_trunks", "list_credential_lists", "list_incoming_numbers"] {
        assert!(log.iter().any(|r| r.step == step && r.status == 200), "{step} probed");
    }

    // Stored sealed, the SID beside it; the table never holds the secret.
    let org = OrganizationId::parse(ORG).unwrap();
    let id = created["id"].as_str().unwrap();
    let record = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(record.credential.api_key.as_ref().unwrap().sid.as_str(), key_sid);
    assert!(!env.scan_table_text().await.contains(&key_secret));

    // Every later operation uses the key.
    let verification = verify(&env, id).await;
    assert_eq!(verification["status"], "verified", "{verification}");
    let (status, _) = delete(&env, id, None).await;
    assert_eq!(status, 204);
    assert!(env.fake.trunks_of(&sid).is_empty());
    assert_eq!(env.fake.api_keys_of(&sid).len(), 1, "the customer's own key is theirs to keep");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_main_key_reads_the_account_like_the_token() {
    let env = TestEnv::new().await;
    let (sid, _) = env.fake.add_account("active", "Trial");
    let (key_sid, key_secret) = env.fake.add_api_key(&sid, true);
    let (status, created) =
        create(&env, json!({"accountSid": sid, "apiKeySid": key_sid, "apiKeySecret": key_secret, "name": "Main"}))
            .await;
    assert_eq!(status, 201, "{created}");
    let account = check(&created["verificationDetails"], "account");
    assert_eq!(account["details"]["type"], "Trial", "{account}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credential_combinations_are_400s_naming_each_field() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let key = format!("SK{}", "a".repeat(32));
    let secret = "A".repeat(32);
    let cases = [
        (
            json!({"authToken": token, "apiKeySid": key, "apiKeySecret": secret}),
            vec!["authToken", "apiKeySid", "apiKeySecret"],
        ),
        (json!({"apiKeySid": key}), vec!["apiKeySecret"]),
        (json!({"apiKeySecret": secret}), vec!["apiKeySid"]),
        (json!({}), vec!["authToken"]),
        (json!({"apiKeySid": key, "apiKeySecret": secret, "mintApiKey": true}), vec!["mintApiKey"]),
        (json!({"apiKeySid": "SKshort", "apiKeySecret": "short"}), vec!["apiKeySid", "apiKeySecret"]),
    ];
    for (credential, fields) in cases {
        let mut body = json!({"accountSid": sid, "name": "Bad"});
        body.as_object_mut().unwrap().extend(credential.as_object().unwrap().clone());
        let (status, problem) = create(&env, body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        for field in fields {
            assert!(problem["errors"].get(field).is_some(), "{body}: {field} not named in {problem}");
        }
    }
    assert!(env.fake.request_log().is_empty(), "nothing reached Twilio");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_twilio_refuses_or_that_lacks_a_permission_is_a_422_and_nothing_is_made() {
    let env = TestEnv::new().await;
    let (sid, _) = env.fake.add_account("active", "Full");
    let (key_sid, key_secret) = env.fake.add_api_key(&sid, false);
    let before = twilio_snapshot(&env, &sid);

    let wrong = "B".repeat(32);
    let (status, problem) =
        create(&env, json!({"accountSid": sid, "apiKeySid": key_sid, "apiKeySecret": wrong, "name": "x"})).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(&key_sid), "the key is named: {problem}");

    // A restricted key that may not list incoming numbers (Twilio's 20403).
    env.fake.inject("list_incoming_numbers", FaultAction::Fail { status: 403, code: 20403 }, Some(1));
    let (status, problem) =
        create(&env, json!({"accountSid": sid, "apiKeySid": key_sid, "apiKeySecret": key_secret, "name": "x"})).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("list incoming phone numbers"), "{problem}");
    assert_eq!(twilio_snapshot(&env, &sid), before, "nothing was made in Twilio");
    assert_eq!(env.item_count().await, 0, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_minted_key_lives_from_create_to_delete_and_the_token_is_never_stored() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let (status, created) =
        create(&env, json!({"accountSid": sid, "authToken": token, "mintApiKey": true, "name": "Minted"})).await;
    assert_eq!(status, 201, "{created}");
    let keys = env.fake.api_keys_of(&sid);
    assert_eq!(keys.len(), 1, "one key minted");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(!keys[0].main, "the 2010 API makes Standard keys");
    assert!(keys[0].friendly_name.contains(&id), "the key names the provider: {}", keys[0].friendly_name);
    assert_eq!((created["credentialType"].as_str(), created["apiKeyMinted"].as_bool()), (Some("api_key"), Some(true)));
    assert_eq!(created["apiKeySid"], keys[0].sid.as_str());
    // The account was read with the token before minting: its type is known.
    assert_eq!(check(&created["verificationDetails"], "account")["details"]["type"], "Full");
    // The token is in no item, sealed or not: only the key is stored.
    let org = OrganizationId::parse(ORG).unwrap();
    let record = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    assert!(record.credential.minted_key().is_some());
    let table = env.scan_table_text().await;
    assert!(!table.contains("authToken"), "no authToken attribute is stored");
    assert!(!table.contains(&token) && !table.contains(&keys[0].secret));

    // The token changes in Twilio: the provider goes on with its key.
    env.fake.set_auth_token(&sid, &random_token());
    assert_eq!(verify(&env, &id).await["status"], "verified");

    // Deleting needs the token (the key may not delete itself): refused before anything.
    let (status, problem) = delete(&env, &id, None).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["errors"]["authToken"][0].as_str().unwrap().contains(&keys[0].sid), "{problem}");
    assert_eq!(env.fake.trunks_of(&sid).len(), 1, "nothing was removed");
    let (status, problem) = delete(&env, &id, Some(json!({"authToken": random_token()}))).await;
    assert_eq!(status, 422, "a wrong token is refused before anything: {problem}");
    assert_eq!(env.fake.trunks_of(&sid).len(), 1);

    let current = env.fake.state().accounts[&sid].auth_token.clone();
    let (status, body) = delete(&env, &id, Some(json!({"authToken": current}))).await;
    assert_eq!(status, 204, "{body}");
    assert!(env.fake.trunks_of(&sid).is_empty() && env.fake.credential_lists_of(&sid).is_empty());
    assert!(env.fake.api_keys_of(&sid).is_empty(), "the minted key went last");
    let log = env.fake.request_log();
    let last = log.iter().rev().find(|r| r.method == "DELETE").unwrap();
    assert_eq!(last.step, "delete_api_key", "the key is deleted last");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_that_fails_after_minting_deletes_the_key() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    env.fake.inject("create_trunk", FaultAction::Fail { status: 400, code: 21244 }, Some(1));
    let (status, problem) =
        create(&env, json!({"accountSid": sid, "authToken": token, "mintApiKey": true, "name": "Minted"})).await;
    assert!(status >= 400, "{problem}");
    assert!(env.fake.api_keys_of(&sid).is_empty(), "the minted key was deleted with the token");
    assert!(env.fake.credential_lists_of(&sid).is_empty());
    assert_eq!(env.item_count().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_credential_moves_between_a_token_and_keys_and_back() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let created = create_provider(&env, ORG, &sid, &token).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["credentialType"], "auth_token");
    assert_eq!(created["apiKeySid"], Value::Null);

    // Token -> the customer's key.
    let (key_sid, key_secret) = env.fake.add_api_key(&sid, false);
    let (status, body) = replace(&env, &id, json!({"apiKeySid": key_sid, "apiKeySecret": key_secret})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["credentialType"].as_str(), body["apiKeySid"].as_str()),
        (Some("api_key"), Some(key_sid.as_str()))
    );
    assert_eq!(check(&body["verificationDetails"], "credentials")["details"]["credentialType"], "api_key");
    // The token is rotated in Twilio: nothing breaks, the key is what is used.
    env.fake.set_auth_token(&sid, &random_token());
    assert_eq!(verify(&env, &id).await["status"], "verified");

    // A key Twilio refuses changes nothing.
    let (other_sid, _) = env.fake.add_api_key(&sid, false);
    let (status, problem) = replace(&env, &id, json!({"apiKeySid": other_sid, "apiKeySecret": "C".repeat(32)})).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("unchanged"), "{problem}");
    let org = OrganizationId::parse(ORG).unwrap();
    let stored = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.credential.api_key.unwrap().sid.as_str(), key_sid);

    // Key -> a minted key (with the token), whose replacement by the customer's key is refused:
    // it would strand the minted one.
    let token = env.fake.state().accounts[&sid].auth_token.clone();
    let (status, body) = replace(&env, &id, json!({"authToken": token, "mintApiKey": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["apiKeyMinted"], true);
    let minted = body["apiKeySid"].as_str().unwrap().to_owned();
    let (status, problem) = replace(&env, &id, json!({"apiKeySid": key_sid, "apiKeySecret": key_secret})).await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(&minted), "{problem}");

    // Minted key -> the token, through the seed's endpoint: the minted key is deleted.
    let req = Req::new("PATCH", "/api/v1/providers/twilio/{id}/auth-token")
        .org(ORG)
        .param("id", &id)
        .body(&json!({"authToken": token}).to_string());
    let (status, body) =
        status_and_body(&Box::pin(rotate_twilio_auth_token::handle(&env.services, req.build())).await.unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["credentialType"].as_str(), body["apiKeyMinted"].as_bool()), (Some("auth_token"), Some(false)));
    let keys: Vec<String> = env.fake.api_keys_of(&sid).into_iter().map(|k| k.sid).collect();
    assert!(!keys.contains(&minted), "the replaced minted key was deleted");
    assert!(keys.contains(&key_sid), "the customer's keys are untouched");
    assert_eq!(verify(&env, &id).await["status"], "verified");
    let (status, _) = delete(&env, &id, None).await;
    assert_eq!(status, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_names_a_key_deleted_in_the_console_and_the_fix() {
    let env = TestEnv::new().await;
    let (sid, _) = env.fake.add_account("active", "Full");
    let (key_sid, key_secret) = env.fake.add_api_key(&sid, false);
    let (status, created) =
        create(&env, json!({"accountSid": sid, "apiKeySid": key_sid, "apiKeySecret": key_secret, "name": "k"})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    env.fake.delete_api_key(&key_sid);
    let verification = verify(&env, id).await;
    assert_eq!(verification["status"], "failed", "{verification}");
    let credentials = check(&verification["checks"], "credentials");
    assert_eq!(credentials["status"], "failed");
    let message = credentials["message"].as_str().unwrap();
    assert!(message.contains(&key_sid) && message.contains("deleted"), "{message}");
    assert!(message.contains(&format!("/api/v1/providers/{id}/credentials")), "{message}");
    assert_eq!(credentials["details"]["code"], 20003);
    assert_eq!(credentials["details"]["apiKeySid"], key_sid.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_minted_key_stays_while_leftovers_wait_for_the_sweeper_that_needs_it() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let (status, created) =
        create(&env, json!({"accountSid": sid, "authToken": token, "mintApiKey": true, "name": "Minted"})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // An earlier failure left a trunk, recorded with the provider's (minted) key.
    let org = OrganizationId::parse(ORG).unwrap();
    let record = env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap();
    let stray = env.fake.add_trunk(&sid);
    let leftover = shared::storage::Leftover::new(
        org.clone(),
        record.id,
        record.account_sid.clone(),
        record.twilio_region,
        Some(record.credential.clone()),
        shared::twilio::TwilioResource::Trunk { trunk_sid: shared::model::TrunkSid::parse(&stray).unwrap() },
    );
    env.services.store.record_leftovers(&[leftover]).await.unwrap();

    let (status, problem) = delete(&env, &id, Some(json!({"authToken": token}))).await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("orphan sweeper"), "{problem}");
    assert_eq!(env.fake.api_keys_of(&sid).len(), 1, "the key the sweeper needs stays");

    // The sweeper removes the leftover with the key; then the delete finishes, key last.
    let swept = Box::pin(functions::provider::jobs::run_in_process(
        &env.services,
        shared::queue::Job::SweepOrphans,
        4,
        Some(std::time::Duration::ZERO),
    ))
    .await
    .unwrap();
    assert!(
        env.fake.trunks_of(&sid).iter().all(|t| t.sid != stray),
        "swept: {}",
        serde_json::to_string(&swept).unwrap()
    );
    let (status, body) = delete(&env, &id, Some(json!({"authToken": token}))).await;
    assert_eq!(status, 204, "{body}");
    assert!(env.fake.api_keys_of(&sid).is_empty());
}
