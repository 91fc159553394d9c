//! Twilio and the table kept in step when a write fails half-way: an update's transfer mode,
//! and a number whose attach cannot be undone.

use crate::harness::{Req, TestEnv, create_provider, status_and_body};
use functions::handlers::{import_numbers, update_twilio_provider, verify_provider};
use integration_tests::fake_twilio::FaultAction;
use serde_json::json;
use shared::model::OrganizationId;

const ORG: &str = "org-compensation";

async fn put(env: &TestEnv, id: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let req = Req::new("PUT", "/api/v1/providers/twilio/{id}").org(ORG).param("id", id).body(&body.to_string()).build();
    status_and_body(&update_twilio_provider::handle(&env.services, req).await.unwrap())
}

#[tokio::test]
async fn a_transfer_change_that_cannot_be_saved_is_put_back_in_twilio() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(&env, ORG, &sid, &token).await;
    let (id, trunk) = (provider["id"].as_str().unwrap(), provider["trunkSid"].as_str().unwrap());
    proxy.fail("DynamoDB_20120810.PutItem", None);
    let (status, body) = put(&env, id, json!({"supportsCallTransfer": true})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(env.fake.state().trunks[trunk].transfer_mode, "disable-all", "Twilio was put back");
}

#[tokio::test]
async fn the_same_transfer_value_is_applied_again_when_verification_saw_the_trunk_differ() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(&env, ORG, &sid, &token).await;
    let (id, trunk) = (provider["id"].as_str().unwrap(), provider["trunkSid"].as_str().unwrap());
    env.fake.state().trunks.get_mut(trunk).unwrap().transfer_mode = "enable-all".into();
    let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", id).build();
    let (_, verified) = status_and_body(&verify_provider::handle(&env.services, req).await.unwrap());
    assert_eq!(verified["status"], "warning", "{verified}");
    let (status, body) = put(&env, id, json!({"supportsCallTransfer": false})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.fake.state().trunks[trunk].transfer_mode, "disable-all");
}

#[tokio::test]
async fn a_number_whose_attach_cannot_be_undone_is_recorded_for_the_sweeper() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    let pn = env.fake.add_incoming_number(&sid, "+15550400001", None);
    proxy.fail("DynamoDB_20120810.TransactWriteItems", None);
    env.fake.inject("detach_phone_number", FaultAction::Fail { status: 500, code: 20500 }, None);
    let body = json!({"phoneNumberSids": [pn]}).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(ORG).param("id", &id).body(&body).build();
    let (status, result) = status_and_body(&import_numbers::handle(&env.services, req).await.unwrap());
    assert_eq!((status, result["failedCount"].as_u64()), (200, Some(1)), "{result}");
    let org = OrganizationId::parse(ORG).unwrap();
    let recorded = env.services.store.get_orphan_resources(&org, id.parse().unwrap()).await.unwrap().unwrap();
    assert!(recorded.iter().any(|r| r.kind() == "trunkPhoneNumber" && r.sid().ends_with(&pn)), "{recorded:?}");

    // Once Twilio recovers, the sweeper takes it off the trunk.
    proxy.clear();
    env.fake.clear_faults();
    let swept = functions::provider::sweep::run(&env.services).await.unwrap();
    assert_eq!(swept.cleared, 1, "{swept:?}");
    assert_eq!(env.fake.state().incoming_numbers[&pn].trunk_sid, None);
}
