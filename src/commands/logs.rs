//! `shipway logs [-n N] [-f] [--filter web|web-1]`: the containers' output from
//! `app.log` (and the rotated `app.log.1`), followed as it grows.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use crate::error::{exit, Error};
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    choice: &super::AppChoice,
    lines: usize,
    follow: bool,
    filter: Option<String>,
) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    let path = app.root.join("app.log");
    let filter = filter.as_deref();
    if let Some(f) = filter {
        let valid = !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(Error::Usage(format!(
                "--filter {f:?}: give a process type (web) or a container (web-1)"
            )));
        }
    }
    let mut text = std::fs::read_to_string(app.root.join("app.log.1")).unwrap_or_default();
    text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
    let selected: Vec<&str> = text.lines().filter(|l| matches(l, filter)).collect();
    for line in &selected[selected.len().saturating_sub(lines)..] {
        crate::ui::tables::value(line);
    }
    if !follow {
        return Ok(exit::SUCCESS);
    }
    // Follow: read what is appended; start again from the top when the file is rotated.
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut pending = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0;
        }
        if len == offset {
            continue;
        }
        let Ok(mut file) = std::fs::File::open(&path) else {
            continue;
        };
        if file.seek(SeekFrom::Start(offset)).is_err() {
            continue;
        }
        let mut chunk = String::new();
        if let Ok(n) = file.read_to_string(&mut chunk) {
            offset += n as u64;
            pending.push_str(&chunk);
            while let Some(i) = pending.find('\n') {
                let line: String = pending.drain(..=i).collect();
                let line = line.trim_end_matches('\n');
                if matches(line, filter) {
                    crate::ui::tables::value(line);
                }
            }
        }
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
