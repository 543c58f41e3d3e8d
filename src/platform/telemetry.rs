//! What the routers measure, as the platform serves it: which app's web router counts
//! what ([`Telemetries`], read by the server's threads, never the supervisor's), the
//! figures `stats` and the dashboard show ([`figures`]), and the thread that writes an
//! app's router logs into its log ([`write_router_logs`]).
//!
//! Figures live in memory only, with the router: they start again when the platform
//! does, and go with an app that is destroyed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::applog::AppLog;
use super::client;
use super::protocol::{Event, MinuteFigures, Request, RouterFigures};
use crate::error::Error;
use crate::router::logs::{self, AccessRecords};
use crate::router::metrics::{Histogram, MINUTES};
use crate::router::Telemetry;
use crate::state::Home;

/// `requests_per_minute` is the rate over this many minutes (fewer when the router is
/// younger): recent enough to follow the traffic, long enough not to jump at every request.
const RATE_MINUTES: u64 = 5;
/// Records written in one go by the router-log writer.
const BATCH: usize = 1024;

/// Each app's web router's telemetry. Held weakly: it goes when the router does.
#[derive(Default)]
pub struct Telemetries(Mutex<BTreeMap<String, Weak<Telemetry>>>);

impl Telemetries {
    pub fn insert(&self, app: &str, telemetry: &Arc<Telemetry>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, t| t.strong_count() > 0);
        map.insert(app.to_string(), Arc::downgrade(telemetry));
    }

    pub fn get(&self, app: &str) -> Option<Arc<Telemetry>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(app).and_then(Weak::upgrade)
    }
}

/// The router's figures of an app from `since` (seconds since the epoch; default: all
/// that is kept, 72 hours) to `now_ms`, with each minute's when `minutes`. An app whose
/// router does not run (never deployed, or the platform just started) has zeros.
pub fn figures(
    telemetry: Option<&Telemetry>,
    since: Option<u64>,
    minutes: bool,
    now_ms: u64,
) -> RouterFigures {
    let until = now_ms / 60_000;
    let first = since
        .map_or(0, |s| s / 60)
        .max((until + 1).saturating_sub(MINUTES));
    let kept = telemetry
        .map(|t| t.metrics.minutes(first, until))
        .unwrap_or_default();
    let mut total = Histogram::default();
    let (mut requests, mut errors, mut recent) = (0, 0, 0);
    let recent_from = until.saturating_sub(RATE_MINUTES - 1);
    for m in &kept {
        requests += m.requests;
        errors += m.errors;
        total.add(&m.times);
        if m.minute >= recent_from {
            recent += m.requests;
        }
    }
    // The rate's span: from the first of the recent minutes, or the router's start if
    // later, to now; at least a minute, so a burst of a few seconds reads as what it is.
    let span_start = (recent_from * 60_000).max(telemetry.map_or(0, |t| t.metrics.started_ms()));
    let span_ms = now_ms.saturating_sub(span_start).max(60_000);
    let rate = recent as f64 * 60_000.0 / span_ms as f64;
    RouterFigures {
        window_start_at: crate::units::utc_ms(first * 60_000),
        measured_at: crate::units::utc_ms(now_ms),
        requests,
        errors,
        requests_per_minute: (rate * 100.0).round() / 100.0,
        response_time_ms: total.percentiles(),
        minutes: if minutes {
            kept.iter()
                .map(|m| MinuteFigures {
                    minute_at: crate::units::utc_ms(m.minute * 60_000),
                    requests: m.requests,
                    errors: m.errors,
                    response_time_ms: m.times.percentiles(),
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Ask the running platform for the app's router figures (`since`, `minutes`: as
/// [`figures`]); None when no platform runs.
pub fn ask(
    home: &Home,
    app: &str,
    since: Option<u64>,
    minutes: bool,
) -> Result<Option<RouterFigures>, Error> {
    let request = Request::RouterMetrics {
        app: app.to_string(),
        since,
        minutes,
    };
    match client::ask(home, &request)? {
        Some(Event::RouterMetrics { figures }) => Ok(Some(figures)),
        Some(Event::Error { message }) => Err(Error::Platform { message }),
        _ => Ok(None),
    }
}

/// The containers the router sends requests to, by address: those of the last two
/// switches, so a request that ends on a container just switched away from is still named.
#[derive(Default)]
pub struct Names {
    current: Vec<(SocketAddr, String)>,
    previous: Vec<(SocketAddr, String)>,
}

impl Names {
    pub fn switch(&mut self, names: Vec<(SocketAddr, String)>) {
        if names != self.current {
            self.previous = std::mem::replace(&mut self.current, names);
        }
    }

    fn get(&self, addr: SocketAddr) -> Option<&str> {
        self.current
            .iter()
            .chain(&self.previous)
            .find(|(a, _)| *a == addr)
            .map(|(_, name)| name.as_str())
    }
}

/// Start the thread that writes an app's router log lines into its log, a batch per
/// write (no fsync: like the containers' lines, they are a log, not a record). It ends
/// when the router is gone. Lines the router had to drop are counted in one line.
pub fn write_router_logs(
    records: AccessRecords,
    log: AppLog,
    names: Arc<Mutex<Names>>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("router-logs".into())
        .spawn(move || {
            while let Ok(first) = records.records.recv() {
                let mut lines = Vec::new();
                let dropped = records.take_dropped();
                if dropped > 0 {
                    lines.push(format!(
                        "{dropped} router log lines dropped: requests came faster than the log could be written"
                    ));
                }
                {
                    let names = names.lock().unwrap_or_else(PoisonError::into_inner);
                    let batch = std::iter::once(first).chain(records.records.try_iter().take(BATCH - 1));
                    for record in batch {
                        let name = record.container.and_then(|a| names.get(a));
                        lines.push(logs::line(&record, name));
                    }
                }
                log.lines("[router]", &lines);
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::logs::RouterLogs;
    use crate::router::metrics::Metrics;

    fn telemetry(started_ms: u64) -> Telemetry {
        Telemetry {
            metrics: Metrics::starting_at(1, started_ms),
            logs: RouterLogs::default(),
        }
    }

    #[test]
    fn figures_add_up_the_minutes_and_rate_the_recent_ones() {
        let start = 1_800_000_000_000; // ms, on a minute boundary
        let t = telemetry(start);
        let minute = start / 60_000;
        for _ in 0..30 {
            t.metrics.record(0, minute, 200, 2_000);
        }
        t.metrics.record(0, minute + 1, 502, 40_000);
        let now = start + 90_000;
        let f = figures(Some(&t), None, true, now);
        assert_eq!((f.requests, f.errors), (31, 1));
        // 31 requests in the minute and a half since the router started.
        assert!((f.requests_per_minute - 31.0 / 1.5).abs() < 0.01, "{f:?}");
        let p = f.response_time_ms.unwrap();
        assert!(p.p50 < 2.5 && p.p99 > 35.0, "{p:?}");
        assert_eq!(f.minutes.len(), 2);
        assert_eq!(f.minutes[1].errors, 1);
        assert_eq!(f.minutes[1].minute_at, "2027-01-15T08:01:00.000Z");
        assert_eq!(
            f.window_start_at, "2027-01-12T08:02:00.000Z",
            "the 72 hours up to the last minute"
        );
        // Ten minutes later the rate has fallen to nothing; the totals stay.
        let f = figures(Some(&t), None, false, now + 600_000);
        assert_eq!((f.requests, f.requests_per_minute), (31, 0.0));
        assert!(f.minutes.is_empty());
        // A window after the traffic has none of it.
        let f = figures(Some(&t), Some((now + 60_000) / 1000), false, now + 120_000);
        assert_eq!(f.requests, 0);
        assert_eq!(f.response_time_ms, None);
    }

    #[test]
    fn an_app_without_a_router_has_zeros() {
        let f = figures(None, None, true, 1_800_000_000_000);
        assert_eq!((f.requests, f.errors, f.requests_per_minute), (0, 0, 0.0));
        assert!(f.minutes.is_empty() && f.response_time_ms.is_none());
    }

    #[test]
    fn names_outlive_one_switch() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut names = Names::default();
        names.switch(vec![(a, "web-1".into())]);
        names.switch(vec![(b, "web-1".into())]);
        assert_eq!(names.get(a), Some("web-1"));
        names.switch(vec![(b, "web-1".into())]);
        assert_eq!(names.get(a), Some("web-1"), "the same list again is no switch");
        names.switch(vec![]);
        assert_eq!(names.get(a), None);
        assert_eq!(names.get(b), Some("web-1"));
    }

    #[test]
    fn the_registry_forgets_a_router_that_is_gone() {
        let registry = Telemetries::default();
        let t = Arc::new(telemetry(0));
        registry.insert("a", &t);
        assert!(registry.get("a").is_some());
        drop(t);
        assert!(registry.get("a").is_none());
    }
}
