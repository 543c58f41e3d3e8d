//! The settings in force: the platform's numbers by default, overridden by
//! `$SHIPWAY_HOME/config.toml`, then by `SHIPWAY_*` environment variables.
//!
//! This module only reads and validates; it never creates folders or starts anything.
//! Defaults are the platform's own (PLATFORM.md): tests shrink them through the
//! environment, never by changing them here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name}: cannot read {value:?} as a duration (write e.g. 500ms, 5s, 2m, 1h)")]
    Duration { name: String, value: String },
    #[error("{name}: {value:?} is longer than this setting allows: at most {max}")]
    DurationTooLong {
        name: String,
        value: String,
        max: String,
    },
    #[error("{name}: cannot read {value:?} as a size (write e.g. 2GiB, 500MiB, 64KiB or a number of bytes)")]
    Size { name: String, value: String },
    #[error("{name}: cannot read {value:?} as {expected}")]
    Value {
        name: String,
        value: String,
        expected: &'static str,
    },
    #[error("{path} is not valid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path}: unknown setting {key:?} (known: {known})")]
    Unknown {
        path: PathBuf,
        key: String,
        known: String,
    },
    #[error("cannot find a home folder for shipway: set SHIPWAY_HOME")]
    NoHome,
    /// The home, or config.toml in it, failed its checks before config.toml was read.
    #[error(transparent)]
    Home(crate::state::StateError),
}

/// What to do with a web/tcp process that accepts connections on 127.0.0.1 only.
/// On the platform it is unreachable from the router, so the deployment times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopbackBind {
    /// Faithful: the container is not ready until it listens on every interface.
    Fail,
    /// Accept it, without a word (tests, which must bind 127.0.0.1 only).
    Allow,
}

/// Whether containers and builds see their folder at `/app` (`sandbox.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// Where this machine allows it; else as before, said once.
    Auto,
    /// Never: containers run in their release folder, HOME is that folder.
    Off,
    /// Always: a deployment fails where no sandbox can be made.
    Required,
}

/// Whether detection and BUILDPACK_NAME build with Scalingo's own buildpack for the
/// language (`official.rs`) rather than shipway's bundled one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfficialBuildpacks {
    /// The official one when it is cached or can be fetched; else the bundled one, said.
    Auto,
    /// Always the official one: a build fails where it cannot be had.
    Always,
    /// Always the bundled one.
    Never,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub home: PathBuf,
    pub stack: String,
    /// The registry stack images are pulled from (`scalingo/<stack>:latest`): Docker Hub,
    /// or a mirror; plain HTTP only to a loopback host (`stack::registry`).
    pub stack_registry: String,
    pub build_timeout: Duration,
    pub boot_timeout: Duration,
    pub hook_timeout: Duration,
    /// The shortest interval a `cron.json` job may have (the platform's: 10 minutes);
    /// lower, a job the platform refuses is accepted here, with a note, to rehearse it.
    pub cron_min_interval: Duration,
    /// How far ahead of the host's clock the scheduler reads the time (default none): to
    /// rehearse now a job scheduled later, and for tests to see a run without waiting for
    /// the next minute.
    pub cron_clock_ahead: Duration,
    pub grace_period: Duration,
    pub first_byte_timeout: Duration,
    /// The router port of an app's first deploy, when given; else the first free port from 5000.
    pub port: Option<u16>,
    /// The dashboard's port (`shipway dashboard`); else one the system gives.
    pub dashboard_port: Option<u16>,
    pub loopback_bind: LoopbackBind,
    pub sandbox: SandboxMode,
    pub official_buildpacks: OfficialBuildpacks,
    /// Where the official buildpacks' repositories are (`<url>/python-buildpack`): Scalingo's
    /// on GitHub, or a mirror.
    pub official_buildpacks_url: String,
    /// Host variables passed into the build environment by name.
    pub pass_env: Vec<String>,
    /// A folder of buildpacks that replaces the bundled ones (for buildpack authors).
    pub buildpacks_dir: Option<PathBuf>,
    /// How many releases of an app are kept on disk.
    pub releases_kept: usize,
    /// The first pause before restarting a container that crashed again soon after a
    /// restart; it doubles at each further crash (the first restart is immediate).
    pub crash_backoff: Duration,
    /// Consecutive quick crashes after which a container is left `crashed`.
    pub crash_limit: u32,
    /// The largest slug (image) a build may produce, in bytes.
    pub slug_limit: u64,
    /// The largest buildpack archive downloaded by URL, in bytes: a server that streams
    /// without end stops there.
    pub buildpack_max_size: u64,
    /// How long a buildpack fetch (curl, git over HTTP) may receive nothing before it is
    /// called off as timed out.
    pub buildpack_stall_timeout: Duration,
    /// Whether a buildpack that cannot find the runtime version an app asks for may use the
    /// nearest one the host has, with a warning, rather than fail (the platform never does:
    /// off by default). Passed to buildpacks as `SHIPWAY_NEAREST_VERSION=1`.
    pub nearest_version: bool,
    /// Where addon servers (postgres, redis-server, mariadbd) are looked for; `None`:
    /// Debian's places (`addon.rs`).
    pub addon_bin_dirs: Option<Vec<PathBuf>>,
}

/// One setting: its name in config.toml, its variable, how to show its value and how to
/// apply one.
struct Key {
    name: &'static str,
    show: fn(&Settings) -> String,
    apply: fn(&mut Settings, &str, &str) -> Result<(), SettingsError>,
}

const KEYS: &[Key] = &[
    Key {
        name: "stack",
        show: |s| s.stack.clone(),
        apply: |s, _, v| {
            s.stack = v.to_string();
            Ok(())
        },
    },
    Key {
        name: "stack_registry",
        show: |s| s.stack_registry.clone(),
        apply: |s, _, v| {
            s.stack_registry = v.trim().to_string();
            Ok(())
        },
    },
    Key {
        name: "build_timeout",
        show: |s| render_duration(s.build_timeout),
        apply: |s, n, v| duration(n, v).map(|d| s.build_timeout = d),
    },
    Key {
        name: "boot_timeout",
        show: |s| render_duration(s.boot_timeout),
        apply: |s, n, v| duration(n, v).map(|d| s.boot_timeout = d),
    },
    Key {
        name: "hook_timeout",
        show: |s| render_duration(s.hook_timeout),
        apply: |s, n, v| duration(n, v).map(|d| s.hook_timeout = d),
    },
    Key {
        name: "cron_min_interval",
        show: |s| render_duration(s.cron_min_interval),
        apply: |s, n, v| duration(n, v).map(|d| s.cron_min_interval = d),
    },
    Key {
        name: "cron_clock_ahead",
        show: |s| render_duration(s.cron_clock_ahead),
        apply: |s, n, v| duration(n, v).map(|d| s.cron_clock_ahead = d),
    },
    Key {
        name: "grace_period",
        show: |s| render_duration(s.grace_period),
        apply: |s, n, v| duration(n, v).map(|d| s.grace_period = d),
    },
    Key {
        name: "first_byte_timeout",
        show: |s| render_duration(s.first_byte_timeout),
        apply: |s, n, v| duration(n, v).map(|d| s.first_byte_timeout = d),
    },
    Key {
        name: "port",
        show: |s| s.port.map_or("first free from 5000".into(), |p| p.to_string()),
        apply: |s, n, v| number(n, v, "a port number").map(|p| s.port = Some(p)),
    },
    Key {
        name: "dashboard_port",
        show: |s| s.dashboard_port.map_or("any free".into(), |p| p.to_string()),
        apply: |s, n, v| number(n, v, "a port number").map(|p| s.dashboard_port = Some(p)),
    },
    Key {
        name: "loopback_bind",
        show: |s| match s.loopback_bind {
            LoopbackBind::Fail => "fail".into(),
            LoopbackBind::Allow => "allow".into(),
        },
        apply: |s, n, v| {
            s.loopback_bind = match v {
                "fail" => LoopbackBind::Fail,
                "allow" => LoopbackBind::Allow,
                _ => {
                    return Err(SettingsError::Value {
                        name: n.to_string(),
                        value: v.to_string(),
                        expected: "fail or allow",
                    })
                }
            };
            Ok(())
        },
    },
    Key {
        name: "sandbox",
        show: |s| match s.sandbox {
            SandboxMode::Auto => "auto".into(),
            SandboxMode::Off => "off".into(),
            SandboxMode::Required => "required".into(),
        },
        apply: |s, n, v| {
            s.sandbox = match v {
                "auto" => SandboxMode::Auto,
                "off" => SandboxMode::Off,
                "required" => SandboxMode::Required,
                _ => {
                    return Err(SettingsError::Value {
                        name: n.to_string(),
                        value: v.to_string(),
                        expected: "auto, off or required",
                    })
                }
            };
            Ok(())
        },
    },
    Key {
        name: "official_buildpacks",
        show: |s| match s.official_buildpacks {
            OfficialBuildpacks::Auto => "auto".into(),
            OfficialBuildpacks::Always => "always".into(),
            OfficialBuildpacks::Never => "never".into(),
        },
        apply: |s, n, v| {
            s.official_buildpacks = match v {
                "auto" => OfficialBuildpacks::Auto,
                "always" => OfficialBuildpacks::Always,
                "never" => OfficialBuildpacks::Never,
                _ => {
                    return Err(SettingsError::Value {
                        name: n.to_string(),
                        value: v.to_string(),
                        expected: "auto, always or never",
                    })
                }
            };
            Ok(())
        },
    },
    Key {
        name: "official_buildpacks_url",
        show: |s| s.official_buildpacks_url.clone(),
        apply: |s, _, v| {
            s.official_buildpacks_url = v.trim_end_matches('/').to_string();
            Ok(())
        },
    },
    Key {
        name: "pass_env",
        show: |s| s.pass_env.join(","),
        apply: |s, _, v| {
            s.pass_env = v
                .split([',', ' '])
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            Ok(())
        },
    },
    Key {
        name: "buildpacks_dir",
        show: |s| {
            s.buildpacks_dir
                .as_ref()
                .map_or("bundled".into(), |d| d.display().to_string())
        },
        apply: |s, _, v| {
            s.buildpacks_dir = Some(PathBuf::from(v));
            Ok(())
        },
    },
    Key {
        name: "crash_backoff",
        show: |s| render_duration(s.crash_backoff),
        apply: |s, n, v| duration(n, v).map(|d| s.crash_backoff = d),
    },
    Key {
        name: "crash_limit",
        show: |s| s.crash_limit.to_string(),
        apply: |s, n, v| number(n, v, "a whole number").map(|k| s.crash_limit = k),
    },
    Key {
        name: "slug_limit",
        show: |s| render_size(s.slug_limit),
        apply: |s, n, v| size(n, v).map(|b| s.slug_limit = b),
    },
    Key {
        name: "buildpack_max_size",
        show: |s| render_size(s.buildpack_max_size),
        apply: |s, n, v| size(n, v).map(|b| s.buildpack_max_size = b),
    },
    Key {
        name: "buildpack_stall_timeout",
        show: |s| render_duration(s.buildpack_stall_timeout),
        apply: |s, n, v| duration(n, v).map(|d| s.buildpack_stall_timeout = d),
    },
    Key {
        name: "nearest_version",
        show: |s| if s.nearest_version { "1" } else { "0" }.into(),
        apply: |s, n, v| {
            s.nearest_version = match v.trim() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => {
                    return Err(SettingsError::Value {
                        name: n.to_string(),
                        value: v.to_string(),
                        expected: "1 or 0",
                    })
                }
            };
            Ok(())
        },
    },
    Key {
        name: "addon_bin_dirs",
        show: |s| match &s.addon_bin_dirs {
            None => "host".into(),
            Some(dirs) => std::env::join_paths(dirs)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        },
        apply: |s, _, v| {
            s.addon_bin_dirs = match v {
                "host" | "" => None,
                _ => Some(std::env::split_paths(v).collect()),
            };
            Ok(())
        },
    },
    Key {
        name: "releases_kept",
        show: |s| s.releases_kept.to_string(),
        apply: |s, n, v| number(n, v, "a whole number").map(|k| s.releases_kept = k),
    },
];

impl Settings {
    /// The platform's numbers, with `home` as given.
    pub fn defaults(home: PathBuf) -> Settings {
        Settings {
            home,
            stack: "scalingo-24".to_string(),
            stack_registry: crate::platform_numbers::DOCKER_HUB.to_string(),
            build_timeout: Duration::from_secs(30 * 60),
            boot_timeout: Duration::from_secs(60),
            hook_timeout: Duration::from_secs(20 * 60),
            cron_min_interval: crate::platform_numbers::CRON_MIN_INTERVAL,
            cron_clock_ahead: Duration::ZERO,
            grace_period: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(30),
            port: None,
            dashboard_port: None,
            loopback_bind: LoopbackBind::Fail,
            sandbox: SandboxMode::Auto,
            official_buildpacks: OfficialBuildpacks::Auto,
            official_buildpacks_url: "https://github.com/Scalingo".to_string(),
            pass_env: Vec::new(),
            buildpacks_dir: None,
            releases_kept: 10,
            crash_backoff: Duration::from_secs(1),
            crash_limit: 10,
            // The platform's image size limit (PLATFORM.md §2).
            slug_limit: 2 * GIB,
            // Not the platform's numbers (it fetches on its own network): generous for a
            // buildpack (the official ones are a few MiB), finite against an endless one.
            buildpack_max_size: 512 * MIB,
            buildpack_stall_timeout: Duration::from_secs(60),
            nearest_version: false,
            addon_bin_dirs: None,
        }
    }

    /// Settings from the process environment and `$SHIPWAY_HOME/config.toml`.
    pub fn load() -> Result<Settings, SettingsError> {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        Settings::from_vars(&vars)
    }

    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Settings, SettingsError> {
        Settings::read(vars, true)
    }

    /// Settings from the environment alone, for `down` in a home that failed its checks:
    /// its config.toml may be another user's, so it is not read.
    pub fn load_without_config_file() -> Result<Settings, SettingsError> {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        Settings::read(&vars, false)
    }

    fn read(vars: &BTreeMap<String, String>, config_file: bool) -> Result<Settings, SettingsError> {
        let home = match vars.get("SHIPWAY_HOME").filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h),
            None => match (vars.get("XDG_STATE_HOME"), vars.get("HOME")) {
                (Some(x), _) if !x.is_empty() => Path::new(x).join("shipway"),
                (_, Some(h)) if !h.is_empty() => Path::new(h).join(".local/state/shipway"),
                _ => return Err(SettingsError::NoHome),
            },
        };
        let mut settings = Settings::defaults(home);
        if config_file {
            // The home is checked before anything in it is opened: config.toml decides what
            // runs as this user. It is opened without blocking (a FIFO there hung every
            // command) and must be a regular file of this user's alone.
            crate::state::check_home(&settings.home).map_err(SettingsError::Home)?;
            let file = settings.home.join("config.toml");
            if let Some(bytes) = crate::state::read_private(&file).map_err(SettingsError::Home)? {
                let text = String::from_utf8(bytes).map_err(|_| SettingsError::Toml {
                    path: file.clone(),
                    message: "not UTF-8".into(),
                })?;
                settings.apply_toml(&file, &text)?;
            }
        }
        for key in KEYS {
            let var = format!("SHIPWAY_{}", key.name.to_uppercase());
            if let Some(value) = vars.get(&var) {
                (key.apply)(&mut settings, &var, value)?;
            }
        }
        Ok(settings)
    }

    fn apply_toml(&mut self, path: &Path, text: &str) -> Result<(), SettingsError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| SettingsError::Toml {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        for (name, value) in table {
            let key = KEYS
                .iter()
                .find(|k| k.name == name)
                .ok_or_else(|| SettingsError::Unknown {
                    path: path.to_path_buf(),
                    key: name.clone(),
                    known: KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
                })?;
            let value = match value {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            (key.apply)(self, &name, &value)?;
        }
        Ok(())
    }

    /// The settings as `name = value` lines, for `shipway up` and for telling a running
    /// platform's settings from the caller's: every setting, since the platform uses each.
    /// Whether each command applies `key` itself, from its own environment, rather than
    /// the platform from the settings it started with: the router port is chosen at an
    /// app's first deploy, so the deploy's own setting applies.
    pub fn per_command(key: &str) -> bool {
        key == "port"
    }

    pub fn describe(&self) -> Vec<(String, String)> {
        let home = ("home".to_string(), self.home.display().to_string());
        std::iter::once(home)
            .chain(KEYS.iter().map(|key| (key.name.to_string(), (key.show)(self))))
            .collect()
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str, expected: &'static str) -> Result<T, SettingsError> {
    value.trim().parse().map_err(|_| SettingsError::Value {
        name: name.to_string(),
        value: value.to_string(),
        expected,
    })
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The longest each duration setting may be. Past it a value is a typo more often than a
/// wish, and every deadline made from one stays far from what an `Instant` can hold: a
/// build or a hook may run a day, a wait for one process or one byte an hour.
fn max_duration(name: &str) -> Duration {
    match name.trim_start_matches("SHIPWAY_").to_ascii_lowercase().as_str() {
        "build_timeout" | "hook_timeout" | "cron_min_interval" | "cron_clock_ahead" => DAY,
        _ => HOUR,
    }
}

/// Reads `500ms`, `5s`, `2m`, `1h`, `1h 30m` (humantime's forms), or a bare number of
/// seconds (`1.5`), no longer than the setting's maximum.
pub fn duration(name: &str, value: &str) -> Result<Duration, SettingsError> {
    let max = max_duration(name);
    let bad = || SettingsError::Duration {
        name: name.to_string(),
        value: value.to_string(),
    };
    let too_long = || SettingsError::DurationTooLong {
        name: name.to_string(),
        value: value.to_string(),
        max: render_duration(max),
    };
    let v = value.trim();
    let read = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Seconds, compared before they become a Duration, which panics past u64 seconds.
        let secs: f64 = v.parse().map_err(|_| bad())?;
        if !secs.is_finite() || secs > max.as_secs_f64() {
            return Err(too_long());
        }
        Duration::from_secs_f64(secs)
    } else {
        match humantime::parse_duration(v) {
            Ok(d) => d,
            Err(humantime::DurationError::NumberOverflow) => return Err(too_long()),
            Err(_) => return Err(bad()),
        }
    };
    if read > max {
        return Err(too_long());
    }
    Ok(read)
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// Binary units, largest first, as the platform states its limits.
const SIZE_UNITS: [(&str, u64); 3] = [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)];

/// Reads `2GiB`, `500MiB`, `64KiB` (or `G`, `M`, `K`), and a bare number of bytes.
pub fn size(name: &str, value: &str) -> Result<u64, SettingsError> {
    let bad = || SettingsError::Size {
        name: name.to_string(),
        value: value.to_string(),
    };
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: u64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let factor = match unit {
        "" | "B" => 1,
        _ => SIZE_UNITS
            .iter()
            .find(|(u, _)| unit.eq_ignore_ascii_case(u) || unit.eq_ignore_ascii_case(&u[..1]))
            .map(|&(_, f)| f)
            .ok_or_else(bad)?,
    };
    num.checked_mul(factor).ok_or_else(bad)
}

/// The inverse of [`size`]: the largest unit that says it exactly.
pub fn render_size(bytes: u64) -> String {
    SIZE_UNITS
        .iter()
        .find(|&&(_, f)| bytes > 0 && bytes.is_multiple_of(f))
        .map_or(format!("{bytes}B"), |&(u, f)| format!("{}{u}", bytes / f))
}

/// The inverse of [`duration`], for messages: `30s`, `20m`, `500ms`.
pub fn render_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations_have_a_maximum_and_never_overflow() {
        for (name, value) in [
            ("SHIPWAY_GRACE_PERIOD", "99999999999999999h"),
            ("SHIPWAY_BOOT_TIMEOUT", "999999999999999999999999999999999h"),
            ("SHIPWAY_BOOT_TIMEOUT", "99999999999999999999999999999"),
            ("SHIPWAY_BOOT_TIMEOUT", "2h"),
            ("SHIPWAY_BOOT_TIMEOUT", "3601"),
            ("boot_timeout", "61m"),
            ("SHIPWAY_HOOK_TIMEOUT", "25h"),
            ("SHIPWAY_CRASH_BACKOFF", "1000000years"),
        ] {
            let err = duration(name, value).unwrap_err().to_string();
            assert!(
                err.contains(name) && err.contains("at most"),
                "{name}={value}: {err}"
            );
        }
        assert_eq!(
            duration("SHIPWAY_BOOT_TIMEOUT", "1h").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            duration("SHIPWAY_HOOK_TIMEOUT", "24h").unwrap(),
            Duration::from_secs(86400)
        );
        assert_eq!(
            duration("build_timeout", "1h 30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(duration("x", "1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["-1s", "1..5", ".", "5 parsecs", "s", "nan", "inf", "1e308"] {
            let err = duration("SHIPWAY_BOOT_TIMEOUT", bad).unwrap_err().to_string();
            assert!(err.contains("cannot read"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_read_every_unit() {
        assert_eq!(duration("x", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("x", "5s").unwrap(), Duration::from_secs(5));
        assert_eq!(duration("x", "2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("x", "1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(duration("x", "7").unwrap(), Duration::from_secs(7));
        assert!(duration("x", "5 parsecs").is_err());
        assert!(duration("x", "").is_err());
        assert_eq!(render_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(render_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn sizes_read_every_unit_and_render_back() {
        assert_eq!(size("x", "2GiB").unwrap(), 2 * 1024 * 1024 * 1024);
        assert_eq!(size("x", "500 MiB").unwrap(), 500 * 1024 * 1024);
        assert_eq!(size("x", "64k").unwrap(), 64 * 1024);
        assert_eq!(size("x", "10").unwrap(), 10);
        assert_eq!(size("x", "10B").unwrap(), 10);
        for bad in ["", "GiB", "1.5GiB", "-1", "3 parsecs", "99999999999999999999"] {
            assert!(size("x", bad).is_err(), "{bad}");
        }
        assert!(size("x", "99999999999G").is_err(), "overflow");
        for shown in ["2GiB", "500MiB", "64KiB", "10B", "1025B", "0B"] {
            assert_eq!(render_size(size("x", shown).unwrap()), shown);
        }
    }

    #[test]
    fn defaults_are_the_platform_numbers() {
        let s = Settings::from_vars(&vars(&[("SHIPWAY_HOME", "/nonexistent/x")])).unwrap();
        assert_eq!(s.boot_timeout, Duration::from_secs(60));
        assert_eq!(s.grace_period, Duration::from_secs(30));
        assert_eq!(s.hook_timeout, Duration::from_secs(1200));
        assert_eq!(s.build_timeout, Duration::from_secs(1800));
        assert_eq!(s.loopback_bind, LoopbackBind::Fail);
        assert_eq!(s.slug_limit, 2 * 1024 * 1024 * 1024);
        assert!(
            !s.nearest_version,
            "the platform never runs another version than asked"
        );
    }

    #[test]
    fn nearest_version_reads_on_and_off_and_refuses_the_rest() {
        let with = |v: &str| {
            Settings::from_vars(&vars(&[
                ("SHIPWAY_HOME", "/nonexistent/x"),
                ("SHIPWAY_NEAREST_VERSION", v),
            ]))
        };
        assert!(with("1").unwrap().nearest_version);
        assert!(with("true").unwrap().nearest_version);
        assert!(!with("0").unwrap().nearest_version);
        let err = with("maybe").unwrap_err().to_string();
        assert!(
            err.contains("SHIPWAY_NEAREST_VERSION") && err.contains("1 or 0"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "boot_timeout = \"9s\"\ngrace_period = \"4s\"\n",
        )
        .unwrap();
        let home = dir.path().to_str().unwrap();
        let s =
            Settings::from_vars(&vars(&[("SHIPWAY_HOME", home), ("SHIPWAY_GRACE_PERIOD", "1s")])).unwrap();
        assert_eq!(s.boot_timeout, Duration::from_secs(9));
        assert_eq!(s.grace_period, Duration::from_secs(1));
    }

    #[test]
    fn describe_shows_every_setting_the_platform_uses() {
        let s = Settings::from_vars(&vars(&[
            ("SHIPWAY_HOME", "/nonexistent/x"),
            ("SHIPWAY_PASS_ENV", "WAR_PATH JAVA_HOME"),
            ("SHIPWAY_BUILDPACKS_DIR", "/opt/packs"),
        ]))
        .unwrap();
        let shown = s.describe();
        let value = |name: &str| shown.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(value("home"), Some("/nonexistent/x"));
        assert_eq!(value("pass_env"), Some("WAR_PATH,JAVA_HOME"));
        assert_eq!(value("buildpacks_dir"), Some("/opt/packs"));
        assert_eq!(value("boot_timeout"), Some("1m"));
        assert_eq!(shown.len(), KEYS.len() + 1);
    }

    #[test]
    fn unknown_config_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "boot_timeuot = \"9s\"\n").unwrap();
        let err = Settings::from_vars(&vars(&[("SHIPWAY_HOME", dir.path().to_str().unwrap())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("boot_timeuot"), "{err}");
    }
}
