//! `cron.json`, Scalingo's scheduler (doc.scalingo.com, "Scalingo Scheduler"): read from
//! the root of the app at every deployment and checked against the platform's rules,
//! kept with the release (`cron.toml` beside `release.toml`), and the record of each
//! job's last run (`apps/<app>/cron-runs.toml`).
//!
//! The platform's rules: `{"jobs": [{"command": "<cron expression> <command>", "size":
//! "2XL"}]}`; `size` is optional (M); at most 5 jobs; no job more often than every 10
//! minutes ("the deployment will fail"); a run is killed after 15 minutes, or after its
//! interval when that is shorter. Times are UTC.
//!
//! It reads, checks and stores; running a job is the platform's (`platform/cron.rs`).

pub mod schedule;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use schedule::{Schedule, ScheduleError, UnixTime};

use crate::platform_numbers::{Size, CRON_MAX_JOBS, CRON_MAX_RUN, CRON_MIN_INTERVAL, DEFAULT_SIZE};
use crate::state::{self, StateError};

#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error("cron.json is invalid, and the platform fails a deployment that carries it:\n{}", .problems.join("\n"))]
    Invalid { problems: Vec<String> },
    #[error(transparent)]
    Read(#[from] crate::source::AppFileError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// One job of `cron.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The `command` key as written: the schedule, then the command.
    pub line: String,
    /// The schedule's part of `line` (`*/10 * * * *`, `@daily`).
    pub schedule_text: String,
    pub schedule: Schedule,
    /// What runs: the rest of `line`.
    pub command: String,
    pub size: String,
}

impl Job {
    /// `command` and `size` as `cron.json` gives them.
    pub fn parse(line: &str, size: Option<&str>) -> Result<Job, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let count = if words.first().is_some_and(|w| w.starts_with('@')) {
            1
        } else {
            5
        };
        if words.len() <= count {
            return Err(format!(
                "\"command\" must be a cron expression ({}) followed by the command to run, as in \"*/10 * * * * rails orders:check\"",
                schedule::FIELDS
            ));
        }
        let schedule = Schedule::parse(&words[..count]).map_err(|e| e.to_string())?;
        let size = match size {
            Some(name) => Size::named(name).map_err(|e| format!("\"size\": {e}"))?,
            None => DEFAULT_SIZE,
        };
        // The command is what follows the schedule, as written (inner spaces kept).
        let mut rest = line.trim_start();
        for _ in 0..count {
            rest = rest.trim_start();
            rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
        }
        Ok(Job {
            line: line.trim().to_string(),
            schedule_text: words[..count].join(" "),
            schedule,
            command: rest.trim().to_string(),
            size: size.name.to_string(),
        })
    }

    /// Whether it runs often enough to be refused: an error when its runs are closer
    /// than `min` (the `cron_min_interval` setting), a note when they are closer than
    /// the platform allows but `min` was lowered to rehearse it.
    pub fn check_interval(&self, min: Duration) -> Result<Option<String>, String> {
        let Some((gap, a, b)) = self.schedule.shortest_interval() else {
            return Ok(None);
        };
        let apart = format!(
            "it runs {} minute(s) apart (at {} and {})",
            gap.as_secs() / 60,
            clock(a),
            clock(b)
        );
        let platform = CRON_MIN_INTERVAL.as_secs() / 60;
        if gap < min {
            return Err(if min == CRON_MIN_INTERVAL {
                format!("{apart}: the platform's smallest interval is {platform} minutes")
            } else {
                format!(
                    "{apart}: the smallest interval allowed is {} (the cron_min_interval setting; the platform's is {platform} minutes)",
                    crate::settings::render_duration(min)
                )
            });
        }
        if gap < CRON_MIN_INTERVAL {
            return Ok(Some(format!(
                "{apart}: the platform fails a deployment with it (under {platform} minutes); accepted here because cron_min_interval is {}",
                crate::settings::render_duration(min)
            )));
        }
        Ok(None)
    }

    /// How long a run may last: 15 minutes, or the job's interval when shorter.
    pub fn time_limit(&self) -> Duration {
        match self.schedule.shortest_interval() {
            Some((gap, _, _)) => gap.min(CRON_MAX_RUN),
            None => CRON_MAX_RUN,
        }
    }

    /// The size its container gets.
    pub fn container_size(&self) -> Size {
        Size::named(&self.size).unwrap_or(DEFAULT_SIZE)
    }
}

/// Now, in the scheduler's clock: seconds since the epoch (UTC), `ahead` of the host's
/// (the `cron_clock_ahead` setting).
pub fn now(ahead: Duration) -> UnixTime {
    crate::clock::Clock::unix_secs(&crate::clock::SystemClock { ahead })
}

fn clock(minute_of_day: u32) -> String {
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

/// What a deployment learns from `cron.json`: the jobs, and notes on what it ignored.
#[derive(Debug, Default)]
pub struct CronFile {
    pub jobs: Vec<Job>,
    pub notes: Vec<String>,
}

/// `cron.json` at the root of `app_dir`; no file, no job. `min_interval`: the
/// `cron_min_interval` setting.
pub fn read(app_dir: &Path, min_interval: Duration) -> Result<CronFile, CronError> {
    // The app's file, so possibly anything: read as the Procfile is, never blocking.
    match crate::source::read_app_file(&app_dir.join("cron.json"), crate::source::APP_FILE_LIMIT)? {
        Some(bytes) => parse(&String::from_utf8_lossy(&bytes), min_interval),
        None => Ok(CronFile::default()),
    }
}

/// Check a whole `cron.json`: every problem is reported, each naming its job.
pub fn parse(text: &str, min_interval: Duration) -> Result<CronFile, CronError> {
    let invalid = |p: String| CronError::Invalid { problems: vec![p] };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        invalid(format!(
            "it is not valid JSON (line {}, column {}: {e})",
            e.line(),
            e.column()
        ))
    })?;
    let serde_json::Value::Object(top) = value else {
        return Err(invalid(
            "it must be a JSON object: {\"jobs\": [{\"command\": \"*/10 * * * * rails orders:check\"}]}"
                .into(),
        ));
    };
    let mut file = CronFile::default();
    for key in top.keys().filter(|k| *k != "jobs") {
        file.notes.push(format!(
            "cron.json: the key {key:?} is ignored: the platform reads \"jobs\" only"
        ));
    }
    let jobs = match top.get("jobs") {
        Some(serde_json::Value::Array(jobs)) => jobs,
        Some(_) => return Err(invalid("\"jobs\" must be a list of jobs".into())),
        None => {
            return Err(invalid(
                "it has no \"jobs\" list (remove the file to schedule nothing)".into(),
            ))
        }
    };
    let mut problems = Vec::new();
    if jobs.len() > CRON_MAX_JOBS {
        problems.push(format!(
            "it has {} jobs: the platform schedules {CRON_MAX_JOBS} at most per app (its support can raise the limit)",
            jobs.len()
        ));
    }
    for (i, job) in jobs.iter().enumerate() {
        let n = i + 1;
        let serde_json::Value::Object(fields) = job else {
            problems.push(format!("job {n}: must be an object with a \"command\" key"));
            continue;
        };
        for key in fields.keys().filter(|k| *k != "command" && *k != "size") {
            file.notes.push(format!(
                "cron.json job {n}: the key {key:?} is ignored: a job has \"command\" and \"size\""
            ));
        }
        let Some(serde_json::Value::String(line)) = fields.get("command") else {
            problems.push(format!("job {n}: \"command\" is missing or not a string"));
            continue;
        };
        let size = match fields.get("size") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                problems.push(format!(
                    "job {n} ({line:?}): \"size\" must be a string such as \"M\""
                ));
                continue;
            }
        };
        match Job::parse(line, size).and_then(|job| Ok((job.check_interval(min_interval)?, job))) {
            Ok((note, job)) => {
                if let Some(note) = note {
                    file.notes.push(format!("cron.json job {n}: {note}"));
                }
                file.jobs.push(job);
            }
            Err(p) => problems.push(format!("job {n} ({line:?}): {p}")),
        }
    }
    if problems.is_empty() {
        Ok(file)
    } else {
        Err(CronError::Invalid { problems })
    }
}

/// The jobs of a release, as stored beside its `release.toml`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    jobs: Vec<StoredJob>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredJob {
    command: String,
    size: String,
}

fn table_path(release_dir: &Path) -> PathBuf {
    release_dir.join("cron.toml")
}

/// Keep a release's jobs with it.
pub fn save(release_dir: &Path, jobs: &[Job]) -> Result<(), CronError> {
    let stored = Stored {
        jobs: jobs
            .iter()
            .map(|j| StoredJob {
                command: j.line.clone(),
                size: j.size.clone(),
            })
            .collect(),
    };
    Ok(state::write_toml(&table_path(release_dir), &stored, 0o600)?)
}

/// A release's jobs (none for a release made before the scheduler existed).
pub fn load(release_dir: &Path) -> Result<Vec<Job>, CronError> {
    let path = table_path(release_dir);
    let stored: Stored = state::read_toml(&path)?.unwrap_or_default();
    stored
        .jobs
        .iter()
        .map(|j| {
            Job::parse(&j.command, Some(&j.size)).map_err(|p| {
                CronError::State(StateError::Corrupt {
                    path: path.clone(),
                    message: p,
                })
            })
        })
        .collect()
}

/// How a run ended, or that it is still running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// When it started, seconds since the epoch (UTC).
    pub started: UnixTime,
    /// `exited with code 0`, `killed by SIGKILL`; `None` while it runs.
    pub exit: Option<String>,
    /// The exit code, when it exited on its own.
    pub code: Option<i32>,
    pub duration_ms: Option<u64>,
    /// `schedule` or `cron-run` (on demand).
    pub trigger: String,
}

/// The last run of each job of an app, by the job's whole `command` line (a job changed
/// by a deploy starts without a history).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Runs {
    #[serde(default)]
    pub last: BTreeMap<String, Run>,
}

impl Runs {
    fn path(app_root: &Path) -> PathBuf {
        app_root.join("cron-runs.toml")
    }

    pub fn load(app_root: &Path) -> Runs {
        state::read_toml(&Runs::path(app_root))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Record `run` as the last of the job whose line is `line`.
    pub fn record(app_root: &Path, line: &str, run: Run) -> Result<(), CronError> {
        let mut runs = Runs::load(app_root);
        runs.last.insert(line.to_string(), run);
        Ok(state::write_toml(&Runs::path(app_root), &runs, 0o600)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CronFile, CronError> {
        super::parse(text, CRON_MIN_INTERVAL)
    }

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Err(CronError::Invalid { problems }) => problems,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_file_gives_its_jobs() {
        let file = parse(
            r#"{"jobs": [
                {"command": "0 7 * * * /bin/send-newsletter"},
                {"command": "*/10 * * * *   rails orders:check  --all", "size": "2XL"},
                {"command": "@daily bin/cleanup"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(file.jobs.len(), 3);
        assert!(file.notes.is_empty());
        let j = &file.jobs[1];
        assert_eq!(j.schedule_text, "*/10 * * * *");
        assert_eq!(j.command, "rails orders:check  --all");
        assert_eq!(j.size, "2XL");
        assert_eq!(j.container_size().memory, 4096 * 1024 * 1024);
        assert_eq!(
            j.time_limit(),
            Duration::from_secs(600),
            "its interval, under 15 minutes"
        );
        assert_eq!(file.jobs[0].size, "M");
        assert_eq!(file.jobs[0].time_limit(), CRON_MAX_RUN);
        assert_eq!(file.jobs[2].schedule_text, "@daily");
        assert_eq!(file.jobs[2].command, "bin/cleanup");
    }

    #[test]
    fn sizes_are_the_platform_table() {
        let file = parse(r#"{"jobs": [{"command": "@daily bin/report", "size": "3XL"}]}"#).unwrap();
        assert_eq!(
            file.jobs[0].container_size().memory,
            8 * 1024 * 1024 * 1024,
            "3XL exists since 2026-07"
        );
        let p = problems(r#"{"jobs": [{"command": "@daily bin/report", "size": "4XL"}]}"#);
        assert!(
            p[0].contains("\"4XL\"") && p[0].contains("S, M, L, XL, 2XL, 3XL"),
            "{p:?}"
        );
    }

    #[test]
    fn every_problem_names_its_job() {
        let p = problems(
            r#"{"jobs": [
                {"command": "*/5 * * * * rails x"},
                {"command": "0 7 * * *"},
                {"command": "0 7 * * * ok", "size": "XXL"},
                {"size": "M"},
                "echo",
                {"command": "61 * * * * x"}
            ]}"#,
        );
        assert_eq!(p.len(), 7, "{p:#?}");
        assert!(p[0].contains("6 jobs") && p[0].contains("5 at most"), "{}", p[0]);
        assert!(
            p[1].starts_with(
                "job 1 (\"*/5 * * * * rails x\"): it runs 5 minute(s) apart (at 00:00 and 00:05)"
            ),
            "{}",
            p[1]
        );
        assert!(
            p[2].starts_with("job 2") && p[2].contains("followed by the command"),
            "{}",
            p[2]
        );
        assert!(
            p[3].starts_with("job 3") && p[3].contains("\"XXL\" is not a container size"),
            "{}",
            p[3]
        );
        assert!(p[4].starts_with("job 4") && p[4].contains("missing"), "{}", p[4]);
        assert!(
            p[5].starts_with("job 5") && p[5].contains("must be an object"),
            "{}",
            p[5]
        );
        assert!(
            p[6].starts_with("job 6") && p[6].contains("61 is out of 0-59"),
            "{}",
            p[6]
        );
    }

    #[test]
    fn the_file_itself_must_be_right() {
        assert!(problems("{\"jobs\": [")
            .remove(0)
            .contains("not valid JSON (line 1"));
        assert!(problems("[]").remove(0).contains("must be a JSON object"));
        assert!(problems("{}").remove(0).contains("no \"jobs\" list"));
        assert!(problems("{\"jobs\": {}}").remove(0).contains("must be a list"));
        assert!(parse("{\"jobs\": []}").unwrap().jobs.is_empty());
        let file = parse(r#"{"jobs": [{"command": "@hourly x", "sise": "L"}], "extra": 1}"#).unwrap();
        assert_eq!(file.notes.len(), 2, "{:?}", file.notes);
        assert!(file.notes.iter().any(|n| n.contains("\"sise\" is ignored")));
    }

    #[test]
    fn a_lowered_minimum_interval_accepts_with_a_note() {
        let text = r#"{"jobs": [{"command": "* * * * * echo tick"}]}"#;
        let file = super::parse(text, Duration::from_secs(60)).unwrap();
        assert_eq!(file.jobs.len(), 1);
        assert_eq!(file.jobs[0].time_limit(), Duration::from_secs(60));
        assert!(
            file.notes[0].contains("the platform fails a deployment with it (under 10 minutes); accepted here because cron_min_interval is 1m"),
            "{:?}",
            file.notes
        );
        let p = match super::parse(text, Duration::from_secs(120)) {
            Err(CronError::Invalid { problems }) => problems,
            other => panic!("{other:?}"),
        };
        assert!(
            p[0].contains("the smallest interval allowed is 2m (the cron_min_interval setting"),
            "{p:?}"
        );
    }

    #[test]
    fn jobs_and_runs_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty(), "no file, no job");
        let jobs = parse(r#"{"jobs": [{"command": "0 * * * * echo hi", "size": "L"}]}"#)
            .unwrap()
            .jobs;
        save(dir.path(), &jobs).unwrap();
        assert_eq!(load(dir.path()).unwrap(), jobs);
        let run = Run {
            started: 1,
            exit: Some("exited with code 3".into()),
            code: Some(3),
            duration_ms: Some(20),
            trigger: "cron-run".into(),
        };
        Runs::record(dir.path(), &jobs[0].line, run.clone()).unwrap();
        assert_eq!(Runs::load(dir.path()).last[&jobs[0].line], run);
    }
}
