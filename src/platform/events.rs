//! An app's events, as the platform's timeline lists them: deployments, restarts, scale,
//! crashes, one-offs, config var names, addons, stack. Every event is one [`Event`]
//! value, recorded once through [`AppLog::event`](super::applog::AppLog::event), which
//! writes it twice from the same value and the same time: a JSON line in the app's
//! `events.jsonl` (what `shipway timeline` and the dashboard read, through [`timeline`])
//! and the `[platform]` line of `shipway logs`. This module owns the kinds, their JSON
//! and their text, and the record's file; it never holds a config var's value (the
//! variable events carry names only), and reading the record never writes it.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::{read_regular, AppDir, StateError};

/// The record's file in an app's folder; `events.jsonl.1` is the one rotated before it.
pub const FILE: &str = "events.jsonl";

/// Past this size the record is rotated and one previous file kept: with events of
/// 100-200 bytes, the last 10,000 or so stay, while the file can never grow unbounded.
pub const ROTATE_BYTES: u64 = 1024 * 1024;

/// One thing that happened to an app. Its JSON is the platform API's event shape:
/// `{"type": "scale", "type_data": {...}}` (the record adds `created_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "type_data", rename_all = "snake_case")]
pub enum Event {
    /// A deployment ended with `status` (`success`, `build-error`...); `release` is
    /// `None` when nothing was released.
    Deployment {
        deployment_id: String,
        status: String,
        release: Option<u32>,
    },
    /// A rollback (its own deployment record) to the release of an earlier deployment.
    Rollback {
        deployment_id: String,
        status: String,
        release: u32,
        rollback_to: String,
    },
    /// `restart`: these containers, started again from `release`.
    Restart { scope: Vec<String>, release: u32 },
    /// `scale`: the new amounts of the types it named; `release` is `None` before the
    /// first deployment (the formation is kept for it).
    Scale {
        containers: std::collections::BTreeMap<String, u32>,
        release: Option<u32>,
    },
    /// A container exited on its own (`reason`: `exited with code 1`) or could not start
    /// again.
    Crash {
        container: String,
        reason: String,
        release: u32,
    },
    /// The crash policy gave up: the container crashed `crashes` times in a row and is
    /// left crashed until a restart.
    RepeatedCrash {
        container: String,
        crashes: u32,
        reason: String,
        release: u32,
    },
    /// A container was stopped for using more memory than its size allows.
    OutOfMemory {
        container: String,
        /// The platform's name of its size (`S`, `M`...).
        size: String,
        memory_limit_bytes: u64,
    },
    /// A one-off container started (`run`).
    Run {
        container: String,
        command: String,
        release: u32,
    },
    /// A one-off container's program ended (`exit`: `exited with code 0`).
    RunEnded {
        container: String,
        exit: String,
        release: u32,
    },
    /// `one-off-stop`: a running one-off is stopped (its end follows as
    /// `container_stopped`).
    RunStopped { container: String, release: u32 },
    /// A container joined the app, ready (and routed to, for web).
    ContainerStarted { container: String, release: u32 },
    /// A container left the app and is gone.
    ContainerStopped { container: String, release: u32 },
    /// Config vars that did not exist were set. Names only: never a value.
    NewVariable { names: Vec<String> },
    /// Config vars that existed were set again. Names only: never a value.
    EditVariable { names: Vec<String> },
    /// Config vars were removed.
    DeleteVariable { names: Vec<String> },
    /// An addon was provisioned.
    NewAddon { id: String, addon: String, plan: String },
    /// An addon was removed, with its data.
    DeleteAddon { id: String, addon: String },
    /// `stacks-set`: the stack the next deployment builds on.
    StackChanged { from: String, to: String },
}

impl Event {
    /// Its type, as the record and `timeline --json` name it (`repeated_crash`).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Deployment { .. } => "deployment",
            Event::Rollback { .. } => "rollback",
            Event::Restart { .. } => "restart",
            Event::Scale { .. } => "scale",
            Event::Crash { .. } => "crash",
            Event::RepeatedCrash { .. } => "repeated_crash",
            Event::OutOfMemory { .. } => "out_of_memory",
            Event::Run { .. } => "run",
            Event::RunEnded { .. } => "run_ended",
            Event::RunStopped { .. } => "run_stopped",
            Event::ContainerStarted { .. } => "container_started",
            Event::ContainerStopped { .. } => "container_stopped",
            Event::NewVariable { .. } => "new_variable",
            Event::EditVariable { .. } => "edit_variable",
            Event::DeleteVariable { .. } => "delete_variable",
            Event::NewAddon { .. } => "new_addon",
            Event::DeleteAddon { .. } => "delete_addon",
            Event::StackChanged { .. } => "stack_changed",
        }
    }

    /// Its type as `timeline` prints it, as the platform's CLI does: `Repeated Crash`.
    pub fn title(&self) -> String {
        self.kind()
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Event {
    /// The events of config vars set: those `existed` already are edited, the others
    /// new. Names only: the values never reach an event.
    pub fn variables_set(names: &[String], existed: impl Fn(&str) -> bool) -> Vec<Event> {
        let (edited, new): (Vec<String>, Vec<String>) = names.iter().cloned().partition(|n| existed(n));
        let mut events = Vec::new();
        if !new.is_empty() {
            events.push(Event::NewVariable { names: new });
        }
        if !edited.is_empty() {
            events.push(Event::EditVariable { names: edited });
        }
        events
    }
}

/// What an event says in `shipway logs` (after `[platform]`) and in the timeline. An
/// event about one container starts with its name, so that `logs --filter web-1` finds it.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Deployment {
                deployment_id,
                status,
                release: Some(n),
            } => write!(f, "deployment {deployment_id} {status} (release v{n})"),
            Event::Deployment {
                deployment_id,
                status,
                release: None,
            } => write!(f, "deployment {deployment_id} {status}: nothing was released"),
            Event::Rollback {
                deployment_id,
                status,
                release,
                rollback_to,
            } => write!(
                f,
                "rollback {deployment_id} {status} (release v{release}, of deployment {rollback_to})"
            ),
            Event::Restart { scope, release } => {
                write!(f, "restart of {} (release v{release})", scope.join(", "))
            }
            Event::Scale { containers, release } => {
                let amounts: Vec<String> = containers.iter().map(|(t, n)| format!("{t}={n}")).collect();
                match release {
                    Some(n) => write!(f, "scaled to {} (release v{n})", amounts.join(" ")),
                    None => write!(f, "scaled to {} (for the first deployment)", amounts.join(" ")),
                }
            }
            Event::Crash {
                container,
                reason,
                release,
            } => write!(f, "{container} crashed: {reason} (release v{release})"),
            Event::RepeatedCrash {
                container,
                crashes,
                reason,
                release,
            } => write!(
                f,
                "{container} crashed {crashes} times in a row ({reason}): left crashed until `shipway restart {container}` (release v{release})"
            ),
            Event::OutOfMemory {
                container,
                size,
                memory_limit_bytes,
            } => write!(
                f,
                "{container} stopped: out of memory (limit {}, size {size})",
                crate::units::human_memory(*memory_limit_bytes)
            ),
            // Quoted with its escapes: a command may hold a newline, which would end the line.
            Event::Run {
                container,
                command,
                release,
            } => write!(f, "{container} started: one-off {command:?} (release v{release})"),
            Event::RunEnded {
                container,
                exit,
                release,
            } => write!(f, "{container} {exit} (release v{release})"),
            Event::RunStopped { container, release } => {
                write!(f, "{container} stopped by one-off-stop (release v{release})")
            }
            Event::ContainerStarted { container, release } => {
                write!(f, "{container} started (release v{release})")
            }
            Event::ContainerStopped { container, release } => {
                write!(f, "{container} stopped (release v{release})")
            }
            Event::NewVariable { names } => write!(f, "config vars added: {}", names.join(", ")),
            Event::EditVariable { names } => write!(f, "config vars changed: {}", names.join(", ")),
            Event::DeleteVariable { names } => write!(f, "config vars removed: {}", names.join(", ")),
            Event::NewAddon { id, addon, plan } => write!(f, "addon {addon} {id} added (plan {plan})"),
            Event::DeleteAddon { id, addon } => write!(f, "addon {addon} {id} removed, with its data"),
            Event::StackChanged { from, to } => {
                write!(f, "stack changed from {from} to {to}, for the next deployment")
            }
        }
    }
}

/// One line of the record: an event and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339 in UTC with milliseconds, the time of its `[platform]` line too.
    pub created_at: String,
    #[serde(flatten)]
    pub event: Event,
}

/// One entry of `shipway timeline --json` (and of the dashboard): the record with its
/// type's text as the timeline shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub record: Record,
    pub detail: String,
}

impl From<Record> for Entry {
    fn from(record: Record) -> Entry {
        let detail = record.event.to_string();
        Entry { record, detail }
    }
}

/// The app's events, newest first: `events.jsonl.1`, then `events.jsonl`, read-only. A
/// line that is not an event (cut short by a crash, written by a later shipway with a
/// type this one does not know) is passed over, never an error.
pub fn timeline(app: &AppDir) -> Result<Vec<Record>, StateError> {
    let mut records = Vec::new();
    for path in [rotated(&app.root.join(FILE)), app.root.join(FILE)] {
        // Without blocking, and regular files only: a FIFO in its place must not hang.
        let Some(bytes) = read_regular(&path)? else {
            continue;
        };
        records.extend(parse(&bytes));
    }
    // Two writers (the platform, a CLI's `env-set`) may append a moment out of order:
    // the times decide (RFC 3339 of one width sorts as text); of two at the same
    // millisecond, the one written later comes first.
    records.reverse();
    records.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Ok(records)
}

/// The events of a record's bytes, oldest first, skipping what is not one (a time that
/// is not as [`crate::units::utc`] writes it included: it would sort anywhere).
pub fn parse(bytes: &[u8]) -> Vec<Record> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Record>(line).ok())
        .filter(|r| {
            let t = r.created_at.as_bytes();
            t.len() == 24 && t[4] == b'-' && t[10] == b'T' && t[23] == b'Z'
        })
        .collect()
}

/// The rotated file beside `path` (`events.jsonl.1`).
fn rotated(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".1");
    path.with_file_name(name)
}

/// Append one record to the file at `path`, rotating it first when it would pass
/// `bound`. The file is opened for each event rather than held: the CLI (`env-set`,
/// `stacks-set`) and the platform both write an app's record, and each write must land
/// in the current file whoever rotated it last. Events are rare (not one per request
/// or line), so the open costs nothing that matters.
pub fn append(path: &Path, record: &Record, bound: u64) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file: File = crate::state::open_private_log(path)?;
    let size = file.metadata()?.len();
    if size > 0 && size + line.len() as u64 > bound {
        std::fs::rename(path, rotated(path))?;
        file = crate::state::open_private_log(path)?;
    }
    file.write_all(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale(n: u32) -> Event {
        Event::Scale {
            containers: [("web".to_string(), n)].into(),
            release: Some(3),
        }
    }

    fn at(event: Event) -> Record {
        Record {
            created_at: "2026-12-07T08:00:00.000Z".into(),
            event,
        }
    }

    #[test]
    fn a_record_is_the_platform_api_shape() {
        let json = serde_json::to_value(at(scale(2))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "created_at": "2026-12-07T08:00:00.000Z",
                "type": "scale",
                "type_data": {"containers": {"web": 2}, "release": 3}
            })
        );
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back, at(scale(2)));
    }

    #[test]
    fn every_kind_names_its_json_type() {
        let events = [
            scale(1),
            Event::RepeatedCrash {
                container: "web-1".into(),
                crashes: 3,
                reason: "exited with code 1".into(),
                release: 1,
            },
            Event::OutOfMemory {
                container: "hog-1".into(),
                size: "S".into(),
                memory_limit_bytes: 256 * 1024 * 1024,
            },
            Event::NewVariable {
                names: vec!["SECRET".into()],
            },
        ];
        for e in events {
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(json["type"], e.kind(), "{json}");
        }
    }

    #[test]
    fn texts_are_the_logs_lines() {
        let oom = Event::OutOfMemory {
            container: "hog-1".into(),
            size: "S".into(),
            memory_limit_bytes: 256 * 1024 * 1024,
        };
        assert_eq!(
            oom.to_string(),
            "hog-1 stopped: out of memory (limit 256 MB, size S)"
        );
        let big = Event::OutOfMemory {
            container: "web-1".into(),
            size: "L".into(),
            memory_limit_bytes: 1024 * 1024 * 1024,
        };
        assert!(big.to_string().contains("(limit 1 GB, size L)"), "{big}");
        assert_eq!(scale(2).to_string(), "scaled to web=2 (release v3)");
        let run = Event::Run {
            container: "one-off-1".into(),
            command: "echo a\nb".into(),
            release: 2,
        };
        assert!(!run.to_string().contains('\n'), "{run}");
        assert!(run.to_string().starts_with("one-off-1 "), "{run}");
        assert_eq!(oom.title(), "Out Of Memory");
        assert_eq!(scale(1).title(), "Scale");
    }

    #[test]
    fn old_or_garbled_lines_are_passed_over() {
        let good = serde_json::to_string(&at(scale(2))).unwrap();
        let bytes = format!(
            "{good}\n{{\"created_at\":\"x\",\"type\":\"teleport\",\"type_data\":{{}}}}\n\
             {{\"created_at\":\"later\",\"type\":\"scale\",\"type_data\":{{\"containers\":{{}},\"release\":null}}}}\n\
             not json at all\n\u{0}\u{fffd}\n{{\"type\":\"scale\"}}\n{}\n{good}\n",
            &good[..good.len() / 2]
        );
        let mut bytes = bytes.into_bytes();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let records = parse(&bytes);
        assert_eq!(records, vec![at(scale(2)), at(scale(2))]);
    }

    #[test]
    fn the_record_is_rotated_past_its_bound_and_read_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let app = AppDir {
            name: "a".into(),
            root: dir.path().to_path_buf(),
        };
        let path = dir.path().join(FILE);
        let bound = 4096;
        for n in 0..200 {
            append(&path, &at(scale(n)), bound).unwrap();
        }
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= bound, "{size} bytes");
        let old = std::fs::metadata(dir.path().join("events.jsonl.1"))
            .unwrap()
            .len();
        assert!(old <= bound, "{old} bytes");
        let records = timeline(&app).unwrap();
        assert!(records.len() < 200 && records.len() > 10, "{}", records.len());
        // Newest first, and none lost between the two files.
        let amounts: Vec<u32> = records
            .iter()
            .map(|r| match &r.event {
                Event::Scale { containers, .. } => containers["web"],
                other => panic!("{other:?}"),
            })
            .collect();
        let first = amounts[0];
        assert_eq!(first, 199);
        for (i, n) in amounts.iter().enumerate() {
            assert_eq!(*n, first - i as u32);
        }
    }

    #[test]
    fn an_app_without_events_has_an_empty_timeline() {
        let dir = tempfile::tempdir().unwrap();
        let app = AppDir {
            name: "a".into(),
            root: dir.path().to_path_buf(),
        };
        assert!(timeline(&app).unwrap().is_empty());
    }
}
