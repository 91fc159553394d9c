//! Operator and developer tools around the functions: provisioning the table and key
//! (`local-api --bootstrap`), and serving every route locally exactly as API Gateway would.

pub mod bootstrap;
pub mod deletion_consumer;
pub mod local_api;
pub mod openapi;
