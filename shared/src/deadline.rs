//! The time a request has left, derived from the Lambda invocation deadline. Outbound Twilio
//! calls and their retries stay within it, so a handler always has time left to roll back and
//! answer. Without a deadline (local tools, tests) only the per-request limits apply.

use lambda_http::{Request, RequestExt};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

tokio::task_local! {
    static DEADLINE: Instant;
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

/// The invocation's deadline from the Lambda context, less `reserve`.
pub fn from_request(request: &Request, reserve: Duration) -> Option<Instant> {
    from_epoch_millis(request.lambda_context_ref()?.deadline, reserve)
}

/// A Lambda context deadline (milliseconds since the epoch), less `reserve`.
pub fn from_epoch_millis(deadline_ms: u64, reserve: Duration) -> Option<Instant> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(reserve);
    Some(Instant::now() + left)
}
