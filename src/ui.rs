//! Everything a deployment says goes through an [`Output`]: the platform's line style
//! (`-----> ` steps, 7-space details, ` !     ` errors) written to every attached
//! destination at once (the terminal, the deployment log, a client socket).
//!
//! It formats and writes; it decides nothing, and names no step of the pipeline, so that
//! every step can write through it. What a terminal may be sent is [`terminal`]; what it
//! adds (colour, spinners, errors on stderr) is [`console`]; what keeps an app's bytes from driving the terminal is
//! [`controls`]. The everyday verbs' listings are `commands::tables`; sizes, durations and
//! dates are written by `units`.

pub mod console;
pub mod controls;
pub mod terminal;

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
