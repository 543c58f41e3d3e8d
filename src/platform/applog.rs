//! An app's log: every container's output, one line each with a timestamp and the
//! container's name (`2026-11-27T09:30:01.123Z [web-1] listening`), in `app.log`,
//! rotated to `app.log.1` past a size so it cannot grow without bound. The platform's
//! events go through it too ([`AppLog::event`]): their record beside it (`events.jsonl`,
//! see [`super::events`]) and their `[platform]` line here, from one value at one time.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::events::{self, Event, Record};
use crate::state::AppDir;

/// Past this size the log is rotated (one previous file is kept).
const ROTATE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct AppLog {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: PathBuf,
    /// The app's event record, beside the log.
    events: PathBuf,
    file: File,
    size: u64,
}

impl AppLog {
    pub fn open(path: &Path) -> std::io::Result<AppLog> {
        let file = crate::state::open_private_log(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(AppLog {
            inner: Arc::new(Mutex::new(Inner {
                path: path.to_path_buf(),
                events: path.with_file_name(events::FILE),
                file,
                size,
            })),
        })
    }

    /// The log of an app, to record an event from outside the platform (`env-set`).
    pub fn of(app: &AppDir) -> std::io::Result<AppLog> {
        AppLog::open(&app.root.join("app.log"))
    }

    pub fn line(&self, prefix: &str, text: &str) {
        self.lines(prefix, &[text]);
    }

    /// Several lines with one time, in one write (the router logs' batches).
    pub fn lines(&self, prefix: &str, texts: &[impl AsRef<str>]) {
        if texts.is_empty() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.write(&timestamp(), prefix, texts);
    }

    /// Record an event: its JSON line in the app's `events.jsonl` and its `[platform]`
    /// line in the log, with one time. Its text, for the terminal under `up`. As with a
    /// log line, a write that fails is passed over: an event never stops what it tells.
    pub fn event(&self, event: Event) -> String {
        let text = event.to_string();
        let Ok(mut inner) = self.inner.lock() else {
            return text;
        };
        let record = Record {
            created_at: timestamp(),
            event,
        };
        let _ = events::append(&inner.events, &record, events::ROTATE_BYTES);
        inner.write(&record.created_at, "[platform]", &[&text]);
        text
    }
}

impl Inner {
    /// Lines stamped `time`, in one write.
    fn write(&mut self, time: &str, prefix: &str, texts: &[impl AsRef<str>]) {
        let mut line = String::new();
        for text in texts {
            line.push_str(&format!("{time} {prefix} {}\n", text.as_ref()));
        }
        if self.size + line.len() as u64 > ROTATE_BYTES {
            let rotated = self.path.with_extension("log.1");
            let _ = std::fs::rename(&self.path, rotated);
            if let Ok(f) = crate::state::open_private_log(&self.path) {
                self.file = f;
                self.size = 0;
            }
        }
        if self.file.write_all(line.as_bytes()).is_ok() {
            self.size += line.len() as u64;
        }
    }
}

/// Record events from outside the platform's supervisor (`env-set`, `stacks-set`,
/// `deploy --env`), as [`AppLog::event`] does. The log is opened for them alone: it is
/// appended to, so the platform's own writes go on beside.
pub fn record(app: &AppDir, events: impl IntoIterator<Item = Event>) -> std::io::Result<()> {
    let log = AppLog::of(app)?;
    for e in events {
        log.event(e);
    }
    Ok(())
}

/// Now, as `units::utc` writes it.
pub fn timestamp() -> String {
    crate::units::utc(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        let t = timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20"), "{t}");
        assert!(t.ends_with('Z'));
    }

    #[test]
    fn the_log_is_rotated_past_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let log = AppLog::open(&path).unwrap();
        let line = "x".repeat(1024);
        for _ in 0..(ROTATE_BYTES / 1024 + 10) {
            log.line("[web-1]", &line);
        }
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < ROTATE_BYTES / 2, "app.log was not rotated: {size} bytes");
        assert!(dir.path().join("app.log.1").exists());
    }

    #[test]
    fn an_event_is_its_record_and_its_platform_line_at_one_time() {
        let dir = tempfile::tempdir().unwrap();
        let log = AppLog::open(&dir.path().join("app.log")).unwrap();
        let text = log.event(Event::DeleteVariable {
            names: vec!["TOKEN".into()],
        });
        assert_eq!(text, "config vars removed: TOKEN");
        let lines = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
        let app = AppDir {
            name: "a".into(),
            root: dir.path().to_path_buf(),
        };
        let records = events::timeline(&app).unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(lines, format!("{} [platform] {text}\n", r.created_at));
    }

    #[test]
    fn lines_are_prefixed() {
        let dir = tempfile::tempdir().unwrap();
        let log = AppLog::open(&dir.path().join("app.log")).unwrap();
        log.line("[web-1]", "hello");
        let text = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
        assert!(text.ends_with(" [web-1] hello\n"), "{text}");
    }
}
