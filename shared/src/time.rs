//! Time as the API shows it and the table stores it: RFC 3339, UTC, whole seconds.

use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A point in time, `2023-11-07T05:31:56Z`: what records and responses carry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(String);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_unix(DateTime::from(SystemTime::now()).secs())
    }

    /// The whole second `secs` after the Unix epoch.
    pub fn from_unix(secs: i64) -> Self {
        Self(DateTime::from_secs(secs).fmt(DateTimeFormat::DateTime).expect("a second of this era is representable"))
    }

    /// An RFC 3339 date-time, kept as written (stored items and checks are read back as they
    /// were written).
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        DateTime::from_str(text, DateTimeFormat::DateTime).map(|_| Self(text.to_owned())).map_err(|_| Self::FORMAT)
    }

    pub const FORMAT: &'static str = "must be an RFC 3339 date-time";

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        DateTime::from_str(&self.0, DateTimeFormat::DateTime).expect("parsed when made").secs()
    }
}

impl TryFrom<String> for Timestamp {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Timestamp> for String {
    fn from(timestamp: Timestamp) -> Self {
        timestamp.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_whole_seconds_utc_and_parses_back() {
        let now = Timestamp::now();
        assert!(now.as_str().ends_with('Z') && !now.as_str().contains('.'), "{now}");
        assert_eq!(Timestamp::parse(now.as_str()), Ok(now));
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
