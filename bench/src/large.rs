//! Work at size, through the release binaries as deployed: the hourly job over many providers
//! (plan-jobs, then run-jobs fed by the jobs queue the way the template's event source mapping
//! feeds it) and the delete of a provider with many numbers (delete-provider, then
//! continue-deletions fed by the deletion queue), with latency L on every Twilio call.

use crate::{Running, Setup, event};
use functions::services::Services;
use futures::StreamExt;
use integration_tests::runtime_api::Outcome;
use integration_tests::seed;
use serde_json::{Value, json};
use shared::model::OrganizationId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// run-jobs's event source mapping in template.yaml.
pub const JOBS_BATCH_SIZE: i32 = 10;
pub const JOBS_MAXIMUM_CONCURRENCY: usize = 5;
/// continue-deletions's event source mapping and timeout in template.yaml.
const DELETIONS_MAXIMUM_CONCURRENCY: usize = 5;
const CONTINUE_DELETIONS_TIMEOUT: Duration = Duration::from_secs(300);
/// The API's functions' timeout (template Globals, API Gateway's 29 s).
const API_TIMEOUT: Duration = Duration::from_secs(29);
const RUN_JOBS_TIMEOUT: Duration = Duration::from_secs(120);

const EVENT_PROVIDER_ID: &str = crate::EVENT_PROVIDER_ID;
const EVENT_ORG: &str = "org-demo";
const EVENT_NUMBER_SID: &str = "PN00000000000000000000000000000001";

pub struct JobFigures {
    pub providers: usize,
    pub seeding: Duration,
    pub planned: usize,
    pub plan_wall: Duration,
    pub planner_rss_mib: f64,
    pub work_wall: Duration,
    pub invocations: usize,
    pub retried: usize,
    pub twilio_requests: usize,
    pub worker_rss_mib: f64,
    pub statuses: BTreeMap<String, usize>,
}

pub struct DeleteFigures {
    pub numbers: usize,
    pub wall: Duration,
    pub first_status: u16,
    pub invocations: usize,
    pub twilio_requests: usize,
    pub records_left: usize,
    pub numbers_left_on_trunks: usize,
}

fn lambda_request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event")
}

fn body_of(response: lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        lambda_http::Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        lambda_http::Body::Empty => Value::Null,
        _ => Value::Null,
    };
    (status, body)
}

/// Creates `n` providers, each with one imported number, through the same handlers the
/// functions run (in-process: seeding is set-up, not what is measured).
pub async fn seed_providers(setup: &Setup, services: &Services, n: usize) -> Duration {
    let started = Instant::now();
    let fake = &setup.fake;
    futures::stream::iter(0..n)
        .map(|i| async move {
            let org = format!("org-bench-{}", i % 64);
            let (sid, token) = fake.add_account("active", "Full");
            let create = event(
                "create-twilio-provider.json",
                &[(crate::DEMO_SID, &sid), (crate::DEMO_TOKEN, &token), (EVENT_ORG, &org)],
            );
            let response = functions::handlers::create_twilio_provider::handle(services, lambda_request(&create))
                .await
                .expect("create");
            let (status, body) = body_of(response);
            assert_eq!(status, 201, "seeding create: {body}");
            let id = body["id"].as_str().expect("id").to_owned();
            let pn = fake.add_incoming_number(&sid, &format!("+1555{:07}", i), Some("https://example.com/voice"));
            let import =
                event("import-numbers.json", &[(EVENT_PROVIDER_ID, &id), (EVENT_NUMBER_SID, &pn), (EVENT_ORG, &org)]);
            let response =
                functions::handlers::import_numbers::handle(services, lambda_request(&import)).await.expect("import");
            let (status, body) = body_of(response);
            assert!(status == 200 || status == 201, "seeding import: {status} {body}");
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    started.elapsed()
}

/// Receives up to `max` messages; an empty answer means the queue is drained (nothing is left
/// in flight: every batch is answered before the next receive).
async fn receive(sqs: &aws_sdk_sqs::Client, queue: &str, max: i32) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(queue)
        .max_number_of_messages(max)
        .visibility_timeout(900)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .expect("receive from SQS")
        .messages
        .unwrap_or_default()
}

fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({"Records": records})
}

/// Feeds a queue to `workers` running functions the way an SQS event source mapping with that
/// maximum concurrency does: each worker takes a batch, answers, and its successes are deleted;
/// a reported failure is delivered again, until the queue's redrive policy (template.yaml: at
/// most 3 receives) moves it to the dead-letter queue. Returns (invocations, redeliveries).
async fn feed(setup: &Setup, queue: &str, workers: &[Running], batch: i32, timeout: Duration) -> (usize, usize) {
    const MAX_RECEIVE_COUNT: u32 = 3;
    let totals = futures::future::join_all(workers.iter().map(|worker| async move {
        let (mut invocations, mut retried) = (0, 0);
        loop {
            let messages = receive(&setup.sqs, queue, batch).await;
            if messages.is_empty() {
                return (invocations, retried);
            }
            invocations += 1;
            let answer = match worker.runtime.invoke(sqs_event(&messages), timeout + Duration::from_secs(5)).await {
                Ok(Outcome::Response(answer)) => answer,
                other => panic!("worker invocation failed: {other:?}"),
            };
            let failed: Vec<&str> = answer["batchItemFailures"]
                .as_array()
                .map(|f| f.iter().filter_map(|x| x["itemIdentifier"].as_str()).collect())
                .unwrap_or_default();
            for message in &messages {
                let handle = message.receipt_handle.as_deref().expect("receipt handle");
                let receives: u32 = message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                let failed = failed.contains(&message.message_id.as_deref().unwrap_or_default());
                if failed && receives < MAX_RECEIVE_COUNT {
                    retried += 1;
                    setup
                        .sqs
                        .change_message_visibility()
                        .queue_url(queue)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .expect("release a failed message");
                } else {
                    setup.sqs.delete_message().queue_url(queue).receipt_handle(handle).send().await.expect("delete");
                }
            }
        }
    }))
    .await;
    totals.into_iter().fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
}

/// The hourly re-verification over `providers` providers, with latency L on Twilio.
pub async fn hourly_job(
    setup: &Setup,
    services: &Services,
    table: &str,
    providers: usize,
    latency: Duration,
) -> JobFigures {
    eprintln!("hourly job: seeding {providers} providers…");
    let seeding = seed_providers(setup, services, providers).await;

    // A table's first planner run also backfills the jobs index (here: a scan that finds every
    // item already keyed); it is done beforehand, so the figure is the planner's hourly run.
    let mut cursor = None;
    while let (_, Some(next)) = services.store.backfill_jobs_index(cursor.take()).await.expect("backfill the index") {
        cursor = Some(next);
    }

    eprintln!("hourly job: planning and working…");
    setup.fake.set_latency(latency);
    let log_start = setup.fake.request_log().len();
    let planner = setup.start_with("plan-jobs", &[("TABLE_NAME", table)]).await;
    planner.runtime.set_time_limit(Duration::from_secs(300));
    let sent = Instant::now();
    let (_, answer) = planner.invoke(json!({"job": "reverify"})).await;
    let plan_wall = sent.elapsed();
    let planned = answer["planned"].as_u64().expect("planned") as usize;
    let planner_rss_mib = planner.peak_rss_mib();
    planner.stop().await;

    let mut workers = Vec::new();
    for _ in 0..JOBS_MAXIMUM_CONCURRENCY {
        let worker = setup.start_with("run-jobs", &[("TABLE_NAME", table)]).await;
        worker.runtime.set_time_limit(RUN_JOBS_TIMEOUT);
        workers.push(worker);
    }
    let started = Instant::now();
    let (invocations, retried) = feed(setup, &setup.jobs_queue, &workers, JOBS_BATCH_SIZE, RUN_JOBS_TIMEOUT).await;
    let work_wall = started.elapsed();
    let worker_rss_mib = workers.iter().map(Running::peak_rss_mib).fold(0.0, f64::max);
    for worker in workers {
        worker.stop().await;
    }
    setup.fake.set_latency(Duration::ZERO);
    let twilio_requests = setup.fake.request_log().len() - log_start;

    let mut statuses = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = services.store.scan_providers(cursor).await.expect("scan providers");
        for provider in page.providers.into_iter().flatten() {
            *statuses.entry(format!("{:?}", provider.verification_status).to_lowercase()).or_insert(0) += 1;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    JobFigures {
        providers,
        seeding,
        planned,
        plan_wall,
        planner_rss_mib,
        work_wall,
        invocations,
        retried,
        twilio_requests,
        worker_rss_mib,
        statuses,
    }
}

/// Deletes a provider with `n` imported numbers through delete-provider (the API's 29 s), then
/// the deletion queue through continue-deletions, with latency L on Twilio.
pub async fn delete_at_size(setup: &Setup, services: &Services, n: usize, latency: Duration) -> DeleteFigures {
    eprintln!("delete: seeding a provider with {n} numbers…");
    let org_name = "org-bench-delete";
    let org = OrganizationId::parse(org_name).expect("organization");
    let (sid, token) = setup.fake.add_account("active", "Full");
    let create = event(
        "create-twilio-provider.json",
        &[(crate::DEMO_SID, &sid), (crate::DEMO_TOKEN, &token), (EVENT_ORG, org_name)],
    );
    let (status, body) = body_of(
        functions::handlers::create_twilio_provider::handle(services, lambda_request(&create)).await.expect("create"),
    );
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let trunk = body["trunkSid"].as_str().expect("trunk").to_owned();
    let provider_id = id.parse().expect("uuid");
    // Numbers as import leaves them (the import path is measured by its own tests).
    futures::stream::iter(0..n)
        .map(|i| {
            let (org, sid, trunk) = (&org, &sid, &trunk);
            async move {
                let phone = format!("+1555400{i:04}");
                seed::imported_number(&setup.fake, &services.store, org, provider_id, sid, trunk, &phone).await;
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;

    eprintln!("delete: deleting…");
    setup.fake.set_latency(latency);
    let log_start = setup.fake.request_log().len();
    let api = setup.start("delete-provider").await;
    api.runtime.set_time_limit(API_TIMEOUT);
    let mut workers = Vec::new();
    for _ in 0..DELETIONS_MAXIMUM_CONCURRENCY {
        let worker = setup.start("continue-deletions").await;
        worker.runtime.set_time_limit(CONTINUE_DELETIONS_TIMEOUT);
        workers.push(worker);
    }
    let request = event("delete-provider.json", &[(EVENT_PROVIDER_ID, &id), (EVENT_ORG, org_name)]);
    let started = Instant::now();
    let (_, response) = api.invoke(request).await;
    let first_status = response["statusCode"].as_u64().unwrap_or(0) as u16;
    let (queued, _) = feed(setup, &setup.deletion_queue, &workers, 1, CONTINUE_DELETIONS_TIMEOUT).await;
    let wall = started.elapsed();
    setup.fake.set_latency(Duration::ZERO);
    api.stop().await;
    for worker in workers {
        worker.stop().await;
    }
    let twilio_requests = setup.fake.request_log().len() - log_start;
    let records_left = services.store.list_numbers(&org, provider_id, 100, None).await.map(|p| p.0.len()).unwrap_or(0)
        + usize::from(services.store.get_provider(&org, provider_id).await.ok().flatten().is_some());
    let numbers_left_on_trunks = setup
        .fake
        .state()
        .incoming_numbers
        .values()
        .filter(|number| number.account_sid == sid && number.trunk_sid.is_some())
        .count();
    DeleteFigures {
        numbers: n,
        wall,
        first_status,
        invocations: 1 + queued,
        twilio_requests,
        records_left,
        numbers_left_on_trunks,
    }
}

pub fn job_section(f: &JobFigures, latency: Duration) -> String {
    let statuses = f.statuses.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ");
    format!(
        "## 7. The hourly job over {providers} providers (L = {l} ms on every Twilio call)

plan-jobs runs once, reading the jobs index (its one-time backfill is done before, not measured);
run-jobs is fed from the jobs queue as its event source mapping does (batch
size {JOBS_BATCH_SIZE}, maximum concurrency {JOBS_MAXIMUM_CONCURRENCY}). Every provider has one imported number.

| Providers planned | Planner: time to enqueue all | Planner peak RSS | Work wall time | run-jobs invocations | Redelivered | Twilio requests per provider | Worker peak RSS | Statuses after |
|---|---|---|---|---|---|---|---|---|
| {planned} | {} | {:.1} MiB | {} | {} | {} | {:.2} | {:.1} MiB | {statuses} |

Seeding the providers (in-process create and import, not measured) took {}.
The work's wall time is moto's, not the service's: one Python process serves every DynamoDB, KMS
and SQS request of the run (DynamoDB one request at a time, see tests/moto_server.py), at a few
dozen requests a second here. What bounds the service is the template's concurrency (50
verifications at once) and Twilio's latency on the 5 requests of a healthy provider. So is
the planner's time to enqueue: its reads are a page or two of the jobs index, and moto's
SendMessageBatch takes longer the more messages the queue holds (measured on its own with 200
batches of 10: ~30 ms each at first, ~450 ms at the end, 48 s in all).
",
        crate::secs(f.plan_wall),
        f.planner_rss_mib,
        crate::secs(f.work_wall),
        f.invocations,
        f.retried,
        f.twilio_requests as f64 / f.planned.max(1) as f64,
        f.worker_rss_mib,
        crate::secs(f.seeding),
        providers = f.providers,
        planned = f.planned,
        l = latency.as_millis(),
    )
}

pub fn delete_section(f: &DeleteFigures, latency: Duration) -> String {
    format!(
        "## 8. Delete of a provider with {n} numbers (L = {l} ms on every Twilio call)

delete-provider answers within the API's {api} s; continue-deletions is fed from the deletion queue
(batch size 1, maximum concurrency {DELETIONS_MAXIMUM_CONCURRENCY}, {cd} s timeout).

| Numbers | First answer | Wall time to gone | Invocations (API + queue) | Twilio requests | Records left | Numbers left on a trunk |
|---|---|---|---|---|---|---|
| {n} | {} | {} | {} | {} | {} | {} |
",
        f.first_status,
        crate::secs(f.wall),
        f.invocations,
        f.twilio_requests,
        f.records_left,
        f.numbers_left_on_trunks,
        n = f.numbers,
        l = latency.as_millis(),
        api = API_TIMEOUT.as_secs(),
        cd = CONTINUE_DELETIONS_TIMEOUT.as_secs(),
    )
}
