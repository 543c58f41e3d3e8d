//! What the dashboard's JSON endpoints answer, read through the same paths the CLI's
//! verbs use: the app folders (`apps`), the supervisor's containers (`ps`), the
//! deployment records and their output (`deployments`, `deployment-logs`), `app.log`
//! (`logs`), the event record (`timeline`) and the router's figures. Config vars appear by name only; [`Secrets`] takes their values out of
//! whatever text an answer carries (an app that logs its database URL).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

use super::super::context::Context;
use super::super::events::{self, Entry};
use super::super::message::{Handle, Message};
use super::super::protocol::{AppStats, ContainerRow, RouterFigures};
use super::super::telemetry;
use super::samples::{Sample, Samples};
use crate::deployment::Deployment;
use crate::error::Error;
use crate::state::{open_regular, Home};

/// The most bytes of a log one answer carries; the page asks again from where it ends.
const MOST_BYTES: u64 = 256 * 1024;

/// How much of the end of `app.log` the page starts with.
const FIRST_BYTES: u64 = 64 * 1024;

/// Secrets shorter than this are not hidden in text: a value of two or three letters
/// would hide every such word of a log; no addon password is that short.
const SHORTEST_SECRET: usize = 6;

/// One app in the list.
#[derive(Debug, Serialize)]
pub struct AppSummary {
    pub name: String,
    pub release: Option<u32>,
    pub url: Option<String>,
    /// running, crashed or stopped, as `apps` says.
    pub status: &'static str,
    pub containers: usize,
}

/// One app, whole.
#[derive(Debug, Serialize)]
pub struct AppView {
    pub name: String,
    pub release: Option<u32>,
    pub url: Option<String>,
    pub status: &'static str,
    pub stack: String,
    pub formation: BTreeMap<String, u32>,
    /// Names only, never values.
    pub config_vars: Vec<String>,
    pub containers: Vec<ContainerRow>,
    /// Newest first.
    pub deployments: Vec<Deployment>,
}

/// A stretch of a log, from byte `from` to `next`.
#[derive(Debug, Serialize)]
pub struct LogView {
    pub from: u64,
    pub next: u64,
    pub text: String,
    /// The deployment's status, for a deployment's output (the page polls until final).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<bool>,
}

pub fn apps(home: &Home, supervisor: &Handle) -> Result<Vec<AppSummary>, Error> {
    let mut list = Vec::new();
    for name in home.apps() {
        let app = home.app(&name)?;
        let config = app.load_config()?;
        // An app destroyed since it was listed is left out.
        let Ok(containers) = containers(supervisor, &name) else {
            continue;
        };
        list.push(AppSummary {
            release: app.current(),
            url: config.url(),
            status: super::super::protocol::app_status(&containers),
            containers: containers.len(),
            name,
        });
    }
    Ok(list)
}

pub fn app(home: &Home, supervisor: &Handle, name: &str) -> Result<AppView, Error> {
    let app = home.existing_app(name)?;
    let config = app.load_config()?;
    let containers = containers(supervisor, name)?;
    let mut deployments = Deployment::list(&app);
    deployments.reverse();
    Ok(AppView {
        name: app.name.clone(),
        release: app.current(),
        url: config.url(),
        status: super::super::protocol::app_status(&containers),
        stack: config.stack().to_string(),
        formation: config.formation.clone(),
        config_vars: config.config_vars.keys().cloned().collect(),
        containers,
        deployments,
    })
}

/// The router's figures of the app over the last `hours`, minute by minute, as `stats`
/// reads them.
pub fn metrics(ctx: &Context, name: &str, hours: u64) -> Result<RouterFigures, Error> {
    ctx.home.existing_app(name)?;
    let now = crate::clock::now_ms();
    let since = (now / 1000).saturating_sub(hours * 3600);
    let telemetry = ctx.telemetry.get(name);
    Ok(telemetry::figures(telemetry.as_deref(), Some(since), true, now))
}

/// The most events one answer carries: the page shows the recent ones.
const MOST_EVENTS: usize = 200;

/// The app's events, newest first, as `timeline --json` has them.
pub fn timeline(home: &Home, name: &str) -> Result<Vec<Entry>, Error> {
    let app = home.existing_app(name)?;
    let records = events::timeline(&app)?;
    Ok(records.into_iter().take(MOST_EVENTS).map(Entry::from).collect())
}

/// `stats` of an app, and its containers' memory over the last `hours` (since the
/// dashboard started).
#[derive(Debug, Serialize)]
pub struct StatsView {
    pub stats: AppStats,
    pub memory: BTreeMap<String, Vec<Sample>>,
}

pub fn stats(
    home: &Home,
    supervisor: &Handle,
    samples: &Samples,
    name: &str,
    hours: u64,
) -> Result<StatsView, Error> {
    home.existing_app(name)?;
    let stats = supervisor
        .call(|reply| Message::Stats {
            app: name.to_string(),
            cpu: true,
            reply,
        })
        .and_then(|r| r)?;
    let since = crate::clock::now_ms().saturating_sub(hours * 3600 * 1000);
    Ok(StatsView {
        stats,
        memory: samples.of(name, since),
    })
}

/// The containers as `ps` has them.
fn containers(supervisor: &Handle, app: &str) -> Result<Vec<ContainerRow>, Error> {
    supervisor
        .call(|reply| Message::Ps {
            app: app.to_string(),
            reply,
        })
        .and_then(|r| r)
}

/// A deployment's output from byte `from`, as `deployment-logs` reads it.
pub fn output(home: &Home, name: &str, id: &str, from: u64) -> Result<Option<LogView>, Error> {
    let app = home.existing_app(name)?;
    // The id names a file: only what `Deployment::new` makes.
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Ok(None);
    }
    let Some(deployment) = Deployment::load(&Deployment::path(&app, id))? else {
        return Ok(None);
    };
    let status = deployment.status();
    let mut view = read_from(&Deployment::log_path(&app, id), Some(from))?;
    view.finished = Some(status.is_some_and(|s| s.is_final()));
    view.status = Some(status.map_or("queued".to_string(), |s| s.to_string()));
    Ok(Some(view))
}

/// The containers' output (`app.log`) from byte `from`, or its last lines.
pub fn logs(home: &Home, name: &str, from: Option<u64>) -> Result<LogView, Error> {
    let app = home.existing_app(name)?;
    read_from(&app.root.join("app.log"), from)
}

/// At most [`MOST_BYTES`] of `path` from `from` (or its end's last [`FIRST_BYTES`]),
/// in whole lines. A file shorter than `from` was rotated: it is read from its start.
fn read_from(path: &std::path::Path, from: Option<u64>) -> Result<LogView, Error> {
    let io = |source| Error::io("read", path.to_path_buf(), source);
    let Some(mut file) = open_regular(path)? else {
        return Ok(LogView {
            from: 0,
            next: 0,
            text: String::new(),
            status: None,
            finished: None,
        });
    };
    let len = file.metadata().map_err(io)?.len();
    let start = match from {
        Some(f) if f <= len => f,
        Some(_) => 0,
        None => len.saturating_sub(FIRST_BYTES),
    };
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MOST_BYTES).read_to_end(&mut bytes).map_err(io)?;
    // Whole lines only: a line being written is sent once it ends.
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(whole);
    let mut text = bytes.as_slice();
    let mut skipped = 0;
    if from.is_none() && start > 0 {
        // The first line of the tail may be cut.
        skipped = text.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        text = &text[skipped..];
    }
    Ok(LogView {
        from: start + skipped as u64,
        next: start + whole as u64,
        text: String::from_utf8_lossy(text).into_owned(),
        status: None,
        finished: None,
    })
}

/// The secret values among every app's config vars, to be taken out of any answer's text
/// before it leaves: an app's log or a process's command line may hold one. A value is
/// secret when its variable's name says so (the words Rails' `filter_parameters` and
/// most log filters use) or when it is a URL with a password (addon URLs,
/// `BUILDPACK_URL` with a token); the password of such a URL is hidden on its own too.
/// Other values (`BIND_HOST=127.0.0.1`, `RACK_ENV=production`) stay readable in text;
/// the answers' own fields never carry any value.
pub struct Secrets(Vec<(String, String)>);

/// Words of a config var's name that say its value is secret.
const SECRET_WORDS: &[&str] = &[
    "PASS",
    "PWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "SALT",
    "CERT",
    "SIGNATURE",
];

impl Secrets {
    pub fn of(home: &Home) -> Secrets {
        let mut pairs = Vec::new();
        for name in home.apps() {
            let Ok(config) = home.app(&name).and_then(|a| a.load_config()) else {
                continue;
            };
            for (key, value) in config.config_vars {
                let password = url_password(&value).map(String::from);
                let named = SECRET_WORDS.iter().any(|w| key.to_ascii_uppercase().contains(w));
                if let Some(p) = password.as_ref() {
                    pairs.push((p.clone(), key.clone()));
                }
                if named || password.is_some() {
                    pairs.push((value, key));
                }
            }
        }
        pairs.retain(|(v, _)| v.chars().count() >= SHORTEST_SECRET);
        // The longest first: a value that holds another is hidden whole.
        pairs.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        Secrets(pairs)
    }

    /// `json` with every secret replaced by `[NAME hidden]`. Values are searched as
    /// they are written inside a JSON string (escaped), which is where text is.
    pub fn hide(&self, json: String) -> String {
        let mut out = json;
        for (value, name) in &self.0 {
            let encoded = serde_json::to_string(value).unwrap_or_default();
            let inner = encoded
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(value);
            if out.contains(inner) {
                out = out.replace(inner, &format!("[{name} hidden]"));
            }
        }
        out
    }
}

/// The password of `scheme://user:password@host...`.
fn url_password(value: &str) -> Option<&str> {
    let (_, rest) = value.split_once("://")?;
    let (credentials, _) = rest.split_once('@')?;
    let (_, password) = credentials.split_once(':')?;
    Some(password).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(vars: &[(&str, &str)]) -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        let app = home.app("demo").unwrap();
        app.create().unwrap();
        app.update_config(|c| {
            for (k, v) in vars {
                c.config_vars.insert(k.to_string(), v.to_string());
            }
        })
        .unwrap();
        (dir, home)
    }

    #[test]
    fn secret_values_and_url_passwords_are_hidden_others_and_short_ones_are_not() {
        let (_dir, home) = home_with(&[
            ("DATABASE_URL", "postgres://u:s3cr3t-pw@127.0.0.1:5432/db"),
            ("API_TOKEN", "tok\"en-value"),
            ("SESSION_SECRET", "abc"),
            ("BIND_HOST", "127.0.0.1"),
        ]);
        let secrets = Secrets::of(&home);
        let body = serde_json::json!({
            "text": "connect postgres://u:s3cr3t-pw@127.0.0.1:5432/db\npw s3cr3t-pw\ntok\"en-value abc on 127.0.0.1"
        })
        .to_string();
        let hidden = secrets.hide(body);
        let back: serde_json::Value = serde_json::from_str(&hidden).unwrap();
        let text = back["text"].as_str().unwrap();
        assert_eq!(
            text,
            "connect [DATABASE_URL hidden]\npw [DATABASE_URL hidden]\n[API_TOKEN hidden] abc on 127.0.0.1"
        );
    }

    #[test]
    fn a_log_is_read_in_whole_lines_from_an_offset_or_its_end() {
        let (_dir, home) = home_with(&[]);
        let app = home.existing_app("demo").unwrap();
        let path = app.root.join("app.log");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let all = read_from(&path, Some(0)).unwrap();
        assert_eq!((all.text.as_str(), all.next), ("one\ntwo\n", 8));
        let rest = read_from(&path, Some(all.next)).unwrap();
        assert_eq!((rest.text.as_str(), rest.next), ("", 8));
        // Rotated: shorter than the offset, read from the start.
        std::fs::write(&path, "new\n").unwrap();
        let rotated = read_from(&path, Some(8)).unwrap();
        assert_eq!((rotated.text.as_str(), rotated.next), ("new\n", 4));
        // The tail of a long log starts on a whole line.
        let long: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &long).unwrap();
        let tail = read_from(&path, None).unwrap();
        assert!(tail.text.starts_with("line "), "{}", &tail.text[..20]);
        assert!(tail.text.ends_with("line 19999\n"));
        assert_eq!(tail.next, long.len() as u64);
        assert_eq!(tail.from + tail.text.len() as u64, tail.next);
    }

    #[test]
    fn a_deployment_id_that_is_not_one_names_no_file() {
        let (_dir, home) = home_with(&[]);
        assert!(output(&home, "demo", "../app", 0).unwrap().is_none());
        assert!(output(&home, "demo", "123-abcd", 0).unwrap().is_none());
    }
}
