//! What keeps calls up and private: secure trunking (a trunk that takes TLS signalling and SRTP
//! media only, needing a platform SIP ingress that asks for TLS, and telling the call engine to
//! dial over TLS), and a disaster recovery URL for when the platform cannot take a call.

use crate::harness::{Req, TestEnv, body_json, request, status_and_body};
use functions::handlers::get_sip_credential::handle as read_sip_credential;
use functions::handlers::{create_twilio_provider, repair_provider, update_twilio_provider, verify_provider};
use functions::provider::sip_credential::SipCredentialReader;
use serde_json::{Value, json};
use shared::model::PlatformSipUris;

const ORG: &str = "org-secure";

async fn create(services: &functions::services::Services, sid: &str, token: &str, secure: bool) -> (u16, Value) {
    let body = json!({"accountSid": sid, "authToken": token, "name": "Private", "secureTrunking": secure}).to_string();
    let response =
        create_twilio_provider::handle(services, request("POST", "/api/v1/providers/twilio", Some(ORG), Some(&body)))
            .await
            .unwrap();
    (response.status().as_u16(), body_json(&response))
}

fn check(body: &Value, name: &str) -> Value {
    body["checks"].as_array().unwrap().iter().find(|c| c["checkName"] == name).unwrap().clone()
}

async fn verify(services: &functions::services::Services, id: &str) -> Value {
    let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(ORG).param("id", id).build();
    let (status, body) = status_and_body(&verify_provider::handle(services, req).await.unwrap());
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn secure_trunking_needs_a_tls_ingress_and_is_kept_by_verify_and_repair() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");

    // This deployment's ingress takes no TLS: refused before anything is made.
    let (status, problem) = create(&env.services, &sid, &token, true).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(";transport=tls"), "{problem}");
    assert!(env.fake.trunks_of(&sid).is_empty());

    // With a TLS ingress: a secure trunk, its origination URL over TLS, a TLS termination URI.
    let mut services = env.services.clone();
    services.platform_sip_uris = PlatformSipUris::parse("sip:sip.voice.example.com;transport=tls").unwrap();
    let (status, provider) = create(&services, &sid, &token, true).await;
    assert_eq!(status, 201, "{provider}");
    assert_eq!(provider["secureTrunking"], true);
    let termination = provider["terminationUri"].as_str().unwrap();
    assert!(termination.ends_with(".twilio.com:5061;transport=tls"), "{termination}");
    let id = provider["id"].as_str().unwrap().to_owned();
    let trunk = provider["trunkSid"].as_str().unwrap().to_owned();
    assert!(env.fake.state().trunks[&trunk].secure);
    assert!(env.fake.origination_urls_of(&trunk)[0].sip_url.ends_with(";transport=tls"));
    assert_eq!(check(&verify(&services, &id).await, "secureTrunking")["status"], "passed");

    // The call engine is told to dial over TLS.
    let event = json!({"organizationId": ORG, "providerId": id});
    let reader = SipCredentialReader { store: services.store.clone(), envelope: services.envelope.clone() };
    let invocation = lambda_http::lambda_runtime::LambdaEvent::new(event, Default::default());
    let credential = serde_json::to_value(read_sip_credential(&reader, invocation).await.unwrap()).unwrap();
    assert_eq!(credential["transport"], "tls");
    assert_eq!(credential["terminationUri"], termination);

    // The customer turns Secure off in the Console: verification warns, repair turns it back.
    env.fake.state().trunks.get_mut(&trunk).unwrap().secure = false;
    let verified = verify(&services, &id).await;
    assert_eq!(check(&verified, "secureTrunking")["status"], "warning", "{verified}");
    let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id).build();
    let (status, repaired) = status_and_body(&repair_provider::handle(&services, req).await.unwrap());
    assert_eq!(status, 200, "{repaired}");
    assert!(env.fake.state().trunks[&trunk].secure, "{repaired}");
    assert_eq!(repaired["verification"]["status"], "verified", "{repaired}");

    // PUT turns it off: the trunk first, then the record and the termination URI.
    let put = |body: Value| {
        Req::new("PUT", "/api/v1/providers/twilio/{id}").org(ORG).param("id", &id).body(&body.to_string()).build()
    };
    let (status, updated) = status_and_body(
        &update_twilio_provider::handle(&services, put(json!({"secureTrunking": false}))).await.unwrap(),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["secureTrunking"], false);
    assert!(!updated["terminationUri"].as_str().unwrap().contains("5061"), "{updated}");
    assert!(!env.fake.state().trunks[&trunk].secure);

    // A deployment without a TLS ingress cannot turn it on again.
    let (status, problem) = status_and_body(
        &update_twilio_provider::handle(&env.services, put(json!({"secureTrunking": true}))).await.unwrap(),
    );
    assert_eq!(status, 422, "{problem}");
    assert!(!env.fake.state().trunks[&trunk].secure, "nothing changed in Twilio");

    // A Secure trunk the record does not expect refuses plain calls: a failed check.
    env.fake.state().trunks.get_mut(&trunk).unwrap().secure = true;
    let verified = verify(&services, &id).await;
    let secure = check(&verified, "secureTrunking");
    assert_eq!(secure["status"], "failed", "{verified}");
    assert!(secure["message"].as_str().unwrap().contains("32209"), "{secure}");
}

#[tokio::test]
async fn disaster_recovery_is_set_on_the_trunk_kept_by_repair_and_taken_off_by_put() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let create_with = |recovery: Value| {
        let mut body = json!({"accountSid": sid, "authToken": token, "name": "Fallback"});
        body.as_object_mut().unwrap().extend(recovery.as_object().unwrap().clone());
        let req = request("POST", "/api/v1/providers/twilio", Some(ORG), Some(&body.to_string()));
        let services = env.services.clone();
        async move { status_and_body(&create_twilio_provider::handle(&services, req).await.unwrap()) }
    };

    // Bad values are named, and nothing is made.
    let (status, problem) =
        create_with(json!({"disasterRecoveryUrl": "http://u:pw@dr.example.com/x", "disasterRecoveryMethod": "PUT"}))
            .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["errors"]["disasterRecoveryUrl"].is_array() && problem["errors"]["disasterRecoveryMethod"].is_array()
    );
    assert!(!problem.to_string().contains("pw@"), "the URL is not echoed: {problem}");
    assert!(env.fake.trunks_of(&sid).is_empty());

    let (status, provider) = create_with(
        json!({"disasterRecoveryUrl": "https://dr.example.com/voicemail", "disasterRecoveryMethod": "get"}),
    )
    .await;
    assert_eq!(status, 201, "{provider}");
    assert_eq!(
        (&provider["disasterRecoveryUrl"], &provider["disasterRecoveryMethod"]),
        (&json!("https://dr.example.com/voicemail"), &json!("GET"))
    );
    let (id, trunk) = (provider["id"].as_str().unwrap().to_owned(), provider["trunkSid"].as_str().unwrap().to_owned());
    let on_trunk = || {
        let t = env.fake.state().trunks[&trunk].clone();
        (t.disaster_recovery_url, t.disaster_recovery_method)
    };
    assert_eq!(on_trunk(), (Some("https://dr.example.com/voicemail".into()), "GET".into()));

    // Changed in the Console: verification warns, repair puts it back.
    env.fake.state().trunks.get_mut(&trunk).unwrap().disaster_recovery_url = None;
    let verified = verify(&env.services, &id).await;
    assert_eq!(check(&verified, "trunk")["status"], "warning", "{verified}");
    let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id).build();
    let (status, repaired) = status_and_body(&repair_provider::handle(&env.services, req).await.unwrap());
    assert_eq!((status, &repaired["verification"]["status"]), (200, &json!("verified")), "{repaired}");
    assert_eq!(on_trunk().0.as_deref(), Some("https://dr.example.com/voicemail"));

    // A method alone changes the stored URL's.
    let req = Req::new("PUT", "/api/v1/providers/twilio/{id}")
        .org(ORG)
        .param("id", &id)
        .body(r#"{"disasterRecoveryMethod":"POST"}"#);
    let (status, updated) = status_and_body(&update_twilio_provider::handle(&env.services, req.build()).await.unwrap());
    assert_eq!((status, &updated["disasterRecoveryMethod"]), (200, &json!("POST")), "{updated}");
    assert_eq!(on_trunk(), (Some("https://dr.example.com/voicemail".into()), "POST".into()));

    // PUT with null takes it off the trunk, and the record says so.
    let req = Req::new("PUT", "/api/v1/providers/twilio/{id}")
        .org(ORG)
        .param("id", &id)
        .body(r#"{"disasterRecoveryUrl":null}"#);
    let (status, updated) = status_and_body(&update_twilio_provider::handle(&env.services, req.build()).await.unwrap());
    assert_eq!(status, 200, "{updated}");
    assert_eq!((&updated["disasterRecoveryUrl"], &updated["disasterRecoveryMethod"]), (&Value::Null, &Value::Null));
    assert_eq!(on_trunk().0, None);
    assert_eq!(verify(&env.services, &id).await["status"], "verified");
}

/// The platform's ingresses on the trunk: (SIP URL, priority, weight, enabled, friendly name).
fn originations(env: &TestEnv, trunk: &str) -> Vec<(String, u32, u32, bool, String)> {
    let mut urls: Vec<_> = env
        .fake
        .origination_urls_of(trunk)
        .into_iter()
        .map(|o| (o.sip_url, o.priority, o.weight, o.enabled, o.friendly_name))
        .collect();
    urls.sort();
    urls
}

async fn repair(services: &functions::services::Services, id: &str) -> Value {
    let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", id).build();
    let (status, repaired) = status_and_body(&repair_provider::handle(services, req).await.unwrap());
    assert_eq!(status, 200, "{repaired}");
    repaired
}

#[tokio::test]
async fn every_platform_ingress_gets_its_origination_url_and_verify_and_repair_keep_the_set() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let mut services = env.services.clone();
    services.platform_sip_uris =
        PlatformSipUris::parse("sip:us.voice.example.com;priority=10;weight=20, sip:eu.voice.example.com;priority=20")
            .unwrap();
    let (status, provider) = create(&services, &sid, &token, false).await;
    assert_eq!(status, 201, "{provider}");
    let (id, trunk) = (provider["id"].as_str().unwrap().to_owned(), provider["trunkSid"].as_str().unwrap().to_owned());
    let name = format!("voice-ai-{id}");
    let expected = vec![
        ("sip:eu.voice.example.com".to_owned(), 20, 10, true, name.clone()),
        ("sip:us.voice.example.com".to_owned(), 10, 20, true, name.clone()),
    ];
    // The service's own parameters never reach Twilio.
    assert_eq!(originations(&env, &trunk), expected);
    assert_eq!(check(&verify(&services, &id).await, "origination")["status"], "passed");

    // The customer deletes the fallback and changes the first's weight: calls still arrive, but
    // without failover.
    {
        let mut state = env.fake.state();
        state.origination_urls.retain(|_, o| !o.sip_url.contains("eu."));
        state.origination_urls.values_mut().for_each(|o| o.weight = 5);
    }
    let warned = check(&verify(&services, &id).await, "origination");
    assert_eq!(warned["status"], "warning", "{warned}");
    let message = warned["message"].as_str().unwrap();
    assert!(message.contains("sip:eu.voice.example.com") && message.contains("sip:us.voice.example.com"), "{message}");
    let repaired = repair(&services, &id).await;
    assert_eq!(repaired["verification"]["status"], "verified", "{repaired}");
    assert_eq!(originations(&env, &trunk), expected);
    // A second repair changes nothing.
    let again = repair(&services, &id).await;
    let origination = again["actions"].as_array().unwrap().iter().find(|a| a["action"] == "setOriginationUrl").unwrap();
    assert_eq!(origination["result"], "skipped", "{again}");

    // The deployment retires the fallback: its URL would still be tried, so verify warns and
    // repair removes it.
    let mut retired = services.clone();
    retired.platform_sip_uris = PlatformSipUris::parse("sip:us.voice.example.com;priority=10;weight=20").unwrap();
    let stale = check(&verify(&retired, &id).await, "origination");
    assert_eq!(stale["status"], "warning", "{stale}");
    assert!(stale["message"].as_str().unwrap().contains("sip:eu.voice.example.com"), "{stale}");
    assert_eq!(repair(&retired, &id).await["verification"]["status"], "verified");
    assert_eq!(originations(&env, &trunk), expected[1..]);
    assert_eq!(repair(&services, &id).await["verification"]["status"], "verified", "and back");
    assert_eq!(originations(&env, &trunk), expected);

    // The deployment moves to one new ingress; the customer has an origination URL of their own.
    let theirs = {
        let mut state = env.fake.state();
        let mut url = state.origination_urls.values().next().unwrap().clone();
        url.sid = integration_tests::fake_twilio::new_sid("OU");
        (url.sip_url, url.friendly_name, url.priority) = ("sip:pbx.customer.example.com".into(), "theirs".into(), 30);
        state.origination_urls.insert(url.sid.clone(), url.clone());
        url
    };
    services.platform_sip_uris = PlatformSipUris::parse("sip:ap.voice.example.com").unwrap();
    assert_eq!(check(&verify(&services, &id).await, "origination")["status"], "warning");
    let repaired = repair(&services, &id).await;
    assert_eq!(repaired["verification"]["status"], "verified", "{repaired}");
    assert_eq!(
        originations(&env, &trunk),
        vec![
            ("sip:ap.voice.example.com".to_owned(), 10, 10, true, name.clone()),
            (theirs.sip_url, 30, theirs.weight, true, "theirs".to_owned()),
        ]
    );
}
