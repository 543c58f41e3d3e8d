//! `shipway logs [-n N] [-f] [--filter web|web-1] [--raw]`: the containers' output from
//! `app.log` (and the rotated `app.log.1`), followed as it grows, with the build output of
//! a deployment that runs meanwhile (`[deployment]` lines). What the app wrote is
//! shown through [`neutralise`] (its escape sequences never drive the terminal), unless
//! `--raw` asks for the bytes as written.

use std::io::Write;
use std::time::Duration;

use super::follow::{Follower, OnShrink};
use crate::deployment::Deployment;
use crate::error::{exit, Error};
use crate::settings::Settings;
use crate::state::read_regular;
use crate::ui::{neutralise, Reader};

pub struct Options {
    /// How many lines from the end.
    pub lines: usize,
    pub follow: bool,
    pub filter: Option<String>,
    /// The bytes as written, escape sequences and invalid UTF-8 included.
    pub raw: bool,
}

pub fn run(settings: &Settings, choice: &super::AppChoice, options: Options) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    let path = app.root.join("app.log");
    let filter = options.filter.as_deref();
    if let Some(f) = filter {
        let valid = !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(Error::Usage(format!(
                "--filter {f:?}: give a process type (web) or a container (web-1)"
            )));
        }
    }
    let show = Shown {
        raw: options.raw,
        reader: Reader::stdout(),
        filter,
    };
    // Without blocking, and regular files only: a FIFO in their place must not hang `logs`.
    let mut text = read_regular(&app.root.join("app.log.1"))?.unwrap_or_default();
    text.extend(read_regular(&path)?.unwrap_or_default());
    let selected: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && show.selects(l))
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in &selected[selected.len().saturating_sub(options.lines)..] {
        if show.write(&mut out, line).is_err() {
            // The reader went away (`logs | head`): nothing more to do.
            return Ok(exit::SUCCESS);
        }
    }
    if out.flush().is_err() || !options.follow {
        return Ok(exit::SUCCESS);
    }
    drop(out);
    // Follow: read what is appended; start again from the top when the file is rotated.
    // A deployment's build output joins in as it happens (as `scalingo logs -f` shows it),
    // from its start for one that begins meanwhile, from now for one already running.
    let mut app_log = Follower::from_end(path, OnShrink::Restart);
    let mut build: Option<(String, Follower)> = None;
    let mut seen = Deployment::latest(&app).map(|d| d.id);
    let mut polls = 0u32;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let mut lines = app_log.lines();
        // The deployment record is read every 500 ms: a new one starts with seconds of
        // source and detection, and the log keeps every line of it meanwhile.
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(5) || build.is_some() {
            if let Some(d) = Deployment::latest(&app) {
                let running = d.status().is_some_and(|s| !s.is_final());
                let new = seen.as_deref() != Some(d.id.as_str());
                let followed = build.as_ref().is_some_and(|(id, _)| *id == d.id);
                if running && !followed {
                    let log = Deployment::log_path(&app, &d.id);
                    let follower = if new {
                        Follower::from_start(log, OnShrink::Skip)
                    } else {
                        Follower::from_end(log, OnShrink::Skip)
                    };
                    build = Some((d.id.clone(), follower));
                }
                seen = Some(d.id.clone());
                if let Some((id, follower)) = &mut build {
                    let at = crate::units::utc(std::time::SystemTime::now());
                    for line in follower.lines() {
                        let mut tagged = format!("{at} [deployment] ").into_bytes();
                        tagged.extend_from_slice(&line);
                        lines.push(tagged);
                    }
                    // Its last lines follow its final status at once: read them once more,
                    // at the next pass, then let it go.
                    if !running && (*id != d.id || polls.is_multiple_of(5)) {
                        build = None;
                    }
                }
            }
        }
        let mut out = std::io::stdout().lock();
        for line in &lines {
            if show.selects(line) && show.write(&mut out, line).is_err() {
                return Ok(exit::SUCCESS);
            }
        }
        if out.flush().is_err() {
            return Ok(exit::SUCCESS);
        }
    }
}

/// How the lines of the log are chosen and written.
struct Shown<'a> {
    raw: bool,
    reader: Reader,
    filter: Option<&'a str>,
}

impl Shown<'_> {
    fn selects(&self, line: &[u8]) -> bool {
        matches(&String::from_utf8_lossy(line), self.filter)
    }

    fn write(&self, out: &mut impl Write, line: &[u8]) -> std::io::Result<()> {
        if self.raw {
            out.write_all(line)?;
        } else {
            out.write_all(neutralise(&String::from_utf8_lossy(line), self.reader).as_bytes())?;
        }
        out.write_all(b"\n")
    }
}

/// Whether a log line (`<time> [web-1] text`) is of `filter` (`web` or `web-1`). A
/// platform event about a container (`<time> [platform] web-1 started`) is of that
/// container too; `platform` selects every platform event.
fn matches(line: &str, filter: Option<&str>) -> bool {
    let Some(f) = filter else { return true };
    let mut words = line.split_whitespace().skip(1);
    let Some(tag) = words.next() else {
        return false;
    };
    let Some(mut name) = tag.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
        return false;
    };
    if name == "platform" && f != "platform" {
        name = words.next().unwrap_or_default();
    }
    name == f || name.rsplit_once('-').is_some_and(|(t, _)| t == f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filter_takes_a_type_or_a_container() {
        let line = "2026-11-27T09:30:01.123Z [web-1] hello";
        assert!(matches(line, None));
        assert!(matches(line, Some("web")));
        assert!(matches(line, Some("web-1")));
        assert!(!matches(line, Some("web-2")));
        assert!(!matches(line, Some("worker")));
        let event = "2026-11-27T09:30:01.123Z [platform] web-1 started (release v3)";
        assert!(matches(event, Some("platform")));
        assert!(matches(event, Some("web")));
        assert!(matches(event, Some("web-1")));
        assert!(!matches(event, Some("worker")));
        assert!(!matches(line, Some("platform")));
    }
}
