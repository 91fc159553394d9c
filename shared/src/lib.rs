//! The library behind every Lambda function of the Twilio provider service.
//!
//! - [`audit`]: who changed what: the actor of a request and the events its changes record.
//! - [`config`]: configuration read once from the environment.
//! - [`crypto`]: KMS envelope encryption of secrets.
//! - [`deadline`]: the time an invocation has left, and the reserves kept from it.
//! - [`dto`]: the JSON request and response shapes of the public API.
//! - [`error`]: the one error type, rendered as RFC 9457 problem+json.
//! - [`metrics`]: CloudWatch Embedded Metric Format.
//! - [`model`]: parsed domain types (`AccountSid`, `AuthToken`, `Region`, …).
//! - [`queue`]: SQS queues for work that outlives one invocation.
//! - [`request`]: inbound request bodies, parsed field by field.
//! - [`storage`]: the DynamoDB table, every access scoped by organization.
//! - [`time`]: RFC 3339 timestamps.
//! - [`tls`]: the one outbound TLS stack (AWS SDK and Twilio), with compiled-in roots.
//! - [`twilio`]: a client for the parts of Twilio's REST API the service uses.

pub mod audit;
pub mod config;
pub mod crypto;
pub mod deadline;
pub mod dto;
pub mod error;
pub mod metrics;
pub mod model;
pub mod queue;
pub mod request;
pub mod storage;
pub mod time;
pub mod tls;
pub mod twilio;

pub use error::ApiError;
