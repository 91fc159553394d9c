//! A stateful fake of the parts of Twilio's REST API the service uses, speaking Twilio's wire
//! format: form-encoded PascalCase requests, snake_case JSON responses, the `.json` suffix on
//! the 2010 API, HTTP Basic auth with Account SID and Auth Token, and error bodies
//! `{code, message, more_info, status}`. One server answers for both api.twilio.com and
//! trunking.twilio.com (their paths do not overlap) of one Twilio Region: a test starts one
//! per Region ([`FakeTwilio::start_in`]), each with its own state, as Twilio's Regions are
//! separate (an account has a token of its own in each, and a number a voice configuration of
//! its own in each). Outside US1 the trunk's PhoneNumbers subresource does not exist, and an
//! empty `TrunkSid` or `VoiceApplicationSid` clears the field (see the README).
//!
//! Tests can inject a failure, a delay or a 429 at any named step, add latency to every call,
//! and read the state and a request log.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Account {
    pub sid: String,
    pub auth_token: String,
    /// The account's test credentials' token (Console, Test Credentials): Twilio answers them
    /// 403 (20008) for everything the service does.
    pub test_auth_token: Option<String>,
    pub status: String,
    pub account_type: String,
    pub friendly_name: String,
}

/// An API key of an account. A Standard key may do everything but read `/Accounts` and manage
/// `/Keys` (Twilio answers 20003); a Main key, made only in the Console, may do everything.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub sid: String,
    pub account_sid: String,
    pub secret: String,
    pub main: bool,
    pub friendly_name: String,
}

#[derive(Debug, Clone)]
pub struct Trunk {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    pub domain_name: String,
    pub transfer_mode: String,
    /// TLS signalling and SRTP media only.
    pub secure: bool,
    pub disaster_recovery_url: Option<String>,
    pub disaster_recovery_method: String,
}

#[derive(Debug, Clone)]
pub struct CredentialList {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub sid: String,
    pub account_sid: String,
    pub credential_list_sid: String,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct OriginationUrl {
    pub sid: String,
    pub account_sid: String,
    pub trunk_sid: String,
    pub sip_url: String,
    pub enabled: bool,
    pub friendly_name: String,
    pub priority: u32,
    pub weight: u32,
}

#[derive(Debug, Clone)]
pub struct IncomingNumber {
    pub sid: String,
    pub account_sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    pub voice: bool,
    pub sms: bool,
    pub mms: bool,
    pub fax: bool,
    pub trunk_sid: Option<String>,
    pub voice_url: Option<String>,
    pub voice_application_sid: Option<String>,
    pub voice_config: VoiceConfig,
    /// Its inbound processing Region as set through the Routes API; None: never set (Twilio
    /// answers 404 and processes its calls in US1). Twilio keeps one for the number across
    /// Regions; the fake keeps it in the Region whose Routes host set it, the only one the
    /// service asks.
    pub voice_region: Option<String>,
}

/// The rest of a number's voice configuration, as Twilio holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceConfig {
    pub voice_method: String,
    pub voice_fallback_url: Option<String>,
    pub voice_fallback_method: String,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            voice_method: "POST".into(),
            voice_fallback_url: None,
            voice_fallback_method: "POST".into(),
            status_callback: None,
            status_callback_method: "POST".into(),
        }
    }
}

/// What an injected fault does when its step is called.
#[derive(Debug, Clone)]
pub enum FaultAction {
    /// Answer with this status and Twilio error code, without doing anything.
    Fail { status: u16, code: u32 },
    /// Answer 429 (code 20429), optionally with `Retry-After` seconds.
    RateLimit { retry_after: Option<u64> },
    /// Do the work, then wait before answering: a caller that gives up first does not know
    /// the request succeeded.
    Delay(Duration),
    /// Do the work, then close the connection without answering.
    DropConnection,
    /// Do the work, then never answer: the caller dies waiting (a Lambda killed at its
    /// timeout). The request is in the log as soon as the work is done (status 0).
    CommitThenHang,
    /// Do the work, then answer with this status anyway. A 502 or 503 carries the body
    /// Twilio's edge writes (HTML, not Twilio's JSON); any other status Twilio's error JSON.
    CommitThenFail { status: u16 },
    /// Do the work and answer with its status, but only the first half of its body: an answer
    /// cut short on the way (by a proxy, say) that the caller cannot read.
    CommitThenTruncate,
}

/// Twilio's limits: SIP trunks per account (one on a Trial account) and credential lists.
pub const TRUNK_LIMIT: usize = 100;
pub const TRIAL_TRUNK_LIMIT: usize = 1;
pub const CREDENTIAL_LIST_LIMIT: usize = 100;

/// The panic message that makes the server drop a connection (the connection's task ends
/// without writing a response); the panic hook installed by [`FakeTwilio::start_on`] keeps
/// it out of the test output.
const DROP_CONNECTION: &str = "fake Twilio drops this connection";

fn quiet_connection_drops() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.payload().downcast_ref::<&str>().copied().unwrap_or_default();
            if message != DROP_CONNECTION {
                previous(info);
            }
        }));
    });
}

#[derive(Debug, Clone)]
struct Fault {
    step: String,
    action: FaultAction,
    /// None: every call; Some(n): the next n calls.
    remaining: Option<u32>,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub step: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub started: Instant,
    pub finished: Instant,
}

#[derive(Debug, Default)]
pub struct FakeState {
    /// The Twilio Region this server is (`us1`, `ie1`, `au1`).
    pub region: String,
    pub accounts: BTreeMap<String, Account>,
    pub api_keys: BTreeMap<String, ApiKey>,
    pub trunks: BTreeMap<String, Trunk>,
    pub credential_lists: BTreeMap<String, CredentialList>,
    pub credentials: BTreeMap<String, Credential>,
    /// (trunk sid, credential list sid)
    pub trunk_credential_lists: Vec<(String, String)>,
    pub incoming_numbers: BTreeMap<String, IncomingNumber>,
    pub origination_urls: BTreeMap<String, OriginationUrl>,
    /// TwiML applications (SID -> account SID): what a number's `VoiceApplicationSid` may name.
    pub applications: BTreeMap<String, String>,
    /// Domain names of deleted trunks: Twilio keeps them reserved.
    pub reserved_domains: Vec<String>,
    /// Requests that broke Twilio's OpenAPI spec (the fake answered them 400).
    pub spec_violations: Vec<String>,
    faults: Vec<Fault>,
    latency: Duration,
    pub log: Vec<LoggedRequest>,
}

/// A running fake Twilio. Dropping it does not stop the server (tests share a runtime).
#[derive(Clone)]
pub struct FakeTwilio {
    pub base_url: String,
    state: Arc<Mutex<FakeState>>,
}

pub fn new_sid(prefix: &str) -> String {
    let mut rng = rand::rng();
    let hex: String = (0..32).map(|_| char::from_digit(rng.random_range(0..16), 16).expect("hex digit")).collect();
    format!("{prefix}{hex}")
}

/// The sandbox's demo Standard API key of the demo account (US1; keys are per Region), which
/// `events/replace-twilio-credentials.json` carries.
pub const DEMO_API_KEY_SID: &str = "SK5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";
pub const DEMO_API_KEY_SECRET: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz012345";

/// An API key secret as Twilio makes them: 32 letters and digits.
fn new_key_secret() -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect()
}

impl FakeTwilio {
    /// Starts the fake on an ephemeral loopback port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("static address")).await
    }

    /// Starts a fake of another Twilio Region on an ephemeral loopback port.
    pub async fn start_in(region: &str) -> Self {
        Self::start_on_in("127.0.0.1:0".parse().expect("static address"), region).await
    }

    pub async fn start_on(addr: SocketAddr) -> Self {
        Self::start_on_in(addr, "us1").await
    }

    pub async fn start_on_in(addr: SocketAddr, region: &str) -> Self {
        quiet_connection_drops();
        let state = Arc::new(Mutex::new(FakeState { region: region.to_owned(), ..FakeState::default() }));
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind fake Twilio");
        let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
        let app = Router::new().fallback(dispatch).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("fake Twilio server") });
        Self { base_url, state }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state lock")
    }

    /// Adds an account and returns (Account SID, Auth Token).
    pub fn add_account(&self, status: &str, account_type: &str) -> (String, String) {
        let sid = new_sid("AC");
        let token = new_sid("").to_lowercase();
        self.add_account_with(&sid, &token, status, account_type);
        (sid, token)
    }

    pub fn add_account_with(&self, sid: &str, token: &str, status: &str, account_type: &str) {
        self.state().accounts.insert(
            sid.to_owned(),
            Account {
                sid: sid.to_owned(),
                auth_token: token.to_owned(),
                test_auth_token: None,
                status: status.into(),
                account_type: account_type.into(),
                friendly_name: format!("Account {sid}"),
            },
        );
    }

    /// Adds an API key to the account (Main, as the Console makes, or Standard) and returns
    /// (SID, secret).
    pub fn add_api_key(&self, account_sid: &str, main: bool) -> (String, String) {
        let (sid, secret) = (new_sid("SK"), new_key_secret());
        self.add_api_key_with(&sid, &secret, account_sid, main);
        (sid, secret)
    }

    /// Adds a key with this SID and secret (the `events/` files' demo key).
    pub fn add_api_key_with(&self, sid: &str, secret: &str, account_sid: &str, main: bool) {
        let key = ApiKey {
            sid: sid.to_owned(),
            account_sid: account_sid.to_owned(),
            secret: secret.to_owned(),
            main,
            friendly_name: "added by the test".into(),
        };
        self.state().api_keys.insert(key.sid.clone(), key);
    }

    /// The account's API keys.
    pub fn api_keys_of(&self, account_sid: &str) -> Vec<ApiKey> {
        self.state().api_keys.values().filter(|k| k.account_sid == account_sid).cloned().collect()
    }

    /// Deletes a key, as the Console does.
    pub fn delete_api_key(&self, sid: &str) {
        self.state().api_keys.remove(sid);
    }

    pub fn set_account_status(&self, sid: &str, status: &str) {
        if let Some(account) = self.state().accounts.get_mut(sid) {
            account.status = status.into();
        }
    }

    /// Rotates an account's token (the old one stops working).
    /// A TwiML application of the account (made in the console; the service never makes one).
    pub fn add_application(&self, account_sid: &str) -> String {
        let sid = new_sid("AP");
        self.state().applications.insert(sid.clone(), account_sid.to_owned());
        sid
    }

    /// A trunk of the customer's own (not made through the service).
    pub fn add_trunk(&self, account_sid: &str) -> String {
        let sid = new_sid("TK");
        let trunk = Trunk {
            sid: sid.clone(),
            account_sid: account_sid.to_owned(),
            friendly_name: "Customer trunk".into(),
            domain_name: format!("{}.pstn.twilio.com", sid.to_lowercase()),
            transfer_mode: "disable-all".into(),
            secure: false,
            disaster_recovery_url: None,
            disaster_recovery_method: "POST".into(),
        };
        self.state().trunks.insert(sid.clone(), trunk);
        sid
    }

    /// Gives the account test credentials with this token.
    pub fn set_test_auth_token(&self, sid: &str, token: &str) {
        if let Some(account) = self.state().accounts.get_mut(sid) {
            account.test_auth_token = Some(token.into());
        }
    }

    pub fn set_auth_token(&self, sid: &str, token: &str) {
        if let Some(account) = self.state().accounts.get_mut(sid) {
            account.auth_token = token.into();
        }
    }

    /// Adds an incoming phone number to an account and returns its SID.
    pub fn add_incoming_number(&self, account_sid: &str, phone_number: &str, voice_url: Option<&str>) -> String {
        self.add_incoming_number_with_sid(&new_sid("PN"), account_sid, phone_number, voice_url)
    }

    pub fn add_incoming_number_with_sid(
        &self,
        sid: &str,
        account_sid: &str,
        phone_number: &str,
        voice_url: Option<&str>,
    ) -> String {
        let sid = sid.to_owned();
        self.state().incoming_numbers.insert(
            sid.clone(),
            IncomingNumber {
                sid: sid.clone(),
                account_sid: account_sid.into(),
                phone_number: phone_number.into(),
                friendly_name: phone_number.into(),
                voice: true,
                sms: true,
                mms: false,
                fax: false,
                trunk_sid: None,
                voice_url: voice_url.map(str::to_owned),
                voice_application_sid: None,
                voice_config: VoiceConfig::default(),
                voice_region: None,
            },
        );
        sid
    }

    /// A number as `GET …/IncomingPhoneNumbers/{Sid}.json` shows it.
    pub fn incoming_number_json(&self, sid: &str) -> Value {
        number_json(&self.state().incoming_numbers[sid])
    }

    /// Injects a fault at a named step (see [`step_of`] for the names) for the next `times`
    /// calls, or for every call when `times` is None. `"{step} {Param}={value}"` narrows it to
    /// the calls that send that form parameter with that value.
    pub fn inject(&self, step: &str, action: FaultAction, times: Option<u32>) {
        self.state().faults.push(Fault { step: step.into(), action, remaining: times });
    }

    /// Waits until every injected fault has been taken by a request: then a request the test
    /// delays has reached the fake, and the test can act while it waits for its answer.
    pub async fn until_faults_taken(&self) {
        while !self.state().faults.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Latency added to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    pub fn trunks_of(&self, account_sid: &str) -> Vec<Trunk> {
        self.state().trunks.values().filter(|t| t.account_sid == account_sid).cloned().collect()
    }

    pub fn credential_lists_of(&self, account_sid: &str) -> Vec<CredentialList> {
        self.state().credential_lists.values().filter(|l| l.account_sid == account_sid).cloned().collect()
    }

    pub fn credentials_of(&self, account_sid: &str) -> Vec<Credential> {
        self.state().credentials.values().filter(|c| c.account_sid == account_sid).cloned().collect()
    }

    pub fn lists_attached_to(&self, trunk_sid: &str) -> Vec<String> {
        self.state().trunk_credential_lists.iter().filter(|(t, _)| t == trunk_sid).map(|(_, l)| l.clone()).collect()
    }

    pub fn origination_urls_of(&self, trunk_sid: &str) -> Vec<OriginationUrl> {
        self.state().origination_urls.values().filter(|o| o.trunk_sid == trunk_sid).cloned().collect()
    }

    /// The password Twilio holds for a SIP user of a credential list.
    pub fn sip_password(&self, list_sid: &str, username: &str) -> Option<String> {
        let st = self.state();
        st.credentials
            .values()
            .find(|c| c.credential_list_sid == list_sid && c.username == username)
            .map(|c| c.password.clone())
    }

    /// What the service sent that Twilio's spec does not allow; tests end by asserting none.
    pub fn spec_violations(&self) -> Vec<String> {
        self.state().spec_violations.clone()
    }

    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.state().log.clone()
    }
}

/// The longest run of logged requests each of which started after the previous one finished:
/// how many dependent round trips a client made.
pub fn longest_sequential_chain(log: &[LoggedRequest]) -> usize {
    let mut requests: Vec<&LoggedRequest> = log.iter().collect();
    requests.sort_by_key(|r| r.started);
    let mut chain = vec![1usize; requests.len()];
    for i in 0..requests.len() {
        for j in 0..i {
            if requests[j].finished <= requests[i].started {
                chain[i] = chain[i].max(chain[j] + 1);
            }
        }
    }
    chain.into_iter().max().unwrap_or(0)
}

/// The step name of a request: how faults are addressed and how the log names calls.
pub fn step_of(method: &Method, segments: &[&str]) -> Option<&'static str> {
    let m = method.as_str();
    Some(match (m, segments) {
        ("GET", ["2010-04-01", "Accounts", _]) => "fetch_account",
        ("GET", ["2010-04-01", "Accounts", _, "IncomingPhoneNumbers"]) => "list_incoming_numbers",
        ("GET", ["2010-04-01", "Accounts", _, "IncomingPhoneNumbers", _]) => "fetch_incoming_number",
        ("POST", ["2010-04-01", "Accounts", _, "IncomingPhoneNumbers", _]) => "update_incoming_number",
        ("GET", ["2010-04-01", "Accounts", _, "Applications", _]) => "fetch_application",
        ("POST", ["2010-04-01", "Accounts", _, "Keys"]) => "create_api_key",
        ("GET", ["2010-04-01", "Accounts", _, "Keys", _]) => "fetch_api_key",
        ("DELETE", ["2010-04-01", "Accounts", _, "Keys", _]) => "delete_api_key",
        ("GET", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists"]) => "list_credential_lists",
        ("POST", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists"]) => "create_credential_list",
        ("GET", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", _]) => "fetch_credential_list",
        ("DELETE", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", _]) => "delete_credential_list",
        ("GET", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", _, "Credentials"]) => "list_credentials",
        ("POST", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", _, "Credentials"]) => "create_credential",
        ("DELETE", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", _, "Credentials", _]) => "delete_credential",
        ("GET", ["v1", "Trunks"]) => "list_trunks",
        ("POST", ["v1", "Trunks"]) => "create_trunk",
        ("GET", ["v1", "Trunks", _]) => "fetch_trunk",
        ("POST", ["v1", "Trunks", _]) => "update_trunk",
        ("DELETE", ["v1", "Trunks", _]) => "delete_trunk",
        ("GET", ["v1", "Trunks", _, "CredentialLists"]) => "list_trunk_credential_lists",
        ("POST", ["v1", "Trunks", _, "CredentialLists"]) => "attach_credential_list",
        ("DELETE", ["v1", "Trunks", _, "CredentialLists", _]) => "detach_credential_list",
        ("GET", ["v1", "Trunks", _, "PhoneNumbers"]) => "list_trunk_phone_numbers",
        ("POST", ["v1", "Trunks", _, "PhoneNumbers"]) => "attach_phone_number",
        ("DELETE", ["v1", "Trunks", _, "PhoneNumbers", _]) => "detach_phone_number",
        ("GET", ["v1", "Trunks", _, "OriginationUrls"]) => "list_origination_urls",
        ("POST", ["v1", "Trunks", _, "OriginationUrls"]) => "create_origination_url",
        ("GET", ["v1", "Trunks", _, "OriginationUrls", _]) => "fetch_origination_url",
        ("POST", ["v1", "Trunks", _, "OriginationUrls", _]) => "update_origination_url",
        ("DELETE", ["v1", "Trunks", _, "OriginationUrls", _]) => "delete_origination_url",
        ("GET", ["v2", "PhoneNumbers", _]) => "fetch_voice_region",
        ("POST", ["v2", "PhoneNumbers", _]) => "update_voice_region",
        _ => return None,
    })
}

fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn not_found(path: &str) -> Response {
    twilio_error(404, 20404, &format!("The requested resource {path} was not found"))
}

/// Splits the path into segments, dropping the 2010 API's `.json` suffix.
fn segments_of(path: &str) -> Option<Vec<String>> {
    let mut parts: Vec<String> = path.trim_matches('/').split('/').map(str::to_owned).collect();
    if parts.first().map(String::as_str) == Some("2010-04-01") {
        let last = parts.last_mut()?;
        *last = last.strip_suffix(".json")?.to_owned();
    }
    Some(parts)
}

async fn dispatch(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let path = uri.path().to_owned();
    let Some(owned_segments) = segments_of(&path) else {
        return not_found(&path);
    };
    let segments: Vec<&str> = owned_segments.iter().map(String::as_str).collect();
    let step = step_of(&method, &segments).unwrap_or("unknown");

    // Twilio's spec first: an unknown parameter or a value its schema refuses is a 400. Outside
    // US1 an empty TrunkSid or VoiceApplicationSid clears the field (Twilio's own clients send
    // empty values so; the spec's pattern does not show it): the one way off a trunk there.
    let mut form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if step == "update_incoming_number" && state.lock().expect("lock").region != "us1" {
        form.retain(|(name, value)| {
            !(value.is_empty() && ["TrunkSid", "VoiceApplicationSid"].contains(&name.as_str()))
        });
    }
    let problems = crate::twilio_spec::check(method.as_str(), &path, uri.query(), &form);
    if !problems.is_empty() {
        let code = if problems.iter().any(|p| p.contains("PageSize")) { 20007 } else { 20001 };
        let response = twilio_error(400, code, &format!("Invalid request: {}", problems.join("; ")));
        let mut st = state.lock().expect("lock");
        st.spec_violations.extend(problems);
        st.log.push(LoggedRequest {
            step: step.to_owned(),
            method: method.to_string(),
            path,
            status: 400,
            started,
            finished: Instant::now(),
        });
        return response;
    }

    // Latency and faults are decided under the lock, then waited for without it.
    let (latency, fault) = {
        let mut st = state.lock().expect("lock");
        let mut fault = None;
        // A fault names a step, or a step and one form parameter it sets (`update_incoming_number
        // TrunkSid=TK…`): the number's own update is how it goes on a trunk and off it again.
        let matches = |fault: &Fault| {
            fault.step == step
                || fault.step.strip_prefix(step).and_then(|rest| rest.strip_prefix(' ')).is_some_and(|param| {
                    form.iter().any(|(name, value)| param.split_once('=') == Some((name.as_str(), value.as_str())))
                })
        };
        if let Some(index) = st.faults.iter().position(matches) {
            let f = &mut st.faults[index];
            fault = Some(f.action.clone());
            match &mut f.remaining {
                Some(1) => {
                    st.faults.remove(index);
                }
                Some(n) => *n -= 1,
                None => {}
            }
        }
        (st.latency, fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        Some(FaultAction::Fail { status, code }) => twilio_error(status, code, &format!("Injected failure at {step}")),
        Some(FaultAction::RateLimit { retry_after }) => {
            let mut response = twilio_error(429, 20429, "Too Many Requests");
            if let Some(seconds) = retry_after {
                response.headers_mut().insert("retry-after", seconds.to_string().parse().expect("digits"));
            }
            response
        }
        Some(FaultAction::Delay(delay)) => {
            let response = handle(&state, &method, &path, &segments, &headers, &body, uri.query());
            tokio::time::sleep(delay).await;
            response
        }
        Some(FaultAction::CommitThenFail { status }) => {
            drop(handle(&state, &method, &path, &segments, &headers, &body, uri.query()));
            if matches!(status, 502 | 503) {
                let page = format!("<html><body><h1>{status}</h1>The server is temporarily unavailable.</body></html>");
                let status = StatusCode::from_u16(status).expect("a valid status");
                (status, [("content-type", "text/html")], page).into_response()
            } else {
                twilio_error(status, 20500, &format!("Injected failure after {step} was done"))
            }
        }
        Some(FaultAction::CommitThenTruncate) => {
            let (mut parts, body) =
                handle(&state, &method, &path, &segments, &headers, &body, uri.query()).into_parts();
            let whole = axum::body::to_bytes(body, usize::MAX).await.expect("the fake's own body");
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(whole.slice(..whole.len() / 2)))
        }
        Some(action @ (FaultAction::CommitThenHang | FaultAction::DropConnection)) => {
            drop(handle(&state, &method, &path, &segments, &headers, &body, uri.query()));
            state.lock().expect("lock").log.push(LoggedRequest {
                step: step.to_owned(),
                method: method.to_string(),
                path,
                status: 0,
                started,
                finished: Instant::now(),
            });
            if matches!(action, FaultAction::DropConnection) {
                std::panic::panic_any(DROP_CONNECTION);
            }
            return std::future::pending().await;
        }
        None => handle(&state, &method, &path, &segments, &headers, &body, uri.query()),
    };
    state.lock().expect("lock").log.push(LoggedRequest {
        step: step.to_owned(),
        method: method.to_string(),
        path,
        status: response.status().as_u16(),
        started,
        finished: Instant::now(),
    });
    response
}

/// The account the Basic credentials authenticate (the Account SID and Auth Token, or an API
/// key's SID and secret), with the key when it is one; or Twilio's 401.
#[allow(clippy::result_large_err, reason = "the error is the response the fake sends")]
fn authenticate(st: &FakeState, headers: &HeaderMap) -> Result<(Account, Option<ApiKey>), Response> {
    let unauthorized = || twilio_error(401, 20003, "Authenticate");
    let value = headers.get("authorization").and_then(|v| v.to_str().ok()).ok_or_else(unauthorized)?;
    let encoded = value.strip_prefix("Basic ").ok_or_else(unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| unauthorized())?;
    let decoded = String::from_utf8(decoded).map_err(|_| unauthorized())?;
    let (sid, token) = decoded.split_once(':').ok_or_else(unauthorized)?;
    // A deleted key, or one of another Region (another fake), is unknown here.
    if let Some(key) = st.api_keys.get(sid) {
        return match st.accounts.get(&key.account_sid) {
            Some(account) if key.secret == token && account.status == "active" => {
                Ok((account.clone(), Some(key.clone())))
            }
            _ => Err(unauthorized()),
        };
    }
    // A suspended or closed account's own credentials are refused like wrong ones.
    match st.accounts.get(sid) {
        Some(account) if account.test_auth_token.as_deref() == Some(token) => {
            Err(twilio_error(403, 20008, "Resource not accessible with Test Account Credentials"))
        }
        Some(account) if account.auth_token == token && account.status == "active" => Ok((account.clone(), None)),
        _ => Err(unauthorized()),
    }
}

fn form_of(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn now() -> String {
    // A fixed, well-formed timestamp is enough: the service never reads these.
    "Mon, 16 Nov 2026 10:00:00 +0000".into()
}

fn trunk_json(t: &Trunk, base: &str) -> Value {
    json!({
        "account_sid": t.account_sid, "sid": t.sid, "friendly_name": t.friendly_name, "domain_name": t.domain_name,
        "transfer_mode": t.transfer_mode, "transfer_caller_id": "from-transferee", "secure": t.secure,
        "cnam_lookup_enabled": false, "recording": {"mode": "do-not-record", "trim": "do-not-trim"},
        "disaster_recovery_url": t.disaster_recovery_url, "disaster_recovery_method": t.disaster_recovery_method, "auth_type": "CREDENTIAL_LIST",
        "auth_type_set": ["CREDENTIAL_LIST"], "symmetric_rtp_enabled": false,
        "date_created": "2026-11-16T10:00:00Z", "date_updated": "2026-11-16T10:00:00Z",
        "url": format!("{base}/v1/Trunks/{}", t.sid),
        "links": {"credential_lists": format!("{base}/v1/Trunks/{}/CredentialLists", t.sid), "phone_numbers": format!("{base}/v1/Trunks/{}/PhoneNumbers", t.sid)}
    })
}

fn credential_list_json(l: &CredentialList) -> Value {
    json!({
        "account_sid": l.account_sid, "sid": l.sid, "friendly_name": l.friendly_name, "date_created": now(), "date_updated": now(),
        "uri": format!("/2010-04-01/Accounts/{}/SIP/CredentialLists/{}.json", l.account_sid, l.sid),
        "subresource_uris": {"credentials": format!("/2010-04-01/Accounts/{}/SIP/CredentialLists/{}/Credentials.json", l.account_sid, l.sid)}
    })
}

fn credential_json(c: &Credential) -> Value {
    json!({
        "sid": c.sid, "account_sid": c.account_sid, "credential_list_sid": c.credential_list_sid, "username": c.username,
        "date_created": now(), "date_updated": now(),
        "uri": format!("/2010-04-01/Accounts/{}/SIP/CredentialLists/{}/Credentials/{}.json", c.account_sid, c.credential_list_sid, c.sid)
    })
}

fn origination_url_json(o: &OriginationUrl, base: &str) -> Value {
    json!({
        "account_sid": o.account_sid, "sid": o.sid, "trunk_sid": o.trunk_sid, "weight": o.weight, "enabled": o.enabled,
        "sip_url": o.sip_url, "friendly_name": o.friendly_name, "priority": o.priority,
        "date_created": "2026-11-16T10:00:00Z", "date_updated": "2026-11-16T10:00:00Z",
        "url": format!("{base}/v1/Trunks/{}/OriginationUrls/{}", o.trunk_sid, o.sid)
    })
}

/// Applies the form of a create or update to an origination URL; `Err` is Twilio's 400.
#[allow(clippy::result_large_err, reason = "the error is the response the fake sends")]
fn apply_origination_form(o: &mut OriginationUrl, form: &HashMap<String, String>) -> Result<(), Response> {
    let invalid = |name: &str| twilio_error(400, 20001, &format!("Invalid parameter {name}"));
    if let Some(url) = form.get("SipUrl") {
        // Twilio's spec: "This must be a `sip:` schema" (TLS is `;transport=tls`, not `sips:`).
        if !url.starts_with("sip:") || url.len() > 255 {
            return Err(twilio_error(400, 21219, "SipUrl must be a sip: URI"));
        }
        o.sip_url = url.clone();
    }
    if let Some(enabled) = form.get("Enabled") {
        o.enabled = match enabled.as_str() {
            "true" | "True" => true,
            "false" | "False" => false,
            _ => return Err(invalid("Enabled")),
        };
    }
    // The spec's ranges: Priority 0 to 65535, Weight 1 to 65535.
    for (name, field, least) in [("Priority", &mut o.priority, 0), ("Weight", &mut o.weight, 1)] {
        if let Some(value) = form.get(name) {
            *field = value.parse().ok().filter(|v| (least..=65535).contains(v)).ok_or_else(|| invalid(name))?;
        }
    }
    if let Some(name) = form.get("FriendlyName") {
        if name.chars().count() > 64 {
            return Err(invalid("FriendlyName"));
        }
        o.friendly_name = name.clone();
    }
    Ok(())
}

fn number_json(n: &IncomingNumber) -> Value {
    json!({
        "account_sid": n.account_sid, "sid": n.sid, "phone_number": n.phone_number, "friendly_name": n.friendly_name,
        "capabilities": {"voice": n.voice, "sms": n.sms, "mms": n.mms, "fax": n.fax},
        "trunk_sid": n.trunk_sid, "voice_url": n.voice_url,
        // As Twilio's own example shows a number without one: an empty string, not null.
        "voice_application_sid": n.voice_application_sid.clone().unwrap_or_default(),
        "voice_method": n.voice_config.voice_method, "voice_fallback_url": n.voice_config.voice_fallback_url,
        "voice_fallback_method": n.voice_config.voice_fallback_method, "status_callback": n.voice_config.status_callback,
        "status_callback_method": n.voice_config.status_callback_method, "api_version": "2010-04-01", "status": "in-use", "origin": "twilio", "beta": false,
        "date_created": now(), "date_updated": now(),
        "uri": format!("/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{}.json", n.account_sid, n.sid)
    })
}

fn trunk_number_json(n: &IncomingNumber, base: &str) -> Value {
    let mut value = number_json(n);
    value["url"] =
        json!(format!("{base}/v1/Trunks/{}/PhoneNumbers/{}", n.trunk_sid.clone().unwrap_or_default(), n.sid));
    value
}

/// Page parameters: `PageSize` (default 50, at most 1000) and `Page` (from 0).
fn paging(query: Option<&str>) -> (usize, usize) {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect();
    let size = params.get("PageSize").and_then(|v| v.parse().ok()).filter(|s| (1..=1000).contains(s)).unwrap_or(50);
    let from_token = params.get("PageToken").and_then(|t| t.strip_prefix("PT")).and_then(|n| n.parse().ok());
    let page = params.get("Page").and_then(|v| v.parse().ok()).or(from_token).unwrap_or(0);
    (size, page)
}

/// A page of a 2010 API list, with `next_page_uri` as Twilio gives it.
fn page_2010(key: &str, path: &str, items: Vec<Value>, query: Option<&str>) -> Response {
    let (size, page) = paging(query);
    let start = page * size;
    let chunk: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let next = (start + size < items.len())
        .then(|| format!("{path}?PageSize={size}&Page={}&PageToken=PT{}", page + 1, page + 1));
    json_response(
        StatusCode::OK,
        json!({
            key: chunk, "page": page, "page_size": size, "start": start, "end": start + chunk.len().saturating_sub(1),
            "uri": format!("{path}?PageSize={size}&Page={page}"), "first_page_uri": format!("{path}?PageSize={size}&Page=0"),
            "next_page_uri": next, "previous_page_uri": null
        }),
    )
}

/// A page of a trunking v1 list, with `meta.next_page_url` as Twilio gives it.
fn page_v1(key: &str, base: &str, path: &str, items: Vec<Value>, query: Option<&str>) -> Response {
    let (size, page) = paging(query);
    let start = page * size;
    let chunk: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let next = (start + size < items.len())
        .then(|| format!("{base}{path}?PageSize={size}&Page={}&PageToken=PT{}", page + 1, page + 1));
    json_response(
        StatusCode::OK,
        json!({
            key: chunk,
            "meta": {"page": page, "page_size": size, "first_page_url": format!("{base}{path}?PageSize={size}&Page=0"),
                     "previous_page_url": null, "url": format!("{base}{path}?PageSize={size}&Page={page}"), "next_page_url": next, "key": key}
        }),
    )
}

fn is_label(label: &str) -> bool {
    !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn handle(
    state: &Arc<Mutex<FakeState>>,
    method: &Method,
    path: &str,
    segments: &[&str],
    headers: &HeaderMap,
    body: &[u8],
    query: Option<&str>,
) -> Response {
    let mut guard = state.lock().expect("lock");
    let st = &mut *guard;
    let (account, key) = match authenticate(st, headers) {
        Ok(authenticated) => authenticated,
        Err(response) => return response,
    };
    // Twilio keeps the Account and Key resources to the Auth Token and Main keys: a Standard
    // key is answered 20003 there (its documented code; the status is not documented, and 401
    // is what 20003 comes with elsewhere).
    let account_or_keys = matches!(segments, ["2010-04-01", "Accounts", _] | ["2010-04-01", "Accounts", _, "Keys", ..]);
    if account_or_keys && key.as_ref().is_some_and(|k| !k.main) {
        return twilio_error(401, 20003, "Authenticate: a Standard API key may not access this resource");
    }
    // The base URL the caller used, for absolute URLs in trunking responses.
    let base = headers.get("host").and_then(|h| h.to_str().ok()).map(|h| format!("http://{h}")).unwrap_or_default();
    let form = form_of(body);
    let me = account.sid.as_str();
    if let ["2010-04-01", "Accounts", sid, ..] = segments
        && *sid != me
    {
        return twilio_error(403, 20403, "Forbidden: the credentials do not belong to this account");
    }

    let route = match segments {
        ["2010-04-01", "Accounts", _] => account_resource,
        ["2010-04-01", "Accounts", _, "Keys", ..] => api_keys,
        ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", ..] => credential_lists,
        ["2010-04-01", "Accounts", _, "Applications", ..] => applications,
        ["2010-04-01", "Accounts", _, "IncomingPhoneNumbers", ..] => incoming_numbers,
        ["v1", "Trunks", _, "CredentialLists", ..] => trunk_credential_lists,
        ["v1", "Trunks", _, "PhoneNumbers", ..] => trunk_phone_numbers,
        ["v1", "Trunks", _, "OriginationUrls", ..] => origination_urls,
        ["v1", "Trunks", ..] => trunks,
        ["v2", "PhoneNumbers", ..] => routes,
        _ => return not_found(path),
    };
    route(Call { st, account: &account, method: method.as_str(), path, segments, form, base: &base, query })
}

/// One authenticated request, as a resource family's router reads it.
struct Call<'a> {
    st: &'a mut FakeState,
    account: &'a Account,
    method: &'a str,
    path: &'a str,
    segments: &'a [&'a str],
    form: HashMap<String, String>,
    base: &'a str,
    query: Option<&'a str>,
}

/// `Accounts/{Sid}`: the account itself.
fn account_resource(call: Call) -> Response {
    let Call { account, method, path, segments, .. } = call;
    match (method, segments) {
        ("GET", ["2010-04-01", "Accounts", _]) => json_response(
            StatusCode::OK,
            json!({
                "sid": account.sid, "owner_account_sid": account.sid, "friendly_name": account.friendly_name,
                "status": account.status, "type": account.account_type, "auth_token": account.auth_token,
                "date_created": now(), "date_updated": now(), "uri": format!("/2010-04-01/Accounts/{}.json", account.sid),
                "subresource_uris": {"incoming_phone_numbers": format!("/2010-04-01/Accounts/{}/IncomingPhoneNumbers.json", account.sid)}
            }),
        ),
        _ => not_found(path),
    }
}

/// `Accounts/{Sid}/Keys`: API keys.
fn api_keys(call: Call) -> Response {
    let Call { st, account, method, path, segments, form, .. } = call;
    let me = account.sid.as_str();
    match (method, segments) {
        ("POST", ["2010-04-01", "Accounts", _, "Keys"]) => {
            let friendly_name = form.get("FriendlyName").cloned().unwrap_or_default();
            if friendly_name.chars().count() > 64 {
                return twilio_error(400, 20001, "FriendlyName must be at most 64 characters");
            }
            let key = ApiKey {
                sid: new_sid("SK"),
                account_sid: me.into(),
                secret: new_key_secret(),
                main: false,
                friendly_name,
            };
            st.api_keys.insert(key.sid.clone(), key.clone());
            json_response(
                StatusCode::CREATED,
                json!({"sid": key.sid, "friendly_name": key.friendly_name, "date_created": now(), "date_updated": now(), "secret": key.secret}),
            )
        }
        ("GET", ["2010-04-01", "Accounts", _, "Keys", sid]) => {
            match st.api_keys.get(*sid).filter(|k| k.account_sid == me) {
                Some(k) => json_response(
                    StatusCode::OK,
                    json!({"sid": k.sid, "friendly_name": k.friendly_name, "date_created": now(), "date_updated": now()}),
                ),
                None => not_found(path),
            }
        }
        ("DELETE", ["2010-04-01", "Accounts", _, "Keys", sid]) => {
            if st.api_keys.get(*sid).is_none_or(|k| k.account_sid != me) {
                return not_found(path);
            }
            st.api_keys.remove(*sid);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(path),
    }
}

/// `Trunks`: the trunks themselves.
fn trunks(call: Call) -> Response {
    let Call { st, account, method, path, segments, form, base, query } = call;
    let me = account.sid.as_str();
    match (method, segments) {
        ("POST", ["v1", "Trunks"]) => {
            let friendly_name = form.get("FriendlyName").cloned().unwrap_or_default();
            let domain_name = form.get("DomainName").cloned().unwrap_or_default();
            let transfer_mode = form.get("TransferMode").cloned().unwrap_or_else(|| "disable-all".into());
            if friendly_name.chars().count() > 64 {
                return twilio_error(400, 20001, "FriendlyName must be at most 64 characters");
            }
            if !domain_name.is_empty() {
                let label = domain_name.strip_suffix(".pstn.twilio.com");
                if !label.is_some_and(is_label) {
                    return twilio_error(400, 21245, "Invalid DomainName: it must be <label>.pstn.twilio.com");
                }
                let taken = st.trunks.values().any(|t| t.domain_name.eq_ignore_ascii_case(&domain_name))
                    || st.reserved_domains.iter().any(|d| d.eq_ignore_ascii_case(&domain_name));
                if taken {
                    return twilio_error(400, 21248, "DomainName is already in use");
                }
            }
            let trunks = st.trunks.values().filter(|t| t.account_sid == me).count();
            let limit = if account.account_type == "Trial" { TRIAL_TRUNK_LIMIT } else { TRUNK_LIMIT };
            if trunks >= limit {
                return twilio_error(400, 21244, "Trunk limit reached: this account cannot create more SIP trunks");
            }
            if !["disable-all", "enable-all", "sip-only"].contains(&transfer_mode.as_str()) {
                return twilio_error(400, 20001, "Invalid TransferMode");
            }
            let secure = form.get("Secure").is_some_and(|s| s == "true");
            let trunk = Trunk {
                sid: new_sid("TK"),
                account_sid: me.into(),
                friendly_name,
                domain_name,
                transfer_mode,
                secure,
                disaster_recovery_url: form.get("DisasterRecoveryUrl").filter(|u| !u.is_empty()).cloned(),
                disaster_recovery_method: form.get("DisasterRecoveryMethod").cloned().unwrap_or_else(|| "POST".into()),
            };
            st.trunks.insert(trunk.sid.clone(), trunk.clone());
            json_response(StatusCode::CREATED, trunk_json(&trunk, base))
        }
        ("GET", ["v1", "Trunks"]) => {
            let items = st.trunks.values().filter(|t| t.account_sid == me).map(|t| trunk_json(t, base)).collect();
            page_v1("trunks", base, path, items, query)
        }
        ("GET", ["v1", "Trunks", sid]) => match st.trunks.get(*sid).filter(|t| t.account_sid == me) {
            Some(t) => json_response(StatusCode::OK, trunk_json(t, base)),
            None => not_found(path),
        },
        ("POST", ["v1", "Trunks", sid]) => {
            let Some(trunk) = st.trunks.get_mut(*sid).filter(|t| t.account_sid == me) else {
                return not_found(path);
            };
            if let Some(mode) = form.get("TransferMode") {
                if !["disable-all", "enable-all", "sip-only"].contains(&mode.as_str()) {
                    return twilio_error(400, 20001, "Invalid TransferMode");
                }
                trunk.transfer_mode = mode.clone();
            }
            if let Some(url) = form.get("DisasterRecoveryUrl") {
                trunk.disaster_recovery_url = Some(url.clone()).filter(|u| !u.is_empty());
            }
            if let Some(method) = form.get("DisasterRecoveryMethod") {
                trunk.disaster_recovery_method = method.clone();
            }
            if let Some(secure) = form.get("Secure") {
                trunk.secure = secure == "true";
            }
            if let Some(name) = form.get("FriendlyName") {
                trunk.friendly_name = name.clone();
            }
            let trunk = trunk.clone();
            json_response(StatusCode::OK, trunk_json(&trunk, base))
        }
        ("DELETE", ["v1", "Trunks", sid]) => {
            if st.trunks.get(*sid).is_none_or(|t| t.account_sid != me) {
                return not_found(path);
            }
            let trunk = st.trunks.remove(*sid).expect("checked above");
            st.reserved_domains.push(trunk.domain_name);
            st.trunk_credential_lists.retain(|(t, _)| t != sid);
            st.origination_urls.retain(|_, o| o.trunk_sid != *sid);
            for number in st.incoming_numbers.values_mut() {
                if number.trunk_sid.as_deref() == Some(*sid) {
                    number.trunk_sid = None;
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(path),
    }
}

/// `Trunks/{Sid}/CredentialLists`: credential lists on a trunk.
fn trunk_credential_lists(call: Call) -> Response {
    let Call { st, account, method, path, segments, form, base, query } = call;
    let me = account.sid.as_str();
    match (method, segments) {
        ("POST", ["v1", "Trunks", trunk_sid, "CredentialLists"]) => {
            if st.trunks.get(*trunk_sid).is_none_or(|t| t.account_sid != me) {
                return not_found(path);
            }
            let Some(list_sid) = form.get("CredentialListSid") else {
                return twilio_error(400, 20001, "Missing required parameter CredentialListSid in the post body");
            };
            let Some(list) = st.credential_lists.get(list_sid).filter(|l| l.account_sid == me).cloned() else {
                return twilio_error(400, 20001, "CredentialListSid is not a credential list of this account");
            };
            let pair = (trunk_sid.to_string(), list_sid.clone());
            if st.trunk_credential_lists.contains(&pair) {
                return twilio_error(409, 20001, "The credential list is already associated with this trunk");
            }
            st.trunk_credential_lists.push(pair);
            json_response(
                StatusCode::CREATED,
                json!({
                    "account_sid": me, "sid": list.sid, "trunk_sid": trunk_sid, "friendly_name": list.friendly_name,
                    "date_created": "2026-11-16T10:00:00Z", "date_updated": "2026-11-16T10:00:00Z",
                    "url": format!("{base}/v1/Trunks/{trunk_sid}/CredentialLists/{}", list.sid)
                }),
            )
        }
        ("GET", ["v1", "Trunks", trunk_sid, "CredentialLists"]) => {
            if st.trunks.get(*trunk_sid).is_none_or(|t| t.account_sid != me) {
                return not_found(path);
            }
            let items = st
                .trunk_credential_lists
                .iter()
                .filter(|(t, _)| t == trunk_sid)
                .filter_map(|(_, l)| st.credential_lists.get(l))
                .map(|l| {
                    json!({"account_sid": me, "sid": l.sid, "trunk_sid": trunk_sid, "friendly_name": l.friendly_name,
                                "url": format!("{base}/v1/Trunks/{trunk_sid}/CredentialLists/{}", l.sid)})
                })
                .collect();
            page_v1("credential_lists", base, path, items, query)
        }
        ("DELETE", ["v1", "Trunks", trunk_sid, "CredentialLists", list_sid]) => {
            let before = st.trunk_credential_lists.len();
            let owned = st.trunks.get(*trunk_sid).is_some_and(|t| t.account_sid == me);
            st.trunk_credential_lists.retain(|(t, l)| !(owned && t == trunk_sid && l == list_sid));
            if st.trunk_credential_lists.len() == before {
                not_found(path)
            } else {
                StatusCode::NO_CONTENT.into_response()
            }
        }
        _ => not_found(path),
    }
}

/// `Trunks/{Sid}/PhoneNumbers`: numbers on a trunk; Twilio offers them in US1 only.
fn trunk_phone_numbers(call: Call) -> Response {
    let Call { st, account, method, path, segments, form, base, query } = call;
    let me = account.sid.as_str();
    match (method, segments) {
        _ if st.region != "us1" => not_found(path),
        ("POST", ["v1", "Trunks", trunk_sid, "PhoneNumbers"]) => {
            if st.trunks.get(*trunk_sid).is_none_or(|t| t.account_sid != me) {
                return not_found(path);
            }
            let Some(number_sid) = form.get("PhoneNumberSid") else {
                return twilio_error(400, 20001, "Missing required parameter PhoneNumberSid in the post body");
            };
            let Some(number) = st.incoming_numbers.get_mut(number_sid).filter(|n| n.account_sid == me) else {
                return twilio_error(400, 20001, "PhoneNumberSid is not a phone number of this account");
            };
            if number.trunk_sid.as_deref() == Some(*trunk_sid) {
                return twilio_error(409, 20409, "The phone number is already associated with this trunk");
            }
            // On a trunk, the trunk routes the number's calls: Twilio ignores its voice URL
            // (kept) and drops its voice application.
            number.trunk_sid = Some(trunk_sid.to_string());
            number.voice_application_sid = None;
            let number = number.clone();
            json_response(StatusCode::CREATED, trunk_number_json(&number, base))
        }
        ("GET", ["v1", "Trunks", trunk_sid, "PhoneNumbers"]) => {
            if st.trunks.get(*trunk_sid).is_none_or(|t| t.account_sid != me) {
                return not_found(path);
            }
            let items = st
                .incoming_numbers
                .values()
                .filter(|n| n.trunk_sid.as_deref() == Some(*trunk_sid))
                .map(|n| trunk_number_json(n, base))
                .collect();
            page_v1("phone_numbers", base, path, items, query)
        }
        ("DELETE", ["v1", "Trunks", trunk_sid, "PhoneNumbers", number_sid]) => {
            match st
                .incoming_numbers
                .get_mut(*number_sid)
                .filter(|n| n.account_sid == me && n.trunk_sid.as_deref() == Some(*trunk_sid))
            {
                Some(number) => {
                    number.trunk_sid = None;
                    StatusCode::NO_CONTENT.into_response()
                }
                None => not_found(path),
            }
        }
        _ => not_found(path),
    }
}

/// `Trunks/{Sid}/OriginationUrls`.
fn origination_urls(call: Call) -> Response {
    let Call { st, account, method, path, segments, form, base, query } = call;
    let me = account.sid.as_str();
    match (method, segments) {
        ("POST", ["v1", "Trunks", trunk_sid, "OriginationUrls"]) => {
            if st.trunks.get(*trunk_sid).is_none_or(|t| t.account_sid != me) {
                return not_found(path);
            }
            let missing: Vec<&str> = ["Weight", "Priority", "Enabled", "FriendlyName", "SipUrl"]
                .into_iter()
                .filter(|name| !form.contains_key(*name))
                .collect();
            if !missing.is_empty() {
                return twilio_error(
                    400,
                    21201,
                    &format!("Missing required parameter {} in the post body", missing.join(", ")),
                );
            }
            let mut origination = OriginationUrl {
                sid: new_sid("OU"),
                account_sid: me.into(),
                trunk_sid: trunk_sid.to_string(),
                sip_url: String::new(),
                enabled: false,
                friendly_name: String::new(),
                priority: 0,
                weight: 0,
            };
            if let Err(response) = apply_origination_form(&mut origination, &form) {
                return response;
            }
            st.origination_urls.insert(origination.sid.clone(), origination.clone());
            json_response(StatusCode::CREATED, origination_url_json(&origination, base))
        }
        ("GET", ["v1", "Trunks", trunk_sid, "OriginationUrls"]) => {
            if st.trunks.get(*trunk_sid).is_none_or(|t| t.account_sid != me) {
                return not_found(path);
            }
            let items = st
                .origination_urls
                .values()
                .filter(|o| o.trunk_sid == *trunk_sid)
                .map(|o| origination_url_json(o, base))
                .collect();
            page_v1("origination_urls", base, path, items, query)
        }
        ("GET", ["v1", "Trunks", trunk_sid, "OriginationUrls", sid]) => {
            match st.origination_urls.get(*sid).filter(|o| o.trunk_sid == *trunk_sid && o.account_sid == me) {
                Some(o) => json_response(StatusCode::OK, origination_url_json(o, base)),
                None => not_found(path),
            }
        }
        ("POST", ["v1", "Trunks", trunk_sid, "OriginationUrls", sid]) => {
            let Some(origination) =
                st.origination_urls.get_mut(*sid).filter(|o| o.trunk_sid == *trunk_sid && o.account_sid == me)
            else {
                return not_found(path);
            };
            let mut updated = origination.clone();
            if let Err(response) = apply_origination_form(&mut updated, &form) {
                return response;
            }
            *origination = updated.clone();
            json_response(StatusCode::OK, origination_url_json(&updated, base))
        }
        ("DELETE", ["v1", "Trunks", trunk_sid, "OriginationUrls", sid]) => {
            if st.origination_urls.get(*sid).is_none_or(|o| o.trunk_sid != *trunk_sid || o.account_sid != me) {
                return not_found(path);
            }
            st.origination_urls.remove(*sid);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(path),
    }
}

/// `Accounts/{Sid}/SIP/CredentialLists`: credential lists and their credentials.
fn credential_lists(call: Call) -> Response {
    let Call { st, account, method, path, segments, form, query, .. } = call;
    let me = account.sid.as_str();
    match (method, segments) {
        ("POST", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists"]) => {
            let Some(friendly_name) = form.get("FriendlyName").filter(|n| !n.is_empty()).cloned() else {
                return twilio_error(400, 21201, "Missing required parameter FriendlyName in the post body");
            };
            if friendly_name.chars().count() > 64 {
                return twilio_error(400, 20001, "FriendlyName must be at most 64 characters");
            }
            if st.credential_lists.values().filter(|l| l.account_sid == me).count() >= CREDENTIAL_LIST_LIMIT {
                return twilio_error(400, 21239, "Credential list limit reached for this account");
            }
            if st.credential_lists.values().any(|l| l.account_sid == me && l.friendly_name == friendly_name) {
                return twilio_error(400, 21240, "A credential list with this FriendlyName already exists");
            }
            let list = CredentialList { sid: new_sid("CL"), account_sid: me.into(), friendly_name };
            st.credential_lists.insert(list.sid.clone(), list.clone());
            json_response(StatusCode::CREATED, credential_list_json(&list))
        }
        ("GET", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists"]) => {
            let items =
                st.credential_lists.values().filter(|l| l.account_sid == me).map(credential_list_json).collect();
            page_2010("credential_lists", path, items, query)
        }
        ("GET", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", sid]) => {
            match st.credential_lists.get(*sid).filter(|l| l.account_sid == me) {
                Some(l) => json_response(StatusCode::OK, credential_list_json(l)),
                None => not_found(path),
            }
        }
        ("DELETE", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", sid]) => {
            if st.credential_lists.get(*sid).is_none_or(|l| l.account_sid != me) {
                return not_found(path);
            }
            st.credential_lists.remove(*sid);
            st.credentials.retain(|_, c| c.credential_list_sid != *sid);
            st.trunk_credential_lists.retain(|(_, l)| l != sid);
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", list_sid, "Credentials"]) => {
            if st.credential_lists.get(*list_sid).is_none_or(|l| l.account_sid != me) {
                return not_found(path);
            }
            let (Some(username), Some(password)) = (form.get("Username"), form.get("Password")) else {
                return twilio_error(400, 21201, "Missing required parameter Username or Password in the post body");
            };
            if username.is_empty()
                || username.len() > 32
                || !username.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return twilio_error(400, 20001, "Username must be 1 to 32 characters of letters, digits, '-' and '_'");
            }
            let strong = password.len() >= 12
                && password.bytes().any(|b| b.is_ascii_digit())
                && password.bytes().any(|b| b.is_ascii_uppercase())
                && password.bytes().any(|b| b.is_ascii_lowercase());
            if !strong {
                return twilio_error(
                    400,
                    20001,
                    "Password must be at least 12 characters with a digit, an upper-case and a lower-case letter",
                );
            }
            if st.credentials.values().any(|c| c.credential_list_sid == *list_sid && c.username == *username) {
                return twilio_error(400, 20001, "Username already exists in this credential list");
            }
            let credential = Credential {
                sid: new_sid("CR"),
                account_sid: me.into(),
                credential_list_sid: list_sid.to_string(),
                username: username.clone(),
                password: password.clone(),
            };
            st.credentials.insert(credential.sid.clone(), credential.clone());
            json_response(StatusCode::CREATED, credential_json(&credential))
        }
        ("DELETE", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", list_sid, "Credentials", sid]) => {
            let owned =
                st.credentials.get(*sid).is_some_and(|c| c.credential_list_sid == *list_sid && c.account_sid == me);
            if !owned {
                return not_found(path);
            }
            st.credentials.remove(*sid);
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", ["2010-04-01", "Accounts", _, "SIP", "CredentialLists", list_sid, "Credentials"]) => {
            if st.credential_lists.get(*list_sid).is_none_or(|l| l.account_sid != me) {
                return not_found(path);
            }
            let items =
                st.credentials.values().filter(|c| c.credential_list_sid == *list_sid).map(credential_json).collect();
            page_2010("credentials", path, items, query)
        }
        _ => not_found(path),
    }
}

/// `Accounts/{Sid}/Applications`: made in the console; only read.
fn applications(call: Call) -> Response {
    let Call { st, account, method, path, segments, .. } = call;
    let me = account.sid.as_str();
    match (method, segments) {
        ("GET", ["2010-04-01", "Accounts", _, "Applications", sid]) => match st.applications.get(*sid) {
            Some(account) if *account == me => json_response(
                StatusCode::OK,
                json!({
                    "account_sid": account, "sid": sid, "friendly_name": "Customer application",
                    "api_version": "2010-04-01", "voice_url": "https://example.com/twiml", "voice_method": "POST",
                    "date_created": now(), "date_updated": now(),
                    "uri": format!("/2010-04-01/Accounts/{account}/Applications/{sid}.json"),
                }),
            ),
            _ => not_found(path),
        },
        _ => not_found(path),
    }
}

/// `Accounts/{Sid}/IncomingPhoneNumbers`.
fn incoming_numbers(call: Call) -> Response {
    let Call { st, account, method, path, segments, form, query, .. } = call;
    let me = account.sid.as_str();
    match (method, segments) {
        ("GET", ["2010-04-01", "Accounts", _, "IncomingPhoneNumbers"]) => {
            let items = st.incoming_numbers.values().filter(|n| n.account_sid == me).map(number_json).collect();
            page_2010("incoming_phone_numbers", path, items, query)
        }
        ("GET", ["2010-04-01", "Accounts", _, "IncomingPhoneNumbers", sid]) => {
            match st.incoming_numbers.get(*sid).filter(|n| n.account_sid == me) {
                Some(n) => json_response(StatusCode::OK, number_json(n)),
                None => not_found(path),
            }
        }
        ("POST", ["2010-04-01", "Accounts", _, "IncomingPhoneNumbers", sid]) => {
            if st.incoming_numbers.get(*sid).is_none_or(|n| n.account_sid != me) {
                return not_found(path);
            }
            // What the number is pointed at must exist in the account: a deleted trunk or
            // application is refused, the number left as it was.
            if let Some(trunk) = form.get("TrunkSid").filter(|t| !t.is_empty())
                && st.trunks.get(trunk).is_none_or(|t| t.account_sid != me)
            {
                return twilio_error(400, 20001, "Invalid parameter TrunkSid: no such trunk in this account");
            }
            if let Some(app) = form.get("VoiceApplicationSid").filter(|a| !a.is_empty())
                && st.applications.get(app).is_none_or(|account| *account != me)
            {
                return twilio_error(400, 21218, "Invalid ApplicationSid");
            }
            let number = st.incoming_numbers.get_mut(*sid).expect("checked above");
            let empty_to_none = |v: &String| (!v.is_empty()).then(|| v.clone());
            if let Some(url) = form.get("VoiceUrl") {
                number.voice_url = empty_to_none(url);
            }
            if let Some(url) = form.get("VoiceFallbackUrl") {
                number.voice_config.voice_fallback_url = empty_to_none(url);
            }
            if let Some(url) = form.get("StatusCallback") {
                number.voice_config.status_callback = empty_to_none(url);
            }
            for (name, field) in [
                ("VoiceMethod", &mut number.voice_config.voice_method),
                ("VoiceFallbackMethod", &mut number.voice_config.voice_fallback_method),
                ("StatusCallbackMethod", &mut number.voice_config.status_callback_method),
            ] {
                if let Some(method) = form.get(name) {
                    *field = method.clone();
                }
            }
            // Setting a TrunkSid drops the voice application and setting a VoiceApplicationSid
            // takes the number off its trunk (the spec's UpdateIncomingPhoneNumber).
            if let Some(app) = form.get("VoiceApplicationSid") {
                number.voice_application_sid = empty_to_none(app);
                if number.voice_application_sid.is_some() {
                    number.trunk_sid = None;
                }
            }
            if let Some(trunk) = form.get("TrunkSid") {
                number.trunk_sid = empty_to_none(trunk);
                if number.trunk_sid.is_some() {
                    number.voice_application_sid = None;
                }
            }
            let number = number.clone();
            json_response(StatusCode::OK, number_json(&number))
        }
        _ => not_found(path),
    }
}

/// `v2/PhoneNumbers/{E164}` (Routes): a number's inbound processing Region.
fn routes(call: Call) -> Response {
    let Call { st, account, method, path, segments, form, base, .. } = call;
    let me = account.sid.as_str();
    match (method, segments) {
        (method @ ("GET" | "POST"), ["v2", "PhoneNumbers", e164]) => {
            let Some(number) =
                st.incoming_numbers.values_mut().find(|n| n.account_sid == me && n.phone_number == *e164)
            else {
                return not_found(path);
            };
            if method == "POST" {
                match form.get("VoiceRegion").map(String::as_str) {
                    Some(region @ ("us1" | "ie1" | "au1")) => number.voice_region = Some(region.to_owned()),
                    Some(_) => return twilio_error(400, 20001, "Invalid parameter VoiceRegion"),
                    None => {}
                }
            }
            let Some(voice_region) = number.voice_region.clone() else { return not_found(path) };
            json_response(
                StatusCode::OK,
                json!({
                    "phone_number": number.phone_number, "url": format!("{base}{path}"),
                    "sid": format!("QQ{}", &number.sid[2..]), "account_sid": me,
                    "friendly_name": Value::Null, "voice_region": voice_region,
                    "date_created": now(), "date_updated": now(),
                }),
            )
        }
        _ => not_found(path),
    }
}
