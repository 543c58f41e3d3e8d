//! The clocks. The wall clock: now, in milliseconds since the Unix epoch (UTC). Every
//! timestamp shipway records or prints (deployments, releases, the buildpack cache, addons,
//! cron, the router's `X-Request-Start`) reads it here, so that there is one clock to reason
//! about. Formatting belongs to `units`.
//!
//! What waits for the platform's numbers (the crash back-off, cron's minutes, the boot
//! timeout, the grace period before SIGKILL, the hook's and the build's timeouts) reads a
//! [`Clock`] it is handed, so that a unit test moves a [`ManualClock`] by hand and sees
//! the platform's 30 s or 60 s in milliseconds. How often something is polled (a port every
//! 2 ms, /proc every 250 ms) is a cost, not a platform number, and stays on real time.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;

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

/// Where something that schedules reads the time: the system's clocks, or in a unit test
/// a clock the test moves by hand, so that a schedule, a back-off or a timeout is tested in
/// milliseconds rather than waited for.
pub trait Clock: Send + Sync {
    /// Now, to measure waits from (monotonic).
    fn instant(&self) -> Instant;
    /// Milliseconds since the Unix epoch.
    fn epoch_ms(&self) -> u64;
    /// Whole seconds since the Unix epoch, as cron schedules count.
    fn unix_secs(&self) -> i64 {
        i64::try_from(self.epoch_ms() / 1000).unwrap_or(i64::MAX)
    }
    /// A channel that receives once, when `wait` has passed on this clock (a wait too
    /// long to represent never ends), to `select!` on beside what else may end a wait.
    fn after(&self, wait: Duration) -> Receiver<Instant>;
    /// The instant `wait` from now on this clock, saturating (see [`saturating_add`]).
    fn deadline_in(&self, wait: Duration) -> Instant {
        saturating_add(self.instant(), wait)
    }
}

/// The host's clocks, shared: what everything but a unit test waits on.
pub fn system() -> Arc<dyn Clock> {
    static SYSTEM: OnceLock<Arc<SystemClock>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            Arc::new(SystemClock {
                ahead: Duration::ZERO,
            })
        })
        .clone()
}

/// The system's clocks, the wall clock read `ahead` of the host's (the scheduler's
/// `cron_clock_ahead` setting; none by default). Waits are measured on the monotonic
/// clock, which is never moved.
pub struct SystemClock {
    pub ahead: Duration,
}

impl Clock for SystemClock {
    fn instant(&self) -> Instant {
        Instant::now()
    }

    fn epoch_ms(&self) -> u64 {
        now_ms().saturating_add(u64::try_from(self.ahead.as_millis()).unwrap_or(u64::MAX))
    }

    fn after(&self, wait: Duration) -> Receiver<Instant> {
        // crossbeam's `after` never fires for a wait past what an `Instant` holds.
        crossbeam_channel::after(wait)
    }
}

/// `from + wait`, or as far as an `Instant` goes when that would overflow: a wait too long
/// to represent is a wait without end, never a panic (`Instant + Duration` panics).
pub fn saturating_add(from: Instant, wait: Duration) -> Instant {
    if let Some(at) = from.checked_add(wait) {
        return at;
    }
    // The furthest representable instant, approached by halving steps (at most ~128).
    let (mut at, mut step) = (from, wait);
    while !step.is_zero() {
        match at.checked_add(step) {
            Some(later) => at = later,
            None => step /= 2,
        }
    }
    at
}

/// The instant `wait` from now, saturating (see [`saturating_add`]).
pub fn deadline_in(wait: Duration) -> Instant {
    saturating_add(Instant::now(), wait)
}

/// A clock that moves only when a test says so; its timers fire as it passes them.
#[cfg(test)]
pub struct ManualClock {
    start: Instant,
    start_ms: u64,
    state: std::sync::Mutex<Manual>,
}

#[cfg(test)]
struct Manual {
    elapsed: Duration,
    /// Timers not fired yet: when, and whom to tell.
    timers: Vec<(Instant, crossbeam_channel::Sender<Instant>)>,
}

#[cfg(test)]
impl ManualClock {
    /// A clock that reads `epoch_ms` now.
    pub fn at(epoch_ms: u64) -> ManualClock {
        ManualClock {
            start: Instant::now(),
            start_ms: epoch_ms,
            state: std::sync::Mutex::new(Manual {
                elapsed: Duration::ZERO,
                timers: Vec::new(),
            }),
        }
    }

    /// Move the clock on by `by`, firing every timer it passes or reaches.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().unwrap();
        state.elapsed += by;
        let now = self.start + state.elapsed;
        state.timers.retain(|(at, tell)| {
            let due = *at <= now;
            if due {
                let _ = tell.send(now);
            }
            !due
        });
    }

    /// How many timers wait for the clock to move: a test's way to know that what it
    /// drives has reached its wait before it moves the clock.
    pub fn waiting(&self) -> usize {
        self.state.lock().unwrap().timers.len()
    }

    /// Until `n` timers wait on this clock, failing the test after 10 s of real time: what
    /// the test drives on another thread has then reached its wait.
    pub fn until_waiting(&self, n: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.waiting() < n {
            assert!(Instant::now() < deadline, "{what} never waited on the clock");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn instant(&self) -> Instant {
        self.start + self.state.lock().unwrap().elapsed
    }

    fn epoch_ms(&self) -> u64 {
        self.start_ms + self.state.lock().unwrap().elapsed.as_millis() as u64
    }

    fn after(&self, wait: Duration) -> Receiver<Instant> {
        let (tell, told) = crossbeam_channel::bounded(1);
        let mut state = self.state.lock().unwrap();
        let now = self.start + state.elapsed;
        let at = saturating_add(now, wait);
        if at <= now {
            let _ = tell.send(now);
        } else {
            state.timers.push((at, tell));
        }
        told
    }
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

    #[test]
    fn deadlines_saturate_instead_of_overflowing() {
        let now = Instant::now();
        assert_eq!(
            saturating_add(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let far = saturating_add(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(100 * 365 * 86_400), "{far:?}");
        assert!(
            far.checked_add(Duration::from_secs(1)).is_none(),
            "as far as it goes"
        );
        assert!(deadline_in(Duration::MAX) > Instant::now());
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock_ahead_and_waits_on_the_monotonic_one() {
        let hour = Duration::from_secs(3600);
        let (host, ahead) = (
            SystemClock {
                ahead: Duration::ZERO,
            },
            SystemClock { ahead: hour },
        );
        let (before, read, after) = (host.epoch_ms(), ahead.epoch_ms(), host.epoch_ms());
        assert!(
            read >= before + 3_600_000 && read <= after + 3_600_000,
            "{before} {read} {after}"
        );
        let (i, j) = (host.instant(), ahead.instant());
        assert!(j >= i && j - i < hour, "the monotonic clock is never moved");
    }

    #[test]
    fn a_manual_clock_moves_both_readings_together_and_only_when_told() {
        let clock = ManualClock::at(1_000_000);
        let (i0, s0) = (clock.instant(), clock.unix_secs());
        assert_eq!((clock.epoch_ms(), s0), (1_000_000, 1_000));
        clock.advance(std::time::Duration::from_millis(2_500));
        assert_eq!(clock.instant() - i0, std::time::Duration::from_millis(2_500));
        assert_eq!((clock.epoch_ms(), clock.unix_secs()), (1_002_500, 1_002));
    }

    #[test]
    fn a_manual_clock_fires_its_timers_when_it_reaches_them_and_not_before() {
        let clock = ManualClock::at(0);
        let now = clock.after(Duration::ZERO);
        let (soon, late, never) = (
            clock.after(Duration::from_secs(30)),
            clock.after(Duration::from_secs(60)),
            clock.after(Duration::MAX),
        );
        assert!(now.try_recv().is_ok(), "a zero wait is over at once");
        assert_eq!(clock.waiting(), 3);
        clock.advance(Duration::from_millis(29_999));
        assert!(soon.try_recv().is_err(), "fired a millisecond early");
        clock.advance(Duration::from_millis(1));
        assert!(soon.try_recv().is_ok(), "not fired on its instant");
        assert!(late.try_recv().is_err());
        clock.advance(Duration::from_secs(3600));
        assert!(late.try_recv().is_ok(), "a timer passed over fires too");
        assert!(never.try_recv().is_err(), "a wait without end ended");
        assert_eq!(clock.waiting(), 1);
    }

    #[test]
    fn the_system_clock_waits_in_real_time() {
        let started = Instant::now();
        let at = system().after(Duration::from_millis(20)).recv().unwrap();
        assert!(at >= started + Duration::from_millis(20));
        assert!(system().deadline_in(Duration::MAX) > Instant::now());
    }
}
