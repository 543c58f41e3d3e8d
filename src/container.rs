//! A container: one process of a release, started the platform's way (PLATFORM.md §4):
//! through bash, after sourcing `.profile.d/*.sh` (sorted) then `.profile`, with the
//! runtime environment (config vars, then PORT, CONTAINER, CONTAINER_VERSION, ...),
//! HOME = the app folder, in its own process group.
//!
//! It starts and stops one container and keeps the last lines it printed; deciding
//! which containers run, and when, is the rollout's.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::platform_numbers::Size;
use crate::process::{Child, Exit, LineSink, ProcessError, Spawn, Stream};
use crate::release::Release;
use crate::sandbox::Sandbox;
use crate::settings::{SandboxMode, Settings};
use crate::stack::Runtime;
use crate::tail::SharedTail;

/// How many of its last lines a container keeps, for crash reports.
const TAIL_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("cannot start {name}: {source}")]
    Start { name: String, source: ProcessError },
    #[error("cannot find a free port for {name}: {source}")]
    Port { name: String, source: std::io::Error },
}

/// Whether a process type gets a PORT and is probed (PLATFORM.md §3).
pub fn is_routed(process_type: &str) -> bool {
    process_type == "web" || process_type == "tcp"
}

/// What to start: `web-1` running the `web` command.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub process_type: String,
    pub index: u32,
    pub command: String,
}

/// The type of `run --detached` containers, named `one-off-1`... as on the platform:
/// not a process type of the formation, never restarted.
pub const ONE_OFF: &str = "one-off";

impl ContainerSpec {
    pub fn name(&self) -> String {
        format!("{}-{}", self.process_type, self.index)
    }

    pub fn is_one_off(&self) -> bool {
        self.process_type == ONE_OFF
    }
}

/// Where container ports come from: below the range Linux takes local ports of outgoing
/// connections from (32768 and up by default), so that no client socket can be handed a
/// port between the check here and the container's bind.
const PORTS: std::ops::Range<u32> = 10_000..20_000;

/// A port free now, tried from a cursor that moves on at each call (and differs between
/// processes), so that two containers starting together are not offered the same one.
/// Another program may still take it first; the probe then fails with a diagnosis.
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CURSOR: AtomicU32 = AtomicU32::new(0);
    let span = PORTS.end - PORTS.start;
    let seed = std::process::id().wrapping_mul(7_919);
    for _ in 0..span {
        let port = PORTS.start + (seed.wrapping_add(CURSOR.fetch_add(1, Ordering::Relaxed)) % span);
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return Ok(port as u16);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `PATH` after the app's own folders: the host's, or inside an image, Ubuntu's default.
pub fn system_path(runtime: &Runtime) -> String {
    match runtime.image {
        Some(_) => "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        None => std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    }
}

/// What the containers of `release` run in: the image it was built in. One that is no
/// longer on disk (removed by hand: `stacks --prune` keeps what releases recorded) leaves
/// the host's userland, which the container's first lines say.
pub fn release_runtime(settings: &Settings, release: &Release) -> (Runtime, Option<String>) {
    match Runtime::of_release(settings, &release.stack, release.stack_digest.as_deref()) {
        Ok(runtime) => (runtime, None),
        Err(why) => (Runtime::host(&release.stack), Some(why)),
    }
}

/// A container's whole environment, in the platform's order: config vars (the
/// buildpack's defaults overridden by the app's), then the platform's own variables.
/// `size`: CONTAINER_SIZE and CONTAINER_MEMORY (its cgroup enforces it, `cgroup.rs`).
#[allow(clippy::too_many_arguments)]
pub fn runtime_env(
    settings: &Settings,
    release: &Release,
    runtime: &Runtime,
    app_dir: &Path,
    config_vars: &BTreeMap<String, String>,
    name: &str,
    port: Option<u16>,
    size: Size,
) -> Vec<(String, String)> {
    let mut vars: BTreeMap<String, String> = release.config_defaults.clone();
    vars.extend(config_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    let host_path = system_path(runtime);
    let home = app_dir.display().to_string();
    let (size, memory) = (size.name.to_string(), size.memory.to_string());
    let platform = [
        ("CONTAINER", name.to_string()),
        ("CONTAINER_VERSION", release.container_version()),
        ("CONTAINER_SIZE", size),
        ("CONTAINER_MEMORY", memory),
        ("APP", release.app.clone()),
        ("HOSTNAME", format!("{}-{name}", release.app)),
        ("STACK", runtime.stack_var(settings)),
        ("HOME", home.clone()),
        ("PATH", format!("{home}/bin:{host_path}")),
        (
            "LANG",
            vars.get("LANG").cloned().unwrap_or_else(|| "C.UTF-8".into()),
        ),
    ];
    for (k, v) in platform {
        vars.insert(k.to_string(), v);
    }
    match port {
        Some(p) => {
            vars.insert("PORT".into(), p.to_string());
        }
        None => {
            vars.remove("PORT");
        }
    }
    vars.into_iter().collect()
}

/// The command line for bash of a one-off's argv (`shipway run`): one word is a command
/// line as a Procfile's (`'rake db:migrate && echo done'`); several words are each
/// single-quoted, so spaces, quotes and `$` reach the program as typed.
pub fn command_line(argv: &[String]) -> String {
    match argv {
        [line] => line.clone(),
        words => words
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The bash script that runs a command the platform's way.
pub fn boot_script(command: &str) -> String {
    // Globs sort, so .profile.d scripts run in name order, as on the platform.
    format!(
        "cd \"$HOME\" || exit 1\nfor f in \"$HOME\"/.profile.d/*.sh; do [ -f \"$f\" ] && . \"$f\"; done\n[ -f \"$HOME/.profile\" ] && . \"$HOME/.profile\"\n{command}\n"
    )
}

/// A running container.
pub struct Container {
    /// Unique for the life of the platform: names are reused by restarts, ids never.
    pub id: u64,
    /// The release it runs.
    pub release: u32,
    /// How many times a container of this name was restarted after crashing.
    pub restarts: u32,
    /// Consecutive quick crashes before this start (the crash policy's memory).
    pub crash_streak: u32,
    pub spec: ContainerSpec,
    pub name: String,
    pub port: Option<u16>,
    pub child: Child,
    /// Its size, which its cgroup enforces when the machine allows.
    pub size: Size,
    /// The last lines it printed.
    pub tail: SharedTail,
}

/// Start `spec` of `release`, its output (prefixed by nothing: `log` adds what it
/// wants) going to `log`.
pub fn start(
    settings: &Settings,
    release: &Release,
    release_dir: &Path,
    config_vars: &BTreeMap<String, String>,
    spec: ContainerSpec,
    size: Size,
    log: LineSink,
) -> Result<Container, ContainerError> {
    let name = spec.name();
    let port = if is_routed(&spec.process_type) {
        Some(free_port().map_err(|source| ContainerError::Port {
            name: name.clone(),
            source,
        })?)
    } else {
        None
    };
    let tail = SharedTail::new(TAIL_LINES);
    let t = tail.clone();
    let sink: LineSink = Arc::new(move |stream: Stream, line: &str| {
        t.push(line);
        log(stream, line);
    });
    let child = boot(
        settings,
        release,
        release_dir,
        config_vars,
        &name,
        &spec.command,
        port,
        size,
    )
    .start(sink)
    .map_err(|source| ContainerError::Start {
        name: name.clone(),
        source,
    })?;
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    Ok(Container {
        id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        release: release.number,
        restarts: 0,
        crash_streak: 0,
        spec,
        name,
        port,
        child,
        size,
        tail,
    })
}

impl Container {
    /// The pid of its program (what `ps` shows and a user would signal), if it was looked
    /// up already ([`Container::look_up_program`]): never reads /proc.
    pub fn program_pid(&self) -> Option<u32> {
        self.child.known_program_pid()
    }

    /// Look its program's pid up in /proc and keep it, off the supervisor's thread: the
    /// rollout does, once the container is ready, so that the supervisor knows it. A
    /// program not forked yet stays unknown (see [`Child::program_pid`]).
    pub fn look_up_program(&self) {
        let _ = self.child.program_pid();
    }

    /// SIGTERM to the whole group, SIGKILL to what is left after `grace`, reaped.
    pub fn stop(&mut self, grace: Duration) -> Exit {
        self.child.stop(Signal::SIGTERM, grace)
    }
}

/// A one-off container (the postdeploy hook, `shipway run`, a scheduled job): same
/// environment, no PORT, in a container of `size`.
#[allow(clippy::too_many_arguments)]
pub fn one_off(
    settings: &Settings,
    release: &Release,
    release_dir: &Path,
    config_vars: &BTreeMap<String, String>,
    name: &str,
    command: &str,
    size: Size,
) -> Spawn {
    boot(
        settings,
        release,
        release_dir,
        config_vars,
        name,
        command,
        None,
        size,
    )
}

/// `command` run the way the platform runs every container: bash in the app folder, after
/// the profile scripts, with the runtime environment (and PORT when given), limited to
/// `size` where the machine allows.
#[allow(clippy::too_many_arguments)]
fn boot(
    settings: &Settings,
    release: &Release,
    release_dir: &Path,
    config_vars: &BTreeMap<String, String>,
    name: &str,
    command: &str,
    port: Option<u16>,
    size: Size,
) -> Spawn {
    let app_dir: PathBuf = Release::app_dir(release_dir);
    // Where "required" finds no sandbox, the shim's attempt fails and says why.
    let sandboxed = settings.sandbox == SandboxMode::Required
        || matches!(Sandbox::resolve(settings.sandbox), Ok(Sandbox::On));
    let seen_at = if sandboxed {
        Path::new(APP)
    } else {
        app_dir.as_path()
    };
    let (runtime, missing) = release_runtime(settings, release);
    let env = runtime_env(
        settings,
        release,
        &runtime,
        seen_at,
        config_vars,
        name,
        port,
        size,
    );
    let script = match missing {
        Some(why) => format!(
            "echo \"shipway: {why}; running on this machine's own userland\" >&2\n{}",
            boot_script(command)
        ),
        None => boot_script(command),
    };
    let spawn = Spawn::new("bash", &app_dir)
        .args(["-c".to_string(), script])
        .env(env)
        .size(&format!("{}-{name}", release.app), size);
    if sandboxed {
        // Its own writable layer over the slug, as on the platform (PLATFORM.md §6), in
        // the image the release was built in.
        spawn.sandbox(crate::process::Plan {
            layer: true,
            root: runtime.rootfs().map(Path::to_path_buf),
            ..crate::process::Plan::app(&app_dir)
        })
    } else {
        spawn
    }
}

/// Where a container sees its slug, as on the platform (when sandboxed).
pub const APP: &str = "/app";

/// Stop every container at once (SIGTERM to all groups in parallel, then SIGKILL
/// after `grace`), and return when all are reaped.
pub fn stop_all(containers: Vec<Container>, grace: Duration) -> Vec<(String, Exit)> {
    let handles: Vec<_> = containers
        .into_iter()
        .map(|mut c| std::thread::spawn(move || (c.name.clone(), c.stop(grace))))
        .collect();
    handles.into_iter().filter_map(|h| h.join().ok()).collect()
}

/// A container whose leader exited: the group is cleaned up, the exit returned.
pub fn reap(container: &mut Container) -> Exit {
    container.child.reap_group(Duration::from_secs(1));
    container
        .child
        .status()
        .unwrap_or(Exit(std::os::unix::process::ExitStatusExt::from_raw(255 << 8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        Release {
            number: 3,
            created: 0,
            app: "demo".into(),
            source: "test".into(),
            git_ref: None,
            version: None,
            buildpacks: vec![],
            process_types: BTreeMap::new(),
            config_defaults: [
                ("A".to_string(), "default".to_string()),
                ("B".to_string(), "default".to_string()),
            ]
            .into(),
            addons: vec![],
            slug_bytes: 0,
            stack: String::new(),
            stack_digest: None,
        }
    }

    #[test]
    fn a_one_offs_words_are_quoted_and_one_word_is_a_command_line() {
        let words = |w: &[&str]| command_line(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(words(&["echo $HOME && ls"]), "echo $HOME && ls");
        assert_eq!(words(&["echo", "a  b", "c'd"]), r"'echo' 'a  b' 'c'\''d'");
        let out = std::process::Command::new("bash")
            .args(["-c", &words(&["printf", "[%s]", "a  b", "c'd", "$x", ""])])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "[a  b][c'd][$x][]");
    }

    #[test]
    fn environment_layers_like_the_platform() {
        let settings = Settings::defaults("/tmp/x".into());
        let vars: BTreeMap<String, String> = [
            ("B".to_string(), "app".to_string()),
            ("PORT".to_string(), "1".to_string()),
        ]
        .into();
        let env: BTreeMap<_, _> = runtime_env(
            &settings,
            &release(),
            &Runtime::host("scalingo-26"),
            Path::new("/srv/app"),
            &vars,
            "web-1",
            Some(5001),
            crate::platform_numbers::DEFAULT_SIZE,
        )
        .into_iter()
        .collect();
        assert_eq!(env["A"], "default");
        assert_eq!(env["B"], "app", "config vars override the buildpack's defaults");
        assert_eq!(env["PORT"], "5001", "the platform's PORT wins over a config var");
        assert_eq!(env["CONTAINER"], "web-1");
        assert_eq!(env["CONTAINER_VERSION"], "v3");
        assert_eq!(env["HOSTNAME"], "demo-web-1");
        assert_eq!(
            env["STACK"], "scalingo-26",
            "the release's stack, not the setting"
        );
        assert_eq!(env["HOME"], "/srv/app");
        assert!(env["PATH"].starts_with("/srv/app/bin:"));
        assert_eq!(
            (env["CONTAINER_SIZE"].as_str(), env["CONTAINER_MEMORY"].as_str()),
            ("M", "536870912")
        );
        let worker: BTreeMap<_, _> = runtime_env(
            &settings,
            &release(),
            &Runtime::host("scalingo-26"),
            Path::new("/srv/app"),
            &vars,
            "worker-1",
            None,
            Size::named("S").unwrap(),
        )
        .into_iter()
        .collect();
        assert!(!worker.contains_key("PORT"));
        assert_eq!(
            (
                worker["CONTAINER_SIZE"].as_str(),
                worker["CONTAINER_MEMORY"].as_str()
            ),
            ("S", "268435456")
        );
    }
}
