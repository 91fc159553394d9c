//! The secrets audit: the full lifecycle with every crate logging at TRACE, captured. No auth
//! token (old or new), SIP password, data key or Basic credential appears in any log line,
//! response or table attribute, in plain, hex or base64 form. And a ciphertext copied into
//! another record fails to decrypt, cleanly.

#[path = "api/harness.rs"]
#[allow(dead_code)]
mod harness;

use base64::Engine;
use functions::routes::{Endpoint, ROUTES};
use harness::{Req, TestEnv, random_token, status_and_body};
use serde_json::json;
use shared::crypto::{SecretKind, SecretOwner};
use shared::model::OrganizationId;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The forms a secret could leak in.
fn forms(secret: &[u8]) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forms = vec![
        b64.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        secret.iter().map(|b| format!("{b:02x}")).collect(),
    ];
    if let Ok(text) = std::str::from_utf8(secret) {
        forms.push(text.to_owned());
    }
    // Debug of a byte slice, as in `[1, 2, 3]`.
    forms.push(format!("{:?}", secret).trim_matches(|c| c == '[' || c == ']').to_owned());
    forms.retain(|f| f.len() >= 16);
    forms
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_a_log_line_a_response_or_the_table() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .init();

    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    // Credentials in every place a voice URL can carry them.
    let url_secrets = [
        "SECRETUSER_LONG_ENOUGH",
        "SECRETPW_LONG_ENOUGH",
        "SECRETPATH0_LONG_ENOUGH",
        "SECRETBARE_LONG_ENOUGH",
        "SECRETVALUE_LONG_ENOUGH",
    ];
    let voice_url = "https://SECRETUSER_LONG_ENOUGH:SECRETPW_LONG_ENOUGH@hooks.example.com/catch/SECRETPATH0_LONG_ENOUGH/?SECRETBARE_LONG_ENOUGH&token=SECRETVALUE_LONG_ENOUGH";
    let number = env.fake.add_incoming_number(&sid, "+15550006000", Some(voice_url));
    let org = "org-audit";
    let mut responses = String::new();
    let body = json!({"accountSid": sid, "authToken": token, "name": "Audit"}).to_string();
    let req = Req::new("POST", "/api/v1/providers/twilio").org(org).body(&body).build();
    let created = Endpoint::CreateTwilioProvider.call(&env.services, req).await.unwrap();
    responses.push_str(&String::from_utf8_lossy(created.body()));
    let id = status_and_body(&created).1["id"].as_str().unwrap().to_owned();
    let new_token = random_token();

    let steps: Vec<(&str, Option<String>)> = vec![
        ("get-twilio-provider", None),
        ("get-provider", None),
        ("list-providers", None),
        ("update-twilio-provider", Some(json!({"name": "Audited", "supportsCallTransfer": true}).to_string())),
        ("rotate-twilio-auth-token", Some(json!({"authToken": new_token}).to_string())),
        // From here on the service holds only a Standard key it minted.
        ("replace-twilio-credentials", Some(json!({"authToken": new_token, "mintApiKey": true}).to_string())),
        ("list-available-numbers", None),
        ("import-numbers", Some(json!({"phoneNumberSids": [number]}).to_string())),
        ("list-phone-numbers", None),
        ("verify-provider", None),
        ("repair-provider", None),
        ("rotate-sip-credential", Some(json!({"overlapSeconds": 3600}).to_string())),
    ];
    for (function, body) in steps {
        if function == "rotate-twilio-auth-token" {
            // The customer rotated the token in Twilio; now it is rotated here too.
            env.fake.set_auth_token(&sid, &new_token);
        }
        let route = ROUTES.iter().find(|r| r.function == function).unwrap();
        let mut req = Req::new(route.method, route.path).org(org).param("id", &id);
        if let Some(body) = &body {
            req = req.body(body);
        }
        let response = route.endpoint.call(&env.services, req.build()).await.unwrap();
        assert!(response.status().is_success(), "{function}: {:?}", response.body());
        responses.push_str(&String::from_utf8_lossy(response.body()));
    }
    // The call engine's read carries the password in its answer (only there), never in a log.
    let reader = functions::provider::sip_credential::SipCredentialReader {
        store: env.services.store.clone(),
        envelope: env.services.envelope.clone(),
    };
    let read = functions::handlers::get_sip_credential::handle(
        &reader,
        lambda_http::lambda_runtime::LambdaEvent::new(
            json!({"organizationId": org, "providerId": id}),
            lambda_http::lambda_runtime::Context::default(),
        ),
    )
    .await;
    let read = read.unwrap();
    let in_twilio =
        |username: &str| env.fake.credentials_of(&sid).into_iter().find(|c| c.username == username).unwrap();
    assert_eq!(read.password.expose(), in_twilio(&read.username).password);
    let previous = read.previous.as_ref().expect("a rotation is in its overlap");
    assert_eq!(previous.password.expose(), in_twilio(&previous.username).password);
    for job in [shared::queue::Job::Reverify, shared::queue::Job::SweepOrphans] {
        let run = functions::provider::jobs::run_in_process(&env.services, job, 4, None).await.unwrap();
        responses.push_str(&serde_json::to_string(&run).unwrap());
    }

    // What could leak: both tokens, the SIP password, the data keys, the Basic credentials.
    let org_id = OrganizationId::parse(org).unwrap();
    let record = env.services.store.get_provider(&org_id, id.parse().unwrap()).await.unwrap().unwrap();
    let sip = env.services.store.get_sip_credential(&org_id, record.id).await.unwrap().unwrap();
    // Both SIP passwords: the rotation's and the one it replaced.
    let mut secrets: Vec<Vec<u8>> = vec![token.clone().into_bytes(), new_token.clone().into_bytes()];
    secrets.extend(env.fake.credentials_of(&sid).into_iter().map(|c| c.password.into_bytes()));
    let previous = sip.previous.as_ref().expect("the rotation's previous credential");
    let minted = env.fake.api_keys_of(&sid);
    assert_eq!(minted.len(), 1, "one key, minted");
    secrets.push(minted[0].secret.clone().into_bytes());
    secrets.push(format!("{}:{}", minted[0].sid, minted[0].secret).into_bytes());
    for encrypted in [&record.credential.secret, &sip.password, &previous.password] {
        let key = env
            .kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(encrypted.encrypted_data_key.clone()))
            .encryption_context("organizationId", org)
            .encryption_context("providerId", id.clone())
            .send()
            .await
            .unwrap();
        secrets.push(key.plaintext.unwrap().into_inner());
    }
    for t in [&token, &new_token] {
        secrets.push(format!("{sid}:{t}").into_bytes());
    }
    secrets.extend(url_secrets.iter().map(|s| s.as_bytes().to_vec()));
    let table = env.scan_table_text().await;
    // The audit trail is read back with the rest: it names secrets by fingerprint only.
    let trail = Req::new("GET", "/api/v1/providers/{id}/events").org(org).param("id", &id).query("limit", "100");
    let trail = Endpoint::ListProviderEvents.call(&env.services, trail.build()).await.unwrap();
    assert_eq!(trail.status(), 200);
    let trail_text = String::from_utf8_lossy(trail.body()).into_owned();
    assert!(trail_text.contains("secretFingerprints") && trail_text.contains("sip-credential-read"), "{trail_text}");
    responses.push_str(&trail_text);
    let body = json!({"authToken": new_token}).to_string();
    let delete = Req::new("DELETE", "/api/v1/providers/{id}").org(org).param("id", &id).body(&body).build();
    let deleted = Endpoint::DeleteProvider.call(&env.services, delete).await.unwrap();
    assert_eq!(deleted.status(), 204, "{:?}", deleted.body());
    assert!(env.fake.api_keys_of(&sid).is_empty(), "the minted key went with the provider");

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.lines().count() > 100, "TRACE logging was captured ({} lines)", logs.lines().count());
    for secret in &secrets {
        for form in forms(secret) {
            assert!(!logs.contains(&form), "a secret appears in the logs");
            assert!(!responses.contains(&form), "a secret appears in a response");
            assert!(!table.contains(&form), "a secret appears in the table");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ciphertext_copied_to_another_record_does_not_decrypt() {
    let env = TestEnv::new().await;
    let (sid_a, token_a) = env.fake.add_account("active", "Full");
    let (sid_b, token_b) = env.fake.add_account("active", "Full");
    let a = harness::create_provider(&env, "org-a", &sid_a, &token_a).await["id"].as_str().unwrap().to_owned();
    let b_same_org = harness::create_provider(&env, "org-a", &sid_b, &token_b).await["id"].as_str().unwrap().to_owned();
    let b_other_org =
        harness::create_provider(&env, "org-b", &sid_b, &token_b).await["id"].as_str().unwrap().to_owned();
    let org_a = OrganizationId::parse("org-a").unwrap();
    let stolen = env.services.store.get_provider(&org_a, a.parse().unwrap()).await.unwrap().unwrap().credential;

    for (org, victim) in [("org-a", &b_same_org), ("org-b", &b_other_org)] {
        let org_id = OrganizationId::parse(org).unwrap();
        let mut record = env.services.store.get_provider(&org_id, victim.parse().unwrap()).await.unwrap().unwrap();
        let owner = SecretOwner { organization_id: org_id.clone(), provider_id: record.id };
        assert!(env.services.envelope.open(&owner, SecretKind::AuthToken, &stolen.secret).await.is_err());
        record.credential = stolen.clone();
        record.version += 1;
        env.services.store.replace_provider(&record, None).await.unwrap();
        // An operation that needs the token fails cleanly, saying what to do.
        let req = Req::new("POST", "/api/v1/providers/{id}/verify").org(org).param("id", victim).build();
        let (status, problem) = status_and_body(&Endpoint::VerifyProvider.call(&env.services, req).await.unwrap());
        assert_eq!(status, 422, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("/credentials"), "{problem}");
    }
}
