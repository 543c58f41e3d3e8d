//! Everything a deployment says goes through an [`Output`]: the platform's line style
//! (`-----> ` steps, 7-space details, ` !     ` errors) written to every attached
//! destination at once (the terminal, the deployment log, a client socket).
//!
//! It formats and writes; it decides nothing. The everyday verbs' listings are in
//! [`tables`]; what a terminal adds (colour, spinners, errors on stderr) is [`console`];
//! what keeps an app's bytes from driving the terminal is [`controls`].

pub mod console;
pub mod controls;
pub mod tables;

pub use controls::{neutralise, Reader};

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::process::{LineSink, Stream};

pub const STEP: &str = "-----> ";
pub const DETAIL: &str = "       ";
pub const ERROR: &str = " !     ";

/// What a step of a deployment is waiting for, beside its lines: a terminal shows it
/// as a spinner with the elapsed time, logs and pipes never see it. It travels to the
/// CLI as its own event so that the line stream stays what the platform prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "progress", rename_all = "snake_case")]
pub enum Progress {
    /// A build step began (`source`, `detect`, `compile`, `release`); it ends at the next
    /// `Step`, `Wait` or `Done`, and a terminal then shows how long it took.
    Step { name: String },
    /// A wait bounded by a setting began: the boot, the postdeploy hook, the grace period.
    Wait { what: String, limit_ms: u64 },
    /// What began last is over.
    Done,
}

/// One place an [`Output`] writes to.
pub trait Destination: Send {
    /// One whole line, without its newline.
    fn line(&mut self, line: &str) -> std::io::Result<()>;
    /// Progress: most destinations (a log, a pipe) have no use for it.
    fn progress(&mut self, _progress: &Progress) -> std::io::Result<()> {
        Ok(())
    }
}

/// A plain writer (a log file) as a destination: lines only.
struct Lines(Box<dyn Write + Send>);

impl Destination for Lines {
    fn line(&mut self, line: &str) -> std::io::Result<()> {
        // One write per line: a destination that frames writes receives whole lines.
        self.0.write_all(format!("{line}\n").as_bytes())?;
        self.0.flush()
    }
}

/// A cloneable handle on a set of line destinations.
#[derive(Clone, Default)]
pub struct Output {
    writers: Arc<Mutex<Vec<Box<dyn Destination>>>>,
}

impl Output {
    /// An output with no destination yet.
    pub fn new() -> Output {
        Output::default()
    }

    /// An output to this process's terminal: lines on stdout, ` !` errors on stderr,
    /// with colour and progress where they are terminals ([`console::Console`]).
    pub fn stdout() -> Output {
        let out = Output::new();
        out.attach_destination(Box::new(console::Console::new()));
        out
    }

    /// A plain writer, for lines only (a log file).
    pub fn attach(&self, writer: Box<dyn Write + Send>) {
        self.attach_destination(Box::new(Lines(writer)));
    }

    pub fn attach_destination(&self, destination: Box<dyn Destination>) {
        if let Ok(mut w) = self.writers.lock() {
            w.push(destination);
        }
    }

    /// A raw line, as is.
    pub fn line(&self, text: &str) {
        let Ok(mut writers) = self.writers.lock() else {
            return;
        };
        // A destination that fails (a client that went away) is dropped; the others go on.
        writers.retain_mut(|w| w.line(text).is_ok());
    }

    /// Progress for the destinations that show it (a terminal, a client).
    pub fn progress(&self, progress: Progress) {
        let Ok(mut writers) = self.writers.lock() else {
            return;
        };
        writers.retain_mut(|w| w.progress(&progress).is_ok());
    }

    pub fn step(&self, text: &str) {
        self.line(&format!("{STEP}{text}"));
    }

    pub fn detail(&self, text: &str) {
        self.line(&format!("{DETAIL}{text}"));
    }

    pub fn error(&self, text: &str) {
        for l in text.lines() {
            self.line(&format!("{ERROR}{l}"));
        }
    }

    /// A sink for a child's output: each line written as is.
    pub fn sink(&self) -> LineSink {
        let out = self.clone();
        Arc::new(move |_: Stream, line: &str| out.line(line))
    }
}

/// Bytes as people read them: `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration as people read it: `850ms`, `3.2s`, `2m05s`.
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// UTC, RFC 3339 with milliseconds (`2026-11-27T09:30:01.123Z`), without a date library.
pub fn utc(time: std::time::SystemTime) -> String {
    let now = time.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01 (Howard Hinnant's
/// civil-from-days).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates_are_civil() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_771_809_848);
        assert_eq!(utc(t), "2026-11-27T09:30:09.848Z");
        assert_eq!(utc(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_duration(std::time::Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(std::time::Duration::from_secs(125)), "2m05s");
    }
}
