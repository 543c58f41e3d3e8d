//! What the CLI and the platform say to each other over the Unix socket: one JSON
//! request line from the client, then JSON event lines from the platform.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};

pub use crate::listing::{AddonRow, ContainerRow, ProcessRow};
use crate::pipeline::Input;
pub use crate::router::metrics::Percentiles;

/// What a deploy asks for: one type from the client's request through the deploy job
/// (`Job::Deploy`) to the pipeline (`pipeline::Input`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployArgs {
    #[serde(flatten)]
    pub input: Input,
    pub port: Option<u16>,
    /// Config vars to store on the app before the build.
    pub env: BTreeMap<String, String>,
    /// What the deployment records as its source, when `input` is a stand-in (a push).
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Deploy {
        app: String,
        #[serde(flatten)]
        args: DeployArgs,
    },
    Status,
    Down,
    Ps {
        app: String,
    },
    /// `shipway stats`: each container's CPU and memory.
    Stats {
        app: String,
    },
    /// `web:2 worker:+1`: the new amounts of these types.
    Scale {
        app: String,
        counts: BTreeMap<String, Amount>,
        /// The sizes given (`web:2:L`), by type: the platform's names, checked by the CLI.
        #[serde(default)]
        sizes: BTreeMap<String, String>,
    },
    /// All containers, a type (`web`) or one container (`web-1`).
    Restart {
        app: String,
        target: Option<String>,
    },
    /// The release of this deployment (default: the previous successful one).
    Rollback {
        app: String,
        deployment: Option<String>,
    },
    Destroy {
        app: String,
    },
    /// Run a job of the app's `cron.json` now: its number (1) or its command.
    CronRun {
        app: String,
        job: String,
    },
    /// `addons-add ADDON [PLAN]`.
    AddonsAdd {
        app: String,
        addon: String,
        plan: Option<String>,
    },
    /// `addons-remove ID`.
    AddonsRemove {
        app: String,
        id: String,
    },
    /// `addons`.
    Addons {
        app: String,
    },
    /// `run --detached`: a one-off container of the current release, owned by the
    /// platform, its output in the app's log; `env` overrides config vars for it only.
    Run {
        app: String,
        command: String,
        env: BTreeMap<String, String>,
        /// `--size`: the container's size (M when none).
        #[serde(default)]
        size: Option<String>,
    },
    /// `rename --new-name NEW`: the app, stopped, moved to its new name, started again.
    Rename {
        app: String,
        new_name: String,
    },
    /// `one-off-stop CONTAINER`: stop a running one-off (`one-off-1`).
    OneOffStop {
        app: String,
        container: String,
    },
    /// `send-signal --signal SIGUSR1 web-1 worker`: the signal to the program of each
    /// container named, or of every container of a type named.
    SendSignal {
        app: String,
        signal: UserSignal,
        containers: Vec<String>,
    },
    /// The router's figures of the app from `since` (seconds since the epoch; default:
    /// the 72 hours kept), with each minute's when `minutes`. Answered by
    /// `Event::RouterMetrics`, off the supervisor thread.
    RouterMetrics {
        app: String,
        #[serde(default)]
        since: Option<u64>,
        #[serde(default)]
        minutes: bool,
    },
    /// `router-logs --enable|--disable`, for a router that runs (app.toml keeps the
    /// setting for the next ones). Answered by `Event::Done`.
    RouterLogs {
        app: String,
        enabled: bool,
    },
    /// `dashboard`: the dashboard's address, serving it from now on.
    Dashboard,
}

/// What the router measured of an app over a window (`stats`, the dashboard).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterFigures {
    /// The window: the start of its first minute, and now (RFC 3339).
    pub window_start_at: String,
    pub measured_at: String,
    pub requests: u64,
    /// Responses with a 5xx status, the router's own 502, 503 and 504 included.
    #[serde(rename = "5xx")]
    pub errors: u64,
    /// Over the last 5 minutes (since the router started, when later; at least a minute).
    pub requests_per_minute: f64,
    /// None without any request in the window. Milliseconds with decimals, not the
    /// integers of other durations: a response on one machine often takes less than one.
    pub response_time_ms: Option<Percentiles>,
    /// The minutes that saw requests, oldest first, when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub minutes: Vec<MinuteFigures>,
}

/// One minute of the router's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteFigures {
    /// The minute's start (RFC 3339).
    pub minute_at: String,
    pub requests: u64,
    #[serde(rename = "5xx")]
    pub errors: u64,
    pub response_time_ms: Option<Percentiles>,
}

/// The signals the platform lets a user send to a container (`send-signal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserSignal {
    #[serde(rename = "SIGUSR1")]
    Usr1,
    #[serde(rename = "SIGUSR2")]
    Usr2,
}

impl UserSignal {
    /// `SIGUSR1`, `USR1` or `usr1`: the names the Scalingo CLI's users type.
    pub fn parse(text: &str) -> Option<UserSignal> {
        let upper = text.trim().to_ascii_uppercase();
        match upper.strip_prefix("SIG").unwrap_or(&upper) {
            "USR1" => Some(UserSignal::Usr1),
            "USR2" => Some(UserSignal::Usr2),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            UserSignal::Usr1 => "SIGUSR1",
            UserSignal::Usr2 => "SIGUSR2",
        }
    }
}

/// The amount of one `scale` instruction, as the Scalingo CLI reads it: `web:2`, or
/// relative to the formation, `web:+1`, `web:-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    To(u32),
    Up(u32),
    Down(u32),
}

impl Amount {
    /// The amount once applied to `current`; `None` below zero.
    pub fn apply(self, current: u32) -> Option<u32> {
        match self {
            Amount::To(n) => Some(n),
            Amount::Up(n) => Some(current.saturating_add(n)),
            Amount::Down(n) => current.checked_sub(n),
        }
    }
}

/// An app's status from its containers': running if one runs, else crashed if one
/// crashed, else stopped.
pub fn app_status(containers: &[ContainerRow]) -> &'static str {
    if containers.iter().any(|r| r.status == "running") {
        "running"
    } else if containers.iter().any(|r| r.status == "crashed") {
        "crashed"
    } else {
        "stopped"
    }
}

/// What `shipway stats` shows of an app (`--json` prints it as it is).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppStats {
    pub app: String,
    pub containers: Vec<ContainerStats>,
    /// Why the containers' figures are not measured on this machine, when they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<String>,
    /// The router's figures of the app over the 72 hours kept (added by the server, off
    /// the supervisor).
    #[serde(default)]
    pub router: Option<RouterFigures>,
}

/// One container in `shipway stats`: its figures are absent (null) when it is not
/// running or its cgroup could not be made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerStats {
    pub name: String,
    pub status: String,
    /// Its size (`S`), while it runs.
    pub size: Option<String>,
    /// CPU time used over the last moment, in percent of one CPU.
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    /// The most memory it held since it started.
    pub memory_max_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppInfo {
    pub name: String,
    pub release: Option<u32>,
    pub url: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Line {
        text: String,
    },
    /// The last event of a request: `shipway`'s exit status for it.
    Done {
        code: i32,
    },
    Info {
        pid: u32,
        settings: Vec<(String, String)>,
        apps: Vec<AppInfo>,
    },
    Ps {
        rows: Vec<ContainerRow>,
    },
    Stats {
        stats: AppStats,
    },
    Addons {
        rows: Vec<AddonRow>,
    },
    /// What `send-signal` reached: the containers signalled, and the names that
    /// selected no running container.
    Signalled {
        sent: Vec<String>,
        unmatched: Vec<String>,
    },
    RouterMetrics {
        figures: RouterFigures,
    },
    Error {
        message: String,
    },
    /// Where the dashboard is served (`http://127.0.0.1:PORT/`).
    Dashboard {
        url: String,
    },
    /// What a request waits for, for a terminal to show (`ui::Progress`).
    Progress {
        progress: crate::ui::Progress,
    },
}

pub fn write<T: Serialize>(w: &mut impl Write, value: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// The longest line either side reads. The largest messages are a deploy request, whose
/// config vars are at most 32 KiB each (PLATFORM.md §4), so 8 MiB holds hundreds of
/// the largest values; build output arrives a line at a time. Without a bound, a peer
/// that never sends a newline would grow the reader's memory until it is killed.
pub const MAX_LINE: u64 = 8 * 1024 * 1024;

pub fn read<T: for<'de> Deserialize<'de>>(r: &mut impl BufRead) -> std::io::Result<Option<T>> {
    let mut line = Vec::new();
    if r.by_ref().take(MAX_LINE + 1).read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    if line.len() as u64 > MAX_LINE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a message on the platform socket is longer than {} MiB: the other side is not a shipway of this version, or is broken; the connection is dropped",
                MAX_LINE / 1024 / 1024
            ),
        ));
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_request_is_one_flat_json_object_around_one_arguments_type() {
        let request = Request::Deploy {
            app: "a".into(),
            args: DeployArgs {
                input: Input {
                    path: "/src".into(),
                    git_ref: Some("main".into()),
                },
                port: Some(5000),
                env: [("K".to_string(), "v".to_string())].into(),
                source: None,
            },
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"request": "deploy", "app": "a", "input": "/src", "git_ref": "main",
                "port": 5000, "env": {"K": "v"}, "source": null})
        );
        let back: Request = serde_json::from_value(json).unwrap();
        let Request::Deploy { args, .. } = back else {
            panic!("{back:?}")
        };
        assert_eq!(args.input.path, std::path::Path::new("/src"));
        assert_eq!(args.input.git_ref.as_deref(), Some("main"));
    }

    #[test]
    fn events_round_trip_as_json_lines() {
        let mut buf = Vec::new();
        write(&mut buf, &Event::Done { code: 12 }).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buf),
            "{\"event\":\"done\",\"code\":12}\n"
        );
        let back: Event = read(&mut buf.as_slice()).unwrap().unwrap();
        assert!(matches!(back, Event::Done { code: 12 }));
    }

    #[test]
    fn a_line_longer_than_the_bound_is_refused_after_reading_only_the_bound() {
        // An endless peer: if `read` were unbounded it would never return.
        let mut endless = std::io::BufReader::new(std::io::repeat(b'a'));
        let err = read::<Event>(&mut endless).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("longer than 8 MiB"), "{err}");

        // A line of exactly the bound (its newline included) is still read.
        let text = "x".repeat(MAX_LINE as usize - "{\"event\":\"line\",\"text\":\"\"}\n".len());
        let mut buf = Vec::new();
        write(&mut buf, &Event::Line { text: text.clone() }).unwrap();
        assert_eq!(buf.len() as u64, MAX_LINE);
        let back: Event = read(&mut buf.as_slice()).unwrap().unwrap();
        assert!(matches!(back, Event::Line { text: t } if t == text));
    }
}
