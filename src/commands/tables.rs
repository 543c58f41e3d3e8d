//! The listings of the everyday verbs (`apps`, `ps`, `deployments`, `env`): each verb
//! gathers its rows, and they are printed here, as a table for people or as JSON. It sits
//! with the verbs rather than in `ui`: it names what they list (buildpack cache entries,
//! the platform's stacks), while `ui` stays below the steps that write through it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::buildpack_cache::Entry;
use crate::listing::{AddonRow, ContainerRow};
use crate::source::short;
use crate::ui::console::status;
use crate::ui::terminal::Abilities;
use crate::units::{human_bytes, human_duration, utc_ms};

/// How much of a process's command line `ps` shows on its line (`--json` has it all).
const COMMAND_WIDTH: usize = 100;

/// One value alone on its line, as scripts read it (`env-get`, `git-show`, log lines).
pub fn value(value: impl std::fmt::Display) {
    println!("{value}");
}

/// A `Settings | Value` table of one thing (`apps-info`, `addons-info`), as the
/// Scalingo CLI prints it; a value is one line.
pub fn settings(rows: &[(&str, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0)
        .max("Settings".len());
    println!("{:<width$}  Value", "Settings");
    for (k, v) in rows {
        println!("{k:<width$}  {}", v.replace('\n', " "));
    }
}

pub fn print_json(value: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// One app of `shipway apps`.
#[derive(Serialize)]
pub struct AppRow {
    pub name: String,
    pub release: Option<u32>,
    pub url: Option<String>,
    pub status: &'static str,
    /// The app's stack: its next deployment builds on it.
    pub stack: String,
    /// The stack and image its current release runs in.
    pub running_stack: Option<String>,
    pub running_digest: Option<String>,
}

pub fn apps(list: &[AppRow]) {
    if list.is_empty() {
        println!("No app yet: `shipway deploy` in an app's folder creates one");
        return;
    }
    println!(
        "{:<24} {:<8} {:<9} {:<12} {:<32} URL",
        "NAME", "RELEASE", "STATUS", "STACK", "RUNS IN"
    );
    let styled = Abilities::detect().styled_out;
    for a in list {
        println!(
            "{:<24} {:<8} {} {:<12} {:<32} {}",
            a.name,
            release(a.release),
            status(a.status, 9, styled),
            a.stack,
            stack_cell(a.running_stack.as_deref(), a.running_digest.as_deref()),
            a.url.as_deref().unwrap_or("-")
        );
    }
}

/// `shipway ps` of `app`, or what to say when no platform runs (`rows` is None).
pub fn ps(app: &str, rows: Option<&[ContainerRow]>) {
    let Some(rows) = rows else {
        println!("No shipway platform runs: nothing of {app} is running (`shipway up` brings the current releases back)");
        return;
    };
    if rows.is_empty() {
        println!("{app} has no container running");
        return;
    }
    println!(
        "{:<12} {:<9} {:<7} {:<8} {:<8} {:<8} {:<21} COMMAND",
        "NAME", "STATUS", "PORT", "PID", "UPTIME", "RESTARTS", "MEM"
    );
    let styled = Abilities::detect().styled_out;
    // Commands are the app's (its Procfile, what its processes set as their title).
    let reader = crate::ui::Reader::from_styled(styled);
    for r in rows {
        let command = match &r.exit {
            Some(e) => format!("{}  ({e})", r.command),
            None => r.command.clone(),
        };
        let command = crate::ui::neutralise(&command, reader);
        // Used / limit, as on the platform's dashboard: unknown without a cgroup.
        let memory = match (r.memory_bytes, r.memory_limit_bytes) {
            (Some(used), Some(limit)) => format!("{} / {}", human_bytes(used), human_bytes(limit)),
            _ => "-".to_string(),
        };
        println!(
            "{:<12} {} {:<7} {:<8} {:<8} {:<8} {:<21} {}",
            r.name,
            status(&r.status, 9, styled),
            dash(r.port),
            dash(r.pid),
            r.uptime_ms
                .map_or("-".into(), |ms| human_duration(Duration::from_millis(ms))),
            r.restarts,
            memory,
            command
        );
        // What left the container's process group is still the container's: show it, so
        // that a daemon started with `setsid` is not a surprise.
        for p in r.processes.iter().filter(|p| !p.in_group) {
            let command: String = match p.command.char_indices().nth(COMMAND_WIDTH) {
                Some((cut, _)) => format!("{}\u{2026}", &p.command[..cut]),
                None => p.command.clone(),
            };
            let command = crate::ui::neutralise(&command, reader);
            println!("  \u{2514} {} {command}  (left its process group)", p.pid);
        }
    }
}

/// One deployment of `shipway deployments`, named as the platform's API names a
/// deployment (`created_at`, `git_ref`, `image_size`, `status`).
#[derive(Serialize)]
pub struct DeploymentRow {
    pub id: String,
    pub created_at: String,
    pub duration_ms: Option<u64>,
    pub git_ref: Option<String>,
    pub status: String,
    /// The slug, in bytes.
    pub image_size: Option<u64>,
    pub release: Option<u32>,
    pub source: String,
    /// The stack it built on, and the image it used (none: the host's userland).
    pub stack: Option<String>,
    pub stack_digest: Option<String>,
}

/// A stack and its image for a table cell: `scalingo-26@sha256:0123456789ab`, or the name
/// alone on the host's userland.
/// Where a release runs: its stack's image, or the host's userland, by choice (`host`)
/// or because its stack had no image when it was built, which the cell says.
fn stack_cell(stack: Option<&str>, digest: Option<&str>) -> String {
    match (stack, digest) {
        (Some(s), Some(d)) => format!("{s}@{}", d.get(..19).unwrap_or(d)),
        (Some(crate::stack::HOST), None) => crate::stack::HOST.to_string(),
        (Some(s), None) => format!("host (no {s} image)"),
        (None, _) => "-".to_string(),
    }
}

pub fn deployments(app: &str, rows: &[DeploymentRow]) {
    if rows.is_empty() {
        println!("{app} has no deployment yet");
        return;
    }
    println!(
        "{:<20} {:<24} {:<9} {:<14} {:<10} {:<8} {:<32} REF",
        "ID", "DATE", "DURATION", "STATUS", "SIZE", "RELEASE", "STACK"
    );
    let styled = Abilities::detect().styled_out;
    for r in rows {
        println!(
            "{:<20} {:<24} {:<9} {} {:<10} {:<8} {:<32} {}",
            r.id,
            r.created_at,
            r.duration_ms
                .map_or("-".into(), |ms| human_duration(Duration::from_millis(ms))),
            status(&r.status, 14, styled),
            r.image_size.map_or("-".into(), human_bytes),
            release(r.release),
            stack_cell(r.stack.as_deref(), r.stack_digest.as_deref()),
            r.git_ref.as_deref().unwrap_or("-")
        );
    }
}

/// One job of `shipway cron-tasks`.
#[derive(Serialize)]
pub struct CronTaskRow {
    pub job: usize,
    pub schedule: String,
    pub command: String,
    /// The container size, as cron.json names it (`M`).
    pub size: String,
    pub last_run: Option<LastRunRow>,
    /// For people (`2026-12-04 03:00 UTC`); `--json` has `next_run_at`.
    #[serde(skip)]
    pub next_run: Option<String>,
    pub next_run_at: Option<String>,
}

#[derive(Serialize)]
pub struct LastRunRow {
    /// For people; `--json` has `started_at`.
    #[serde(skip)]
    pub started: String,
    pub started_at: String,
    /// None while it runs.
    pub exit: Option<String>,
    pub code: Option<i32>,
    pub duration_ms: Option<u64>,
    /// `schedule` or `cron-run`.
    pub trigger: String,
}

/// `shipway cron-tasks`: a job a line, then its last run below it.
pub fn cron_tasks(app: &str, rows: &[CronTaskRow], platform: bool) {
    if rows.is_empty() {
        println!("{app} has no scheduled job: add a cron.json at the root of its source and deploy");
        return;
    }
    println!(
        "{:<4} {:<16} {:<5} {:<21} COMMAND",
        "JOB", "SCHEDULE", "SIZE", "NEXT RUN (UTC)"
    );
    for r in rows {
        let next = match (&r.next_run, platform) {
            (Some(n), _) => n.trim_end_matches(" UTC").to_string(),
            (None, true) => "never".into(),
            (None, false) => "-".into(),
        };
        println!(
            "{:<4} {:<16} {:<5} {:<21} {}",
            r.job, r.schedule, r.size, next, r.command
        );
        let last = match &r.last_run {
            None => "never run".to_string(),
            Some(l) => match &l.exit {
                None => format!("started {} ({}): running", l.started, l.trigger),
                Some(exit) => format!(
                    "{} ({}): {exit} after {}",
                    l.started,
                    l.trigger,
                    l.duration_ms
                        .map_or("-".into(), |ms| human_duration(Duration::from_millis(ms)))
                ),
            },
        };
        println!("     last run: {last}");
    }
    if !platform {
        println!("No shipway platform runs: no job runs until `shipway up` (or a deploy) starts one");
    }
}

/// One cached buildpack of `shipway buildpacks --json`: the stored entry (Unix
/// milliseconds) in the JSON conventions (RFC 3339 times, sizes in bytes).
#[derive(Serialize)]
pub struct BuildpackRow {
    pub url: String,
    /// The `#ref` of the URL; none for the default branch.
    pub git_ref: Option<String>,
    pub commit: String,
    pub fetched_at: String,
    pub last_used_at: String,
    /// On disk, in bytes.
    pub disk_size: u64,
}

impl From<&Entry> for BuildpackRow {
    fn from(e: &Entry) -> BuildpackRow {
        BuildpackRow {
            url: e.url.clone(),
            git_ref: e.reference.clone(),
            commit: e.commit.clone(),
            fetched_at: utc_ms(e.fetched_at),
            last_used_at: utc_ms(e.last_used),
            disk_size: e.bytes,
        }
    }
}

/// `shipway buildpacks`: what is cached, by URL and ref.
pub fn buildpacks(entries: &[Entry]) {
    if entries.is_empty() {
        println!("No buildpack fetched by URL yet");
        return;
    }
    println!(
        "{:<12} {:<12} {:<10} {:<24} URL",
        "REF", "COMMIT", "SIZE", "LAST USED"
    );
    for e in entries {
        println!(
            "{:<12} {:<12} {:<10} {:<24} {}",
            e.reference.as_deref().unwrap_or("(default)"),
            short(&e.commit),
            human_bytes(e.bytes),
            utc_ms(e.last_used),
            e.url
        );
    }
}

/// `shipway env`: `NAME=value` lines.
pub fn env(vars: &BTreeMap<String, String>) {
    for (k, v) in vars {
        println!("{k}={v}");
    }
}

fn release(number: Option<u32>) -> String {
    number.map_or("-".into(), |n| format!("v{n}"))
}

fn dash(value: Option<impl ToString>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

/// `shipway addons` of `app`.
pub fn addons(app: &str, rows: &[AddonRow]) {
    if rows.is_empty() {
        println!("{app} has no addon: `shipway addons-add postgresql` provisions one");
        return;
    }
    println!(
        "{:<12} {:<11} {:<28} {:<8} {:<6} PID",
        "ID", "ADDON", "PLAN", "STATUS", "PORT"
    );
    for r in rows {
        println!(
            "{:<12} {:<11} {:<28} {:<8} {:<6} {}",
            r.id,
            r.addon,
            r.plan,
            r.status,
            r.port,
            dash(r.pid)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_buildpack_is_listed_in_the_json_convention() {
        let entry = Entry {
            url: "https://example.invalid/bp.git".into(),
            reference: Some("v1".into()),
            commit: "0123456789abcdef".into(),
            fetched_at: 1_795_771_809_848,
            last_used: 1_795_771_809_848,
            bytes: 2048,
        };
        let row = serde_json::to_value(BuildpackRow::from(&entry)).unwrap();
        assert_eq!(row["git_ref"], "v1");
        assert_eq!(row["fetched_at"], "2026-11-27T09:30:09.848Z");
        assert_eq!(row["last_used_at"], "2026-11-27T09:30:09.848Z");
        assert_eq!(row["disk_size"], 2048);
    }
}

/// One stack of `shipway stacks`.
#[derive(Serialize)]
pub struct StackRow {
    pub name: &'static str,
    pub base: String,
    pub status: crate::stack::Support,
    pub default: bool,
    pub pulled: bool,
    pub digest: Option<String>,
    /// Bytes unpacked on disk.
    pub disk_size: Option<u64>,
    pub source: Option<String>,
    pub pulled_at: Option<String>,
}

pub fn stacks(rows: &[StackRow]) {
    println!(
        "{:<13} {:<13} {:<11} {:<7} {:<73} SIZE",
        "NAME", "BASE", "STATUS", "PULLED", "DIGEST"
    );
    for r in rows {
        let status = match r.status {
            crate::stack::Support::Supported => "supported",
            crate::stack::Support::Deprecated => "deprecated",
        };
        let name = if r.default {
            format!("{}*", r.name)
        } else {
            r.name.to_string()
        };
        println!(
            "{:<13} {:<13} {:<11} {:<7} {:<73} {}",
            name,
            r.base,
            status,
            if r.pulled { "yes" } else { "no" },
            r.digest.as_deref().unwrap_or("-"),
            r.disk_size.map_or("-".to_string(), human_bytes)
        );
    }
    println!("* the default for new apps. `shipway stacks-pull STACK` gets an image; `host` (this machine's userland) needs none.");
}
