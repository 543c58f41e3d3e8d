//! The router's metrics of one app, as the platform's Metrics tab shows them: per minute,
//! the requests, the 5xx among them, and a histogram of response times from which the
//! median, p95 and p99 are read (PLATFORM.md §11).
//!
//! Memory is bounded: one ring of 72 × 60 minutes per router, allocated at its first
//! request, whose pages the kernel hands out only as minutes are written (a zeroed
//! allocation), so an app that served one hour holds about one hour of it. The hot path
//! takes no lock and writes no cache line another worker writes: each worker counts its
//! current minute in its own slot (plain loads and stores, since it is the only writer),
//! and folds that minute into the shared ring under its mutex once, when the next minute
//! begins. A reader takes the same mutex and adds each worker's current minute, so it sees
//! every request counted up to that instant. It does no I/O and knows nothing of apps.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// How many minutes the ring keeps: 72 hours, the platform's longest metrics view.
pub const MINUTES: u64 = 72 * 60;
/// Response times below 2^LOW µs (64 µs) share the first bin.
const LOW: u32 = 6;
/// Response times of 2^HIGH µs (268 s) and more share the last bin.
const HIGH: u32 = 28;
/// Bins per doubling: each bin is at most 25% wide, so the middle of a bin is within 12.5%
/// of any time in it.
const STEPS: u32 = 4;
/// The histogram's bins: below 64 µs, four per doubling up to 268 s, and above.
pub const BINS: usize = (1 + (HIGH - LOW) * STEPS + 1) as usize;
/// One minute in the ring: requests, 5xx, then the bins.
const STRIDE: usize = 2 + BINS;

/// The bin of a response time in microseconds.
pub fn bin_of(micros: u64) -> usize {
    if micros < 1 << LOW {
        return 0;
    }
    let octave = 63 - micros.leading_zeros();
    if octave >= HIGH {
        return BINS - 1;
    }
    // The two bits after the leading one say where in the doubling it falls.
    let step = (micros >> (octave - 2)) & u64::from(STEPS - 1);
    1 + ((octave - LOW) * STEPS) as usize + step as usize
}

/// The time a bin stands for, in milliseconds: the middle of its range (the lowest time of
/// the last, open-ended bin).
pub fn bin_ms(bin: usize) -> f64 {
    if bin == 0 {
        return f64::from(1u32 << LOW) / 2.0 / 1000.0;
    }
    let index = (bin - 1) as u32;
    let octave = LOW + index / STEPS;
    let step = f64::from(index % STEPS);
    let base = (1u64 << octave) as f64;
    let low = base * (1.0 + step / f64::from(STEPS));
    if bin == BINS - 1 {
        return low / 1000.0;
    }
    let high = base * (1.0 + (step + 1.0) / f64::from(STEPS));
    (low + high) / 2.0 / 1000.0
}

/// Counts of response times, one per bin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram(pub [u64; BINS]);

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram([0; BINS])
    }
}

impl Histogram {
    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `q` quantile (0.5, 0.95, 0.99) in milliseconds, by nearest rank: the time of the
    /// bin holding the ⌈q·n⌉-th fastest response. None without any response.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (bin, count) in self.0.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bin_ms(bin));
            }
        }
        Some(bin_ms(BINS - 1))
    }

    pub fn percentiles(&self) -> Option<Percentiles> {
        let round = |ms: f64| (ms * 1000.0).round() / 1000.0;
        Some(Percentiles {
            p50: round(self.quantile_ms(0.50)?),
            p95: round(self.quantile_ms(0.95)?),
            p99: round(self.quantile_ms(0.99)?),
        })
    }
}

/// Response time percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// One minute of an app's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minute {
    /// Minutes since the Unix epoch.
    pub minute: u64,
    pub requests: u64,
    /// Responses with a 5xx status, the router's own 502, 503 and 504 included.
    pub errors: u64,
    pub times: Histogram,
}

/// What one worker counts for the minute in progress. Aligned so that two workers' slots
/// never share a cache line.
#[repr(align(128))]
struct Current {
    /// The minute counted (minutes since the epoch), plus one: 0 is "none yet".
    minute: AtomicU64,
    requests: AtomicU32,
    errors: AtomicU32,
    bins: [AtomicU32; BINS],
}

impl Current {
    fn new() -> Current {
        Current {
            minute: AtomicU64::new(0),
            requests: AtomicU32::new(0),
            errors: AtomicU32::new(0),
            bins: [const { AtomicU32::new(0) }; BINS],
        }
    }
}

/// Only its worker writes a slot: a load and a store, no locked instruction.
fn bump(counter: &AtomicU32) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// The 72-hour history: minute `m` lives at `m % MINUTES`, and the tag says which minute a
/// slot holds, so a slot left from three days ago reads as empty and is reset before reuse.
#[derive(Default)]
struct Ring {
    /// Minute + 1 per slot; 0: never written.
    tags: Vec<u64>,
    /// `STRIDE` counters per slot.
    counts: Vec<u32>,
}

impl Ring {
    fn slot(&mut self, minute: u64) -> &mut [u32] {
        if self.tags.is_empty() {
            // Zeroed allocations come from the kernel as untouched pages: memory is used
            // as minutes are written, up to the whole 72 hours.
            self.tags = vec![0; MINUTES as usize];
            self.counts = vec![0; MINUTES as usize * STRIDE];
        }
        let i = (minute % MINUTES) as usize;
        let counts = &mut self.counts[i * STRIDE..(i + 1) * STRIDE];
        if self.tags[i] != minute + 1 {
            self.tags[i] = minute + 1;
            counts.fill(0);
        }
        counts
    }

    fn get(&self, minute: u64) -> Option<&[u32]> {
        let i = (minute % MINUTES) as usize;
        (self.tags.get(i) == Some(&(minute + 1))).then(|| &self.counts[i * STRIDE..(i + 1) * STRIDE])
    }
}

/// An app's router metrics: written by the router's workers, read by anyone.
pub struct Metrics {
    ring: Mutex<Ring>,
    current: Box<[Current]>,
    /// When the router started, in ms since the epoch: a rate is over no longer than that.
    started_ms: u64,
}

impl Metrics {
    pub fn new(workers: usize) -> Metrics {
        Metrics::starting_at(workers, crate::clock::now_ms())
    }

    pub fn starting_at(workers: usize, started_ms: u64) -> Metrics {
        Metrics {
            ring: Mutex::new(Ring::default()),
            current: (0..workers.max(1)).map(|_| Current::new()).collect(),
            started_ms,
        }
    }

    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    /// Counts one response of `worker`, ended in `minute` (since the epoch) after `micros`.
    pub fn record(&self, worker: usize, minute: u64, status: u16, micros: u64) {
        let Some(current) = self.current.get(worker) else {
            return;
        };
        if current.minute.load(Ordering::Relaxed) != minute + 1 {
            self.roll(current, minute);
        }
        bump(&current.requests);
        if status >= 500 {
            bump(&current.errors);
        }
        bump(&current.bins[bin_of(micros)]);
    }

    /// Folds a worker's finished minute into the ring and starts `minute`; under the ring's
    /// lock, so a reader sees the minute either in the slot or in the ring, never in both.
    fn roll(&self, current: &Current, minute: u64) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let was = current.minute.load(Ordering::Relaxed);
        if was != 0 {
            let slot = ring.slot(was - 1);
            slot[0] = slot[0].wrapping_add(current.requests.swap(0, Ordering::Relaxed));
            slot[1] = slot[1].wrapping_add(current.errors.swap(0, Ordering::Relaxed));
            for (count, bin) in slot[2..].iter_mut().zip(current.bins.iter()) {
                *count = count.wrapping_add(bin.swap(0, Ordering::Relaxed));
            }
        }
        current.minute.store(minute + 1, Ordering::Relaxed);
    }

    /// The minutes from `since` to `until` (both minutes since the epoch, inclusive) that
    /// saw requests, oldest first; at most the last 72 hours.
    pub fn minutes(&self, since: u64, until: u64) -> Vec<Minute> {
        let since = since.max((until + 1).saturating_sub(MINUTES));
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Minute> = Vec::new();
        for minute in since..=until {
            let Some(counts) = ring.get(minute) else { continue };
            let mut times = Histogram::default();
            for (t, c) in times.0.iter_mut().zip(&counts[2..]) {
                *t = u64::from(*c);
            }
            out.push(Minute {
                minute,
                requests: u64::from(counts[0]),
                errors: u64::from(counts[1]),
                times,
            });
        }
        for current in self.current.iter() {
            let tag = current.minute.load(Ordering::Relaxed);
            let Some(minute) = tag.checked_sub(1).filter(|m| (since..=until).contains(m)) else {
                continue;
            };
            let requests = u64::from(current.requests.load(Ordering::Relaxed));
            if requests == 0 {
                continue;
            }
            let at = match out.binary_search_by_key(&minute, |m| m.minute) {
                Ok(at) => at,
                Err(at) => {
                    out.insert(
                        at,
                        Minute {
                            minute,
                            requests: 0,
                            errors: 0,
                            times: Histogram::default(),
                        },
                    );
                    at
                }
            };
            let m = &mut out[at];
            m.requests += requests;
            m.errors += u64::from(current.errors.load(Ordering::Relaxed));
            for (t, c) in m.times.0.iter_mut().zip(current.bins.iter()) {
                *t += u64::from(c.load(Ordering::Relaxed));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_grow_by_a_quarter_and_stand_for_their_middle() {
        assert_eq!(bin_of(0), 0);
        assert_eq!(bin_of(63), 0);
        assert_eq!(bin_of(64), 1);
        assert_eq!(bin_of(79), 1);
        assert_eq!(bin_of(80), 2);
        assert_eq!(bin_of(127), 4);
        assert_eq!(bin_of(128), 5);
        assert_eq!(bin_of(u64::MAX), BINS - 1);
        assert_eq!(bin_of(1 << HIGH), BINS - 1);
        assert_eq!(bin_of((1 << HIGH) - 1), BINS - 2);
        // Every time is within 12.5% of the time its bin stands for.
        for micros in (64..(1u64 << HIGH)).step_by(997) {
            let ms = micros as f64 / 1000.0;
            let shown = bin_ms(bin_of(micros));
            assert!(
                (shown - ms).abs() <= ms * 0.125,
                "{micros} µs shown as {shown} ms"
            );
        }
        // Bins are in order.
        for bin in 1..BINS {
            assert!(bin_ms(bin) > bin_ms(bin - 1), "bin {bin}");
        }
    }

    fn histogram_of(times_ms: &[f64]) -> Histogram {
        let mut h = Histogram::default();
        for t in times_ms {
            h.0[bin_of((t * 1000.0) as u64)] += 1;
        }
        h
    }

    #[test]
    fn percentiles_are_read_by_nearest_rank() {
        // 100 responses: 1 ms to 100 ms.
        let times: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = histogram_of(&times).percentiles().unwrap();
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.125;
        assert!(near(p.p50, 50.0), "{p:?}");
        assert!(near(p.p95, 95.0), "{p:?}");
        assert!(near(p.p99, 99.0), "{p:?}");
        // One slow response in a hundred shows at p99, not at p95.
        let mut times = vec![2.0; 99];
        times.push(3000.0);
        let p = histogram_of(&times).percentiles().unwrap();
        assert!(near(p.p95, 2.0) && near(p.p99, 2.0), "{p:?}");
        times.push(3000.0);
        let p = histogram_of(&times).percentiles().unwrap();
        assert!(near(p.p99, 3000.0), "{p:?}");
        assert_eq!(Histogram::default().percentiles(), None);
    }

    #[test]
    fn a_reader_sees_the_minute_in_progress_and_the_folded_ones() {
        let metrics = Metrics::new(2);
        metrics.record(0, 100, 200, 1_000);
        metrics.record(1, 100, 503, 2_000);
        metrics.record(0, 101, 200, 1_000);
        let minutes = metrics.minutes(0, 101);
        assert_eq!(minutes.len(), 2, "{minutes:?}");
        assert_eq!(
            (minutes[0].minute, minutes[0].requests, minutes[0].errors),
            (100, 2, 1)
        );
        assert_eq!(minutes[0].times.count(), 2);
        assert_eq!(
            (minutes[1].minute, minutes[1].requests, minutes[1].errors),
            (101, 1, 0)
        );
        // Worker 1 moves on: its minute 100 is folded into the ring and still counted once.
        metrics.record(1, 102, 200, 1_000);
        let minutes = metrics.minutes(0, 102);
        let counts: Vec<(u64, u64)> = minutes.iter().map(|m| (m.minute, m.requests)).collect();
        assert_eq!(counts, vec![(100, 2), (101, 1), (102, 1)]);
        // A window leaves out what is outside it.
        let counts: Vec<u64> = metrics.minutes(101, 101).iter().map(|m| m.requests).collect();
        assert_eq!(counts, vec![1]);
    }

    #[test]
    fn the_ring_forgets_what_is_older_than_72_hours() {
        let metrics = Metrics::new(1);
        let start = 29_000_000;
        metrics.record(0, start, 200, 500);
        metrics.record(0, start + 1, 500, 500);
        // 72 hours later, minute `start` and its successor share their slots with new ones.
        let later = start + MINUTES;
        metrics.record(0, later, 200, 500);
        metrics.record(0, later + 1, 200, 500);
        metrics.record(0, later + 2, 200, 500);
        // `start` is out of the window (the 72 hours up to `later + 2`).
        let minutes = metrics.minutes(start, later + 2);
        let counts: Vec<(u64, u64, u64)> = minutes.iter().map(|m| (m.minute, m.requests, m.errors)).collect();
        assert_eq!(counts, vec![(later, 1, 0), (later + 1, 1, 0), (later + 2, 1, 0)]);
        // `later + 1` took the slot of `start + 1`, which was reset first: its 5xx is gone.
        let minutes = metrics.minutes(later + 1, later + 1);
        assert_eq!((minutes[0].requests, minutes[0].errors), (1, 0));
        // Whatever window is asked, never more than the ring holds.
        assert!(metrics.minutes(0, later + 2).len() <= MINUTES as usize);
    }

    #[test]
    fn a_worker_beyond_the_count_is_ignored_rather_than_a_panic() {
        let metrics = Metrics::new(1);
        metrics.record(5, 1, 200, 1);
        assert!(metrics.minutes(0, 10).is_empty());
    }
}
