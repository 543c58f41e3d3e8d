//! The everyday verbs on an app (the Scalingo CLI's names): create, destroy, apps, ps,
//! logs, scale, restart, env*, deployments, deployment-logs, deployment-delete-cache,
//! rollback, run. Those that change running containers go through the platform; the
//! others read and write the app's files directly.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::deployment::Deployment;
use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::{ContainerRow, Event, Request};
use crate::release::Release;
use crate::settings::Settings;
use crate::state::{AppDir, Home};
use crate::ui::{human_bytes, human_duration, utc};

use super::home;

/// `-a APP`, else the current folder's name.
fn app_name(app: Option<String>) -> Result<String, Error> {
    super::app_name(app, Path::new("."))
}

fn existing(settings: &Settings, app: Option<String>) -> Result<(Home, AppDir), Error> {
    let home = home(settings)?;
    let app = home.existing_app(&app_name(app)?)?;
    Ok((home, app))
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

fn usage(message: String) -> Error {
    Error::Usage(message)
}

pub fn create(settings: &Settings, name: String) -> Result<i32, Error> {
    let home = home(settings)?;
    let app = home.app(&name)?;
    if app.exists() {
        return Err(usage(format!("app {name} exists already")));
    }
    app.create()?;
    println!("-----> App {name} created; set its config vars with `shipway env-set -a {name} NAME=value`");
    Ok(exit::SUCCESS)
}

pub fn destroy(settings: &Settings, name: String, force: bool) -> Result<i32, Error> {
    let home = home(settings)?;
    let app = home.existing_app(&name)?;
    if !force {
        return Err(usage(format!(
            "destroying {name} deletes its config vars, releases, history and cache: confirm with --force"
        )));
    }
    match client::ask(&home, &Request::Destroy { app: name.clone() })? {
        Some(Event::Error { message }) => return Err(Error::Platform { message }),
        Some(_) => {}
        None => {
            std::fs::remove_dir_all(&app.root).map_err(|source| Error::Io {
                action: "remove",
                path: app.root.clone(),
                source,
            })?;
        }
    }
    println!("-----> App {name} destroyed");
    Ok(exit::SUCCESS)
}

/// The containers of a running platform, or None when no platform runs.
fn rows(home: &Home, app: &str) -> Result<Option<Vec<ContainerRow>>, Error> {
    match client::ask(home, &Request::Ps { app: app.to_string() })? {
        Some(Event::Ps { rows }) => Ok(Some(rows)),
        Some(Event::Error { message }) => Err(Error::Platform { message }),
        _ => Ok(None),
    }
}

#[derive(serde::Serialize)]
struct AppRow {
    name: String,
    release: Option<u32>,
    url: Option<String>,
    status: &'static str,
}

pub fn apps(settings: &Settings, json: bool) -> Result<i32, Error> {
    let home = home(settings)?;
    let mut list = Vec::new();
    for name in home.apps() {
        let app = home.app(&name)?;
        let config = app.load_config()?;
        let containers = rows(&home, &name)?.unwrap_or_default();
        let status = if containers.iter().any(|r| r.status == "running") {
            "running"
        } else if containers.iter().any(|r| r.status == "crashed") {
            "crashed"
        } else {
            "stopped"
        };
        list.push(AppRow {
            name,
            release: app.current(),
            url: config.router_port.map(|p| format!("http://127.0.0.1:{p}")),
            status,
        });
    }
    if json {
        print_json(&list);
    } else if list.is_empty() {
        println!("No app yet: `shipway deploy` in an app's folder creates one");
    } else {
        println!("{:<24} {:<8} {:<9} URL", "NAME", "RELEASE", "STATUS");
        for a in list {
            let release = a.release.map_or("-".to_string(), |r| format!("v{r}"));
            println!(
                "{:<24} {:<8} {:<9} {}",
                a.name,
                release,
                a.status,
                a.url.unwrap_or_else(|| "-".into())
            );
        }
    }
    Ok(exit::SUCCESS)
}

/// How much of a process's command line `ps` shows on its line (`--json` has it all).
const COMMAND_WIDTH: usize = 100;

pub fn ps(settings: &Settings, app: Option<String>, json: bool) -> Result<i32, Error> {
    let (home, app) = existing(settings, app)?;
    let Some(rows) = rows(&home, &app.name)? else {
        if json {
            print_json(&Vec::<ContainerRow>::new());
        } else {
            println!("No shipway platform runs: nothing of {} is running (`shipway up` brings the current releases back)", app.name);
        }
        return Ok(exit::SUCCESS);
    };
    if json {
        print_json(&rows);
        return Ok(exit::SUCCESS);
    }
    if rows.is_empty() {
        println!("{} has no container running", app.name);
        return Ok(exit::SUCCESS);
    }
    println!(
        "{:<12} {:<9} {:<7} {:<8} {:<8} {:<8} COMMAND",
        "NAME", "STATUS", "PORT", "PID", "UPTIME", "RESTARTS"
    );
    for r in rows {
        let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let command = match &r.exit {
            Some(e) => format!("{}  ({e})", r.command),
            None => r.command.clone(),
        };
        println!(
            "{:<12} {:<9} {:<7} {:<8} {:<8} {:<8} {}",
            r.name,
            r.status,
            dash(r.port.map(|p| p.to_string())),
            dash(r.pid.map(|p| p.to_string())),
            dash(r.uptime_secs.map(|s| human_duration(Duration::from_secs(s)))),
            r.restarts,
            command
        );
        // What left the container's process group is still the container's: show it, so
        // that a daemon started with `setsid` is not a surprise.
        for p in r.processes.iter().filter(|p| !p.in_group) {
            let command: String = match p.command.char_indices().nth(COMMAND_WIDTH) {
                Some((cut, _)) => format!("{}\u{2026}", &p.command[..cut]),
                None => p.command.clone(),
            };
            println!("  \u{2514} {} {command}  (left its process group)", p.pid);
        }
    }
    Ok(exit::SUCCESS)
}

/// Whether a log line (`<time> [web-1] text`) is of `filter` (`web` or `web-1`).
fn matches(line: &str, filter: Option<&str>) -> bool {
    let Some(f) = filter else { return true };
    let Some(tag) = line.split_whitespace().nth(1) else {
        return false;
    };
    let Some(name) = tag.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
        return false;
    };
    name == f || name.rsplit_once('-').is_some_and(|(t, _)| t == f)
}

pub fn logs(
    settings: &Settings,
    app: Option<String>,
    lines: usize,
    follow: bool,
    filter: Option<String>,
) -> Result<i32, Error> {
    let (_, app) = existing(settings, app)?;
    let path = app.root.join("app.log");
    let filter = filter.as_deref();
    if let Some(f) = filter {
        let valid = !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(usage(format!(
                "--filter {f:?}: give a process type (web) or a container (web-1)"
            )));
        }
    }
    let mut text = std::fs::read_to_string(app.root.join("app.log.1")).unwrap_or_default();
    text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
    let selected: Vec<&str> = text.lines().filter(|l| matches(l, filter)).collect();
    for line in &selected[selected.len().saturating_sub(lines)..] {
        println!("{line}");
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
                    println!("{line}");
                }
            }
        }
    }
}

/// `web=2`, `web:2`.
pub fn parse_counts(items: &[String]) -> Result<BTreeMap<String, u32>, Error> {
    let mut counts = BTreeMap::new();
    for item in items {
        let bad = || {
            usage(format!(
                "{item:?} is not TYPE=COUNT (e.g. web=2 or web:2): nothing was changed"
            ))
        };
        let (t, n) = item.split_once(['=', ':']).ok_or_else(bad)?;
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        counts.insert(t.to_string(), n);
    }
    Ok(counts)
}

pub fn scale(settings: &Settings, app: Option<String>, items: Vec<String>) -> Result<i32, Error> {
    let counts = parse_counts(&items)?;
    let (home, app) = existing(settings, app)?;
    client::stream(
        &home,
        Request::Scale {
            app: app.name,
            counts,
        },
    )
}

pub fn restart(settings: &Settings, app: Option<String>, target: Option<String>) -> Result<i32, Error> {
    let (home, app) = existing(settings, app)?;
    client::stream(
        &home,
        Request::Restart {
            app: app.name,
            target,
        },
    )
}

pub fn rollback(settings: &Settings, app: Option<String>, id: Option<String>) -> Result<i32, Error> {
    let (home, app) = existing(settings, app)?;
    client::stream(
        &home,
        Request::Rollback {
            app: app.name,
            deployment: id,
        },
    )
}

pub fn env(settings: &Settings, app: Option<String>, json: bool) -> Result<i32, Error> {
    let (_, app) = existing(settings, app)?;
    let vars = app.load_config()?.config_vars;
    if json {
        print_json(&vars);
    } else {
        for (k, v) in vars {
            println!("{k}={v}");
        }
    }
    Ok(exit::SUCCESS)
}

pub fn env_get(settings: &Settings, app: Option<String>, name: String) -> Result<i32, Error> {
    let (_, app) = existing(settings, app)?;
    match app.load_config()?.config_vars.get(&name) {
        Some(v) => {
            println!("{v}");
            Ok(exit::SUCCESS)
        }
        None => Err(usage(format!("{name} is not set on {}", app.name))),
    }
}

pub fn env_set(
    settings: &Settings,
    app: Option<String>,
    pairs: Vec<String>,
    file: Option<PathBuf>,
) -> Result<i32, Error> {
    let (_, app) = existing(settings, app)?;
    // Everything is validated before anything is written.
    let vars = super::read_vars(file.as_deref(), &pairs)?;
    if vars.is_empty() {
        return Err(usage("give NAME=value pairs or --file .env".into()));
    }
    let names: Vec<String> = vars.keys().cloned().collect();
    app.update_config(|c| c.config_vars.extend(vars))?;
    println!("-----> Set {} on {}", names.join(", "), app.name);
    println!(
        "       Nothing was restarted, as on the platform: `shipway restart -a {}` applies them",
        app.name
    );
    Ok(exit::SUCCESS)
}

pub fn env_unset(settings: &Settings, app: Option<String>, names: Vec<String>) -> Result<i32, Error> {
    let (_, app) = existing(settings, app)?;
    let (removed, missing) = app.update_config(|c| {
        let mut removed = Vec::new();
        let mut missing = Vec::new();
        for n in &names {
            if c.config_vars.remove(n).is_some() {
                removed.push(n.clone());
            } else {
                missing.push(n.clone());
            }
        }
        (removed, missing)
    })?;
    if !removed.is_empty() {
        println!("-----> Unset {} on {}", removed.join(", "), app.name);
        println!(
            "       Nothing was restarted, as on the platform: `shipway restart -a {}` applies it",
            app.name
        );
    }
    if !missing.is_empty() {
        println!("       not set, nothing to do: {}", missing.join(", "));
    }
    Ok(exit::SUCCESS)
}

#[derive(serde::Serialize)]
struct DeploymentRow {
    id: String,
    date: String,
    duration_ms: Option<u64>,
    git_ref: Option<String>,
    status: String,
    slug_bytes: Option<u64>,
    release: Option<u32>,
    source: String,
}

pub fn deployments(settings: &Settings, app: Option<String>, json: bool) -> Result<i32, Error> {
    let (_, app) = existing(settings, app)?;
    let rows: Vec<DeploymentRow> = Deployment::list(&app)
        .into_iter()
        .rev()
        .map(|d| DeploymentRow {
            date: d
                .statuses
                .first()
                .map_or("-".into(), |s| utc(UNIX_EPOCH + Duration::from_millis(s.at))),
            status: d.status().map_or("-".into(), |s| s.to_string()),
            id: d.id,
            duration_ms: d.duration_ms,
            git_ref: d.git_ref,
            slug_bytes: d.slug_bytes,
            release: d.release,
            source: d.source,
        })
        .collect();
    if json {
        print_json(&rows);
        return Ok(exit::SUCCESS);
    }
    if rows.is_empty() {
        println!("{} has no deployment yet", app.name);
        return Ok(exit::SUCCESS);
    }
    println!(
        "{:<20} {:<24} {:<9} {:<14} {:<10} {:<8} REF",
        "ID", "DATE", "DURATION", "STATUS", "SIZE", "RELEASE"
    );
    for r in rows {
        println!(
            "{:<20} {:<24} {:<9} {:<14} {:<10} {:<8} {}",
            r.id,
            r.date,
            r.duration_ms
                .map_or("-".into(), |ms| human_duration(Duration::from_millis(ms))),
            r.status,
            r.slug_bytes.map_or("-".into(), human_bytes),
            r.release.map_or("-".into(), |n| format!("v{n}")),
            r.git_ref.unwrap_or_else(|| "-".into())
        );
    }
    Ok(exit::SUCCESS)
}

pub fn deployment_logs(settings: &Settings, app: Option<String>, id: Option<String>) -> Result<i32, Error> {
    let (_, app) = existing(settings, app)?;
    let history = Deployment::list(&app);
    let chosen = match &id {
        Some(id) => history
            .iter()
            .find(|d| &d.id == id || d.id.starts_with(id.as_str())),
        None => history.last(),
    };
    let Some(d) = chosen else {
        return Err(usage(match id {
            Some(id) => format!(
                "{} has no deployment {id}: `shipway deployments -a {}` lists them",
                app.name, app.name
            ),
            None => format!("{} has no deployment yet", app.name),
        }));
    };
    let path = Deployment::log_path(&app, &d.id);
    match std::fs::read_to_string(&path) {
        Ok(text) => print!("{text}"),
        Err(_) if d.source.starts_with("rollback") => println!("(a rollback: {})", d.source),
        Err(source) => {
            return Err(Error::Io {
                action: "read",
                path,
                source,
            })
        }
    }
    Ok(d.status().map_or(exit::ERROR, |s| s.exit_code()))
}

pub fn delete_cache(settings: &Settings, app: Option<String>) -> Result<i32, Error> {
    let (_, app) = existing(settings, app)?;
    let cache = app.cache();
    if cache.exists() {
        std::fs::remove_dir_all(&cache).map_err(|source| Error::Io {
            action: "remove",
            path: cache.clone(),
            source,
        })?;
        println!(
            "-----> Deleted the build cache of {}: the next build starts from scratch",
            app.name
        );
    } else {
        println!("-----> {} has no build cache", app.name);
    }
    Ok(exit::SUCCESS)
}

/// `run CMD...`: a one-off container of the current release, attached to this terminal.
pub fn run(settings: &Settings, app: Option<String>, command: Vec<String>) -> Result<i32, Error> {
    let (_, app) = existing(settings, app)?;
    let Some(number) = app.current() else {
        return Err(usage(format!(
            "{} has no release deployed yet: deploy it first",
            app.name
        )));
    };
    let release_dir = app.release(number);
    let release = Release::load(&release_dir)?;
    let config = app.load_config()?;
    let line = command.join(" ");
    // Ctrl-C belongs to the command, as in a terminal: shipway waits for it.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGINT,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
    let status = crate::container::one_off(
        settings,
        &release,
        &release_dir,
        &config.config_vars,
        "run-1",
        &line,
    )
    .run_attached()
    .map_err(|e| Error::Platform {
        message: e.to_string(),
    })?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status.0).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_both_forms_and_reject_garbage() {
        let c = parse_counts(&["web=2".into(), "worker:1".into()]).unwrap();
        assert_eq!(c["web"], 2);
        assert_eq!(c["worker"], 1);
        for bad in ["web=x", "web", "=2", "we b=1", "web=-1"] {
            assert!(parse_counts(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn log_filter_takes_a_type_or_a_container() {
        let line = "2026-11-27T09:30:01.123Z [web-1] hello";
        assert!(matches(line, None));
        assert!(matches(line, Some("web")));
        assert!(matches(line, Some("web-1")));
        assert!(!matches(line, Some("web-2")));
        assert!(!matches(line, Some("worker")));
    }
}
