//! The terminal end of a verb's output: lines on stdout, ` !` error lines on stderr.
//! Where stdout is a terminal, a build step's duration is shown when it ends and, unless
//! `NO_COLOR` is set, waits get a spinner (`indicatif`) with their elapsed time and
//! limit, and errors and statuses a colour. Piped, each line is written as the platform
//! prints it and nothing else is: scripts and logs read plain lines. Either way a line
//! (which may be an app's or a buildpack's) goes through [`neutralise`] first: its escape
//! sequences never reach the terminal.
//!
//! It shows; it decides nothing about what is said.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::terminal::Abilities;
use super::{neutralise, Destination, Progress, Reader, DETAIL, ERROR};
use crate::settings::render_duration;
use crate::units::human_duration;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// `text` in `colour` when `styled`, else as is.
pub fn paint(text: &str, colour: &str, styled: bool) -> String {
    if styled {
        format!("{colour}{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// A container's or an app's status in its colour (`ps`, `apps`), padded to `width`.
pub fn status(status: &str, width: usize, styled: bool) -> String {
    let padded = format!("{status:<width$}");
    let colour = match status {
        "running" | "success" => GREEN,
        "crashed" | "stopped" => RED,
        s if s.ends_with("-error") => RED,
        _ => YELLOW,
    };
    paint(&padded, colour, styled)
}

/// The colour of a line of a deployment's output, if it is a status.
fn line_colour(line: &str) -> Option<&'static str> {
    if line.starts_with(" Deployment success") {
        Some(GREEN)
    } else if line.starts_with("<-- Deployment ") {
        // `<-- Deployment build-error: ...`, `<-- Deployment aborted while queued ...`
        Some(RED)
    } else {
        None
    }
}

pub struct Console {
    can: Abilities,
    current: Option<Running>,
}

/// The step or wait that began last.
struct Running {
    /// The step's name; `None` for a wait.
    step: Option<String>,
    started: Instant,
    spinner: Option<ProgressBar>,
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

impl Console {
    pub fn new() -> Console {
        Console::with(Abilities::detect())
    }

    pub fn with(can: Abilities) -> Console {
        Console { can, current: None }
    }

    /// End what runs: its spinner goes, and a step's duration is shown.
    pub fn finish(&mut self) {
        let Some(running) = self.current.take() else {
            return;
        };
        if let Some(bar) = &running.spinner {
            bar.finish_and_clear();
        }
        if let Some(step) = running.step {
            let took = format!("{DETAIL}{step}: {}", human_duration(running.started.elapsed()));
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", paint(&took, DIM, self.can.styled_out));
        }
    }

    fn begin(&mut self, step: Option<String>, label: String, limit: Option<Duration>) {
        let spinner = self.can.styled_out.then(|| {
            let template = match limit {
                Some(_) => "       {spinner} {prefix} {elapsed} (timeout {msg})",
                None => "       {spinner} {prefix} {elapsed}",
            };
            // Drawn only once it is complete, or its first frame lacks the limit.
            let bar = ProgressBar::hidden();
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_prefix(label);
            if let Some(l) = limit {
                bar.set_message(render_duration(l));
            }
            bar.set_draw_target(ProgressDrawTarget::stdout());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        self.current = Some(Running {
            step,
            started: Instant::now(),
            spinner,
        });
    }
}

impl Destination for Console {
    fn line(&mut self, line: &str) -> std::io::Result<()> {
        let error = line.starts_with(ERROR.trim_end());
        let text = if error {
            let line = neutralise(line, Reader::from_styled(self.can.styled_err));
            paint(&line, RED, self.can.styled_err)
        } else {
            let line = neutralise(line, Reader::from_styled(self.can.styled_out));
            match line_colour(&line) {
                Some(c) => paint(&line, c, self.can.styled_out),
                None => line.into_owned(),
            }
        };
        let write = || -> std::io::Result<()> {
            // Flushed line by line, so that `2>&1` keeps the order the platform wrote.
            if error {
                let mut err = std::io::stderr().lock();
                writeln!(err, "{text}")?;
                err.flush()
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{text}")?;
                out.flush()
            }
        };
        match self.current.as_ref().and_then(|r| r.spinner.as_ref()) {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    fn progress(&mut self, progress: &Progress) -> std::io::Result<()> {
        if !self.can.tty {
            return Ok(());
        }
        self.finish();
        match progress {
            Progress::Step { name } => self.begin(Some(name.clone()), name.clone(), None),
            Progress::Wait { what, limit_ms } => self.begin(
                None,
                format!("waiting for {what}"),
                Some(Duration::from_millis(*limit_ms)),
            ),
            Progress::Done => {}
        }
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_stays_as_is() {
        assert_eq!(paint(" !     boom", RED, false), " !     boom");
        assert_eq!(status("running", 9, false), "running  ");
    }

    #[test]
    fn statuses_have_their_colour_when_styled() {
        assert_eq!(status("running", 7, true), format!("{GREEN}running{RESET}"));
        assert_eq!(status("crashed", 7, true), format!("{RED}crashed{RESET}"));
        assert_eq!(status("stopping", 8, true), format!("{YELLOW}stopping{RESET}"));
        assert_eq!(line_colour(" Deployment success in 1.2s"), Some(GREEN));
        assert_eq!(
            line_colour("<-- Deployment timeout-error: the running release..."),
            Some(RED)
        );
        assert_eq!(line_colour("-----> Python app detected"), None);
    }

    #[test]
    fn progress_off_a_terminal_starts_nothing() {
        let mut c = Console::with(Abilities {
            tty: false,
            styled_out: false,
            styled_err: false,
        });
        c.progress(&Progress::Step {
            name: "compile".into(),
        })
        .unwrap();
        assert!(c.current.is_none());
    }
}
