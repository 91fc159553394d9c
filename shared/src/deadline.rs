//! The time a request has left, from the Lambda invocation deadline: outbound Twilio calls and their retries stay
//! within it, and reserves kept back from it leave time to roll back and answer. More: docs/reliability.md.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The time the provider workflows keep back from the deadline, each for what must still fit
/// once the work it bounds stops.
pub mod reserves {
    use std::time::Duration;

    /// Every API function keeps this back from its invocation's deadline to answer.
    pub const ANSWER: Duration = Duration::from_secs(1);
    /// A create keeps this back from provisioning to roll back what it made.
    pub const ROLLBACK: Duration = Duration::from_secs(8);
    /// A repair keeps this back from putting numbers back, for its last verification and the save.
    pub const REPAIR_FINISH: Duration = Duration::from_secs(5);
    /// A repair's last verification leaves this for the save.
    pub const REPAIR_SAVE: Duration = Duration::from_millis(1500);
    /// A repair starts no number with less than this left before its finish reserve.
    pub const REPAIR_NUMBER: Duration = Duration::from_secs(1);

    /// A delete step starts no number (and a forced one no page of numbers) with less than this
    /// left: the time to record where the next step starts, queue it and answer.
    pub const DELETE_CONTINUE: Duration = Duration::from_secs(3);
    /// The sweeper starts no leftover number with less than this left: it waits for the next
    /// pass, and the rest of the sweep (the trunk's resources, the records) still fits.
    pub const SWEEP_NUMBER: Duration = Duration::from_secs(5);
    /// Kept back from each import's attach to undo it if the number cannot be stored; a number
    /// is not started with less than twice this left (the attach, and its undoing).
    pub const IMPORT_UNDO: Duration = Duration::from_secs(3);
}

/// Runs `work` with a deadline (none: no deadline).
pub async fn within<F: Future>(deadline: Option<Instant>, work: F) -> F::Output {
    match deadline {
        Some(deadline) => DEADLINE.scope(deadline, work).await,
        None => work.await,
    }
}

/// The time left before the current deadline, if there is one.
pub fn remaining() -> Option<Duration> {
    DEADLINE.try_with(|deadline| deadline.saturating_duration_since(Instant::now())).ok()
}

/// Whether there is a deadline and less than `reserve` is left before it.
pub fn short_of(reserve: Duration) -> bool {
    remaining().is_some_and(|left| left < reserve)
}

/// The time left less `reserve` (none: zero), if there is a deadline.
pub fn remaining_less(reserve: Duration) -> Option<Duration> {
    remaining().map(|left| left.saturating_sub(reserve))
}

/// A Lambda context deadline (milliseconds since the epoch), less `reserve`.
pub fn from_epoch_millis(deadline_ms: u64, reserve: Duration) -> Option<Instant> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(reserve);
    Some(Instant::now() + left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reserves_count_only_under_a_deadline() {
        assert!(!short_of(Duration::from_secs(3600)));
        assert_eq!(remaining_less(Duration::from_secs(1)), None);
        within(Some(Instant::now() + Duration::from_secs(10)), async {
            assert!(short_of(Duration::from_secs(20)));
            assert!(!short_of(Duration::from_secs(1)));
            let left = remaining_less(Duration::from_secs(4)).expect("a deadline");
            assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(6), "{left:?}");
            assert_eq!(remaining_less(Duration::from_secs(20)), Some(Duration::ZERO));
        })
        .await;
    }
}
