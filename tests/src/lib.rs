//! Test support: a stateful fake Twilio (also the `fake-twilio` binary) and helpers to run
//! the service against moto and the fake.

pub mod aws_proxy;
pub mod fake_twilio;
pub mod runtime_api;
pub mod seed;
pub mod twilio_spec;
