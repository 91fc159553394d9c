//! A function killed at any instant between its first change in the customer's Twilio account
//! and the write that makes the change official (a Lambda timeout, an out-of-memory kill)
//! leaves nothing only the dead process knew about: the sweeper, taking every intent as
//! abandoned (grace 0), brings Twilio and the table back into agreement.
//!
//! The kill: the chosen Twilio request is done and never answered (or the final DynamoDB
//! transaction never reaches the table), and the handler's future is dropped once it is
//! waiting there, whatever its sibling requests have done by then.

use crate::harness::{Req, TestEnv, create_provider, status_and_body};
use functions::handlers::{
    create_twilio_provider, delete_provider, finish_sip_credential_rotation, import_numbers, remove_phone_number,
    repair_provider, rotate_sip_credential,
};
use integration_tests::aws_proxy::{AwsProxy, Failure};
use integration_tests::fake_twilio::FaultAction;
use serde_json::json;
use shared::model::OrganizationId;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use uuid::Uuid;

const ORG: &str = "org-crashes";
const FINAL_WRITE: &str = "DynamoDB_20120810.TransactWriteItems";
/// The Twilio steps of a new provider's resources, as create (and a repair of a provider whose
/// trunk and credential list were deleted) takes them.
const NEW_RESOURCES: [&str; 5] =
    ["create_trunk", "create_credential_list", "create_credential", "attach_credential_list", "create_origination_url"];

#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Once this Twilio request (a step of the fake) is done.
    Twilio(&'static str),
    /// Once the final DynamoDB transaction is sent (it never reaches the table).
    FinalWrite,
}

/// Runs `work` until it is waiting at `at`, then drops it (the function dies there).
async fn kill_at<F: Future>(env: &TestEnv, proxy: &AwsProxy, at: KillAt, work: F) {
    let writes_before = proxy.counts().get(FINAL_WRITE).copied().unwrap_or(0);
    match at {
        KillAt::Twilio(step) => env.fake.inject(step, FaultAction::CommitThenHang, Some(1)),
        KillAt::FinalWrite => proxy.fail_with(FINAL_WRITE, Failure::Hang, Some(1)),
    }
    let reached = async {
        loop {
            let reached = match at {
                KillAt::Twilio(step) => env.fake.request_log().iter().any(|r| r.step == step && r.status == 0),
                KillAt::FinalWrite => proxy.counts().get(FINAL_WRITE).copied().unwrap_or(0) > writes_before,
            };
            if reached {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Requests sent beside it finish or not: either is a state a kill can leave.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::select! {
        _ = work => panic!("the work finished: it was not killed at {at:?}"),
        reached = tokio::time::timeout(Duration::from_secs(60), reached) => {
            reached.unwrap_or_else(|_| panic!("the work never reached {at:?}"));
        }
    }
    env.fake.clear_faults();
    proxy.clear();
}

/// The routing of every number of the account: (trunk, voice URL, application).
type Routings = BTreeMap<String, (Option<String>, Option<String>, Option<String>)>;

/// The account before the work: its numbers' routings, and the SIDs of what was there (the
/// customer's own trunks among them).
#[derive(Default)]
struct Before {
    routings: Routings,
    sids: BTreeSet<String>,
}

fn before(env: &TestEnv, account_sid: &str) -> Before {
    let state = env.fake.state();
    let trunks = state.trunks.values().filter(|t| t.account_sid == account_sid).map(|t| t.sid.clone());
    let lists = state.credential_lists.values().filter(|l| l.account_sid == account_sid).map(|l| l.sid.clone());
    let credentials = state.credentials.values().filter(|c| c.account_sid == account_sid).map(|c| c.sid.clone());
    let sids = trunks.chain(lists).chain(credentials).collect();
    drop(state);
    Before { routings: routings(env, account_sid), sids }
}

fn routings(env: &TestEnv, account_sid: &str) -> Routings {
    let state = env.fake.state();
    let numbers = state.incoming_numbers.values().filter(|n| n.account_sid == account_sid);
    numbers
        .map(|n| (n.sid.clone(), (n.trunk_sid.clone(), n.voice_url.clone(), n.voice_application_sid.clone())))
        .collect()
}

/// Runs the sweeper with grace 0 and checks that Twilio and the table agree: every trunk, list,
/// credential and origination URL is the customer's own or belongs to the provider's record
/// (if any), every number on its trunk has a record, every number without one has its routing
/// from before import, and nothing is left for a later sweep.
async fn sweep_and_check(env: &TestEnv, account_sid: &str, provider_id: Option<Uuid>, before: &Before, at: KillAt) {
    let swept = functions::provider::sweep::run(&env.services, Some(Duration::ZERO)).await.unwrap();
    assert_eq!((swept.remaining, swept.pending, swept.stuck), (0, 0, 0), "{at:?}: {swept:?}");
    let org = OrganizationId::parse(ORG).unwrap();
    let store = &env.services.store;
    let provider = match provider_id {
        Some(id) => store.get_provider(&org, id).await.unwrap(),
        None => None,
    };
    let credential = match &provider {
        Some(p) => store.get_sip_credential(&org, p.id).await.unwrap().map(|c| c.credential_sid.to_string()),
        None => None,
    };
    let trunk = provider.as_ref().map(|p| p.trunk_sid.to_string());
    let list = provider.as_ref().map(|p| p.credential_list_sid.to_string());
    let known = |sid: &String, ours: &Option<String>| before.sids.contains(sid) || Some(sid) == ours.as_ref();
    {
        let state = env.fake.state();
        for t in state.trunks.values().filter(|t| t.account_sid == account_sid) {
            assert!(known(&t.sid, &trunk), "{at:?}: a trunk no provider names: {}", t.sid);
        }
        for l in state.credential_lists.values().filter(|l| l.account_sid == account_sid) {
            assert!(known(&l.sid, &list), "{at:?}: a credential list no provider names: {}", l.sid);
        }
        for c in state.credentials.values().filter(|c| c.account_sid == account_sid) {
            assert!(known(&c.sid, &credential), "{at:?}: a SIP credential no provider names: {}", c.sid);
        }
        for o in state.origination_urls.values().filter(|o| o.account_sid == account_sid) {
            assert!(known(&o.trunk_sid, &trunk), "{at:?}: an origination URL on a trunk no provider names");
        }
    }
    let recorded: Vec<String> = match provider_id {
        Some(id) => store.all_numbers(&org, id).await.unwrap().iter().map(|n| n.phone_number_sid.to_string()).collect(),
        None => Vec::new(),
    };
    for (sid, routing) in routings(env, account_sid) {
        if recorded.contains(&sid) {
            continue;
        }
        assert!(routing.0.is_none() || routing.0 != trunk, "{at:?}: number {sid} on the trunk without a record");
        assert_eq!(Some(&routing), before.routings.get(&sid), "{at:?}: number {sid} did not get its routing back");
    }
    if let Some(id) = provider_id {
        assert!(store.intents_of(&org, id).await.unwrap().is_empty(), "{at:?}: intents left");
        assert!(store.leftover_resources(&org, id).await.unwrap().is_empty(), "{at:?}: leftovers left");
    }
}

fn twilio_provider(env: &TestEnv) -> (String, String) {
    env.fake.add_account("active", "Full")
}

#[tokio::test]
async fn a_create_killed_at_any_step_leaves_nothing_in_twilio() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    for at in NEW_RESOURCES.map(KillAt::Twilio).into_iter().chain([KillAt::FinalWrite]) {
        let (sid, token) = twilio_provider(&env);
        let body = json!({"name": "Killed", "accountSid": sid, "authToken": token}).to_string();
        let req = Req::new("POST", "/api/v1/providers/twilio").org(ORG).body(&body).build();
        kill_at(&env, &proxy, at, create_twilio_provider::handle(&env.services, req)).await;
        sweep_and_check(&env, &sid, None, &Before::default(), at).await;
        assert!(env.fake.trunks_of(&sid).is_empty() && env.fake.credential_lists_of(&sid).is_empty(), "{at:?}");
    }
    assert_eq!(env.item_count().await, 0, "no provider, intent or leftover stored");
}

/// A provider with numbers to import: one plain, one with a voice URL, one on the customer's
/// own trunk.
async fn provider_with_numbers(env: &TestEnv) -> (String, Uuid, Vec<String>) {
    let (sid, token) = twilio_provider(env);
    let id = create_provider(env, ORG, &sid, &token).await["id"].as_str().unwrap().parse().unwrap();
    let their_trunk = env.fake.add_trunk(&sid);
    let numbers = vec![
        env.fake.add_incoming_number(&sid, "+15550900001", None),
        env.fake.add_incoming_number(&sid, "+15550900002", Some("https://example.com/voice?token=x")),
        env.fake.add_incoming_number(&sid, "+15550900003", None),
    ];
    env.fake.state().incoming_numbers.get_mut(&numbers[2]).unwrap().trunk_sid = Some(their_trunk);
    (sid, id, numbers)
}

async fn import(env: &TestEnv, id: Uuid, numbers: &[String]) -> (u16, serde_json::Value) {
    let body = json!({"phoneNumberSids": numbers}).to_string();
    let req = Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers")
        .org(ORG)
        .param("id", &id.to_string())
        .body(&body)
        .build();
    status_and_body(&import_numbers::handle(&env.services, req).await.unwrap())
}

#[tokio::test]
async fn an_import_killed_at_any_step_gives_the_number_back() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    for at in [KillAt::Twilio("update_incoming_number"), KillAt::FinalWrite] {
        let (sid, id, numbers) = provider_with_numbers(&env).await;
        let before = before(&env, &sid);
        let body = json!({"phoneNumberSids": [numbers[1]]}).to_string();
        let req = Req::new("POST", "/api/v1/providers/twilio/{id}/import-numbers")
            .org(ORG)
            .param("id", &id.to_string())
            .body(&body)
            .build();
        kill_at(&env, &proxy, at, import_numbers::handle(&env.services, req)).await;
        sweep_and_check(&env, &sid, Some(id), &before, at).await;
        let (status, result) = import(&env, id, &numbers[1..2]).await;
        assert_eq!((status, result["successCount"].as_u64()), (200, Some(1)), "{at:?}: imports again: {result}");
    }
}

#[tokio::test]
async fn a_removal_killed_at_any_step_is_finished() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    for at in [KillAt::Twilio("detach_phone_number"), KillAt::Twilio("update_incoming_number"), KillAt::FinalWrite] {
        let (sid, id, numbers) = provider_with_numbers(&env).await;
        let before = before(&env, &sid);
        assert_eq!(import(&env, id, &numbers).await.1["successCount"], 3);
        // The number on the customer's trunk goes back with one update; the others are detached.
        let removed = if matches!(at, KillAt::Twilio("update_incoming_number")) { &numbers[2] } else { &numbers[1] };
        let org = OrganizationId::parse(ORG).unwrap();
        let all = env.services.store.all_numbers(&org, id).await.unwrap();
        let record = all.iter().find(|n| n.phone_number_sid.as_str() == removed).unwrap();
        let req = Req::new("DELETE", "/api/v1/providers/twilio/{id}/phone-numbers/{phoneNumberId}")
            .org(ORG)
            .param("id", &id.to_string())
            .param("phoneNumberId", &record.id.to_string())
            .build();
        kill_at(&env, &proxy, at, remove_phone_number::handle(&env.services, req)).await;
        sweep_and_check(&env, &sid, Some(id), &before, at).await;
        let left = env.services.store.all_numbers(&org, id).await.unwrap();
        assert_eq!(left.len(), 2, "{at:?}: the removal was finished");
        assert!(left.iter().all(|n| n.phone_number_sid.as_str() != removed), "{at:?}");
        assert_eq!(routings(&env, &sid)[removed], before.routings[removed], "{at:?}: given back");
    }
}

#[tokio::test]
async fn a_repair_killed_at_any_step_leaves_nothing_it_made() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let steps = NEW_RESOURCES.into_iter().chain(["update_incoming_number"]).map(KillAt::Twilio);
    for at in steps.chain([KillAt::FinalWrite]) {
        let (sid, id, numbers) = provider_with_numbers(&env).await;
        let before = before(&env, &sid);
        assert_eq!(import(&env, id, &numbers[..2]).await.1["successCount"], 2);
        // The customer deletes the trunk and the credential list (Twilio takes the numbers off
        // the trunk, and the credentials and attachment with the list).
        let org = OrganizationId::parse(ORG).unwrap();
        let provider = env.services.store.get_provider(&org, id).await.unwrap().unwrap();
        {
            let mut state = env.fake.state();
            let (trunk, list) = (provider.trunk_sid.to_string(), provider.credential_list_sid.to_string());
            state.trunks.remove(&trunk);
            state.credential_lists.remove(&list);
            state.credentials.retain(|_, c| c.credential_list_sid != list);
            state.trunk_credential_lists.retain(|(t, _)| *t != trunk);
            state.origination_urls.retain(|_, o| o.trunk_sid != trunk);
            state.incoming_numbers.values_mut().filter(|n| n.trunk_sid.as_ref() == Some(&trunk)).for_each(|n| {
                n.trunk_sid = None;
            });
        }
        let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id.to_string()).build();
        kill_at(&env, &proxy, at, repair_provider::handle(&env.services, req)).await;
        sweep_and_check(&env, &sid, Some(id), &before, at).await;
        // The lease lapses; a repair then builds it all again.
        env.services.store.end_repair_lease(&org, id).await.unwrap();
        let req = Req::new("POST", "/api/v1/providers/{id}/repair").org(ORG).param("id", &id.to_string()).build();
        let (status, body) = status_and_body(&repair_provider::handle(&env.services, req).await.unwrap());
        assert_eq!((status, body["verification"]["status"].as_str()), (200, Some("verified")), "{at:?}: {body}");
    }
}

#[tokio::test]
async fn a_sip_credential_rotation_killed_at_any_step_leaves_one_credential_the_table_names() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let org = OrganizationId::parse(ORG).unwrap();
    let path = "/api/v1/providers/{id}/sip-credential/rotate";
    for at in [KillAt::Twilio("create_credential"), KillAt::FinalWrite] {
        let (sid, id, _) = provider_with_numbers(&env).await;
        let before = before(&env, &sid);
        let req = Req::new("POST", path).org(ORG).param("id", &id.to_string()).build();
        kill_at(&env, &proxy, at, Box::pin(rotate_sip_credential::handle(&env.services, req))).await;
        Box::pin(sweep_and_check(&env, &sid, Some(id), &before, at)).await;
        assert_eq!(env.fake.credentials_of(&sid).len(), 1, "{at:?}");
        // The lease lapses; a rotation then goes through.
        env.services.store.end_repair_lease(&org, id).await.unwrap();
        let req = Req::new("POST", path).org(ORG).param("id", &id.to_string()).build();
        let (status, body) =
            status_and_body(&Box::pin(rotate_sip_credential::handle(&env.services, req)).await.unwrap());
        assert_eq!(status, 200, "{at:?}: {body}");
    }

    // A finish killed once Twilio removed the old credential: the next finish completes it.
    let (sid, id, _) = provider_with_numbers(&env).await;
    let before = before(&env, &sid);
    let req = Req::new("POST", path).org(ORG).param("id", &id.to_string()).build();
    assert_eq!(status_and_body(&Box::pin(rotate_sip_credential::handle(&env.services, req)).await.unwrap()).0, 200);
    let finish = || {
        Req::new("POST", "/api/v1/providers/{id}/sip-credential/rotate/finish")
            .org(ORG)
            .param("id", &id.to_string())
            .build()
    };
    let at = KillAt::Twilio("delete_credential");
    kill_at(&env, &proxy, at, Box::pin(finish_sip_credential_rotation::handle(&env.services, finish()))).await;
    env.services.store.end_repair_lease(&org, id).await.unwrap();
    let (status, body) =
        status_and_body(&Box::pin(finish_sip_credential_rotation::handle(&env.services, finish())).await.unwrap());
    assert_eq!((status, &body["previous"]), (200, &serde_json::Value::Null), "{body}");
    assert_eq!(env.fake.credentials_of(&sid).len(), 1);
    Box::pin(sweep_and_check(&env, &sid, Some(id), &before, at)).await;
}

/// Without an override the sweeper waits until the writer must be over: a live create's intent
/// (and the trunk it names) is left alone.
#[tokio::test]
async fn an_intent_younger_than_its_writers_timeout_is_left_alone() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let (sid, token) = twilio_provider(&env);
    let body = json!({"name": "Young", "accountSid": sid, "authToken": token}).to_string();
    let req = Req::new("POST", "/api/v1/providers/twilio").org(ORG).body(&body).build();
    let at = KillAt::Twilio("create_trunk");
    kill_at(&env, &proxy, at, create_twilio_provider::handle(&env.services, req)).await;
    let swept = functions::provider::sweep::run(&env.services, None).await.unwrap();
    assert_eq!((swept.cleared, swept.pending), (0, 1), "{swept:?}");
    assert_eq!(env.fake.trunks_of(&sid).len(), 1, "the trunk of a create that may be alive stays");
    let swept = functions::provider::sweep::run(&env.services, Some(Duration::from_secs(3600))).await.unwrap();
    assert_eq!(swept.pending, 1, "an hour's grace: still young");
    sweep_and_check(&env, &sid, None, &Before::default(), at).await;
}

/// A delete step killed while it gives numbers back (before it could queue the next step) is
/// continued by the sweeper through the deletion queue: the provider goes, every number back.
#[tokio::test]
async fn a_delete_killed_midway_is_continued() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    for at in [KillAt::Twilio("update_incoming_number"), KillAt::Twilio("detach_phone_number")] {
        let (sid, id, numbers) = provider_with_numbers(&env).await;
        let before = before(&env, &sid);
        assert_eq!(import(&env, id, &numbers).await.1["successCount"], 3);
        let req = Req::new("DELETE", "/api/v1/providers/{id}").org(ORG).param("id", &id.to_string()).build();
        kill_at(&env, &proxy, at, delete_provider::handle(&env.services, req)).await;
        let swept = functions::provider::sweep::run(&env.services, Some(Duration::ZERO)).await.unwrap();
        assert_eq!((swept.remaining, swept.stuck), (0, 0), "{at:?}: {swept:?}");
        env.drain_deletions(Duration::from_secs(30)).await;
        let org = OrganizationId::parse(ORG).unwrap();
        assert!(env.services.store.get_provider(&org, id).await.unwrap().is_none(), "{at:?}: deleted");
        sweep_and_check(&env, &sid, None, &before, at).await;
        assert!(env.services.store.intents_of(&org, id).await.unwrap().is_empty(), "{at:?}");
    }
}

/// An abandoned import gives up only its own reservation of the number: a later import of it
/// (the same provider's, its reservation taken after the dead one's lapsed) keeps its own, and
/// the sweep leaves the number to it.
#[tokio::test]
async fn an_abandoned_import_cancels_only_its_own_reservation() {
    let env = TestEnv::new().await;
    let (sid, id, numbers) = provider_with_numbers(&env).await;
    let org = OrganizationId::parse(ORG).unwrap();
    let provider = env.services.store.get_provider(&org, id).await.unwrap().unwrap();
    let number = shared::model::PhoneNumberSid::parse(&numbers[0]).unwrap();
    let dead = shared::storage::Intent::now(
        shared::storage::IntentKey::new(org.clone(), id),
        provider.account_sid.clone(),
        provider.twilio_region,
        provider.credential.clone(),
        shared::storage::Change::Attach {
            trunk_sid: provider.trunk_sid.clone(),
            number_sid: number.clone(),
            previous_routing: shared::model::VoiceRouting::default(),
            previous_routing_sealed: None,
            reservation: Uuid::now_v7(),
        },
    );
    env.services.store.record_intent(&dead).await.unwrap();
    env.services.store.reserve_number(&org, id, &number).await.unwrap();
    let swept = functions::provider::sweep::run(&env.services, Some(Duration::ZERO)).await.unwrap();
    assert_eq!(swept.remaining, 1, "the number waits for the live import: {swept:?}");
    assert_eq!(env.services.store.number_claim(&number).await.unwrap(), shared::storage::NumberClaim::Reserved);
    assert_eq!(env.fake.state().incoming_numbers[number.as_str()].trunk_sid, None, "{sid}: untouched");
}
