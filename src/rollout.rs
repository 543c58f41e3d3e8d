//! The rollout of a release (PLATFORM.md §4, steps 1–3): start its containers for the
//! formation, wait until each web/tcp one accepts TCP connections, then run the
//! `postdeploy` hook in a one-off container. Any failure stops the new containers and
//! leaves the running release untouched.
//!
//! It hands back ready containers; switching the router to them and stopping the old
//! ones is the platform's (it owns both).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use nix::sys::signal::Signal;

use crate::clock::Clock;
use crate::container::{self, is_routed, Container, ContainerError, ContainerSpec};
use crate::deployment::Status;
use crate::probe::{self, ProbeFailure};
use crate::process::{Exit, Interrupted, LineSink};
use crate::release::Release;
use crate::settings::{render_duration, Settings};
use crate::ui::{Output, Progress};

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(transparent)]
    Start(#[from] ContainerError),
    #[error("{container} {} before it accepted connections on its PORT", .out_of_memory.map_or_else(|| .exit.to_string(), |size| format!("stopped: {}", crate::process::out_of_memory(size))))]
    Crashed {
        container: String,
        exit: Exit,
        /// Its size, when the kernel stopped it for memory.
        out_of_memory: Option<crate::platform_numbers::Size>,
        tail: Vec<String>,
    },
    #[error("{container} did not accept connections on PORT {port} within {limit}")]
    TimedOut {
        container: String,
        port: u16,
        limit: String,
        diagnosis: String,
        tail: Vec<String>,
    },
    #[error("the postdeploy hook {exit}")]
    HookFailed { exit: Exit },
    #[error("the postdeploy hook did not finish within {limit}: it was stopped")]
    HookTimedOut { limit: String },
    #[error("cannot start the postdeploy hook: {0}")]
    HookStart(crate::process::ProcessError),
    #[error("interrupted")]
    Cancelled,
}

impl RolloutError {
    /// The platform's status for this failure.
    pub fn status(&self) -> Status {
        match self {
            RolloutError::Start(_) | RolloutError::Crashed { .. } => Status::CrashedError,
            RolloutError::TimedOut { .. } => Status::TimeoutError,
            RolloutError::HookFailed { .. }
            | RolloutError::HookTimedOut { .. }
            | RolloutError::HookStart(_) => Status::HookError,
            RolloutError::Cancelled => Status::Aborted,
        }
    }

    /// What to show besides the one-line message.
    pub fn details(&self) -> Vec<String> {
        match self {
            RolloutError::Crashed { tail, .. } => with_tail(Vec::new(), tail),
            RolloutError::TimedOut { diagnosis, tail, .. } => with_tail(vec![diagnosis.clone()], tail),
            _ => Vec::new(),
        }
    }
}

fn with_tail(mut lines: Vec<String>, tail: &[String]) -> Vec<String> {
    if tail.is_empty() {
        lines.push("it printed nothing".into());
    } else {
        lines.push(format!("its last {} lines of output:", tail.len()));
        lines.extend(tail.iter().map(|l| format!("  | {l}")));
    }
    lines
}

/// How many containers of each type run: `web` and `tcp` 1 unless scaled, other types
/// 0 until scaled, `postdeploy` never (PLATFORM.md §3).
pub fn amounts(release: &Release, formation: &BTreeMap<String, u32>) -> Vec<(String, u32)> {
    release
        .process_types
        .keys()
        .filter(|t| *t != "postdeploy")
        .map(|t| (t.clone(), amount(t, formation)))
        .collect()
}

/// The amount of `process_type` in `formation`, or its default.
pub fn amount(process_type: &str, formation: &BTreeMap<String, u32>) -> u32 {
    let default = u32::from(container::is_routed(process_type));
    formation.get(process_type).copied().unwrap_or(default)
}

/// The containers the formation asks for, as [`amounts`] counts them.
pub fn specs(release: &Release, formation: &BTreeMap<String, u32>) -> Vec<ContainerSpec> {
    let mut specs = Vec::new();
    for (process_type, count) in amounts(release, formation) {
        let command = &release.process_types[&process_type];
        for index in 1..=count {
            specs.push(ContainerSpec {
                process_type: process_type.clone(),
                index,
                command: command.clone(),
            });
        }
    }
    specs
}

/// What a rollout starts.
pub struct Plan<'a> {
    pub settings: &'a Settings,
    pub release: &'a Release,
    pub release_dir: &'a Path,
    /// The app's config: its variables, formation and sizes.
    pub config: &'a crate::state::AppConfig,
    /// What the boot timeout and the hook's timeout are measured on.
    pub clock: &'a Arc<dyn Clock>,
}

/// Start the release's containers and wait until the routed ones are ready.
/// `log` gives each container's output sink by container name.
pub fn start(
    plan: &Plan<'_>,
    log: &dyn Fn(&str) -> LineSink,
    out: &Output,
    cancel: &Receiver<()>,
) -> Result<Vec<Container>, RolloutError> {
    start_specs(
        plan,
        specs(plan.release, &plan.config.formation),
        log,
        out,
        cancel,
    )
}

/// Start these containers of the plan's release and wait until the routed ones are ready.
pub fn start_specs(
    plan: &Plan<'_>,
    specs: Vec<ContainerSpec>,
    log: &dyn Fn(&str) -> LineSink,
    out: &Output,
    cancel: &Receiver<()>,
) -> Result<Vec<Container>, RolloutError> {
    let mut containers = start_unprobed(plan, specs, log)?;
    let note = |text: &str| out.detail(text);
    let routed = containers.iter().any(|c| is_routed(&c.spec.process_type));
    if routed {
        out.progress(Progress::Wait {
            what: "the app to boot".into(),
            limit_ms: millis(plan.settings.boot_timeout),
        });
    }
    let ready = probe::wait_ready(
        &mut containers,
        plan.settings.boot_timeout,
        &**plan.clock,
        plan.settings.loopback_bind,
        cancel,
        &note,
    );
    if routed {
        out.progress(Progress::Done);
    }
    match ready {
        Ok(()) => {
            // Its program's pid is found here, on the rollout's thread, and kept, for the
            // supervisor's `ps` and stop to show. A routed container that answers has
            // forked it; a worker's shim may not have yet: `ps`'s worker finds that one.
            for c in &containers {
                c.look_up_program();
            }
            Ok(containers)
        }
        Err(failure) => {
            // Read before the containers go, with their cgroups.
            let out_of_memory = match &failure {
                ProbeFailure::Crashed { container, .. } => containers
                    .iter()
                    .find(|c| &c.name == container)
                    .and_then(|c| c.child.stopped_for_memory()),
                _ => None,
            };
            discard(containers, plan.settings.grace_period);
            Err(match failure {
                ProbeFailure::Crashed {
                    container,
                    exit,
                    tail,
                } => RolloutError::Crashed {
                    container,
                    exit,
                    out_of_memory,
                    tail,
                },
                ProbeFailure::TimedOut {
                    container,
                    port,
                    diagnosis,
                    tail,
                } => RolloutError::TimedOut {
                    container,
                    port,
                    limit: render_duration(plan.settings.boot_timeout),
                    diagnosis,
                    tail,
                },
                ProbeFailure::Cancelled => RolloutError::Cancelled,
            })
        }
    }
}

/// Start these containers of the plan's release without waiting for any of them. If one
/// cannot start, the ones already started are discarded.
pub fn start_unprobed(
    plan: &Plan<'_>,
    specs: Vec<ContainerSpec>,
    log: &dyn Fn(&str) -> LineSink,
) -> Result<Vec<Container>, ContainerError> {
    let mut containers = Vec::new();
    for spec in specs {
        let name = spec.name();
        let process_type = spec.process_type.clone();
        match container::start(
            plan.settings,
            plan.release,
            plan.release_dir,
            &plan.config.config_vars,
            spec,
            plan.config.size(&process_type),
            log(&name),
        ) {
            Ok(c) => containers.push(c),
            Err(e) => {
                discard(containers, plan.settings.grace_period);
                return Err(e);
            }
        }
    }
    Ok(containers)
}

/// A limit as `ui::Progress` carries it.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Stop containers that will never serve, without holding up the caller.
pub fn discard(containers: Vec<Container>, grace: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        container::stop_all(containers, grace);
    })
}

/// Run the `postdeploy` hook, if the release has one, once, in a one-off container
/// (same environment, no PORT), its output going to `out`.
pub fn run_hook(
    plan: &Plan<'_>,
    out: &Output,
    cancel: &Receiver<()>,
) -> Result<Option<Duration>, RolloutError> {
    let Some(command) = plan.release.process_types.get("postdeploy") else {
        return Ok(None);
    };
    let started = Instant::now();
    out.step(&format!("Running postdeploy hook: {command}"));
    let mut child = container::one_off(
        plan.settings,
        plan.release,
        plan.release_dir,
        &plan.config.config_vars,
        "postdeploy-1",
        command,
        plan.config.size("postdeploy"),
    )
    .clock(plan.clock.clone())
    .start(out.sink())
    .map_err(RolloutError::HookStart)?;
    out.progress(Progress::Wait {
        what: "the postdeploy hook".into(),
        limit_ms: millis(plan.settings.hook_timeout),
    });
    let ended = child.wait_until(plan.settings.hook_timeout, cancel);
    out.progress(Progress::Done);
    match ended {
        Ok(exit) => {
            child.reap_group(Duration::from_secs(1));
            if exit.success() {
                Ok(Some(started.elapsed()))
            } else {
                Err(RolloutError::HookFailed { exit })
            }
        }
        Err(why) => {
            child.stop(Signal::SIGTERM, Duration::from_secs(2));
            Err(match why {
                Interrupted::TimedOut => RolloutError::HookTimedOut {
                    limit: render_duration(plan.settings.hook_timeout),
                },
                Interrupted::Cancelled => RolloutError::Cancelled,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formation_defaults_follow_the_platform() {
        let release = Release {
            number: 1,
            created: 0,
            app: "a".into(),
            source: "s".into(),
            git_ref: None,
            version: None,
            buildpacks: vec![],
            process_types: [("web", "w"), ("worker", "k"), ("tcp", "t"), ("postdeploy", "p")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            config_defaults: BTreeMap::new(),
            addons: vec![],
            slug_bytes: 0,
            stack: String::new(),
            stack_digest: None,
        };
        let names: Vec<String> = specs(&release, &BTreeMap::new())
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(names, vec!["tcp-1", "web-1"]);
        let formation: BTreeMap<String, u32> = [("web".to_string(), 2), ("worker".to_string(), 1)].into();
        let names: Vec<String> = specs(&release, &formation).iter().map(|s| s.name()).collect();
        assert_eq!(names, vec!["tcp-1", "web-1", "web-2", "worker-1"]);
    }
}
