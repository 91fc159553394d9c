//! Twilio Regions: a provider whose account lives in IE1 or AU1 is made, used and removed with
//! that Region's token on that Region's hosts only, each Region a fake of its own.

use crate::harness::{Req, TestEnv, body_json, random_token, request, status_and_body};
use functions::handlers::{
    create_twilio_provider, delete_provider, import_numbers, remove_phone_number, repair_provider,
    rotate_twilio_auth_token, update_twilio_provider, verify_provider,
};
use integration_tests::fake_twilio::{FakeTwilio, new_sid};
use serde_json::{Value, json};

const ORG: &str = "org-regions";

/// An account as Twilio keeps it: one Account SID, a token of its own in each Region. Returns
/// the SID and the (US1, IE1, AU1) tokens.
fn account_in_every_region(env: &TestEnv) -> (String, [String; 3]) {
    let sid = new_sid("AC");
    let tokens = [random_token(), random_token(), random_token()];
    for (fake, token) in [&env.fake, &env.fake_ie1, &env.fake_au1].into_iter().zip(&tokens) {
        fake.add_account_with(&sid, token, "active", "Full");
    }
    (sid, tokens)
}

/// A number of the account, with a configuration of its own in every Region; in `fake`'s Region
/// it is routed by `voice_url`.
fn number_in_every_region(
    env: &TestEnv,
    account: &str,
    e164: &str,
    fake: &FakeTwilio,
    voice_url: Option<&str>,
) -> String {
    let sid = new_sid("PN");
    for each in [&env.fake, &env.fake_ie1, &env.fake_au1] {
        let url = if std::ptr::eq(each, fake) { voice_url } else { Some("https://us.example.com/voice") };
        each.add_incoming_number_with_sid(&sid, account, e164, url);
    }
    sid
}

async fn create(env: &TestEnv, body: Value) -> (u16, Value) {
    let response = create_twilio_provider::handle(
        &env.services,
        request("POST", "/api/v1/providers/twilio", Some(ORG), Some(&body.to_string())),
    )
    .await
    .unwrap();
    (response.status().as_u16(), body_json(&response))
}

async fn call(response: Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>) -> (u16, Value) {
    status_and_body(&response.unwrap())
}

#[tokio::test]
async fn an_ie1_or_au1_provider_is_made_used_and_removed_in_its_region_only() {
    let env = TestEnv::new().await;
    for (region, fake, edge) in [("ie1", &env.fake_ie1, "dublin"), ("au1", &env.fake_au1, "sydney")] {
        let (account, tokens) = account_in_every_region(&env);
        let token = if region == "ie1" { &tokens[1] } else { &tokens[2] };
        let routed = number_in_every_region(&env, &account, "+35312345671", fake, Some("https://eu.example.com/voice"));
        let plain = number_in_every_region(&env, &account, "+35312345672", fake, None);
        let us1_before = env.fake.incoming_number_json(&routed);

        let (status, provider) = create(
            &env,
            json!({"accountSid": account, "authToken": token, "name": "Regional", "twilioRegion": region}),
        )
        .await;
        assert_eq!(status, 201, "{provider}");
        assert_eq!(provider["twilioRegion"], region);
        assert_eq!(provider["region"], region, "the edge defaults to the Region's own");
        assert!(
            provider["terminationUri"].as_str().unwrap().ends_with(&format!(".pstn.{edge}.twilio.com")),
            "{provider}"
        );
        let id = provider["id"].as_str().unwrap().to_owned();
        let trunk = provider["trunkSid"].as_str().unwrap().to_owned();
        assert_eq!(fake.trunks_of(&account).len(), 1, "the trunk is in {region}");
        assert_eq!(fake.credential_lists_of(&account).len(), 1);
        assert_eq!(fake.origination_urls_of(&trunk).len(), 1);

        let body = json!({ "phoneNumberSids": [routed, plain] }).to_string();
        let req =
            Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers").org(ORG).param("id", &id).body(&body);
        let (status, result) = call(import_numbers::handle(&env.services, req.build()).await).await;
        assert_eq!((status, &result["successCount"]), (200, &json!(2)), "{result}");
        let on_trunk = |sid: &str| fake.state().incoming_numbers[sid].trunk_sid.clone();
        assert_eq!(on_trunk(&routed).as_deref(), Some(trunk.as_str()));
        assert_eq!(on_trunk(&plain).as_deref(), Some(trunk.as_str()));
        // Their calls are processed in the provider's Region from now on.
        let voice_region = |sid: &str| fake.state().incoming_numbers[sid].voice_region.clone();
        assert_eq!(voice_region(&routed).as_deref(), Some(region));
        assert_eq!(voice_region(&plain).as_deref(), Some(region));

        let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", &id).build();
        let (status, verified) = call(verify_provider::handle(&env.services, req).await).await;
        assert_eq!((status, &verified["status"]), (200, &json!("verified")), "{verified}");

        // The customer sends one number's calls back to US1, and breaks the origination URL:
        // verification warns, and repair sets both back in the Region.
        fake.state().incoming_numbers.get_mut(&plain).unwrap().voice_region = Some("us1".into());
        let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", &id).build();
        let (_, verified) = call(verify_provider::handle(&env.services, req).await).await;
        let numbers_check =
            verified["checks"].as_array().unwrap().iter().find(|c| c["checkName"] == "phoneNumbers").unwrap().clone();
        assert_eq!(numbers_check["status"], "warning", "{verified}");
        assert_eq!(numbers_check["details"]["otherVoiceRegion"][0]["voiceRegion"], "us1", "{numbers_check}");
        let url = fake.origination_urls_of(&trunk)[0].sid.clone();
        fake.state().origination_urls.remove(&url);
        let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id).build();
        let (status, repaired) = call(repair_provider::handle(&env.services, req).await).await;
        assert_eq!(status, 200, "{repaired}");
        assert_eq!(fake.origination_urls_of(&trunk).len(), 1, "{repaired}");
        assert_eq!(voice_region(&plain).as_deref(), Some(region), "{repaired}");
        assert_eq!(repaired["verification"]["status"], "verified", "{repaired}");

        // Removal takes the number off the trunk (no trunk PhoneNumbers subresource here): its
        // voice URL routes it again.
        let req = Req::new("GET", "/api/v1/providers/twilio/{id}/phone-numbers").org(ORG).param("id", &id).build();
        let (_, listed) =
            status_and_body(&functions::handlers::list_phone_numbers::handle(&env.services.store, req).await.unwrap());
        let number_id =
            listed["items"].as_array().unwrap().iter().find(|n| n["phoneNumberSid"] == routed.as_str()).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
        let req = Req::new("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
            .org(ORG)
            .param("id", &id)
            .param("phoneNumberId", &number_id)
            .build();
        let (status, removed) = call(remove_phone_number::handle(&env.services, req).await).await;
        assert_eq!((status, &removed["restored"]), (200, &json!(true)), "{removed}");
        let back = fake.state().incoming_numbers[&routed].clone();
        assert_eq!(back.trunk_sid, None);
        assert_eq!(back.voice_url.as_deref(), Some("https://eu.example.com/voice"));
        assert_eq!(back.voice_region.as_deref(), Some("us1"), "processed where it was before import (never set: US1)");

        let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id).build();
        let (status, deleted) = call(delete_provider::handle(&env.services, req).await).await;
        assert_eq!(status, 204, "{deleted}");
        assert!(fake.trunks_of(&account).is_empty());
        assert!(fake.credential_lists_of(&account).is_empty());
        assert_eq!(on_trunk(&plain), None, "the other number is given back too");
        assert_eq!(voice_region(&plain).as_deref(), Some("us1"));

        // US1 was never asked, and its configuration of the numbers is as it was.
        assert!(env.fake.request_log().is_empty(), "{:?}", env.fake.request_log());
        assert_eq!(env.fake.incoming_number_json(&routed), us1_before);
    }
    let other_region = |fake: &FakeTwilio| fake.request_log().iter().any(|r| r.step.contains("phone_number"));
    assert!(!other_region(&env.fake_ie1) && !other_region(&env.fake_au1), "no trunk PhoneNumbers request outside US1");
}

#[tokio::test]
async fn a_token_of_another_region_is_refused_with_the_region_named() {
    let env = TestEnv::new().await;
    let (account, [us1, ie1, _]) = account_in_every_region(&env);

    // An IE1 token sent for US1 (the default), and a US1 token sent for IE1.
    for (token, region) in [(&ie1, None), (&us1, Some("ie1"))] {
        let mut body = json!({"accountSid": account, "authToken": token, "name": "Wrong Region"});
        if let Some(region) = region {
            body["twilioRegion"] = json!(region);
        }
        let (status, problem) = create(&env, body).await;
        assert_eq!(status, 422, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("twilioRegion"), "{detail}");
        assert!(detail.contains(&format!("Twilio Region {}", region.unwrap_or("us1"))), "{detail}");
        assert!(!detail.contains(token.as_str()), "the token is never echoed");
    }
    assert!(env.fake.trunks_of(&account).is_empty() && env.fake_ie1.trunks_of(&account).is_empty());

    // Rotation is checked in the provider's Region: a US1 token for an IE1 provider is refused.
    let (status, provider) =
        create(&env, json!({"accountSid": account, "authToken": ie1, "name": "Dublin", "twilioRegion": "ie1"})).await;
    assert_eq!(status, 201, "{provider}");
    let id = provider["id"].as_str().unwrap();
    let body = json!({ "authToken": us1 }).to_string();
    let req =
        Req::new("PATCH", "/api/v1/providers/twilio/{id}/auth-token").org(ORG).param("id", id).body(&body).build();
    let (status, problem) = call(rotate_twilio_auth_token::handle(&env.services, req).await).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("Twilio Region ie1"), "{problem}");

    // An unknown Region is a 400 naming the field.
    let (status, problem) =
        create(&env, json!({"accountSid": account, "authToken": us1, "name": "Mars", "twilioRegion": "de1"})).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["errors"]["twilioRegion"].is_array() || problem.to_string().contains("twilioRegion"), "{problem}");
}

#[tokio::test]
async fn the_twilio_region_is_fixed_once_the_provider_exists_but_the_edge_can_move() {
    let env = TestEnv::new().await;
    let (account, [_, ie1, _]) = account_in_every_region(&env);
    let (status, provider) =
        create(&env, json!({"accountSid": account, "authToken": ie1, "name": "Dublin", "twilioRegion": "ie1"})).await;
    assert_eq!(status, 201, "{provider}");
    let id = provider["id"].as_str().unwrap();
    let put = |body: Value| {
        Req::new("PUT", "/api/v1/providers/twilio/{id}").org(ORG).param("id", id).body(&body.to_string()).build()
    };

    let (status, problem) =
        call(update_twilio_provider::handle(&env.services, put(json!({"twilioRegion": "us1"}))).await).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem.to_string().contains("twilioRegion"), "{problem}");
    let (status, problem) = call(
        update_twilio_provider::handle(
            &env.services,
            put(json!({"twilioRegion": "au1", "supportsCallTransfer": true})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(env.fake_ie1.trunks_of(&account)[0].transfer_mode, "disable-all", "nothing changed in Twilio");

    // The same Region is accepted; the edge moves, the Region stays.
    let (status, updated) =
        call(update_twilio_provider::handle(&env.services, put(json!({"twilioRegion": "ie1", "region": "de1"}))).await)
            .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((&updated["twilioRegion"], &updated["region"]), (&json!("ie1"), &json!("de1")));
    assert!(updated["terminationUri"].as_str().unwrap().ends_with(".pstn.frankfurt.twilio.com"), "{updated}");
}
