//! The wall clock: now, in milliseconds since the Unix epoch (UTC). Every timestamp shipway
//! records or prints (deployments, releases, the buildpack cache, addons, cron, the router's
//! `X-Request-Start`) reads it here, so that there is one clock to reason about. It only
//! reads the time; formatting belongs to `ui`, and waiting on deadlines to `Instant`s.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch. A system clock set before 1970 reads as 0 rather
/// than failing: a timestamp is never worth refusing a deployment for.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whole seconds since the Unix epoch, the unit of release dates and cron schedules.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_milliseconds_agree() {
        let ms = now_ms();
        let s = now_secs();
        // 2026-01-01T00:00:00Z: a clock that reads earlier is not this one.
        assert!(ms > 1_767_225_600_000, "{ms}");
        assert!(s >= ms / 1000 && s <= ms / 1000 + 1, "{s} vs {ms}");
    }
}
