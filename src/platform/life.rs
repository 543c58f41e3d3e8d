//! A container's life on the platform, as one value: where it is between its start and
//! its end (PLATFORM.md §4, "after a deploy"), and how `ps` shows it. The supervisor
//! moves each [`Slot`] from one [`Life`] to the next; nothing else decides a status. Why a
//! restart failed ([`RestartError`]) and how addon servers are stopped live here too.

use std::time::{Duration, Instant};

use super::protocol::{AppStats, ContainerRow, ContainerStats, ProcessRow};
use crate::addon::Server;
use crate::cgroup::Meter;
use crate::container::{Container, ContainerSpec};
use crate::process::{self, ProcessInfo};
use crate::rollout::RolloutError;
use crate::state::StateError;

/// Where a container is in its life.
pub enum Life {
    /// Started again after a crash, until it is ready (token: this attempt; streak: the
    /// quick crashes in a row before it).
    Starting { token: u64, streak: u32 },
    /// Running: for web and tcp, accepting connections and routed to.
    Ready(Box<Container>),
    /// Its leader exited and its group is being cleaned up (token: this crash).
    Exited { token: u64 },
    /// Crashed, to be started again at `at`, after `streak` quick crashes in a row.
    Restarting { at: Instant, streak: u32 },
    /// Left stopped after crashing `crash_limit` times in a row.
    Crashed { reason: String },
    /// Leaving: SIGTERM sent, SIGKILL after the grace period if it is still there.
    /// `program`: its program's pid if it was known; else `ps` finds it below `shim`.
    Stopping {
        id: u64,
        program: Option<u32>,
        shim: u32,
        port: Option<u16>,
    },
}

/// How a container's last run, or its last restart, ended.
pub struct Crash {
    /// For the app log, naming the container: `web-1 exited with code 1`.
    pub message: String,
    /// What else the log shows: the probe's diagnosis, the container's last lines.
    pub details: Vec<String>,
    /// For `ps`: `exited with code 1`, or why the restart failed.
    pub reason: String,
    /// The kernel stopped it for memory, at this size (the reason says so): the event is
    /// an out-of-memory one, not a crash.
    pub out_of_memory: Option<crate::platform_numbers::Size>,
}

/// One container of an app: its name and command, its restarts, and its life.
pub struct Slot {
    pub spec: ContainerSpec,
    /// The release it runs (or will run again).
    pub release: u32,
    /// How many times it was restarted after crashing.
    pub restarts: u32,
    /// Since when it is in its current life, on the platform's clock (`ps` shows it as
    /// the uptime; a ready container's is how long it ran, which the crash policy reads).
    pub since: Instant,
    pub life: Life,
}

impl Slot {
    /// A container that is ready, as the rollout hands it over, taken in at `now`.
    pub fn ready(c: Container, now: Instant) -> Slot {
        Slot {
            spec: c.spec.clone(),
            release: c.release,
            restarts: c.restarts,
            since: now,
            life: Life::Ready(Box::new(c)),
        }
    }

    pub fn name(&self) -> String {
        self.spec.name()
    }

    pub fn container(&self) -> Option<&Container> {
        match &self.life {
            Life::Ready(c) => Some(c),
            _ => None,
        }
    }

    /// Whether it still counts as one of the app's containers (all but those leaving).
    pub fn is_present(&self) -> bool {
        !matches!(self.life, Life::Stopping { .. })
    }

    /// The word `ps` shows (README: running, starting, stopping, crashed).
    pub fn status(&self) -> &'static str {
        match self.life {
            Life::Ready(_) => "running",
            Life::Starting { .. } | Life::Exited { .. } | Life::Restarting { .. } => "starting",
            Life::Crashed { .. } => "crashed",
            Life::Stopping { .. } => "stopping",
        }
    }

    /// Its row in `ps`, its processes read from `table` (one snapshot of /proc for all).
    #[cfg(test)]
    pub fn row(&self, table: &[ProcessInfo]) -> ContainerRow {
        let mut seen = self.seen(Instant::now());
        if let Some(group) = seen.group {
            seen.row.processes = process_rows(group, table);
        }
        seen.row
    }

    /// Its row in `ps` at `now` but for its processes, which a worker reads from /proc
    /// ([`with_processes`]): the supervisor thread never scans /proc.
    pub fn seen(&self, now: Instant) -> Seen {
        let uptime =
            Some(u64::try_from(now.saturating_duration_since(self.since).as_millis()).unwrap_or(u64::MAX));
        let mut row = ContainerRow {
            name: self.name(),
            status: self.status().into(),
            command: self.spec.command.clone(),
            port: None,
            pid: None,
            uptime_ms: uptime,
            restarts: self.restarts,
            release: Some(self.release),
            exit: None,
            processes: Vec::new(),
            memory_bytes: None,
            memory_limit_bytes: None,
        };
        let mut group = None;
        let mut meter = None;
        let mut shim = None;
        match &self.life {
            Life::Ready(c) => {
                row.port = c.port;
                row.pid = c.program_pid();
                shim = Some(c.child.pid());
                group = Some(c.child.pid() as i32);
                meter = c.child.meter();
            }
            Life::Starting { .. } | Life::Exited { .. } | Life::Restarting { .. } => {}
            Life::Crashed { reason } => {
                row.uptime_ms = None;
                row.exit = Some(reason.clone());
            }
            Life::Stopping {
                program,
                shim: s,
                port,
                ..
            } => {
                row.port = *port;
                row.pid = *program;
                shim = Some(*s);
                row.restarts = 0;
                row.release = None;
            }
        }
        Seen {
            row,
            group,
            meter,
            shim,
        }
    }

    /// What `stats` reads of it, on a worker.
    pub fn metered(&self) -> Metered {
        let container = self.container();
        Metered {
            name: self.name(),
            status: self.status(),
            size: container.map(|c| c.size.name),
            meter: container.and_then(|c| c.child.meter()),
        }
    }
}

/// A container as `stats` sees it: how to read its cgroup, while it has one.
pub struct Metered {
    pub name: String,
    pub status: &'static str,
    pub size: Option<&'static str>,
    pub meter: Option<Meter>,
}

/// How long `stats` watches the containers' CPU time to tell their CPU use.
const CPU_WINDOW: Duration = Duration::from_millis(250);

/// The figures of `stats`: each container's cgroup read twice, `CPU_WINDOW` apart, for
/// its CPU (on a worker: it waits); without `cpu`, once, with no CPU figure.
pub fn stats(app: &str, metered: Vec<Metered>, cpu: bool) -> AppStats {
    let first: Vec<_> = metered
        .iter()
        .map(|m| m.meter.as_ref().filter(|_| cpu).and_then(Meter::read))
        .collect();
    let start = Instant::now();
    if first.iter().any(Option::is_some) {
        std::thread::sleep(CPU_WINDOW);
    }
    let window = start.elapsed();
    let mut containers: Vec<ContainerStats> = metered
        .into_iter()
        .zip(first)
        .map(|(m, before)| {
            let now = m.meter.as_ref().and_then(Meter::read);
            let cpu_percent = match (before, now) {
                (Some(b), Some(n)) if !window.is_zero() => {
                    let used = n.cpu.saturating_sub(b.cpu).as_secs_f64();
                    Some((used / window.as_secs_f64() * 1000.0).round() / 10.0)
                }
                _ => None,
            };
            ContainerStats {
                name: m.name,
                status: m.status.to_string(),
                size: m.size.map(str::to_string),
                cpu_percent,
                memory_bytes: now.map(|u| u.memory),
                memory_limit_bytes: now.and(m.meter.as_ref().map(|x| x.size.memory)),
                memory_max_bytes: now.and_then(|u| u.memory_max),
            }
        })
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name).then(a.status.cmp(&b.status)));
    AppStats {
        app: app.to_string(),
        containers,
        unmeasured: crate::cgroup::available().err().map(|e| e.to_string()),
        router: None,
    }
}

/// A container's row in `ps` as the supervisor sees it, and the process group (a ready
/// container's) whose processes the row lists once read.
pub struct Seen {
    pub row: ContainerRow,
    pub group: Option<i32>,
    pub meter: Option<Meter>,
    /// Its shim, whose oldest child is the pid to show when the supervisor did not know
    /// its program's (a one-off just started): found in the worker's read of /proc.
    pub shim: Option<u32>,
}

/// What runs in a container, as `ps` shows it.
fn process_rows(group: i32, table: &[ProcessInfo]) -> Vec<ProcessRow> {
    let group = nix::unistd::Pid::from_raw(group);
    process::descendants_in(table, group)
        .into_iter()
        .map(|p| ProcessRow {
            pid: p.pid.as_raw() as u32,
            command: p.command(),
            in_group: p.pgid == group,
        })
        .collect()
}

/// The rows of `ps`: by name, then status (a container and its predecessor being stopped).
#[cfg(test)]
pub fn rows(slots: &[Slot]) -> Vec<ContainerRow> {
    with_processes(slots.iter().map(|s| s.seen(Instant::now())).collect())
}

/// The rows of `ps`, each ready container's processes read from one snapshot of /proc:
/// on a worker, as it reads every process on the machine.
pub fn with_processes(seen: Vec<Seen>) -> Vec<ContainerRow> {
    let table = process::processes();
    let mut rows: Vec<ContainerRow> = seen
        .into_iter()
        .map(
            |Seen {
                 mut row,
                 group,
                 meter,
                 shim,
             }| {
                if let (None, Some(shim)) = (row.pid, shim) {
                    row.pid = Some(
                        process::program_in(&table, nix::unistd::Pid::from_raw(shim as i32))
                            .map_or(shim, |p| p.as_raw() as u32),
                    );
                }
                if let Some(g) = group {
                    row.processes = process_rows(g, &table);
                }
                if let Some(m) = meter {
                    row.memory_bytes = m.read().map(|u| u.memory);
                    row.memory_limit_bytes = row.memory_bytes.and(Some(m.size.memory));
                }
                row
            },
        )
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.status.cmp(&b.status)));
    rows
}

/// The event of a container the kernel stopped for memory.
pub fn out_of_memory_event(name: &str, size: crate::platform_numbers::Size) -> super::events::Event {
    super::events::Event::OutOfMemory {
        container: name.to_string(),
        size: size.name.to_string(),
        memory_limit_bytes: size.memory,
    }
}

/// A run longer than this resets the count of quick crashes.
pub const QUICK_CRASH: Duration = Duration::from_secs(60);
/// The longest pause between two restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the crash policy decides after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCrash {
    /// Start it again after this pause.
    Restart(Duration),
    /// It crashed `crash_limit` times in a row: left crashed.
    GiveUp,
}

/// The platform's crash policy (PLATFORM.md §4, "after a deploy"), one function for
/// containers and addon servers alike: after the `streak`-th quick crash in a row, restart
/// at once, then after growing pauses, and give up at `limit`.
pub fn after_crash(streak: u32, limit: u32, backoff_base: Duration) -> AfterCrash {
    if streak >= limit {
        AfterCrash::GiveUp
    } else {
        AfterCrash::Restart(backoff(streak, backoff_base, MAX_BACKOFF))
    }
}

/// The streak of quick crashes after a crash of something that had run for `ran`, with
/// `previous` quick crashes before it: a long run starts a new streak.
pub fn crash_streak(previous: u32, ran: Duration) -> u32 {
    if ran < QUICK_CRASH {
        previous + 1
    } else {
        1
    }
}

/// The pause before the next restart after `streak` quick crashes in a row: none the
/// first time, then `backoff`, doubling each time, at most `max`.
fn backoff(streak: u32, backoff: Duration, max: Duration) -> Duration {
    if streak <= 1 {
        Duration::ZERO
    } else {
        backoff.saturating_mul(1 << (streak - 2).min(16)).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(10);

    #[test]
    fn the_first_crash_is_restarted_at_once_then_pauses_double() {
        assert_eq!(after_crash(1, 5, BASE), AfterCrash::Restart(Duration::ZERO));
        assert_eq!(after_crash(2, 5, BASE), AfterCrash::Restart(BASE));
        assert_eq!(after_crash(3, 5, BASE), AfterCrash::Restart(BASE * 2));
        assert_eq!(after_crash(4, 5, BASE), AfterCrash::Restart(BASE * 4));
    }

    #[test]
    fn the_crash_limit_gives_up() {
        assert_eq!(after_crash(5, 5, BASE), AfterCrash::GiveUp);
        assert_eq!(after_crash(9, 5, BASE), AfterCrash::GiveUp);
        // A limit of 1: the first crash is the last.
        assert_eq!(after_crash(1, 1, BASE), AfterCrash::GiveUp);
    }

    #[test]
    fn pauses_stop_growing_at_the_maximum() {
        assert_eq!(
            after_crash(40, u32::MAX, Duration::from_secs(1)),
            AfterCrash::Restart(MAX_BACKOFF)
        );
    }

    #[test]
    fn a_quick_crash_adds_to_the_streak_and_a_long_run_starts_a_new_one() {
        assert_eq!(crash_streak(0, Duration::from_millis(5)), 1);
        assert_eq!(crash_streak(3, QUICK_CRASH - Duration::from_millis(1)), 4);
        assert_eq!(crash_streak(3, QUICK_CRASH), 1);
    }

    fn slot(life: Life) -> Slot {
        Slot {
            spec: ContainerSpec {
                process_type: "web".into(),
                index: 1,
                command: "serve".into(),
            },
            release: 4,
            restarts: 2,
            since: Instant::now(),
            life,
        }
    }

    #[test]
    fn each_life_has_one_status_in_ps() {
        let crashed = slot(Life::Crashed {
            reason: "exited with code 3".into(),
        });
        let row = crashed.row(&[]);
        assert_eq!(row.status, "crashed");
        assert_eq!(row.exit.as_deref(), Some("exited with code 3"));
        assert_eq!(row.uptime_ms, None);
        assert!(crashed.is_present());

        let restarting = slot(Life::Restarting {
            at: Instant::now(),
            streak: 2,
        });
        assert_eq!(restarting.row(&[]).status, "starting");
        assert_eq!(slot(Life::Exited { token: 1 }).status(), "starting");
        assert_eq!(slot(Life::Starting { token: 1, streak: 1 }).status(), "starting");

        let stopping = slot(Life::Stopping {
            id: 9,
            program: Some(1234),
            shim: 1233,
            port: Some(10_001),
        });
        let row = stopping.row(&[]);
        assert_eq!(row.status, "stopping");
        assert_eq!(
            (row.pid, row.port, row.restarts, row.release),
            (Some(1234), Some(10_001), 0, None)
        );
        assert!(!stopping.is_present());
    }

    #[test]
    fn rows_sort_by_name_then_status() {
        let mut a = slot(Life::Crashed { reason: "x".into() });
        a.spec.index = 2;
        let b = slot(Life::Stopping {
            id: 1,
            program: Some(1),
            shim: 1,
            port: None,
        });
        let c = slot(Life::Starting { token: 3, streak: 1 });
        let names: Vec<(String, String)> = rows(&[a, b, c]).into_iter().map(|r| (r.name, r.status)).collect();
        assert_eq!(
            names,
            [("web-1", "starting"), ("web-1", "stopping"), ("web-2", "crashed")]
                .map(|(n, s)| (n.to_string(), s.to_string()))
        );
    }

    #[test]
    fn restarts_back_off_doubling_up_to_a_limit() {
        let (b, max) = (Duration::from_secs(1), Duration::from_secs(5));
        let pauses: Vec<u64> = (1..=6).map(|s| backoff(s, b, max).as_secs()).collect();
        assert_eq!(pauses, [0, 1, 2, 4, 5, 5]);
    }
}

/// Why a crashed container could not be started again.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Rollout(#[from] RolloutError),
}

impl RestartError {
    /// How the restart of `name` ended, for the app log and `ps`.
    pub fn crash(&self, name: &str) -> Crash {
        match self {
            RestartError::State(e) => {
                let reason = format!("cannot be restarted: {e}");
                Crash {
                    message: format!("{name} {reason}"),
                    details: Vec::new(),
                    reason,
                    out_of_memory: None,
                }
            }
            RestartError::Rollout(e) => Crash {
                message: e.to_string(),
                details: e.details(),
                reason: match e {
                    RolloutError::Crashed {
                        out_of_memory: Some(size),
                        ..
                    } => crate::process::out_of_memory(*size),
                    RolloutError::Crashed { exit, .. } => exit.to_string(),
                    other => other.to_string(),
                },
                out_of_memory: match e {
                    RolloutError::Crashed { out_of_memory, .. } => *out_of_memory,
                    _ => None,
                },
            },
        }
    }
}

/// Stop addon servers, all at once: each may take a while to write its data out.
pub fn stop_servers(servers: Vec<Server>) {
    let stopping: Vec<_> = servers
        .into_iter()
        .map(|s| std::thread::spawn(move || s.stop()))
        .collect();
    for t in stopping {
        let _ = t.join();
    }
}
