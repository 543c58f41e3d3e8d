//! Everything a deployment says goes through an [`Output`]: the platform's line style
//! (`-----> ` steps, 7-space details, ` !     ` errors) written to every attached
//! destination at once (the terminal, the deployment log, a client socket).
//!
//! It formats and writes; it decides nothing. The everyday verbs' listings are in
//! [`tables`].

pub mod tables;

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::process::{LineSink, Stream};

pub const STEP: &str = "-----> ";
pub const DETAIL: &str = "       ";
pub const ERROR: &str = " !     ";

/// A cloneable handle on a set of line destinations.
#[derive(Clone, Default)]
pub struct Output {
    writers: Arc<Mutex<Vec<Box<dyn Write + Send>>>>,
}

impl Output {
    /// An output with no destination yet.
    pub fn new() -> Output {
        Output::default()
    }

    /// An output to this process's stdout.
    pub fn stdout() -> Output {
        let out = Output::new();
        out.attach(Box::new(std::io::stdout()));
        out
    }

    pub fn attach(&self, writer: Box<dyn Write + Send>) {
        if let Ok(mut w) = self.writers.lock() {
            w.push(writer);
        }
    }

    /// A raw line, as is.
    pub fn line(&self, text: &str) {
        let Ok(mut writers) = self.writers.lock() else {
            return;
        };
        // A destination that fails (a client that went away) is dropped; the others go on.
        // One write per line: a destination that frames writes (the platform's client
        // events) receives whole lines.
        let line = format!("{text}\n");
        writers.retain_mut(|w| w.write_all(line.as_bytes()).and_then(|_| w.flush()).is_ok());
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
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        now.subsec_millis()
    )
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
