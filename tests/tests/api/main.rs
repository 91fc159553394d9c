//! Integration tests: the handlers against moto (DynamoDB, KMS) and the stateful fake Twilio.

mod api_keys;
mod audit_trail;
mod compensation;
mod crashes;
mod create_provider;
mod deletion;
mod events;
mod faults;
mod harness;
mod iam;
mod idempotency;
mod jobs;
mod lifecycle;
mod numbers;
mod regions;
mod repair;
mod secure;
mod security;
mod sip_rotation;
mod spec_examples;
mod twilio_behaviour;
mod verification;
