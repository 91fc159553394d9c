//! The scheduled jobs on SQS: the planner queues one item per provider or leftover record, the
//! worker answers SQS's partial batch response, and a result computed against an older record
//! never overwrites a newer one.

use crate::harness::{Req, TestEnv, create_provider, status_and_body};
use functions::handlers::update_twilio_provider;
use functions::handlers::{plan_jobs, run_jobs};
use functions::provider::jobs;
use integration_tests::fake_twilio::FaultAction;
use serde_json::{Value, json};
use shared::model::OrganizationId;
use shared::queue::{Job, JobItem, Queue};
use std::time::Duration;

async fn new_queue(env: &TestEnv) -> String {
    let name = format!("jobs-{}", uuid::Uuid::new_v4().simple());
    env.sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap()
}

/// Every message on the queue, as an SQS event.
async fn receive_all(env: &TestEnv, url: &str) -> Value {
    let mut records = Vec::new();
    loop {
        let out = env.sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return json!({ "Records": records });
        }
        for m in messages {
            records.push(json!({"messageId": m.message_id, "body": m.body, "eventSource": "aws:sqs"}));
            env.sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle.unwrap()).send().await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_planner_queues_every_provider_and_the_worker_verifies_each() {
    let env = TestEnv::new().await;
    let mut ids = Vec::new();
    for org in ["org-jobs-a", "org-jobs-a", "org-jobs-b"] {
        let (sid, token) = env.fake.add_account("active", "Full");
        ids.push((org, create_provider(&env, org, &sid, &token).await["id"].as_str().unwrap().to_owned()));
    }
    let url = new_queue(&env).await;
    let queue = Queue::new(env.sqs.clone(), &url);
    let planned = plan_jobs::handle(&env.services.store, &queue, &json!({"job": "reverify"})).await.unwrap();
    assert_eq!(planned, json!({"job": "reverify", "planned": 3}));
    let event = receive_all(&env, &url).await;
    let items: Vec<JobItem> = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i.job == Job::Reverify));

    let before = env.fake.request_log().len();
    assert_eq!(run_jobs::handle(&env.services, &event).await, json!({"batchItemFailures": []}));
    assert!(env.fake.request_log().len() > before, "each provider was verified against Twilio");
    // A malformed item is dropped, not retried for ever.
    let junk = json!({"Records": [{"messageId": "m1", "body": "{\"job\":\"reverify\"}"}]});
    assert_eq!(run_jobs::handle(&env.services, &junk).await, json!({"batchItemFailures": []}));
    assert!(plan_jobs::handle(&env.services.store, &queue, &json!({"job": "nope"})).await.is_err());

    let run = jobs::run_in_process(&env.services, Job::Reverify, 4, None).await.unwrap();
    assert_eq!((run.planned, run.verification.unwrap().verified), (3, 3));
}

/// A slow verification and a concurrent update: the job's result is dropped as stale, the
/// update stays.
#[tokio::test]
async fn a_result_computed_against_an_older_record_never_overwrites_a_newer_one() {
    let env = TestEnv::new().await;
    let org = "org-jobs-stale";
    let (sid, token) = env.fake.add_account("active", "Full");
    let id = create_provider(&env, org, &sid, &token).await["id"].as_str().unwrap().to_owned();
    env.fake.inject("fetch_trunk", FaultAction::Delay(Duration::from_millis(800)), Some(1));
    let organization = OrganizationId::parse(org).unwrap();
    let job = functions::provider::reverify::reverify_one(&env.services, &organization, id.parse().unwrap());
    let update = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body = json!({"name": "Renamed meanwhile"}).to_string();
        let req = Req::new("PUT", "/api/v1/providers/twilio/{id}").org(org).param("id", &id).body(&body).build();
        status_and_body(&update_twilio_provider::handle(&env.services, req).await.unwrap())
    };
    let (outcome, (status, _)) = tokio::join!(job, update);
    assert_eq!(status, 200);
    assert_eq!(outcome.unwrap(), functions::provider::reverify::Outcome::Stale);
    let stored = env.services.store.get_provider(&organization, id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.name, "Renamed meanwhile", "the newer write stays");
}

/// Once the jobs index is backfilled, the planner reads the index only: provider and leftover
/// items, never a provider's numbers, their claims or idempotency records.
#[tokio::test]
async fn the_planner_reads_only_the_jobs_index_once_it_is_backfilled() {
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let org = "org-jobs-index";
    let (sid, token) = env.fake.add_account("active", "Full");
    let id: uuid::Uuid = create_provider(&env, org, &sid, &token).await["id"].as_str().unwrap().parse().unwrap();
    let organization = OrganizationId::parse(org).unwrap();
    let trunk = env.services.store.get_provider(&organization, id).await.unwrap().unwrap().trunk_sid;
    for i in 0..3 {
        let phone = format!("+1555072{i:04}");
        integration_tests::seed::imported_number(
            &env.fake,
            &env.services.store,
            &organization,
            id,
            &sid,
            trunk.as_str(),
            &phone,
        )
        .await;
    }
    let url = new_queue(&env).await;
    let queue = Queue::new(aws_sdk_sqs::Client::new(&env.service_aws), &url);
    // The first run backfills (nothing here lacks the index's key) and records that it is done.
    let planned = plan_jobs::handle(&env.services.store, &queue, &json!({"job": "reverify"})).await.unwrap();
    assert_eq!(planned["planned"], 1);
    proxy.take_actions();
    let planned = plan_jobs::handle(&env.services.store, &queue, &json!({"job": "reverify"})).await.unwrap();
    assert_eq!(planned["planned"], 1);
    let actions: Vec<String> = proxy.take_actions().into_iter().collect();
    assert_eq!(actions, ["dynamodb:GetItem", "dynamodb:Scan on index ScheduledJobs", "sqs:SendMessage"]);
}

/// Just after an upgrade DynamoDB is still building the index and refuses to read it: the
/// planner reads the table instead, and plans every provider once.
#[tokio::test]
async fn while_the_jobs_index_is_being_built_the_planner_reads_the_table() {
    use integration_tests::aws_proxy::Failure;
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    for org in ["org-jobs-building-a", "org-jobs-building-b"] {
        let (sid, token) = env.fake.add_account("active", "Full");
        create_provider(&env, org, &sid, &token).await;
    }
    proxy.fail_with("dynamodb:Scan on index ScheduledJobs", Failure::IndexBackfilling, None);
    let url = new_queue(&env).await;
    let queue = Queue::new(env.sqs.clone(), &url);
    let planned = plan_jobs::handle(&env.services.store, &queue, &json!({"job": "reverify"})).await.unwrap();
    assert_eq!(planned["planned"], 2, "{planned}");
    assert_eq!(receive_all(&env, &url).await["Records"].as_array().unwrap().len(), 2);
    proxy.clear();
}

/// Providers and leftovers written before the jobs index existed lack its key: the planner's
/// one-time backfill gives it to them and plans them, going on from where a planner stopped
/// midway, and each provider is planned once although the index shows those already done.
#[tokio::test]
async fn the_planner_backfills_items_written_before_the_jobs_index_from_where_it_stopped() {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    let (env, proxy) = TestEnv::with_aws_proxy(shared::twilio::TwilioClient::REQUEST_TIMEOUT).await;
    let mut providers = Vec::new();
    for org in ["org-jobs-old-a", "org-jobs-old-a", "org-jobs-old-b", "org-jobs-old-c"] {
        let (sid, token) = env.fake.add_account("active", "Full");
        let id: uuid::Uuid = create_provider(&env, org, &sid, &token).await["id"].as_str().unwrap().parse().unwrap();
        providers.push((OrganizationId::parse(org).unwrap(), id));
    }
    let (org, id) = &providers[0];
    let record = env.services.store.get_provider(org, *id).await.unwrap().unwrap();
    let trunk = shared::twilio::TwilioResource::Trunk { trunk_sid: record.trunk_sid.clone() };
    functions::provider::cleanup::record_for_sweeper(&env.services, &record, &[trunk], &[]).await.unwrap();

    // As written before the index: no item has its key.
    let scan = env.dynamo.scan().table_name(&env.table).send().await.unwrap();
    let mut keyed = 0;
    for item in scan.items() {
        if item.contains_key(shared::storage::item::JOB_PROVIDER_ID) {
            keyed += 1;
            let key = [("pk", &item["pk"]), ("sk", &item["sk"])].map(|(k, v)| (k.to_owned(), v.clone()));
            let update = env.dynamo.update_item().table_name(&env.table).set_key(Some(key.into_iter().collect()));
            update.update_expression("REMOVE jobProviderId").send().await.unwrap();
        }
    }
    assert_eq!(keyed, 5, "four providers and one leftover carry the index's key");
    // More than a page of a table scan (1 MB) of other items.
    for batch in 0..45 {
        let puts = (0..25).map(|i| {
            let item = [
                ("pk", AttributeValue::S(format!("FILLER#{batch}-{i}"))),
                ("sk", AttributeValue::S("FILLER".into())),
                ("entity", AttributeValue::S("filler".into())),
                ("padding", AttributeValue::S("x".repeat(1000))),
            ]
            .map(|(k, v)| (k.to_owned(), v));
            let put = PutRequest::builder().set_item(Some(item.into_iter().collect())).build().unwrap();
            WriteRequest::builder().put_request(put).build()
        });
        env.dynamo.batch_write_item().request_items(&env.table, puts.collect()).send().await.unwrap();
    }

    // A planner that stopped after the backfill's first page.
    let (_, next) = env.services.store.backfill_jobs_index(None).await.unwrap();
    assert!(next.is_some(), "the table scan has more than one page");
    assert!(matches!(
        env.services.store.jobs_index_backfill().await.unwrap(),
        shared::storage::Backfill::From(Some(_))
    ));

    let url = new_queue(&env).await;
    let queue = Queue::new(env.sqs.clone(), &url);
    proxy.reset_counts();
    let planned = plan_jobs::handle(&env.services.store, &queue, &json!({"job": "reverify"})).await.unwrap();
    assert_eq!(planned["planned"], 4, "{planned}");
    // The table's second (last) page, then the index: the first page is not read again.
    assert_eq!(proxy.counts()["DynamoDB_20120810.Scan"], 2, "{:?}", proxy.counts());
    let event = receive_all(&env, &url).await;
    let mut queued: Vec<(String, uuid::Uuid)> = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str::<JobItem>(r["body"].as_str().unwrap()).unwrap())
        .map(|item| (item.organization_id, item.provider_id))
        .collect();
    queued.sort();
    let mut expected: Vec<(String, uuid::Uuid)> = providers.iter().map(|(o, id)| (o.to_string(), *id)).collect();
    expected.sort();
    assert_eq!(queued, expected);
    assert!(matches!(env.services.store.jobs_index_backfill().await.unwrap(), shared::storage::Backfill::Done));

    // From now on the index has every one of them.
    let scan =
        env.dynamo.scan().table_name(&env.table).index_name(shared::storage::item::JOBS_INDEX).send().await.unwrap();
    assert_eq!(scan.items().len(), 5);
    let planned = plan_jobs::handle(&env.services.store, &queue, &json!({"job": "sweep-orphans"})).await.unwrap();
    assert_eq!(planned["planned"], 1, "{planned}");
    let planned = plan_jobs::handle(&env.services.store, &queue, &json!({"job": "reverify"})).await.unwrap();
    assert_eq!(planned["planned"], 4, "{planned}");

    // Code from before the index (a rollback) rewrites a provider without its key: the index
    // loses it until the backfill runs again, a day after it last finished.
    let key = shared::storage::item::org_key(org, shared::storage::item::provider_sort_key(*id));
    let update = env.dynamo.update_item().table_name(&env.table).set_key(Some(key));
    update.update_expression("REMOVE jobProviderId").send().await.unwrap();
    let planned = plan_jobs::handle(&env.services.store, &queue, &json!({"job": "reverify"})).await.unwrap();
    assert_eq!(planned["planned"], 3, "{planned}");
    let key = shared::storage::item::jobs_index_backfill_key();
    let a_day_ago = std::time::SystemTime::now() - shared::storage::BACKFILL_AGAIN_AFTER;
    let a_day_ago = aws_sdk_dynamodb::primitives::DateTime::from(a_day_ago)
        .fmt(aws_sdk_dynamodb::primitives::DateTimeFormat::DateTime)
        .unwrap();
    let update = env.dynamo.update_item().table_name(&env.table).set_key(Some(key));
    let update = update.update_expression("SET indexedAt = :at");
    update.expression_attribute_values(":at", AttributeValue::S(a_day_ago)).send().await.unwrap();
    let planned = plan_jobs::handle(&env.services.store, &queue, &json!({"job": "reverify"})).await.unwrap();
    assert_eq!(planned["planned"], 4, "{planned}");
    assert!(matches!(env.services.store.jobs_index_backfill().await.unwrap(), shared::storage::Backfill::Done));
}

/// Every message of a large send arrives once, whatever order its batches go in.
#[tokio::test]
async fn a_queue_send_of_many_batches_delivers_every_message_once() {
    let env = TestEnv::new().await;
    let url = new_queue(&env).await;
    let items: Vec<JobItem> = (0..95)
        .map(|_| JobItem {
            job: Job::Reverify,
            organization_id: "org-jobs-many".into(),
            provider_id: uuid::Uuid::now_v7(),
            grace_seconds: None,
        })
        .collect();
    Queue::new(env.sqs.clone(), &url).send_all(&items).await.unwrap();
    let event = receive_all(&env, &url).await;
    let mut received: Vec<uuid::Uuid> = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str::<JobItem>(r["body"].as_str().unwrap()).unwrap().provider_id)
        .collect();
    received.sort();
    let mut sent: Vec<uuid::Uuid> = items.iter().map(|i| i.provider_id).collect();
    sent.sort();
    assert_eq!(received, sent);
}

/// An operator's sweep on a deployed stack: plan-jobs with `graceSeconds` carries the override
/// to the workers, which then take a young intent (a create that died at its trunk) as
/// abandoned. Without it the same intent is left to its writer; a bad value is refused.
#[tokio::test]
async fn a_sweep_planned_with_grace_seconds_takes_young_intents() {
    let env = TestEnv::new().await;
    let (sid, token) = env.fake.add_account("active", "Full");
    let org = OrganizationId::parse("org-jobs-grace").unwrap();
    let provider_id = uuid::Uuid::now_v7();
    let sealed = env
        .services
        .envelope
        .generate_data_key(&shared::crypto::SecretOwner { organization_id: org.clone(), provider_id })
        .await
        .unwrap()
        .seal(shared::crypto::SecretKind::AuthToken, &token);
    let trunk = env.fake.add_trunk(&sid);
    let domain = env.fake.state().trunks[&trunk].domain_name.clone();
    let new = shared::storage::NewResources { trunk_domains: vec![domain], ..Default::default() };
    let intent = shared::storage::Intent::now(
        shared::storage::IntentKey::new(org.clone(), provider_id),
        shared::model::AccountSid::parse(&sid).unwrap(),
        shared::model::TwilioRegion::Us1,
        shared::storage::SealedCredential { secret: sealed, api_key: None },
        shared::storage::Change::NewResources(new),
    );
    env.services.store.record_intent(&intent).await.unwrap();
    let url = new_queue(&env).await;
    let queue = Queue::new(env.sqs.clone(), &url);
    for (input, removed) in
        [(json!({"job": "sweep-orphans"}), false), (json!({"job": "sweep-orphans", "graceSeconds": 0}), true)]
    {
        let planned = plan_jobs::handle(&env.services.store, &queue, &input).await.unwrap();
        assert_eq!(planned["planned"], 1, "{planned}");
        let event = receive_all(&env, &url).await;
        assert_eq!(run_jobs::handle(&env.services, &event).await, json!({"batchItemFailures": []}));
        assert_eq!(env.fake.trunks_of(&sid).is_empty(), removed, "{input}");
    }
    assert!(env.services.store.intents_of(&org, provider_id).await.unwrap().is_empty());
    for bad in [json!({"job": "sweep-orphans", "graceSeconds": -1}), json!({"job": "reverify", "graceSeconds": 0})] {
        assert!(plan_jobs::handle(&env.services.store, &queue, &bad).await.is_err(), "{bad}");
    }
}
