//! What serves an app after a deploy, and keeps it serving (PLATFORM.md §4, "after a
//! deploy"): the set of running containers, the router's list of ready web containers,
//! and the crash policy: a container that exits is restarted at once; one that keeps
//! crashing is restarted after growing pauses, then left `crashed`. A crashed web
//! container leaves the router until its replacement is ready.
//!
//! Every container that enters the set gets a watcher thread that waits for its exit;
//! an exit of a container still in the set is a crash (the rollout removes containers
//! from the set before it stops them).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::applog::AppLog;
use super::protocol::{ContainerRow, ProcessRow};
use super::server::{lock, Platform};
use crate::container::{self, Container, ContainerSpec};
use crate::process::{Exit, LineSink, Stream};
use crate::release::Release;
use crate::rollout::{self, Plan, RolloutError};
use crate::router::Router;
use crate::state::{AppConfig, AppDir, StateError};
use crate::ui::Output;

/// A run longer than this resets the count of quick crashes.
const QUICK_CRASH: Duration = Duration::from_secs(60);
/// The longest pause between two restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A container between a crash and its replacement being ready.
pub struct Restarting {
    pub spec: ContainerSpec,
    pub restarts: u32,
    pub since: Instant,
}

/// A container left stopped after repeated crashes.
pub struct Crashed {
    pub spec: ContainerSpec,
    pub restarts: u32,
    /// How its last run or restart ended, for `ps`: `exited with code 1`, or why the
    /// restart failed.
    pub reason: String,
}

/// Why a crashed container could not be started again.
#[derive(Debug, thiserror::Error)]
enum RestartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Rollout(#[from] RolloutError),
}

/// How a container's last run, or its last restart, ended.
struct Ending {
    /// For the app log, naming the container: `web-1 exited with code 1`.
    message: String,
    /// What else the log shows: the probe's diagnosis, the container's last lines.
    details: Vec<String>,
    /// For `ps`: `exited with code 1`, or why the restart failed.
    reason: String,
}

impl Ending {
    fn exited(name: &str, exit: Exit) -> Ending {
        Ending {
            message: format!("{name} {exit}"),
            details: Vec::new(),
            reason: exit.to_string(),
        }
    }

    fn failed(name: &str, e: &RestartError) -> Ending {
        match e {
            RestartError::State(e) => {
                let reason = format!("cannot be restarted: {e}");
                Ending {
                    message: format!("{name} {reason}"),
                    details: Vec::new(),
                    reason,
                }
            }
            RestartError::Rollout(e) => Ending {
                message: e.to_string(),
                details: e.details(),
                reason: match e {
                    RolloutError::Crashed { exit, .. } => exit.to_string(),
                    other => other.to_string(),
                },
            },
        }
    }
}

/// A container being stopped (SIGTERM sent, SIGKILL at the deadline).
pub struct Stopping {
    pub name: String,
    pub command: String,
    pub pid: u32,
    pub port: Option<u16>,
    pub since: Instant,
}

/// What serves an app now.
#[derive(Default)]
pub struct Serving {
    pub router: Option<Router>,
    pub tcp_router: Option<Router>,
    pub release: Option<u32>,
    pub containers: Vec<Container>,
    pub restarting: BTreeMap<String, Restarting>,
    pub crashed: BTreeMap<String, Crashed>,
    pub stopping: BTreeMap<u64, Stopping>,
    /// Bumped whenever a rollout replaces containers: a pending restart of an older
    /// epoch is abandoned.
    pub epoch: u64,
}

impl Serving {
    /// Take the app out of service (platform stopping, app destroyed): the routers close,
    /// pending restarts are called off, and the containers are handed back to be stopped.
    pub fn dismantle(&mut self) -> Vec<Container> {
        for router in [self.router.take(), self.tcp_router.take()].into_iter().flatten() {
            router.shutdown();
        }
        self.epoch += 1;
        self.restarting.clear();
        std::mem::take(&mut self.containers)
    }

    /// Point the routers at the ready web (and tcp) containers.
    fn reroute(&self) {
        if let Some(r) = &self.router {
            r.switch(addresses(&self.containers, "web"));
        }
        if let Some(r) = &self.tcp_router {
            r.switch(addresses(&self.containers, "tcp"));
        }
    }
}

/// What runs in a container, as `ps` shows it.
fn process_rows(c: &Container) -> Vec<ProcessRow> {
    let group = nix::unistd::Pid::from_raw(c.child.pid() as i32);
    c.child
        .processes()
        .into_iter()
        .map(|p| ProcessRow {
            pid: p.pid.as_raw() as u32,
            command: p.command(),
            in_group: p.pgid == group,
        })
        .collect()
}

pub fn addresses(containers: &[Container], process_type: &str) -> Vec<SocketAddr> {
    containers
        .iter()
        .filter(|c| c.spec.process_type == process_type)
        .filter_map(|c| c.port.map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p))))
        .collect()
}

pub struct AppRuntime {
    pub name: String,
    /// Held for the whole of a deployment or any rollout: they never run in parallel.
    pub deploying: Mutex<()>,
    pub serving: Mutex<Serving>,
    pub log: AppLog,
}

impl AppRuntime {
    pub fn rows(&self) -> Vec<ContainerRow> {
        let serving = lock(&self.serving);
        let mut rows: Vec<ContainerRow> = serving
            .containers
            .iter()
            .map(|c| ContainerRow {
                name: c.name.clone(),
                status: "running".into(),
                command: c.spec.command.clone(),
                port: c.port,
                pid: Some(c.pid()),
                uptime_secs: Some(c.started.elapsed().as_secs()),
                restarts: c.restarts,
                release: Some(c.release),
                exit: None,
                processes: process_rows(c),
            })
            .collect();
        rows.extend(serving.restarting.iter().map(|(name, r)| ContainerRow {
            name: name.clone(),
            status: "starting".into(),
            command: r.spec.command.clone(),
            port: None,
            pid: None,
            uptime_secs: Some(r.since.elapsed().as_secs()),
            restarts: r.restarts,
            release: serving.release,
            exit: None,
            processes: Vec::new(),
        }));
        rows.extend(serving.crashed.iter().map(|(name, c)| ContainerRow {
            name: name.clone(),
            status: "crashed".into(),
            command: c.spec.command.clone(),
            port: None,
            pid: None,
            uptime_secs: None,
            restarts: c.restarts,
            release: serving.release,
            exit: Some(c.reason.clone()),
            processes: Vec::new(),
        }));
        rows.extend(serving.stopping.values().map(|s| ContainerRow {
            name: s.name.clone(),
            status: "stopping".into(),
            command: s.command.clone(),
            port: s.port,
            pid: Some(s.pid),
            uptime_secs: Some(s.since.elapsed().as_secs()),
            restarts: 0,
            release: None,
            exit: None,
            processes: Vec::new(),
        }));
        rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.status.cmp(&b.status)));
        rows
    }
}

impl Platform {
    /// Put ready containers into the serving set, each with its watcher.
    fn adopt(self: &Arc<Self>, rt: &Arc<AppRuntime>, serving: &mut Serving, containers: Vec<Container>) {
        for c in containers {
            serving.restarting.remove(&c.name);
            serving.crashed.remove(&c.name);
            let exited = c.child.exited().clone();
            let id = c.id;
            serving.containers.push(c);
            let (p, rt) = (self.clone(), rt.clone());
            std::thread::spawn(move || {
                let _ = exited.recv();
                p.on_exit(&rt, id);
            });
        }
        serving.containers.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// The switch (PLATFORM.md §4 step 4): `containers` of `release` become the serving
    /// set and the routers point at them in one step; the old ones are retired.
    /// Returns how many old containers are being stopped.
    pub(super) fn switch_release(
        self: &Arc<Self>,
        rt: &Arc<AppRuntime>,
        release: u32,
        containers: Vec<Container>,
    ) -> usize {
        let mut serving = lock(&rt.serving);
        serving.epoch += 1;
        serving.release = Some(release);
        self.replace(rt, &mut serving, containers, |_| true).len()
    }

    /// Put `fresh` containers in service in place of those `leaving` selects (running,
    /// waiting for a restart or crashed): the router switches to the new set, then the
    /// old containers are stopped gracefully. Returns the names of those stopped.
    pub(super) fn replace(
        self: &Arc<Self>,
        rt: &Arc<AppRuntime>,
        serving: &mut Serving,
        fresh: Vec<Container>,
        leaving: impl Fn(&ContainerSpec) -> bool,
    ) -> Vec<String> {
        let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut serving.containers)
            .into_iter()
            .partition(|c| leaving(&c.spec));
        serving.containers = keep;
        serving.restarting.retain(|_, r| !leaving(&r.spec));
        serving.crashed.retain(|_, c| !leaving(&c.spec));
        self.adopt(rt, serving, fresh);
        serving.reroute();
        let names = old.iter().map(|c| c.name.clone()).collect();
        self.retire(rt, serving, old);
        names
    }

    /// Start an already built release for the app's formation and, once it is ready,
    /// switch to it (rollback, and `up` starting current releases again: no hook).
    pub(super) fn roll_out_built(
        self: &Arc<Self>,
        app: &AppDir,
        rt: &Arc<AppRuntime>,
        release: &Release,
        config: &AppConfig,
        out: &Output,
    ) -> Result<(), RolloutError> {
        let specs = rollout::specs(release, &config.formation);
        let containers = self.start_containers(app, rt, release, config, specs, out)?;
        self.switch_release(rt, release.number, containers);
        Ok(())
    }

    /// Hand the rollout plan of `release` under `config`, and each container's log sink,
    /// to `start`: the one place they are made for starting a release's containers.
    pub(super) fn with_plan<T>(
        &self,
        app: &AppDir,
        rt: &Arc<AppRuntime>,
        release: &Release,
        config: &AppConfig,
        start: impl FnOnce(&Plan<'_>, &dyn Fn(&str) -> LineSink) -> T,
    ) -> T {
        let release_dir = app.release(release.number);
        let plan = Plan {
            settings: &self.settings,
            release,
            release_dir: &release_dir,
            config_vars: &config.config_vars,
            formation: &config.formation,
        };
        let log_for = |c: &str| self.container_log(&app.name, rt, c);
        start(&plan, &log_for)
    }

    /// Start `specs` of `release` under `config` and wait until they are ready (every
    /// one up, the routed ones accepting connections), unless the platform stops.
    pub(super) fn start_containers(
        &self,
        app: &AppDir,
        rt: &Arc<AppRuntime>,
        release: &Release,
        config: &AppConfig,
        specs: Vec<ContainerSpec>,
        out: &Output,
    ) -> Result<Vec<Container>, RolloutError> {
        self.with_plan(app, rt, release, config, |plan, log_for| {
            rollout::start_specs(plan, specs, log_for, out, &self.stop_signal())
        })
    }

    /// Stop containers that leave the serving set: SIGTERM, SIGKILL after the grace
    /// period, listed as `stopping` meanwhile.
    fn retire(self: &Arc<Self>, rt: &Arc<AppRuntime>, serving: &mut Serving, old: Vec<Container>) {
        for c in &old {
            serving.stopping.insert(
                c.id,
                Stopping {
                    name: c.name.clone(),
                    command: c.spec.command.clone(),
                    pid: c.pid(),
                    port: c.port,
                    since: Instant::now(),
                },
            );
        }
        let ids: Vec<u64> = old.iter().map(|c| c.id).collect();
        let grace = self.settings.grace_period;
        let rt = rt.clone();
        let handle = std::thread::spawn(move || {
            container::stop_all(old, grace);
            let mut serving = lock(&rt.serving);
            for id in ids {
                serving.stopping.remove(&id);
            }
        });
        lock(&self.background).push(handle);
    }

    /// A watched container's leader exited. If it is still in the serving set, it crashed.
    fn on_exit(self: &Arc<Self>, rt: &Arc<AppRuntime>, id: u64) {
        let (mut crashed, epoch) = {
            let mut serving = lock(&rt.serving);
            let Some(i) = serving.containers.iter().position(|c| c.id == id) else {
                return;
            };
            let c = serving.containers.remove(i);
            serving.reroute();
            serving.restarting.insert(
                c.name.clone(),
                Restarting {
                    spec: c.spec.clone(),
                    restarts: c.restarts,
                    since: Instant::now(),
                },
            );
            (c, serving.epoch)
        };
        let exit = container::reap(&mut crashed);
        if self.is_stopping() {
            return;
        }
        // A container that ran a while before crashing starts a new streak.
        let streak = if crashed.started.elapsed() < QUICK_CRASH {
            crashed.crash_streak + 1
        } else {
            1
        };
        let p = self.clone();
        let rt = rt.clone();
        std::thread::spawn(move || {
            p.restart_loop(
                &rt,
                crashed.spec,
                crashed.release,
                crashed.restarts,
                exit,
                streak,
                epoch,
            )
        });
    }

    /// Restart a crashed container: at once the first time, then after pauses that
    /// double, until it stays up or has crashed `crash_limit` times in a row.
    #[allow(clippy::too_many_arguments)]
    fn restart_loop(
        self: &Arc<Self>,
        rt: &Arc<AppRuntime>,
        spec: ContainerSpec,
        release: u32,
        mut restarts: u32,
        exit: Exit,
        mut streak: u32,
        epoch: u64,
    ) {
        let name = spec.name();
        let log = self.container_log(&rt.name, rt, &name);
        let say = |text: &str, details: &[String]| {
            log(Stream::Stderr, text);
            for line in details {
                log(Stream::Stderr, line);
            }
        };
        let mut ended = Ending::exited(&name, exit);
        loop {
            if streak >= self.settings.crash_limit {
                say(&format!(
                    "{}; it crashed {streak} times in a row: left crashed (`shipway restart {name}` tries again)",
                    ended.message
                ), &ended.details);
                let mut serving = lock(&rt.serving);
                if serving.epoch == epoch {
                    serving.restarting.remove(&name);
                    serving.crashed.insert(
                        name.clone(),
                        Crashed {
                            spec,
                            restarts,
                            reason: ended.reason,
                        },
                    );
                }
                return;
            }
            let pause = if streak <= 1 {
                Duration::ZERO
            } else {
                self.settings
                    .crash_backoff
                    .saturating_mul(1 << (streak - 2).min(16))
                    .min(MAX_BACKOFF)
            };
            say(
                &format!(
                    "{}: restarting it{}",
                    ended.message,
                    if pause.is_zero() {
                        String::new()
                    } else {
                        format!(" in {}", crate::ui::human_duration(pause))
                    }
                ),
                &ended.details,
            );
            if crossbeam_channel::select! {
                recv(self.stop_signal()) -> _ => true,
                recv(crossbeam_channel::after(pause)) -> _ => false,
            } {
                return;
            }
            {
                // A rollout since the crash, or a `restart` of this container, took over.
                let serving = lock(&rt.serving);
                if serving.epoch != epoch || !serving.restarting.contains_key(&name) {
                    return;
                }
            }
            restarts += 1;
            match self.start_one(rt, release, &spec) {
                Ok(mut fresh) => {
                    for c in &mut fresh {
                        c.restarts = restarts;
                        c.crash_streak = streak;
                    }
                    let mut serving = lock(&rt.serving);
                    if serving.epoch != epoch || !serving.restarting.contains_key(&name) || self.is_stopping()
                    {
                        drop(serving);
                        container::stop_all(fresh, self.settings.grace_period);
                        return;
                    }
                    self.adopt(rt, &mut serving, fresh);
                    serving.reroute();
                    return;
                }
                // The platform is stopping: nothing crashed.
                Err(RestartError::Rollout(RolloutError::Cancelled)) => return,
                Err(e) => {
                    ended = Ending::failed(&name, &e);
                    streak += 1;
                    let mut serving = lock(&rt.serving);
                    if let Some(r) = serving.restarting.get_mut(&name) {
                        r.restarts = restarts;
                    }
                }
            }
        }
    }

    /// Start the container of `spec` again, from `release` under the app's current
    /// config, and wait until it is ready. The rollout hands it back as a batch of one.
    fn start_one(
        &self,
        rt: &Arc<AppRuntime>,
        release: u32,
        spec: &ContainerSpec,
    ) -> Result<Vec<Container>, RestartError> {
        let app = self.home.app(&rt.name)?;
        let release = Release::load(&app.release(release))?;
        let config = app.load_config()?;
        let fresh = self.start_containers(&app, rt, &release, &config, vec![spec.clone()], &Output::new())?;
        Ok(fresh)
    }
}
