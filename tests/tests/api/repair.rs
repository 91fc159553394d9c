//! Repair of every drift that would break calls either way (the origination URL that brings
//! inbound calls to the platform, the SIP credential the call engine authenticates outbound
//! calls with, the trunk and its numbers), injected directly in the fake Twilio.

use crate::harness::{PLATFORM_SIP_URI, Req, TestEnv, create_provider, status_and_body, twilio_snapshot};
use functions::handlers::get_sip_credential::handle as read_sip_credential;
use functions::handlers::{delete_provider, import_numbers, repair_provider, update_twilio_provider, verify_provider};
use functions::provider::sip_credential::SipCredentialReader;
use integration_tests::fake_twilio::{FaultAction, new_sid};
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::model::OrganizationId;

const ORG: &str = "org-calls";

struct Provider {
    account_sid: String,
    id: String,
    trunk_sid: String,
    list_sid: String,
}

async fn setup(env: &TestEnv) -> Provider {
    let (account_sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(env, ORG, &account_sid, &token).await;
    Provider {
        account_sid,
        id: provider["id"].as_str().unwrap().to_owned(),
        trunk_sid: provider["trunkSid"].as_str().unwrap().to_owned(),
        list_sid: env.fake.state().credential_lists.values().next().unwrap().sid.clone(),
    }
}

async fn verify(env: &TestEnv, id: &str) -> Value {
    let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", id).build();
    let (status, body) = status_and_body(&verify_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    body
}

async fn repair_as(env: &TestEnv, org: &str, id: &str) -> (u16, Value) {
    repair_as_with(&env.services, org, id).await
}

async fn repair_as_with(services: &functions::services::Services, org: &str, id: &str) -> (u16, Value) {
    let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(org).param("id", id).build();
    status_and_body(&repair_provider::handle(services, req).await.unwrap())
}

/// A repair running in the background, for what happens while it runs.
fn spawn_repair(env: &TestEnv, id: &str) -> tokio::task::JoinHandle<(u16, Value)> {
    let (services, id) = (env.services.clone(), id.to_owned());
    tokio::spawn(async move { repair_as_with(&services, ORG, &id).await })
}

async fn repair(env: &TestEnv, id: &str) -> Value {
    let (status, body) = repair_as(env, ORG, id).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"].as_array().unwrap().iter().find(|c| c["checkName"] == name).unwrap_or_else(|| panic!("{body}"))
}

/// The actions of a repair with the given result, as `action` names.
fn actions_with(body: &Value, result: &str) -> Vec<String> {
    body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == result)
        .map(|a| a["action"].as_str().unwrap().to_owned())
        .collect()
}

/// A second repair changes nothing in Twilio and reports every action skipped.
async fn assert_second_repair_is_a_no_op(env: &TestEnv, p: &Provider) {
    let before = twilio_snapshot(env, &p.account_sid);
    let origination_before = format!("{:?}", env.fake.state().origination_urls);
    let body = repair(env, &p.id).await;
    assert!(actions_with(&body, "done").is_empty() && actions_with(&body, "failed").is_empty(), "{body}");
    assert_eq!(body["verification"]["status"], "verified", "{body}");
    assert_eq!(twilio_snapshot(env, &p.account_sid), before);
    assert_eq!(format!("{:?}", env.fake.state().origination_urls), origination_before);
}

fn import_body(sids: &[&str]) -> String {
    json!({ "phoneNumberSids": sids }).to_string()
}

async fn import(env: &TestEnv, id: &str, sids: &[&str]) {
    let req = Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers")
        .org(ORG)
        .param("id", id)
        .body(&import_body(sids))
        .build();
    let (status, body) = status_and_body(&import_numbers::handle(&env.services, req).await.unwrap());
    assert_eq!((status, body["successCount"].as_u64()), (200, Some(sids.len() as u64)), "{body}");
}

async fn stored(env: &TestEnv, id: &str) -> shared::storage::ProviderRecord {
    let org = OrganizationId::parse(ORG).unwrap();
    env.services.store.get_provider(&org, id.parse().unwrap()).await.unwrap().unwrap()
}

/// What the call engine gets for the provider.
async fn sip_credential(env: &TestEnv, id: &str) -> Result<Value, String> {
    let reader = SipCredentialReader { store: env.services.store.clone(), envelope: env.services.envelope.clone() };
    read_sip_credential(&reader, invocation(json!({"organizationId": ORG, "providerId": id})))
        .await
        .map(|credential| serde_json::to_value(credential).unwrap())
        .map_err(|e| e.error_type().to_owned())
}

#[tokio::test]
async fn create_points_the_trunk_at_the_platform_and_verification_checks_it() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let urls = env.fake.origination_urls_of(&p.trunk_sid);
    assert_eq!(urls.len(), 1);
    let url = &urls[0];
    assert_eq!(
        (url.sip_url.as_str(), url.enabled, url.priority, url.weight),
        (PLATFORM_SIP_URI, true, 10, 10),
        "{url:?}"
    );
    assert!(url.friendly_name.contains(&p.id), "the friendly name names the provider: {url:?}");
    let created = stored(&env, &p.id).await;
    let details = serde_json::to_value(created.verification_details.unwrap()).unwrap();
    assert_eq!(check(&json!({ "checks": details }), "origination")["status"], "passed");

    // Removed behind the service's back: verification fails on origination; repair fixes it.
    env.fake.state().origination_urls.clear();
    let body = verify(&env, &p.id).await;
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(check(&body, "origination")["status"], "failed");
    assert!(check(&body, "origination")["message"].as_str().unwrap().contains("inbound calls"), "{body}");
    let body = repair(&env, &p.id).await;
    assert_eq!(actions_with(&body, "done"), ["setOriginationUrl"], "{body}");
    assert_eq!(body["verification"]["status"], "verified", "{body}");
    assert_eq!(env.fake.origination_urls_of(&p.trunk_sid).len(), 1);
    assert_eq!(verify(&env, &p.id).await["status"], "verified");
    assert_second_repair_is_a_no_op(&env, &p).await;
}

#[tokio::test]
async fn a_disabled_or_redirected_origination_url_warns_and_repair_points_it_back() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let own_sid = env.fake.origination_urls_of(&p.trunk_sid)[0].sid.clone();
    env.fake.state().origination_urls.get_mut(&own_sid).unwrap().enabled = false;
    let body = verify(&env, &p.id).await;
    assert_eq!(check(&body, "origination")["status"], "warning", "{body}");

    env.fake.state().origination_urls.get_mut(&own_sid).unwrap().sip_url = "sip:elsewhere.example.net".into();
    let body = repair(&env, &p.id).await;
    assert_eq!(actions_with(&body, "done"), ["setOriginationUrl"], "{body}");
    let url = env.fake.state().origination_urls[&own_sid].clone();
    assert_eq!((url.sip_url.as_str(), url.enabled), (PLATFORM_SIP_URI, true), "the service's own URL was updated");
    assert_eq!(env.fake.origination_urls_of(&p.trunk_sid).len(), 1, "nothing added beside it");
    assert_second_repair_is_a_no_op(&env, &p).await;
}

#[tokio::test]
async fn a_customers_own_origination_url_is_left_alone() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let own_sid = env.fake.origination_urls_of(&p.trunk_sid)[0].sid.clone();
    {
        let mut state = env.fake.state();
        state.origination_urls.remove(&own_sid);
        let customers = integration_tests::fake_twilio::OriginationUrl {
            sid: new_sid("OU"),
            account_sid: p.account_sid.clone(),
            trunk_sid: p.trunk_sid.clone(),
            sip_url: "sip:pbx.customer.example".into(),
            enabled: true,
            friendly_name: "Customer PBX".into(),
            priority: 20,
            weight: 5,
        };
        state.origination_urls.insert(customers.sid.clone(), customers);
    }
    let body = repair(&env, &p.id).await;
    assert_eq!(actions_with(&body, "done"), ["setOriginationUrl"], "{body}");
    let urls = env.fake.origination_urls_of(&p.trunk_sid);
    assert_eq!(urls.len(), 2, "{urls:?}");
    let customers = urls.iter().find(|u| u.friendly_name == "Customer PBX").unwrap();
    assert_eq!((customers.sip_url.as_str(), customers.priority, customers.weight), ("sip:pbx.customer.example", 20, 5));
}

#[tokio::test]
async fn a_detached_credential_list_is_attached_again() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    env.fake.state().trunk_credential_lists.clear();
    assert_eq!(check(&verify(&env, &p.id).await, "credentialList")["status"], "failed");
    let body = repair(&env, &p.id).await;
    assert_eq!(actions_with(&body, "done"), ["attachCredentialList"], "{body}");
    assert_eq!(env.fake.lists_attached_to(&p.trunk_sid), std::slice::from_ref(&p.list_sid));
    assert_second_repair_is_a_no_op(&env, &p).await;
}

#[tokio::test]
async fn a_deleted_sip_credential_gets_a_new_password_the_call_engine_sees() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let old = sip_credential(&env, &p.id).await.unwrap();
    env.fake.state().credentials.clear();
    assert_eq!(check(&verify(&env, &p.id).await, "credentialList")["status"], "failed");
    let body = repair(&env, &p.id).await;
    assert_eq!(actions_with(&body, "done"), ["recreateSipCredential"], "{body}");
    // The verification it answers and stores is of the provider as repaired, new credential included.
    assert_eq!(body["verification"]["status"], "verified", "{body}");
    assert_eq!(stored(&env, &p.id).await.verification_status, shared::model::VerificationStatus::Verified);
    let new = sip_credential(&env, &p.id).await.unwrap();
    assert_ne!(new["password"], old["password"]);
    // A new SIP user of the provider's (a fresh name: it never meets one the list holds).
    let prefix = &p.id.replace('-', "")[..23];
    assert!(new["username"].as_str().unwrap().starts_with(prefix), "{new}");
    let twilio_password = env.fake.sip_password(&p.list_sid, new["username"].as_str().unwrap()).unwrap();
    assert_eq!(new["password"], twilio_password.as_str());
    assert!(!env.scan_table_text().await.contains(&twilio_password), "the new password is stored encrypted");
    assert_second_repair_is_a_no_op(&env, &p).await;
}

#[tokio::test]
async fn a_deleted_credential_list_is_replaced_and_attached() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    {
        let mut state = env.fake.state();
        state.credential_lists.clear();
        state.credentials.clear();
        state.trunk_credential_lists.clear();
    }
    let body = repair(&env, &p.id).await;
    assert_eq!(actions_with(&body, "done"), ["recreateCredentialList", "attachCredentialList"], "{body}");
    assert_eq!(body["verification"]["status"], "verified", "{body}");
    let record = stored(&env, &p.id).await;
    assert_ne!(record.credential_list_sid.as_str(), p.list_sid);
    assert_eq!(env.fake.lists_attached_to(&p.trunk_sid), [record.credential_list_sid.to_string()]);
    let credential = sip_credential(&env, &p.id).await.unwrap();
    let twilio_password =
        env.fake.sip_password(record.credential_list_sid.as_str(), credential["username"].as_str().unwrap()).unwrap();
    assert_eq!(credential["password"], twilio_password.as_str());
    let p = Provider { list_sid: record.credential_list_sid.to_string(), ..p };
    assert_second_repair_is_a_no_op(&env, &p).await;
}

#[tokio::test]
async fn a_transfer_mode_drift_is_set_back() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    env.fake.state().trunks.get_mut(&p.trunk_sid).unwrap().transfer_mode = "enable-all".into();
    let body = repair(&env, &p.id).await;
    assert_eq!(actions_with(&body, "done"), ["setTransferMode"], "{body}");
    assert_eq!(env.fake.state().trunks[&p.trunk_sid].transfer_mode, "disable-all");
    assert_second_repair_is_a_no_op(&env, &p).await;
}

#[tokio::test]
async fn numbers_on_no_trunk_go_back_and_numbers_on_another_trunk_stay() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let loose = env.fake.add_incoming_number(&p.account_sid, "+15550000001", None);
    let moved = env.fake.add_incoming_number(&p.account_sid, "+15550000002", None);
    import(&env, &p.id, &[&loose, &moved]).await;
    let customer_trunk = env.fake.add_trunk(&p.account_sid);
    {
        let mut state = env.fake.state();
        state.incoming_numbers.get_mut(&loose).unwrap().trunk_sid = None;
        state.incoming_numbers.get_mut(&moved).unwrap().trunk_sid = Some(customer_trunk.clone());
    }
    let body = repair(&env, &p.id).await;
    assert_eq!(actions_with(&body, "done"), ["reattachNumber"], "{body}");
    let skipped = body["actions"].as_array().unwrap().iter().find(|a| a["resource"] == moved.as_str()).unwrap();
    assert_eq!(skipped["result"], "skipped");
    assert!(skipped["message"].as_str().unwrap().contains("another trunk"), "{skipped}");
    let state = env.fake.state();
    assert_eq!(state.incoming_numbers[&loose].trunk_sid.as_deref(), Some(p.trunk_sid.as_str()));
    assert_eq!(state.incoming_numbers[&moved].trunk_sid.as_deref(), Some(customer_trunk.as_str()), "never taken");
}

/// Setting a voice application takes a number off its trunk (Twilio's spec): that is the
/// customer routing it elsewhere, and attaching it again would take the application away.
#[tokio::test]
async fn a_number_given_a_voice_application_is_not_put_back() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let number = env.fake.add_incoming_number(&p.account_sid, "+15550000011", None);
    import(&env, &p.id, &[&number]).await;
    let app = env.fake.add_application(&p.account_sid);
    {
        let mut state = env.fake.state();
        let n = state.incoming_numbers.get_mut(&number).unwrap();
        (n.trunk_sid, n.voice_application_sid) = (None, Some(app.clone()));
    }
    let body = repair(&env, &p.id).await;
    let skipped = body["actions"].as_array().unwrap().iter().find(|a| a["resource"] == number.as_str()).unwrap();
    assert_eq!(skipped["result"], "skipped", "{skipped}");
    assert!(skipped["message"].as_str().unwrap().contains("voice application"), "{skipped}");
    let n = env.fake.state().incoming_numbers[&number].clone();
    assert_eq!((n.trunk_sid, n.voice_application_sid), (None, Some(app)), "left as the customer set it");
}

/// A repair that rebuilt a deleted trunk and saved it, but whose save's answer was lost (the
/// SDK's retry then meets the new version), keeps the trunk the record now names: 200, not a
/// 409 that would delete it.
#[tokio::test(flavor = "multi_thread")]
async fn a_rebuilt_trunk_whose_save_answered_an_error_is_kept() {
    use integration_tests::aws_proxy::Failure;
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let p = setup(&env).await;
    env.fake.state().trunks.remove(&p.trunk_sid);
    // The repair's first read waits, so that the failure below meets its save and not its
    // lease (both are PutItems).
    env.fake.inject("fetch_trunk", FaultAction::Delay(std::time::Duration::from_millis(500)), Some(1));
    let repairing = spawn_repair(&env, &p.id);
    env.fake.until_faults_taken().await;
    proxy.fail_with("DynamoDB_20120810.PutItem", Failure::CommitThenFail, Some(1));
    let (status, body) = repairing.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let record = stored(&env, &p.id).await;
    assert_ne!(record.trunk_sid.to_string(), p.trunk_sid);
    let trunks = env.fake.trunks_of(&p.account_sid);
    assert_eq!(trunks.len(), 1);
    assert_eq!(trunks[0].sid, record.trunk_sid.to_string(), "the trunk the record names is there");
}

/// A number the customer took off the trunk and pointed at their own voice URL is theirs
/// again: repair leaves it, while a number that only fell off (same voice URL as at import,
/// as when the trunk itself was deleted) goes back.
#[tokio::test]
async fn a_number_re_routed_to_another_voice_url_is_not_put_back() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let re_routed = env.fake.add_incoming_number(&p.account_sid, "+15550000021", Some("https://ivr.example.com/old"));
    let fell_off = env.fake.add_incoming_number(&p.account_sid, "+15550000022", Some("https://ivr.example.com/old"));
    import(&env, &p.id, &[&re_routed, &fell_off]).await;
    {
        let mut state = env.fake.state();
        let n = state.incoming_numbers.get_mut(&re_routed).unwrap();
        (n.trunk_sid, n.voice_url) = (None, Some("https://ivr.example.com/new".into()));
        state.incoming_numbers.get_mut(&fell_off).unwrap().trunk_sid = None;
    }
    let body = repair(&env, &p.id).await;
    let result_of = |sid: &str| body["actions"].as_array().unwrap().iter().find(|a| a["resource"] == sid).cloned();
    let skipped = result_of(&re_routed).unwrap();
    assert_eq!(skipped["result"], "skipped", "{body}");
    assert!(skipped["message"].as_str().unwrap().contains("voice URL was changed"), "{skipped}");
    assert_eq!(result_of(&fell_off).unwrap()["result"], "done", "{body}");
    let state = env.fake.state();
    let n = &state.incoming_numbers[&re_routed];
    assert_eq!((n.trunk_sid.as_deref(), n.voice_url.as_deref()), (None, Some("https://ivr.example.com/new")));
    assert_eq!(state.incoming_numbers[&fell_off].trunk_sid.as_deref(), Some(p.trunk_sid.as_str()));
}

/// A removal that gives a number back between repair reading it and attaching it: the repair
/// undoes its attach, so the number is never on a trunk without a record; also when the trunk
/// it attached to is one repair has just rebuilt.
#[tokio::test(flavor = "multi_thread")]
async fn a_number_removed_while_repair_puts_it_back_stays_off_the_trunk() {
    for rebuilt in [false, true] {
        number_removed_during_repair(rebuilt).await;
    }
}

async fn number_removed_during_repair(rebuilt: bool) {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let number = env.fake.add_incoming_number(&p.account_sid, "+15550000012", None);
    import(&env, &p.id, &[&number]).await;
    {
        let mut state = env.fake.state();
        state.incoming_numbers.get_mut(&number).unwrap().trunk_sid = None;
        if rebuilt {
            state.trunks.remove(&p.trunk_sid);
            state.trunk_credential_lists.clear();
            state.origination_urls.clear();
        }
    }
    // Repair's read of the number is answered late: the removal runs in between.
    env.fake.inject("fetch_incoming_number", FaultAction::Delay(std::time::Duration::from_millis(500)), Some(1));
    let repairing = {
        let env_services = env.services.clone();
        let id = p.id.clone();
        tokio::spawn(async move {
            let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id).build();
            status_and_body(&repair_provider::handle(&env_services, req).await.unwrap())
        })
    };
    env.fake.until_faults_taken().await;
    let org = OrganizationId::parse(ORG).unwrap();
    let record = env.services.store.all_numbers(&org, p.id.parse().unwrap()).await.unwrap().remove(0);
    let removed = functions::provider::give_back::remove_number(&env.services, &org, p.id.parse().unwrap(), record.id)
        .await
        .unwrap();
    assert!(removed.restored, "{removed:?}");
    let (status, body) = repairing.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.fake.state().incoming_numbers[&number].trunk_sid, None, "not on a trunk without a record: {body}");
}

#[tokio::test]
async fn a_deleted_trunk_is_rebuilt_with_everything_on_it() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let number = env.fake.add_incoming_number(&p.account_sid, "+15550000003", None);
    import(&env, &p.id, &[&number]).await;
    let before = stored(&env, &p.id).await;
    {
        // As Twilio does: the trunk's attachments and origination URLs go with it, its numbers come off.
        let mut state = env.fake.state();
        state.trunks.remove(&p.trunk_sid);
        state.trunk_credential_lists.clear();
        state.origination_urls.clear();
        state.incoming_numbers.get_mut(&number).unwrap().trunk_sid = None;
    }
    assert_eq!(check(&verify(&env, &p.id).await, "trunk")["status"], "failed");
    let body = repair(&env, &p.id).await;
    assert_eq!(
        actions_with(&body, "done"),
        ["recreateTrunk", "attachCredentialList", "setOriginationUrl", "reattachNumber"],
        "{body}"
    );
    assert_eq!(body["verification"]["status"], "verified", "{body}");
    let after = stored(&env, &p.id).await;
    assert_ne!(after.trunk_sid, before.trunk_sid);
    assert_ne!(after.termination_uri, before.termination_uri);
    assert_eq!(after.version, before.version + 1 + 1, "verify, then one write for the repair");
    let trunk = env.fake.state().trunks[after.trunk_sid.as_str()].clone();
    assert!(after.termination_uri.contains(trunk.domain_name.trim_end_matches(".pstn.twilio.com")));
    assert_eq!(env.fake.lists_attached_to(after.trunk_sid.as_str()), std::slice::from_ref(&p.list_sid));
    assert_eq!(env.fake.origination_urls_of(after.trunk_sid.as_str()).len(), 1);
    assert_eq!(env.fake.state().incoming_numbers[&number].trunk_sid.as_deref(), Some(after.trunk_sid.as_str()));
    assert_eq!(sip_credential(&env, &p.id).await.unwrap()["trunkSid"], after.trunk_sid.as_str());
    let p = Provider { trunk_sid: after.trunk_sid.to_string(), ..p };
    assert_second_repair_is_a_no_op(&env, &p).await;
}

#[tokio::test]
async fn a_failed_save_undoes_the_rebuilt_trunk() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let p = setup(&env).await;
    env.fake.state().trunks.remove(&p.trunk_sid);
    // The new references are written with PutItem (with a new SIP credential, in a transaction).
    proxy.fail("DynamoDB_20120810.PutItem", None);
    let (status, body) = repair_as(&env, ORG, &p.id).await;
    assert_eq!(status, 503, "{body}");
    assert!(env.fake.trunks_of(&p.account_sid).is_empty(), "the new trunk was removed again");
    assert_eq!(stored(&env, &p.id).await.trunk_sid.as_str(), p.trunk_sid, "the record is unchanged");
}

#[tokio::test]
async fn unfixable_problems_change_nothing_and_answer_200() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    env.fake.set_account_status(&p.account_sid, "suspended");
    env.fake.state().origination_urls.clear();
    let before = twilio_snapshot(&env, &p.account_sid);
    let body = repair(&env, &p.id).await;
    assert_eq!(body["actions"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["actions"][0]["result"], "failed", "{body}");
    assert_eq!(body["verification"]["status"], "failed");
    assert_eq!(twilio_snapshot(&env, &p.account_sid), before);
    assert!(env.fake.state().origination_urls.is_empty());

    env.fake.set_account_status(&p.account_sid, "active");
    env.fake.set_auth_token(&p.account_sid, &crate::harness::random_token());
    let body = repair(&env, &p.id).await;
    assert_eq!(body["actions"][0]["result"], "failed", "{body}");
    assert!(body["actions"][0]["message"].as_str().unwrap().contains("rejected"), "{body}");
}

#[tokio::test]
async fn repair_follows_tenancy_and_deletion_rules() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    env.fake.state().origination_urls.clear();
    let (status, body) = repair_as(&env, "org-other", &p.id).await;
    assert_eq!(status, 404, "{body}");
    assert!(env.fake.state().origination_urls.is_empty(), "another organization changed nothing");
    let (status, _) = repair_as(&env, ORG, "not-a-uuid").await;
    assert_eq!(status, 400);

    env.fake.inject("delete_trunk", FaultAction::Fail { status: 500, code: 20500 }, None);
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &p.id).build();
    let (status, _) = status_and_body(&delete_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 502);
    let (status, body) = repair_as(&env, ORG, &p.id).await;
    assert_eq!(status, 409, "{body}");
}

/// One repair of a provider at a time (a client retrying after API Gateway's timeout while the
/// first still runs): the second answers 409 and changes nothing; once the first is done, a
/// repair runs again.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_repair_while_one_runs_is_409() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    env.fake.inject("fetch_trunk", FaultAction::Delay(std::time::Duration::from_millis(400)), Some(1));
    let first = spawn_repair(&env, &p.id);
    env.fake.until_faults_taken().await;
    let (status, body) = repair_as(&env, ORG, &p.id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(repair_as(&env, ORG, &p.id).await.0, 200, "the lease was given up");
}

/// The other side of a removal racing a repair: the number is put back on the trunk after the
/// removal read it (off the trunk) and before its record went. The removal looks again once the
/// record is gone and takes it off, so it never stays on the trunk without a record.
#[tokio::test(flavor = "multi_thread")]
async fn a_number_put_back_while_it_is_removed_is_taken_off_again() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let number = env.fake.add_incoming_number(&p.account_sid, "+15550000013", None);
    import(&env, &p.id, &[&number]).await;
    env.fake.state().incoming_numbers.get_mut(&number).unwrap().trunk_sid = None;
    // The removal's read of the number is answered late; meanwhile (as a repair would) the
    // number goes back on the trunk.
    env.fake.inject("fetch_incoming_number", FaultAction::Delay(std::time::Duration::from_millis(300)), Some(1));
    let org = OrganizationId::parse(ORG).unwrap();
    let record = env.services.store.all_numbers(&org, p.id.parse().unwrap()).await.unwrap().remove(0);
    let removing = {
        let (services, org, id) = (env.services.clone(), org.clone(), p.id.parse().unwrap());
        tokio::spawn(async move { functions::provider::give_back::remove_number(&services, &org, id, record.id).await })
    };
    env.fake.until_faults_taken().await;
    // The fake answers from the state it read as it took the fault; well after that:
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    env.fake.state().incoming_numbers.get_mut(&number).unwrap().trunk_sid = Some(p.trunk_sid.clone());
    removing.await.unwrap().unwrap();
    assert_eq!(env.fake.state().incoming_numbers[&number].trunk_sid, None, "taken off again");
    assert!(env.services.store.all_numbers(&org, p.id.parse().unwrap()).await.unwrap().is_empty());
}

/// A delete that gives a number back while a repair (started before the delete) puts it on the
/// trunk again, before the delete forgets it: the delete step sees the repair's lease and looks
/// at each number again once forgotten, so the number ends where the customer had it, not on
/// the trunk without a record (and then off it, with no routing, once the trunk goes).
#[tokio::test(flavor = "multi_thread")]
async fn a_number_put_back_by_a_repair_while_the_provider_is_deleted_is_given_back_again() {
    use std::time::Duration;
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let their_trunk = env.fake.add_trunk(&p.account_sid);
    let number = env.fake.add_incoming_number(&p.account_sid, "+15550000014", None);
    env.fake.state().incoming_numbers.get_mut(&number).unwrap().trunk_sid = Some(their_trunk.clone());
    import(&env, &p.id, &[&number]).await;
    // Off the trunk (as a console edit leaves it): a repair puts it back.
    env.fake.state().incoming_numbers.get_mut(&number).unwrap().trunk_sid = None;
    // The repair's read of the number is answered late, from the state it read then.
    env.fake.inject("fetch_incoming_number", FaultAction::Delay(Duration::from_millis(1000)), Some(1));
    let repairing = spawn_repair(&env, &p.id);
    env.fake.until_faults_taken().await;
    // Meanwhile the delete gives the number back to the customer's trunk; its answer comes
    // after the repair has put the number on the provider's trunk again and found its record.
    env.fake.inject("update_incoming_number", FaultAction::Delay(Duration::from_millis(2000)), Some(1));
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &p.id).build();
    let (status, body) = status_and_body(&delete_provider::handle(&env.services, req).await.unwrap());
    assert!(matches!(status, 200 | 204), "{status} {body}");
    let _ = repairing.await.unwrap();
    assert_eq!(
        env.fake.state().incoming_numbers[&number].trunk_sid.as_deref(),
        Some(their_trunk.as_str()),
        "given back to the customer's trunk"
    );
    assert!(!env.fake.state().trunks.contains_key(&p.trunk_sid), "the provider's trunk is gone");
}

/// A repair, a delete and two removals of one provider at once, with Twilio slow enough for
/// them to interleave: whatever the order, every number ends with the routing it had before
/// import (none is left on the trunk without a record, then cut off when the trunk goes).
#[tokio::test(flavor = "multi_thread")]
async fn repair_delete_and_removals_at_once_leave_every_number_as_it_was() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let their_trunk = env.fake.add_trunk(&p.account_sid);
    let numbers: Vec<String> = (0..8)
        .map(|i| {
            let number = env.fake.add_incoming_number(&p.account_sid, &format!("+1555000003{i}"), None);
            if i % 2 == 0 {
                env.fake.state().incoming_numbers.get_mut(&number).unwrap().trunk_sid = Some(their_trunk.clone());
            }
            number
        })
        .collect();
    let before: Vec<Option<String>> =
        numbers.iter().map(|n| env.fake.state().incoming_numbers[n].trunk_sid.clone()).collect();
    import(&env, &p.id, &numbers.iter().map(String::as_str).collect::<Vec<_>>()).await;
    for number in &numbers {
        env.fake.state().incoming_numbers.get_mut(number).unwrap().trunk_sid = None;
    }
    env.fake.set_latency(std::time::Duration::from_millis(30));
    let org = OrganizationId::parse(ORG).unwrap();
    let id: uuid::Uuid = p.id.parse().unwrap();
    let records = env.services.store.all_numbers(&org, id).await.unwrap();
    let repairing = spawn_repair(&env, &p.id);
    let removals: Vec<_> = records[..2]
        .iter()
        .map(|record| {
            let (services, org, number_id) = (env.services.clone(), org.clone(), record.id);
            tokio::spawn(
                async move { functions::provider::give_back::remove_number(&services, &org, id, number_id).await },
            )
        })
        .collect();
    // The delete starts once the repair is under way (one started after would be refused).
    while !env.services.store.repair_lease_held(&org, id).await.unwrap() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &p.id).build();
    let (status, body) = status_and_body(&delete_provider::handle(&env.services, req).await.unwrap());
    assert!(matches!(status, 200 | 202 | 204), "{status} {body}");
    // Each may lose to the delete (409); the numbers are what counts.
    let _ = repairing.await.unwrap();
    for removal in removals {
        let _ = removal.await.unwrap();
    }
    env.fake.set_latency(std::time::Duration::ZERO);
    env.drain_deletions(std::time::Duration::from_secs(30)).await;
    let swept = functions::provider::sweep::run(&env.services, Some(std::time::Duration::ZERO)).await.unwrap();
    assert_eq!((swept.remaining, swept.stuck), (0, 0), "{swept:?}");
    let state = env.fake.state();
    for (number, before) in numbers.iter().zip(before) {
        assert_eq!(state.incoming_numbers[number].trunk_sid, before, "{number} is as it was before import");
    }
    assert!(!state.trunks.contains_key(&p.trunk_sid), "deleted");
}

/// More detached numbers than one repair can put back in its time, on a trunk that was deleted:
/// the repair stops starting numbers while it still has time to verify and save, so the rebuilt
/// trunk becomes the record's (never left half-built and unrecorded in the customer's account),
/// and says how many numbers are left; a second repair puts the rest back.
#[tokio::test]
async fn a_repair_that_runs_out_of_time_saves_the_rebuilt_trunk_and_says_what_is_left() {
    use lambda_http::RequestExt;
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let numbers: Vec<String> =
        (0..60).map(|i| env.fake.add_incoming_number(&p.account_sid, &format!("+1555008{i:04}"), None)).collect();
    import(&env, &p.id, &numbers.iter().map(String::as_str).collect::<Vec<_>>()).await;
    {
        let mut state = env.fake.state();
        state.trunks.remove(&p.trunk_sid);
        state.trunk_credential_lists.clear();
        state.origination_urls.clear();
        for number in &numbers {
            state.incoming_numbers.get_mut(number).unwrap().trunk_sid = None;
        }
    }
    // Each number takes Twilio a second to attach: 60 take 12 s, five at a time. With 12 s
    // to the deadline, numbers may start for the first 5 s (less the repair's own reads).
    env.fake.inject("update_incoming_number", FaultAction::Delay(std::time::Duration::from_secs(1)), None);
    let mut context = lambda_http::Context::default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    context.deadline = (now + std::time::Duration::from_secs(12)).as_millis() as u64;
    let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &p.id).build();
    let started = std::time::Instant::now();
    let (status, body) =
        status_and_body(&repair_provider::handle(&env.services, req.with_lambda_context(context)).await.unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(11), "answered after {:?}", started.elapsed());
    // Verified with time to read Twilio: the rebuilt trunk passes.
    assert_eq!(check(&body["verification"], "trunk")["status"], "passed", "{body}");
    let after = stored(&env, &p.id).await;
    assert_ne!(after.trunk_sid.as_str(), p.trunk_sid, "the rebuilt trunk is the record's");
    assert_eq!(env.fake.state().trunks.len(), 1, "{body}");
    let on_trunk = |env: &TestEnv| {
        let state = env.fake.state();
        numbers
            .iter()
            .filter(|n| state.incoming_numbers[*n].trunk_sid.as_deref() == Some(after.trunk_sid.as_str()))
            .count()
    };
    let put_back = on_trunk(&env);
    assert!(put_back > 0 && put_back < numbers.len(), "{put_back} put back");
    let left = body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "reattachNumbers" && a["result"] == "failed")
        .unwrap_or_else(|| panic!("no action says what is left: {body}"));
    // Those not started are named; one started just in time may have failed on its own.
    let message = left["message"].as_str().unwrap();
    let not_started: usize = message.split_once(" of 60 numbers").and_then(|(n, _)| n.parse().ok()).expect(message);
    assert!(not_started > 0 && not_started <= numbers.len() - put_back, "{put_back} put back: {left}");

    env.fake.clear_faults();
    let body = repair(&env, &p.id).await;
    assert_eq!(body["verification"]["status"], "verified", "{body}");
    assert_eq!(on_trunk(&env), numbers.len());
}

/// The call engine's invocation of get-sip-credential with this payload.
fn invocation(payload: serde_json::Value) -> LambdaEvent<serde_json::Value> {
    LambdaEvent::new(payload, Context::default())
}

/// A repair whose new SIP credential or credential list fails leaves neither in the account,
/// though it keeps the trunk it rebuilt: a credential left with the provider's username would
/// block every later repair, a list without it would only clutter the account.
#[tokio::test]
async fn a_repair_step_that_fails_leaves_nothing_it_made_while_the_rest_is_kept() {
    for list_too in [false, true] {
        // An environment each: `setup` finds the provider's list as the fake's only one.
        let env = TestEnv::new().await;
        let p = setup(&env).await;
        {
            let mut state = env.fake.state();
            state.trunks.remove(&p.trunk_sid);
            state.trunk_credential_lists.retain(|(t, _)| *t != p.trunk_sid);
            state.origination_urls.retain(|_, o| o.trunk_sid != p.trunk_sid);
            state.credentials.retain(|_, c| c.credential_list_sid != p.list_sid);
            if list_too {
                state.credential_lists.remove(&p.list_sid);
            }
        }
        // Twilio makes the credential but its answer is lost.
        env.fake.inject("create_credential", FaultAction::DropConnection, Some(1));
        let (status, body) = repair_as(&env, ORG, &p.id).await;
        assert_eq!(status, 200, "{body}");
        let rebuilt = stored(&env, &p.id).await.trunk_sid;
        assert_ne!(rebuilt.as_str(), p.trunk_sid, "the rebuilt trunk is kept: {body}");
        assert!(env.fake.credentials_of(&p.account_sid).is_empty(), "list_too={list_too}: {body}");
        let lists: Vec<String> = env.fake.credential_lists_of(&p.account_sid).into_iter().map(|l| l.sid).collect();
        let expected = if list_too { vec![] } else { vec![p.list_sid.clone()] };
        assert_eq!(lists, expected, "list_too={list_too}: {body}");

        // The next repair is not blocked by anything left behind.
        let body = repair(&env, &p.id).await;
        assert_eq!(body["verification"]["status"], "verified", "list_too={list_too}: {body}");
    }
}

/// A repair works from the record as it is once it holds the lease, not as its caller read it:
/// a transfer change saved in between is what it keeps on the trunk.
#[tokio::test]
async fn a_repair_keeps_a_transfer_change_saved_before_it_took_the_lease() {
    let env = TestEnv::new().await;
    let p = setup(&env).await;
    let read_before = stored(&env, &p.id).await;
    let req = Req::new("PUT", "/api/v1/providers/twilio/{id}").org(ORG).param("id", &p.id);
    let req = req.body(r#"{"supportsCallTransfer":true}"#).build();
    let (status, body) = status_and_body(&update_twilio_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    functions::provider::repair::repair_provider(&env.services, read_before).await.unwrap();
    assert!(stored(&env, &p.id).await.supports_call_transfer);
    let transfer_mode = env.fake.trunks_of(&p.account_sid)[0].transfer_mode.clone();
    assert_eq!(transfer_mode, "enable-all", "the repair kept the saved change");
}
