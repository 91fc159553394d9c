//! `fake-twilio`: the stateful fake Twilio as a local sandbox, so the service can be tried
//! without a Twilio account. It starts with one demo account and a few incoming numbers.
//!
//! Usage: fake-twilio [--listen 127.0.0.1:4010] [--listen-ie1 HOST:PORT] [--listen-au1 HOST:PORT]
//! `--listen` serves Twilio's US1 Region; `--listen-ie1` and `--listen-au1` serve IE1 and AU1,
//! each with its own state. The demo account and its numbers are in every Region served, with a
//! token of its own in each (Twilio's tokens are per Region).
//! Environment: FAKE_TWILIO_ACCOUNT_SID, FAKE_TWILIO_AUTH_TOKEN (US1's; defaults below);
//! FAKE_TWILIO_EXTRA_ACCOUNTS=N adds N more active accounts (in every Region served) with the
//! same token as the demo account's there, numbered 2 to
//! N+1: `AC{n:032x}`, each with numbers `PN{n:030x}{k:02x}` (k = 1..K), so that a client can
//! create many providers (one per account) in one organization (scripts/lib/schemathesis.sh);
//! FAKE_TWILIO_NUMBERS_PER_ACCOUNT=K (3 to 255, default 3) also gives the demo account K numbers
//! (`PN{0:030x}{k:02x}`). US1's demo account also has a Standard API key (printed at start).

use integration_tests::fake_twilio::{DEMO_API_KEY_SECRET, DEMO_API_KEY_SID, FakeTwilio};

const DEMO_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
const DEMO_AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
/// The demo account's tokens in IE1 and AU1.
const DEMO_AUTH_TOKEN_IE1: &str = "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1";
const DEMO_AUTH_TOKEN_AU1: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
/// Fixed so that `events/import-numbers.json` imports a real sandbox number.
const DEMO_NUMBER_SIDS: [&str; 3] =
    ["PN00000000000000000000000000000001", "PN00000000000000000000000000000002", "PN00000000000000000000000000000003"];

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:4010".to_owned();
    let mut regional: Vec<(&str, &str, String)> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().unwrap_or_else(|| usage("--listen needs an address")),
            "--listen-ie1" => regional.push((
                "ie1",
                DEMO_AUTH_TOKEN_IE1,
                args.next().unwrap_or_else(|| usage("--listen-ie1 needs an address")),
            )),
            "--listen-au1" => regional.push((
                "au1",
                DEMO_AUTH_TOKEN_AU1,
                args.next().unwrap_or_else(|| usage("--listen-au1 needs an address")),
            )),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let addr = listen.parse().unwrap_or_else(|_| usage("--listen must be HOST:PORT"));
    let sid = std::env::var("FAKE_TWILIO_ACCOUNT_SID").unwrap_or_else(|_| DEMO_ACCOUNT_SID.into());
    let token = std::env::var("FAKE_TWILIO_AUTH_TOKEN").unwrap_or_else(|_| DEMO_AUTH_TOKEN.into());
    let extra: u32 = match std::env::var("FAKE_TWILIO_EXTRA_ACCOUNTS") {
        Ok(value) => value
            .parse()
            .ok()
            .filter(|n| *n <= 9998)
            .unwrap_or_else(|| usage("FAKE_TWILIO_EXTRA_ACCOUNTS must be a whole number up to 9998")),
        Err(_) => 0,
    };
    let per_account: u32 = match std::env::var("FAKE_TWILIO_NUMBERS_PER_ACCOUNT") {
        Ok(value) => value
            .parse()
            .ok()
            .filter(|n| (3..=255).contains(n))
            .unwrap_or_else(|| usage("FAKE_TWILIO_NUMBERS_PER_ACCOUNT must be a whole number from 3 to 255")),
        Err(_) => 3,
    };
    let fake = FakeTwilio::start_on(addr).await;
    populate(&fake, &sid, &token, extra, per_account);
    fake.add_api_key_with(DEMO_API_KEY_SID, DEMO_API_KEY_SECRET, &sid, false);
    for (region, regional_token, listen) in &regional {
        let addr = listen.parse().unwrap_or_else(|_| usage("--listen-ie1 and --listen-au1 must be HOST:PORT"));
        let regional_fake = FakeTwilio::start_on_in(addr, region).await;
        populate(&regional_fake, &sid, regional_token, extra, per_account);
        println!("fake Twilio {region} listening on {} (demo token {regional_token})", regional_fake.base_url);
    }
    println!("fake Twilio listening on {}", fake.base_url);
    println!("demo account: accountSid={sid} authToken={token}");
    println!("demo numbers: {}", DEMO_NUMBER_SIDS.join(" "));
    println!("demo Standard API key (us1): apiKeySid={DEMO_API_KEY_SID} apiKeySecret={DEMO_API_KEY_SECRET}");
    if extra > 0 {
        println!("extra accounts: AC{:032x} to AC{:032x} (token {token})", 2, extra + 1);
    }
    tokio::signal::ctrl_c().await.expect("wait for Ctrl-C");
}

/// One Region's accounts: the demo account with its numbers (the first routed by a voice URL;
/// past the first three they follow on from them), and the extra accounts with theirs, all
/// with the Region's token.
fn populate(fake: &FakeTwilio, sid: &str, token: &str, extra: u32, per_account: u32) {
    fake.add_account_with(sid, token, "active", "Full");
    fake.add_incoming_number_with_sid(DEMO_NUMBER_SIDS[0], sid, "+15005550006", Some("https://demo.example.com/voice"));
    fake.add_incoming_number_with_sid(DEMO_NUMBER_SIDS[1], sid, "+15005550007", None);
    fake.add_incoming_number_with_sid(DEMO_NUMBER_SIDS[2], sid, "+15005550008", None);
    for k in 4..=per_account {
        fake.add_incoming_number_with_sid(&format!("PN{:030x}{k:02x}", 0), sid, &format!("+15005551{k:03}"), None);
    }
    for n in 2..extra + 2 {
        let account = format!("AC{n:032x}");
        fake.add_account_with(&account, token, "active", "Full");
        for k in 1..=per_account {
            let number = format!("+1555{n:04}{k:03}");
            fake.add_incoming_number_with_sid(&format!("PN{n:030x}{k:02x}"), &account, &number, None);
        }
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("fake-twilio: {problem}");
    }
    eprintln!("usage: fake-twilio [--listen HOST:PORT] [--listen-ie1 HOST:PORT] [--listen-au1 HOST:PORT]");
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}
