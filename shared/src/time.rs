//! Timestamps as the API shows them: RFC 3339, UTC, whole seconds.

use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The current time as `2023-11-07T05:31:56Z`.
pub fn now_rfc3339() -> String {
    let now = DateTime::from(SystemTime::now());
    DateTime::from_secs(now.secs()).fmt(DateTimeFormat::DateTime).expect("a current timestamp is always representable")
}
