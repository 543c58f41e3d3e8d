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
use super::protocol::ContainerRow;
use super::server::{lock, Platform};
use crate::container::{self, Container, ContainerSpec};
use crate::probe;
use crate::process::Exit;
use crate::release::Release;
use crate::rollout::{self, Plan, RolloutError};
use crate::router::Router;
use crate::state::{AppConfig, AppDir};
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
    pub exit: Exit,
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
    /// Point the routers at the ready web (and tcp) containers.
    pub fn reroute(&self) {
        if let Some(r) = &self.router {
            r.switch(addresses(&self.containers, "web"));
        }
        if let Some(r) = &self.tcp_router {
            r.switch(addresses(&self.containers, "tcp"));
        }
    }
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
            exit: Some(c.exit.to_string()),
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
        }));
        rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.status.cmp(&b.status)));
        rows
    }
}

impl Platform {
    /// Put ready containers into the serving set, each with its watcher.
    pub(super) fn adopt(
        self: &Arc<Self>,
        rt: &Arc<AppRuntime>,
        serving: &mut Serving,
        containers: Vec<Container>,
    ) {
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
        serving.restarting.clear();
        serving.crashed.clear();
        serving.release = Some(release);
        let old = std::mem::take(&mut serving.containers);
        self.adopt(rt, &mut serving, containers);
        serving.reroute();
        let count = old.len();
        self.retire(rt, &mut serving, old);
        count
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
        let release_dir = app.release(release.number);
        let plan = Plan {
            settings: &self.settings,
            release,
            release_dir: &release_dir,
            config_vars: &config.config_vars,
            formation: &config.formation,
        };
        let log_for = |c: &str| self.container_log(&app.name, rt, c);
        let containers = rollout::start(&plan, &log_for, out, &self.stop_signal())?;
        self.switch_release(rt, release.number, containers);
        Ok(())
    }

    /// Stop containers that leave the serving set: SIGTERM, SIGKILL after the grace
    /// period, listed as `stopping` meanwhile.
    pub(super) fn retire(self: &Arc<Self>, rt: &Arc<AppRuntime>, serving: &mut Serving, old: Vec<Container>) {
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
        mut exit: Exit,
        mut streak: u32,
        epoch: u64,
    ) {
        let name = spec.name();
        let log = self.container_log(&rt.name, rt, &name);
        loop {
            if streak >= self.settings.crash_limit {
                log(crate::process::Stream::Stderr, &format!(
                    "{name} {exit}; it crashed {streak} times in a row: left crashed (`shipway restart {name}` tries again)"
                ));
                let mut serving = lock(&rt.serving);
                if serving.epoch == epoch {
                    serving.restarting.remove(&name);
                    serving
                        .crashed
                        .insert(name.clone(), Crashed { spec, restarts, exit });
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
            log(
                crate::process::Stream::Stderr,
                &format!(
                    "{name} {exit}: restarting it{}",
                    if pause.is_zero() {
                        String::new()
                    } else {
                        format!(" in {}", crate::ui::human_duration(pause))
                    }
                ),
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
                Ok(mut c) => {
                    c.restarts = restarts;
                    c.crash_streak = streak;
                    let mut serving = lock(&rt.serving);
                    if serving.epoch != epoch || !serving.restarting.contains_key(&name) || self.is_stopping()
                    {
                        drop(serving);
                        container::stop_all(vec![c], self.settings.grace_period);
                        return;
                    }
                    self.adopt(rt, &mut serving, vec![c]);
                    serving.reroute();
                    return;
                }
                Err(e) => {
                    exit = e;
                    streak += 1;
                    let mut serving = lock(&rt.serving);
                    if let Some(r) = serving.restarting.get_mut(&name) {
                        r.restarts = restarts;
                    }
                }
            }
        }
    }

    /// Start one container of `release` and wait until it is ready.
    fn start_one(&self, rt: &Arc<AppRuntime>, release: u32, spec: &ContainerSpec) -> Result<Container, Exit> {
        let failed = Exit(std::os::unix::process::ExitStatusExt::from_raw(255 << 8));
        let Ok(app) = self.home.app(&rt.name) else {
            return Err(failed);
        };
        let release_dir = app.release(release);
        let Ok(rel) = Release::load(&release_dir) else {
            return Err(failed);
        };
        let Ok(config) = app.load_config() else {
            return Err(failed);
        };
        let log = self.container_log(&rt.name, rt, &spec.name());
        let c = container::start(
            &self.settings,
            &rel,
            &release_dir,
            &config.config_vars,
            spec.clone(),
            log,
        )
        .map_err(|_| failed)?;
        let mut batch = vec![c];
        let note = |_: &str| {};
        match probe::wait_ready(
            &mut batch,
            self.settings.boot_timeout,
            self.settings.loopback_bind,
            &self.stop_signal(),
            &note,
        ) {
            Ok(()) => batch.pop().ok_or(failed),
            Err(probe::ProbeFailure::Crashed { exit, .. }) => Err(exit),
            Err(_) => {
                container::stop_all(batch, self.settings.grace_period);
                Err(failed)
            }
        }
    }
}
