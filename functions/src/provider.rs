//! The workflows behind the handlers, with typed inputs and no HTTP: what happens to a
//! provider, its Twilio resources and its records.
//!
//! - [`create`], [`update`], [`rotate`], [`delete`]: the provider's lifecycle.
//! - [`verify`], [`repair`]: checking a provider against Twilio, and putting it right.
//! - [`import`], [`give_back`]: phone numbers onto the trunk, and given back.
//! - [`cleanup`], [`sweep`], [`intents`]: removing Twilio resources the service created,
//!   retrying what could not be removed, and resolving what work that died midway left.
//! - [`jobs`], [`reverify`]: the scheduled jobs, at any size.
//! - [`sip_credential`], [`sip_rotation`]: the SIP credential the call engine reads, and its
//!   rotation with an overlap.
//! - [`credentials`]: a Twilio credential checked before it is stored, and API keys minted.
//! - [`record`]: a stored provider: load it, open its credentials, save a change.
//! - [`problems`]: Twilio failures as API problems.

pub mod cleanup;
pub mod create;
pub mod credentials;
pub mod delete;
pub mod give_back;
pub mod import;
pub mod intents;
pub mod jobs;
pub mod problems;
pub mod record;
pub mod repair;
pub mod reverify;
pub mod rotate;
pub mod sip_credential;
pub mod sip_rotation;
pub mod sweep;
pub mod update;
pub mod verify;
