//! Each container's memory over time, for the dashboard's chart: `stats` gives the figures
//! of this moment only, so from the dashboard's start a thread asks the supervisor for
//! every app's (as `shipway stats` does) every [`EVERY`], and keeps the last [`KEEP`].
//!
//! It only reads figures and keeps them in memory; it stops with the platform.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use super::super::context::Context;
use super::super::message::{Handle, Message};

/// How often the containers are measured.
const EVERY: Duration = Duration::from_secs(5);

/// How long a sample is kept: 6 hours, 4,320 samples of 16 bytes a container.
const KEEP_MS: u64 = 6 * 3600 * 1000;

/// One measure of a container.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    pub at_ms: u64,
    pub memory_bytes: u64,
}

/// The samples of every app's containers, by app then container.
#[derive(Default)]
pub struct Samples(Mutex<BTreeMap<String, BTreeMap<String, VecDeque<Sample>>>>);

impl Samples {
    /// Measure every app now, then every [`EVERY`] on a thread of its own until the
    /// platform stops.
    pub fn start(self: &Arc<Self>, ctx: Arc<Context>, supervisor: Handle) {
        let samples = self.clone();
        std::thread::spawn(move || loop {
            let now = crate::clock::now_ms();
            for app in ctx.home.apps() {
                // Memory only: a CPU window per app would hold this loop 250 ms an app.
                let asked = supervisor.call(|reply| Message::Stats {
                    app: app.clone(),
                    cpu: false,
                    reply,
                });
                // A platform stopping, or an app destroyed meanwhile: nothing to keep.
                let Ok(Ok(stats)) = asked else { continue };
                let measured = stats
                    .containers
                    .iter()
                    .filter_map(|c| Some((c.name.clone(), c.memory_bytes?)));
                samples.add(&app, now, measured);
            }
            if ctx.stopping.recv_timeout(EVERY) != Err(crossbeam_channel::RecvTimeoutError::Timeout) {
                return;
            }
        });
    }

    /// Keep what was measured of `app` at `now`, and forget what is older than [`KEEP_MS`].
    fn add(&self, app: &str, now: u64, measured: impl Iterator<Item = (String, u64)>) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let containers = all.entry(app.to_string()).or_default();
        for (name, memory_bytes) in measured {
            containers.entry(name).or_default().push_back(Sample {
                at_ms: now,
                memory_bytes,
            });
        }
        let oldest = now.saturating_sub(KEEP_MS);
        for samples in containers.values_mut() {
            while samples.front().is_some_and(|s| s.at_ms < oldest) {
                samples.pop_front();
            }
        }
        containers.retain(|_, samples| !samples.is_empty());
    }

    /// The samples of `app` since `since_ms`, by container.
    pub fn of(&self, app: &str, since_ms: u64) -> BTreeMap<String, Vec<Sample>> {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(app)
            .map(|containers| {
                containers
                    .iter()
                    .map(|(name, samples)| {
                        let kept = samples.iter().filter(|s| s.at_ms >= since_ms).copied().collect();
                        (name.clone(), kept)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_kept_by_container_for_six_hours() {
        let samples = Samples::default();
        let hour = 3600 * 1000;
        samples.add("a", hour, [("web-1".to_string(), 100)].into_iter());
        samples.add(
            "a",
            2 * hour,
            [("web-1".to_string(), 200), ("web-2".to_string(), 50)].into_iter(),
        );
        assert_eq!(samples.of("a", 0)["web-1"].len(), 2);
        assert_eq!(
            samples.of("a", 2 * hour)["web-1"],
            vec![Sample {
                at_ms: 2 * hour,
                memory_bytes: 200
            }]
        );
        // Seven hours later: web-1's first sample is gone; web-2, unmeasured since, too.
        samples.add("a", 7 * hour + 1, [("web-1".to_string(), 300)].into_iter());
        let kept = samples.of("a", 0);
        assert_eq!(
            kept["web-1"].iter().map(|s| s.memory_bytes).collect::<Vec<_>>(),
            [200, 300]
        );
        samples.add("a", 8 * hour + 1, std::iter::empty());
        let kept = samples.of("a", 0);
        assert!(!kept.contains_key("web-2"), "{kept:?}");
        assert!(samples.of("b", 0).is_empty());
    }
}
