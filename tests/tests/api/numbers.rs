//! Available numbers, import, list and removal, against moto and the fake Twilio.

use crate::harness::{Req, TestEnv, create_provider, status_and_body};
use aws_sdk_dynamodb::types::AttributeValue;
use functions::handlers::{
    delete_provider, get_twilio_provider, import_numbers, list_available_numbers, list_phone_numbers,
    remove_phone_number,
};
use integration_tests::aws_proxy::Failure;
use integration_tests::fake_twilio::{FaultAction, new_sid};
use serde_json::{Value, json};
use std::time::Duration;

const ORG: &str = "org-acme";
const OTHER_ORG: &str = "org-other";

async fn setup() -> (TestEnv, String, String) {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let provider = create_provider(&env, ORG, &sid, &token).await;
    (env, sid, provider["id"].as_str().unwrap().to_owned())
}

async fn import(env: &TestEnv, org: &str, id: &str, sids: &[&str]) -> (u16, Value) {
    let body = json!({ "phoneNumberSids": sids }).to_string();
    let req =
        Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(org).param("id", id).body(&body).build();
    status_and_body(&import_numbers::handle(&env.services, req).await.unwrap())
}

async fn provider_count(env: &TestEnv, id: &str) -> u64 {
    let req = Req::new("GET", "/api/v1/providers/twilio/{id}").org(ORG).param("id", id).build();
    let (_, body) = status_and_body(&get_twilio_provider::handle(&env.services.store, req).await.unwrap());
    body["phoneNumberCount"].as_u64().unwrap()
}

async fn listed(env: &TestEnv, id: &str) -> Vec<Value> {
    let req = Req::new("GET", "/api/v1/providers/twilio/{id}/phone-numbers").org(ORG).param("id", id).build();
    let (status, body) = status_and_body(&list_phone_numbers::handle(&env.services.store, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

fn number(env: &TestEnv, sid: &str) -> integration_tests::fake_twilio::IncomingNumber {
    env.fake.state().incoming_numbers[sid].clone()
}

#[tokio::test]
async fn available_numbers_follow_twilio_paging_and_mark_imported_and_routed_numbers() {
    let (env, sid, id) = setup().await;
    let mut sids = Vec::new();
    for i in 0..230 {
        let voice_url = (i % 3 == 0).then_some("https://example.com/voice");
        sids.push(env.fake.add_incoming_number(&sid, &format!("+1555{i:07}"), voice_url));
    }
    let (status, result) = import(&env, ORG, &id, &[&sids[1]]).await;
    assert_eq!(status, 200, "{result}");

    let req = Req::new("GET", "/api/v1/providers/twilio/{id}/available-numbers").org(ORG).param("id", &id).build();
    let (status, body) = status_and_body(&list_available_numbers::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 230, "all pages followed");
    assert_eq!(body["truncated"], false);
    let pages = env.fake.request_log().iter().filter(|r| r.step == "list_incoming_numbers").count();
    assert_eq!(pages, 3, "100 per page");
    let find = |pn: &str| items.iter().find(|n| n["phoneNumberSid"] == pn).unwrap().clone();
    let imported = find(&sids[1]);
    assert_eq!(imported["imported"], true);
    assert_eq!(imported["trunkSid"], env.fake.trunks_of(&sid)[0].sid.as_str());
    let routed = find(&sids[3]);
    assert_eq!(routed["imported"], false);
    assert_eq!(routed["voiceRoutingConfigured"], true);
    assert_eq!(routed["capabilities"], json!({"voice": true, "sms": true, "mms": false, "fax": false}));
    assert_eq!(find(&sids[4])["voiceRoutingConfigured"], false);

    // Revoked credentials: a 422 that says how to fix it.
    env.fake.set_auth_token(&sid, &new_sid("").to_lowercase());
    let req = Req::new("GET", "/api/v1/providers/twilio/{id}/available-numbers").org(ORG).param("id", &id).build();
    let (status, body) = status_and_body(&list_available_numbers::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("/credentials"), "{body}");
}

#[tokio::test]
async fn import_reports_each_number_and_keeps_the_count_exact() {
    let (env, sid, id) = setup().await;
    let routed = env.fake.add_incoming_number(&sid, "+15550000001", Some("https://example.com/old"));
    let plain = env.fake.add_incoming_number(&sid, "+15550000002", None);
    let failing = env.fake.add_incoming_number(&sid, "+15550000003", None);
    let earlier = env.fake.add_incoming_number(&sid, "+15550000004", None);
    let unknown = new_sid("PN");
    assert_eq!(import(&env, ORG, &id, &[&earlier]).await.0, 200);

    // One attach fails; which number it hits depends on scheduling, so check by result.
    env.fake.inject("update_incoming_number", FaultAction::Fail { status: 500, code: 20500 }, Some(1));
    let (status, result) = import(&env, ORG, &id, &[&routed, &plain, &failing, &earlier, &unknown]).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["successCount"], 2, "{result}");
    assert_eq!(result["failedCount"], 3);
    let code_of = |pn: &str| {
        result["errors"].as_array().unwrap().iter().find(|e| e["phoneNumberSid"] == pn).map(|e| e["code"].clone())
    };
    assert_eq!(code_of(&unknown), Some(json!("not_found")));
    assert_eq!(code_of(&earlier), Some(json!("already_imported")));
    let failed_twilio: Vec<&Value> =
        result["errors"].as_array().unwrap().iter().filter(|e| e["code"] == "twilio_error").collect();
    assert_eq!(failed_twilio.len(), 1);

    assert_eq!(provider_count(&env, &id).await, 3);
    assert_eq!(listed(&env, &id).await.len(), 3);
    let trunk = env.fake.trunks_of(&sid)[0].sid.clone();
    let on_trunk: Vec<String> = env
        .fake
        .state()
        .incoming_numbers
        .values()
        .filter(|n| n.trunk_sid.as_deref() == Some(trunk.as_str()))
        .map(|n| n.sid.clone())
        .collect();
    assert_eq!(on_trunk.len(), 3, "exactly the imported numbers are on the trunk");

    // On the trunk, the trunk routes the number (Twilio keeps, and ignores, its voice URL);
    // after removal the voice URL routes it again; the number can be imported again.
    let routed = env.fake.add_incoming_number(&sid, "+15550000005", Some("https://example.com/old"));
    assert_eq!(import(&env, ORG, &id, &[&routed]).await.1["successCount"], 1);
    {
        assert_eq!(number(&env, &routed).trunk_sid.as_deref(), Some(trunk.as_str()));
        let record = listed(&env, &id).await.into_iter().find(|n| n["phoneNumberSid"] == routed.as_str()).unwrap();
        assert_eq!(record["previousVoiceUrl"], "https://example.com/***");
        let number_id = record["id"].as_str().unwrap();
        let req = Req::new("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
            .org(ORG)
            .param("id", &id)
            .param("phoneNumberId", number_id)
            .build();
        let (status, body) = status_and_body(&remove_phone_number::handle(&env.services, req).await.unwrap());
        assert_eq!((status, &body["restored"]), (200, &json!(true)), "{body}");
        let back = number(&env, &routed);
        assert_eq!(back.trunk_sid, None);
        assert_eq!(back.voice_url.as_deref(), Some("https://example.com/old"));
        assert_eq!(provider_count(&env, &id).await, 3);
        assert_eq!(import(&env, ORG, &id, &[&routed]).await.1["successCount"], 1);
        assert_eq!(provider_count(&env, &id).await, 4);
    }
}

#[tokio::test]
async fn invalid_import_bodies_name_every_bad_entry() {
    let (env, _, id) = setup().await;
    let good = new_sid("PN");
    let (status, body) = import(&env, ORG, &id, &[&good, "PN123", &good]).await;
    assert_eq!(status, 400, "{body}");
    let errors = body["errors"].as_object().unwrap();
    assert!(errors.contains_key("phoneNumberSids[1]") && errors.contains_key("phoneNumberSids[2]"), "{body}");
    let (status, _) = import(&env, ORG, &id, &[]).await;
    assert_eq!(status, 400);
    assert!(env.fake.request_log().iter().all(|r| r.step != "update_incoming_number"));
}

#[tokio::test]
async fn a_failed_store_after_attach_leaves_the_number_detached() {
    let (env, sid, id) = setup().await;
    let pn = env.fake.add_incoming_number(&sid, "+15550000009", Some("https://example.com/keep"));
    // While Twilio attaches the number, the provider starts being deleted: the store fails.
    env.fake.inject("update_incoming_number", FaultAction::Delay(Duration::from_millis(300)), Some(1));
    let mark = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        env.dynamo
            .update_item()
            .table_name(&env.table)
            .key("pk", AttributeValue::S(format!("ORG#{ORG}")))
            .key("sk", AttributeValue::S(format!("PROVIDER#{id}")))
            .update_expression("SET deletionStartedAt = :now")
            .expression_attribute_values(":now", AttributeValue::S("2026-11-22T06:00:00Z".into()))
            .send()
            .await
            .unwrap();
    };
    let sids = [pn.as_str()];
    let ((status, result), ()) = tokio::join!(import(&env, ORG, &id, &sids), mark);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["failedCount"], 1);
    assert_eq!(result["errors"][0]["code"], "storage_error");
    let back = number(&env, &pn);
    assert_eq!(back.trunk_sid, None, "detached again");
    assert_eq!(back.voice_url.as_deref(), Some("https://example.com/keep"), "routing restored");
    assert_eq!(provider_count(&env, &id).await, 0);
}

#[tokio::test]
async fn number_endpoints_hide_other_organizations() {
    let (env, sid, id) = setup().await;
    let pn = env.fake.add_incoming_number(&sid, "+15550000010", None);
    assert_eq!(import(&env, ORG, &id, &[&pn]).await.1["successCount"], 1);
    let number_id = listed(&env, &id).await[0]["id"].as_str().unwrap().to_owned();

    let (status, _) = import(&env, OTHER_ORG, &id, &[&pn]).await;
    assert_eq!(status, 404);
    let req =
        Req::new("GET", "/api/v1/providers/twilio/{id}/available-numbers").org(OTHER_ORG).param("id", &id).build();
    assert_eq!(list_available_numbers::handle(&env.services, req).await.unwrap().status(), 404);
    let req = Req::new("GET", "/api/v1/providers/twilio/{id}/phone-numbers").org(OTHER_ORG).param("id", &id).build();
    assert_eq!(list_phone_numbers::handle(&env.services.store, req).await.unwrap().status(), 404);
    let req = Req::new("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
        .org(OTHER_ORG)
        .param("id", &id)
        .param("phoneNumberId", &number_id)
        .build();
    assert_eq!(remove_phone_number::handle(&env.services, req).await.unwrap().status(), 404);
    let req = Req::new("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
        .org(ORG)
        .param("id", &id)
        .param("phoneNumberId", "not-a-uuid")
        .build();
    assert_eq!(remove_phone_number::handle(&env.services, req).await.unwrap().status(), 400);
    assert!(number(&env, &pn).trunk_sid.is_some(), "nothing changed");
    assert_eq!(provider_count(&env, &id).await, 1);
}

#[tokio::test]
async fn deleting_the_provider_gives_back_its_numbers() {
    let (env, sid, id) = setup().await;
    let routed = env.fake.add_incoming_number(&sid, "+15550000011", Some("https://example.com/prev"));
    let plain = env.fake.add_incoming_number(&sid, "+15550000012", None);
    assert_eq!(import(&env, ORG, &id, &[&routed, &plain]).await.1["successCount"], 2);
    let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id).build();
    assert_eq!(delete_provider::handle(&env.services, req).await.unwrap().status(), 204);
    assert_eq!(number(&env, &routed).voice_url.as_deref(), Some("https://example.com/prev"));
    assert_eq!(number(&env, &routed).trunk_sid, None);
    assert_eq!(number(&env, &plain).trunk_sid, None);
    assert!(env.fake.trunks_of(&sid).is_empty());
    assert_eq!(env.item_count().await, 0, "numbers, claims and provider records all gone");
}

/// The provider's count, its number records and the numbers on its trunk agree.
async fn assert_in_step(env: &TestEnv, sid: &str, id: &str, expected: usize) {
    let trunk = env.fake.trunks_of(sid)[0].sid.clone();
    let on_trunk =
        env.fake.state().incoming_numbers.values().filter(|n| n.trunk_sid.as_deref() == Some(trunk.as_str())).count();
    let mut records = 0;
    let mut token: Option<String> = None;
    loop {
        let mut req = Req::new("GET", "/api/v1/providers/twilio/{id}/phone-numbers").org(ORG).param("id", id);
        req = req.query("limit", "100");
        if let Some(token) = &token {
            req = req.query("nextToken", token);
        }
        let (_, body) = status_and_body(&list_phone_numbers::handle(&env.services.store, req.build()).await.unwrap());
        records += body["items"].as_array().unwrap().len();
        match body["nextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    let count = provider_count(env, id).await as usize;
    assert_eq!((count, records, on_trunk), (expected, expected, expected), "count, records, numbers on the trunk");
}

/// DynamoDB cancels a transaction that meets another on the same item (the provider's count)
/// with `TransactionConflict`: retried, never reported as a failed number.
#[tokio::test]
async fn transaction_conflicts_are_retried_and_the_count_stays_exact() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, ORG, &sid, &token).await["id"].as_str().unwrap().to_owned();
    let sids: Vec<String> =
        (0..6).map(|i| env.fake.add_incoming_number(&sid, &format!("+1555100{i:04}"), None)).collect();
    proxy.fail_with("DynamoDB_20120810.TransactWriteItems", Failure::TransactionConflict, Some(5));
    let refs: Vec<&str> = sids.iter().map(String::as_str).collect();
    let (status, result) = import(&env, ORG, &id, &refs).await;
    assert_eq!((status, result["successCount"].as_u64()), (200, Some(6)), "{result}");
    assert_in_step(&env, &sid, &id, 6).await;
}

/// Two imports into one provider at the same time, overlapping in some numbers: each number
/// is imported once, and the count, the records and the trunk agree.
#[tokio::test]
async fn concurrent_imports_into_one_provider_stay_in_step() {
    let (env, sid, id) = setup().await;
    let sids: Vec<String> =
        (0..60).map(|i| env.fake.add_incoming_number(&sid, &format!("+1555200{i:04}"), None)).collect();
    let first: Vec<&str> = sids[..40].iter().map(String::as_str).collect();
    let second: Vec<&str> = sids[20..].iter().map(String::as_str).collect();
    let ((s1, r1), (s2, r2)) = tokio::join!(import(&env, ORG, &id, &first), import(&env, ORG, &id, &second));
    assert_eq!((s1, s2), (200, 200), "{r1} {r2}");
    let imported = r1["successCount"].as_u64().unwrap() + r2["successCount"].as_u64().unwrap();
    assert_eq!(imported, 60, "every number once: {r1} {r2}");
    for result in [&r1, &r2] {
        for error in result["errors"].as_array().unwrap() {
            assert_eq!(error["code"], "already_imported", "{result}");
        }
    }
    assert_in_step(&env, &sid, &id, 60).await;
}

/// A number whose recorded routing cannot be opened (here another provider's, copied onto its
/// record) fails on its own: its removal is a 422 naming it that changes nothing, and a
/// delete gives the provider's other numbers back, names it in `lastError`, and (forced)
/// leaves it for the sweeper and finishes. Never a 503 to retry for ever.
#[tokio::test]
async fn a_number_whose_routing_cannot_be_opened_fails_only_itself() {
    let (env, sid, id) = setup().await;
    let (other_sid, other_token) = env.fake.add_account("active", "Full");
    let other = create_provider(&env, ORG, &other_sid, &other_token).await["id"].as_str().unwrap().to_owned();
    let bad = env.fake.add_incoming_number(&sid, "+15550009001", Some("https://example.com/a?token=x"));
    let good = env.fake.add_incoming_number(&sid, "+15550009002", Some("https://example.com/b?token=y"));
    let theirs = env.fake.add_incoming_number(&other_sid, "+15550009003", Some("https://example.com/c?token=z"));
    assert_eq!(import(&env, ORG, &id, &[&bad, &good]).await.1["successCount"], 2);
    assert_eq!(import(&env, ORG, &other, &[&theirs]).await.1["successCount"], 1);
    // The other provider's sealed routing, copied onto this provider's record of `bad`.
    let items = env.dynamo.scan().table_name(&env.table).send().await.unwrap().items.unwrap_or_default();
    let number_item = |pn: &str| {
        items
            .iter()
            .find(|i| {
                i.get("phoneNumberSid") == Some(&AttributeValue::S(pn.to_owned()))
                    && i.get("entity") == Some(&AttributeValue::S("phoneNumber".into()))
            })
            .unwrap()
            .clone()
    };
    let (bad_item, theirs_item) = (number_item(&bad), number_item(&theirs));
    env.dynamo
        .update_item()
        .table_name(&env.table)
        .key("pk", bad_item["pk"].clone())
        .key("sk", bad_item["sk"].clone())
        .update_expression("SET previousRoutingSealed = :sealed")
        .expression_attribute_values(":sealed", theirs_item["previousRoutingSealed"].clone())
        .send()
        .await
        .unwrap();

    let record = listed(&env, &id).await.into_iter().find(|n| n["phoneNumberSid"] == bad.as_str()).unwrap();
    let req = Req::new("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
        .org(ORG)
        .param("id", &id)
        .param("phoneNumberId", record["id"].as_str().unwrap())
        .build();
    let (status, problem) = status_and_body(&remove_phone_number::handle(&env.services, req).await.unwrap());
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(bad.as_str()), "{problem}");
    assert_eq!(listed(&env, &id).await.len(), 2, "nothing was forgotten");

    let delete = |force: bool| {
        let mut req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id);
        if force {
            req = req.query("force", "true");
        }
        delete_provider::handle(&env.services, req.build())
    };
    let (status, problem) = status_and_body(&delete(false).await.unwrap());
    assert_eq!(status, 502, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(bad.as_str()), "{problem}");
    let left: Vec<Value> = listed(&env, &id).await;
    assert_eq!(left.len(), 1, "the other number was given back: {left:?}");
    assert_eq!(env.fake.state().incoming_numbers[&good].trunk_sid, None);

    let (status, body) = status_and_body(&delete(true).await.unwrap());
    assert_eq!(status, 200, "{body}");
    let kinds: Vec<&str> = body["leftBehind"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"trunkPhoneNumber"), "{body}");
}
