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

    let run = jobs::run_in_process(&env.services, Job::Reverify, 4).await.unwrap();
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
