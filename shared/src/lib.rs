//! The library behind every Lambda function of the Twilio provider service.
//!
//! - [`model`]: parsed domain types (`AccountSid`, `AuthToken`, `Region`, …) and stored records.
//! - [`dto`]: the JSON request and response shapes of the public API.
//! - [`twilio`]: an HTTP client for the parts of Twilio's REST API the service uses.
//! - [`crypto`]: KMS envelope encryption of secrets.
//! - [`store`]: the DynamoDB table, every access scoped by organization.
//! - [`item`]: how records map to its items: every key, attributes, named transactions.
//! - [`error`]: the one error type, rendered as RFC 9457 problem+json.
//! - [`metrics`]: CloudWatch Embedded Metric Format.
//! - [`queue`]: SQS queues for work that outlives one invocation.
//! - [`config`]: configuration read once from the environment.
//! - [`http`]: request and response helpers shared by the handlers.
//! - [`https`]: the one outbound HTTPS stack (AWS SDK and Twilio), with compiled-in roots.

pub mod api_keys;
pub mod audit;
pub mod config;
pub mod crypto;
pub mod deadline;
pub mod dto;
pub mod error;
pub mod http;
pub mod https;
pub mod idempotency;
pub mod item;
pub mod metrics;
pub mod model;
pub mod queue;
pub mod store;
pub mod time;
pub mod twilio;

pub use error::ApiError;
