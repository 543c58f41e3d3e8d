//! The long work of the platform, each piece on a worker thread of its own: a
//! deployment (its steps in `deploy.rs`), and the everyday verbs on a running app (scale, restart, rollback,
//! destroy), and starting the current releases again when the platform starts. The
//! supervisor runs one job per app at a time; a job changes what serves the app only by
//! asking the supervisor ([`Handle`]), which owns it.
//!
//! Scale, restart and rollback are rollouts of a release that is already built (no
//! build, no hook), with new containers ready before old ones are stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crossbeam_channel::Receiver;

use super::applog::AppLog;
use super::caller::Caller;
use super::cancel::Cancel;
use super::context::Context;
use super::events::Event;
use super::life::RestartError;
use super::message::{Handle, Job, Message};
use super::opened::Opened;
use super::protocol::Amount;
use super::routing::{Bound, Ports};
use crate::config_vars;
use crate::container::{self, Container, ContainerSpec};
use crate::deployment::{Deployment, Status};
use crate::error::Error;
use crate::platform_numbers::{Size, MAX_PER_TYPE};
use crate::process::LineSink;
use crate::release::Release;
use crate::rollout::{self, Plan, RolloutError};
use crate::state::{AppConfig, AppDir};
use crate::ui::Output;

impl Job {
    /// What is checked or stored before the job waits for its turn: a deploy creates the
    /// app and stores its config vars; the others need the app to exist. The app's folder,
    /// its privacy checked here, once per job: the app is opened with it
    /// (`Opened::with_dir`). With it, the events to record in the app's log once it is
    /// open: `admit_and_send` opens it once, for them and for the job.
    pub fn admit(&self, ctx: &Context, name: &str) -> Result<(AppDir, Vec<Event>), Error> {
        let app = ctx.home.app(name)?;
        let mut said = Vec::new();
        match self {
            Job::Deploy(args) => {
                app.create()?;
                if !args.env.is_empty() {
                    for (k, v) in &args.env {
                        config_vars::validate(k, v)?;
                    }
                    let env = args.env.clone();
                    said = app.update_config(|c| {
                        // Only what changes: the same `--env` at every deploy is no event.
                        let changed: Vec<String> = env
                            .iter()
                            .filter(|(k, v)| c.config_vars.get(*k) != Some(*v))
                            .map(|(k, _)| k.clone())
                            .collect();
                        let events = Event::variables_set(&changed, |n| c.config_vars.contains_key(n));
                        c.config_vars.extend(env);
                        events
                    })?;
                }
            }
            Job::Restore(_) | Job::RestoreAddons => {}
            Job::RunDetached { env, size, .. } => {
                exists(&app)?;
                if let Some(size) = size {
                    Size::named(size).map_err(|e| fail(e.to_string()))?;
                }
                for (k, v) in env {
                    config_vars::validate(k, v)?;
                }
            }
            _ => exists(&app)?,
        }
        Ok((app, said))
    }
}

/// `app`, opened before, still exists (its app.toml; one stat, its privacy is not
/// checked again): a job for an app that is gone fails as `Home::existing_app` says it.
pub(super) fn exists(app: &AppDir) -> Result<(), Error> {
    if app.exists() {
        Ok(())
    } else {
        Err(crate::state::StateError::UnknownApp(app.name.clone()).into())
    }
}

/// What is checked or stored before a job waits for its turn (`Job::admit`: a deploy
/// creates the app and stores its config vars), and the app opened, done here, on the
/// client's thread or a worker, never on the supervisor's; then the job goes to the
/// supervisor. Once the platform stops, nothing is stored: the supervisor refuses the job.
pub fn admit_and_send(ctx: &Context, supervisor: &Handle, app: String, job: Job, caller: Option<Caller>) {
    let stopping = ctx.stopping.try_recv() == Err(crossbeam_channel::TryRecvError::Disconnected);
    let admitted = if stopping {
        ctx.home
            .app(&app)
            .map(|dir| (dir, Vec::new()))
            .map_err(Error::from)
    } else {
        job.admit(ctx, &app)
    };
    let opened = admitted.and_then(|(dir, said)| {
        let opened = Opened::with_dir(dir)?;
        // In the app's log and timeline as `env-set` puts them.
        for event in said {
            opened.log.event(event);
        }
        Ok(opened)
    });
    match opened {
        Ok(opened) => {
            supervisor.send(Message::Job {
                app,
                job,
                caller,
                opened,
            });
        }
        Err(e) => {
            if let Some(c) = caller {
                c.finish(Err(e));
            }
        }
    }
}

/// Start the crashed container of `spec` again, from `release` under the app's current
/// config, and wait until it is ready (or the platform stops). `dir` is the app's folder
/// the supervisor opened.
pub fn start_again(
    ctx: &Context,
    dir: &AppDir,
    log: &AppLog,
    release: u32,
    spec: ContainerSpec,
) -> Result<Container, RestartError> {
    let release = Release::load(&dir.release(release))?;
    let config = dir.load_config()?;
    let release_dir = dir.release(release.number);
    let plan = plan(ctx, &release, &release_dir, &config);
    let log_for = |c: &str| ctx.container_log(log, &dir.name, c);
    let mut fresh = rollout::start_specs(&plan, vec![spec], &log_for, &Output::new(), &ctx.stopping)?;
    fresh.pop().ok_or(RestartError::Rollout(RolloutError::Cancelled))
}

fn plan<'a>(
    ctx: &'a Context,
    release: &'a Release,
    release_dir: &'a std::path::Path,
    config: &'a AppConfig,
) -> Plan<'a> {
    Plan {
        settings: &ctx.settings,
        release,
        release_dir,
        config,
        clock: &ctx.clock,
    }
}

pub(super) fn fail(message: String) -> Error {
    Error::Platform { message }
}

/// At start: deployments a dead platform left unfinished become `aborted`, and every
/// app's current release is started again.
pub fn restore(ctx: &Context, supervisor: &Handle) {
    for name in ctx.home.apps() {
        let Ok(app) = ctx.home.app(&name) else { continue };
        // Only an app with addons costs a look at their folder's records.
        let addons = crate::addon::folder(&app).exists();
        for mut d in Deployment::list(&app) {
            if d.status().is_some_and(|s| !s.is_final()) {
                let _ = d.set_status(Status::Aborted, &app);
            }
        }
        let current = app.current();
        let jobs: Vec<Job> = addons
            .then_some(Job::RestoreAddons)
            .into_iter()
            .chain(current.map(Job::Restore))
            .collect();
        send_restore(ctx, supervisor, &app, jobs);
    }
}

/// Hand the supervisor the jobs that start the addons or release of `app` again, the
/// app opened here once for all of them, with its folder as its caller checked it (the
/// platform's start) or moved it (a rename); one that cannot be opened is said in the
/// platform's log.
fn send_restore(ctx: &Context, supervisor: &Handle, app: &AppDir, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    match Opened::with_dir(app.clone()) {
        Ok(opened) => {
            for job in jobs {
                supervisor.send(Message::Job {
                    app: app.name.clone(),
                    job,
                    caller: None,
                    opened: opened.clone(),
                });
            }
        }
        Err(e) => ctx.say(&format!("{} cannot be started again: {e}", app.name)),
    }
}

/// One job of one app, on its worker thread.
pub struct Worker {
    pub(super) ctx: Arc<Context>,
    pub(super) supervisor: Handle,
    /// The app's folder as the supervisor opened it, its privacy checked then: the job
    /// does not check it again. Jobs of one app run one at a time and only a job moves or
    /// removes its folder (rename, destroy), so it is the app's folder for the whole job.
    pub(super) dir: AppDir,
    pub(super) log: AppLog,
}

impl Worker {
    /// A worker for the app opened as `dir`, writing in its `log`.
    pub fn new(ctx: Arc<Context>, supervisor: Handle, dir: AppDir, log: AppLog) -> Worker {
        Worker {
            ctx,
            supervisor,
            dir,
            log,
        }
    }

    /// The app's folder, which must still exist: one stat of its app.toml, not a privacy
    /// check (see `dir`).
    pub(super) fn existing(&self) -> Result<&AppDir, Error> {
        exists(&self.dir)?;
        Ok(&self.dir)
    }

    /// Do the job; its output and its end go to the caller, if any.
    /// `called_off` disconnects when `destroy` calls a deployment off.
    pub fn run(self, job: Job, caller: Option<Caller>, called_off: Receiver<()>) {
        let out = caller.as_ref().map(|c| c.output().clone()).unwrap_or_default();
        let result = match job {
            Job::Deploy(args) => {
                let cancel = Cancel::watch(caller.as_ref(), &self.ctx.stopping, called_off);
                self.deploy(args, &out, &cancel)
            }
            Job::Scale(counts, sizes) => self.scale(counts, sizes, &out).map(|_| Status::Success),
            Job::Restart(target) => self.restart(target.as_deref(), &out).map(|_| Status::Success),
            Job::Rollback(id) => self.rollback(id.as_deref(), &out),
            Job::Destroy => self.destroy().map(|_| Status::Success),
            Job::Rename(new) => self.rename(&new, &out).map(|_| Status::Success),
            Job::AddonsAdd { addon, plan } => self.addons_add(&addon, plan, &out).map(|_| Status::Success),
            Job::AddonsRemove(id) => self.addons_remove(&id, &out).map(|_| Status::Success),
            Job::RestoreAddons => {
                self.restore_addons();
                return;
            }
            Job::RunDetached { command, env, size } => self
                .run_detached(command, env, size, &out)
                .map(|_| Status::Success),
            Job::Restore(number) => {
                match self.restore(number) {
                    Ok(url) => self
                        .ctx
                        .say(&format!("{}: release {number} serves at {url}", self.dir.name)),
                    Err(e) => self.ctx.say(&format!(
                        "{}: cannot start release {number} again: {e}",
                        self.dir.name
                    )),
                }
                return;
            }
        };
        if let Some(c) = caller {
            c.finish(result);
        }
    }

    /// Bind the app's routers if not bound yet, on the ports app.toml keeps, and keep
    /// there the ports they took; their URLs.
    pub(super) fn routers(&self, port: Option<u16>, wants_tcp: bool) -> Result<Bound, Error> {
        let app = &self.dir;
        let config = app.load_config()?;
        let kept = Ports {
            web: config.router_port,
            tcp: config.tcp_port,
        };
        let bound = self
            .supervisor
            .call(|reply| Message::Routers {
                app: self.dir.name.clone(),
                port,
                wants_tcp,
                kept,
                router_logs: config.router_logs,
                reply,
            })
            .and_then(|r| r)
            .map_err(|e| {
                // Who holds a port is read from /proc here, on the job's thread: shipway
                // itself, from another home, is named rather than "another program".
                let wanted = kept.web.or(port).filter(|p| *p != 0);
                match wanted.and_then(crate::probe::shipway_holder) {
                    Some(holder) => Error::Platform {
                        message: format!(
                            "cannot listen on 127.0.0.1:{} for the app's router: {holder}",
                            wanted.unwrap_or_default()
                        ),
                    },
                    _ => e,
                }
            })?;
        let taken = Ports {
            web: bound.ports.web.or(kept.web),
            tcp: bound.ports.tcp.or(kept.tcp),
        };
        if taken != kept {
            app.update_config(|c| {
                c.router_port = taken.web;
                c.tcp_port = taken.tcp;
            })?;
        }
        Ok(bound)
    }

    /// The switch: `containers` of `release` serve the app; returns how many old
    /// containers are being stopped.
    pub(super) fn switch(&self, release: u32, containers: Vec<Container>) -> Result<usize, Error> {
        self.supervisor.call(|reply| Message::Switch {
            app: self.dir.name.clone(),
            release,
            containers,
            reply,
        })
    }

    /// The app's containers of its formation (one-offs are not: restart and scale
    /// leave them be).
    pub(super) fn present(&self) -> Result<Vec<ContainerSpec>, Error> {
        Ok(self
            .present_all()?
            .into_iter()
            .filter(|s| !s.is_one_off())
            .collect())
    }

    fn present_all(&self) -> Result<Vec<ContainerSpec>, Error> {
        self.supervisor.call(|reply| Message::Present {
            app: self.dir.name.clone(),
            reply,
        })
    }

    fn replace(
        &self,
        fresh: Vec<Container>,
        leaving: impl Fn(&ContainerSpec) -> bool + Send + 'static,
    ) -> Result<Vec<String>, Error> {
        self.supervisor.call(|reply| Message::Replace {
            app: self.dir.name.clone(),
            fresh,
            leaving: Box::new(leaving),
            reply,
        })
    }

    /// Hand the rollout plan of `release` under `config`, and each container's log sink,
    /// to `start`: the one place they are made for starting a release's containers.
    pub(super) fn with_plan<T>(
        &self,
        app: &AppDir,
        release: &Release,
        config: &AppConfig,
        start: impl FnOnce(&Plan<'_>, &dyn Fn(&str) -> LineSink) -> T,
    ) -> T {
        let release_dir = app.release(release.number);
        let plan = plan(&self.ctx, release, &release_dir, config);
        let log_for = |c: &str| self.ctx.container_log(&self.log, &self.dir.name, c);
        start(&plan, &log_for)
    }

    /// Start `specs` of `release` under `config` and wait until they are ready (every
    /// one up, the routed ones accepting connections), unless the platform stops.
    fn start_containers(
        &self,
        app: &AppDir,
        release: &Release,
        config: &AppConfig,
        specs: Vec<ContainerSpec>,
        out: &Output,
    ) -> Result<Vec<Container>, RolloutError> {
        self.with_plan(app, release, config, |plan, log_for| {
            rollout::start_specs(plan, specs, log_for, out, &self.ctx.stopping)
        })
    }

    /// A platform event: in the app's record (`shipway timeline`) and log (`shipway logs`).
    pub(super) fn event(&self, event: Event) {
        self.ctx.event(&self.log, &self.dir.name, event);
    }

    /// Start the current release again; the URL it serves at.
    fn restore(&self, number: u32) -> Result<String, Error> {
        let app = &self.dir;
        let release = Release::load(&app.release(number))?;
        let config = app.load_config()?;
        let url = self.routers(None, release.process_types.contains_key("tcp"))?.url;
        let specs = rollout::specs(&release, &config.formation);
        let containers = self
            .start_containers(app, &release, &config, specs, &Output::new())
            .map_err(|e| fail(e.to_string()))?;
        self.switch(release.number, containers)?;
        Ok(url)
    }

    fn current_release(&self, app: &AppDir) -> Result<Option<Release>, Error> {
        match app.current() {
            Some(n) => Ok(Some(Release::load(&app.release(n))?)),
            None => Ok(None),
        }
    }

    /// Start `specs` of the app's current `release`: the routed ones first, until they
    /// are ready; then the others, without waiting for them (README: a worker is not
    /// waited for, the crash policy watches it from the start, as after a deploy).
    /// `config` is the one they start with, which may not be stored yet.
    fn start_ready(
        &self,
        app: &AppDir,
        release: &Release,
        config: &AppConfig,
        specs: Vec<ContainerSpec>,
        out: &Output,
    ) -> Result<Vec<Container>, Error> {
        let (routed, others): (Vec<_>, Vec<_>) = specs
            .into_iter()
            .partition(|s| crate::container::is_routed(&s.process_type));
        let mut ready = self
            .start_containers(app, release, config, routed, out)
            .map_err(|e| {
                out.error(&e.to_string());
                for line in e.details() {
                    out.error(&line);
                }
                fail("nothing was changed".into())
            })?;
        match self.with_plan(app, release, config, |plan, log_for| {
            rollout::start_unprobed(plan, others, log_for)
        }) {
            Ok(started) => ready.extend(started),
            Err(e) => {
                rollout::discard(ready, self.ctx.settings.grace_period);
                return Err(fail(format!("{e}: nothing was changed")));
            }
        }
        Ok(ready)
    }

    /// `scale web:2 worker:+1`: start what is missing, stop what is beyond the new
    /// amounts, then show the formation. Relative amounts apply to the formation as this
    /// job finds it: jobs of an app run one at a time, so none is lost.
    fn scale(
        &self,
        changes: BTreeMap<String, Amount>,
        sizes: BTreeMap<String, String>,
        out: &Output,
    ) -> Result<(), Error> {
        let app = self.existing()?;
        let config = app.load_config()?;
        let formation = config.formation.clone();
        for size in sizes.values() {
            Size::named(size).map_err(|e| fail(format!("{e}; nothing was changed")))?;
        }
        // A type whose size changes gets new containers of the new size, as on the
        // platform: all of them are started again.
        let resized: BTreeSet<String> = sizes
            .iter()
            .filter(|(t, s)| config.size(t).name != s.as_str())
            .map(|(t, _)| t.clone())
            .collect();
        let mut counts = BTreeMap::new();
        for (t, amount) in &changes {
            let current = rollout::amount(t, &formation);
            let n = amount.apply(current).ok_or_else(|| {
                fail(format!(
                    "{t} has {current} container{} in the formation: it cannot lose more; nothing was changed",
                    if current == 1 { "" } else { "s" }
                ))
            })?;
            counts.insert(t.clone(), n);
        }
        for (t, n) in &counts {
            if *n > MAX_PER_TYPE {
                return Err(fail(format!(
                    "{t}: {n}: the platform allows {MAX_PER_TYPE} containers per type at most; nothing was changed"
                )));
            }
            if t == "postdeploy" {
                return Err(fail(
                    "postdeploy is the deployment hook: it is never scaled".into(),
                ));
            }
        }
        let current = self.current_release(app)?;
        if let Some(release) = &current {
            let unknown: Vec<&String> = counts
                .keys()
                .filter(|t| !release.process_types.contains_key(*t))
                .collect();
            if !unknown.is_empty() {
                let known: Vec<&String> = release
                    .process_types
                    .keys()
                    .filter(|t| *t != "postdeploy")
                    .collect();
                return Err(fail(format!(
                    "release {} has no process type {} (it has: {})",
                    release.number,
                    unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let Some(release) = current else {
            let saved = app.update_config(|c| {
                c.formation.extend(counts.clone());
                c.sizes.extend(sizes.clone());
                c.clone()
            })?;
            self.event(Event::Scale {
                containers: counts.clone(),
                release: None,
            });
            out.step("No release is deployed yet: the formation is saved for the next deploy");
            for (t, n) in &saved.formation {
                out.detail(&format!("{t}: {n} - {}", saved.size(t).name));
            }
            return Ok(());
        };
        let present: BTreeSet<String> = self.present()?.iter().map(ContainerSpec::name).collect();
        let mut missing = Vec::new();
        for (t, n) in &counts {
            for index in 1..=*n {
                let spec = ContainerSpec {
                    process_type: t.clone(),
                    index,
                    command: release.process_types[t].clone(),
                };
                if !present.contains(&spec.name()) || resized.contains(t) {
                    missing.push(spec);
                }
            }
        }
        let started = if missing.is_empty() {
            Vec::new()
        } else {
            out.step(&format!(
                "Starting {}",
                missing.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
            ));
            // Started with the new sizes; they are stored below only once the
            // containers are up, so a failed start leaves app.toml as it was.
            let mut resized_config = config.clone();
            resized_config.sizes.extend(sizes.clone());
            self.start_ready(app, &release, &resized_config, missing, out)?
        };
        let config_now = app.update_config(|c| {
            c.formation.extend(counts.clone());
            c.sizes.extend(sizes.clone());
            c.clone()
        })?;
        let formation_now = config_now.formation.clone();
        self.event(Event::Scale {
            containers: counts.clone(),
            release: Some(release.number),
        });
        let web_off = counts.get("web") == Some(&0);
        let stopped = self.replace(started, move |s| {
            resized.contains(&s.process_type) || counts.get(&s.process_type).is_some_and(|n| s.index > *n)
        })?;
        if !stopped.is_empty() {
            out.step(&format!("Stopping {}", stopped.join(", ")));
        }
        if web_off {
            out.detail("web is scaled to 0: the router answers 503 until it is scaled up again");
        }
        out.step(&format!("{} is scaled to:", self.dir.name));
        for (t, n) in rollout::amounts(&release, &formation_now) {
            out.detail(&format!("{t}: {n} - {}", config_now.size(&t).name));
        }
        Ok(())
    }

    /// `run --detached`: a one-off container of the current release, named `one-off-N`
    /// (the lowest N free), its output in the app's log; the supervisor owns it until it
    /// exits, and it is never restarted.
    fn run_detached(
        &self,
        command: String,
        env: BTreeMap<String, String>,
        size: Option<String>,
        out: &Output,
    ) -> Result<(), Error> {
        let app = self.existing()?;
        let Some(release) = self.current_release(app)? else {
            return Err(fail(format!(
                "{} has no release deployed yet: deploy it first",
                self.dir.name
            )));
        };
        let mut vars = app.load_config()?.config_vars;
        vars.extend(env);
        let taken: BTreeSet<String> = self.present_all()?.iter().map(ContainerSpec::name).collect();
        let spec = (1..)
            .map(|index| ContainerSpec {
                process_type: container::ONE_OFF.into(),
                index,
                command: command.clone(),
            })
            .find(|s| !taken.contains(&s.name()))
            .ok_or_else(|| fail("no one-off name is free".into()))?;
        let name = spec.name();
        let log = self.ctx.container_log(&self.log, &self.dir.name, &name);
        let started = container::start(
            &self.ctx.settings,
            &release,
            &app.release(release.number),
            &vars,
            spec,
            size.as_deref()
                .and_then(|s| Size::named(s).ok())
                .unwrap_or(crate::platform_numbers::DEFAULT_SIZE),
            log,
        )
        .map_err(|e| fail(e.to_string()))?;
        self.supervisor.call(|reply| Message::OneOff {
            app: self.dir.name.clone(),
            container: started,
            reply,
        })?;
        out.step(&format!(
            "Starting one-off {name} for app {}: {command}",
            self.dir.name
        ));
        out.detail(&format!(
            "its output goes to the app's logs: `shipway -a {0} logs --filter {name}` (and `shipway -a {0} ps` while it runs)",
            self.dir.name
        ));
        Ok(())
    }

    /// `restart [TYPE|CONTAINER]`: new containers ready first, then the old ones stopped.
    pub(super) fn restart(&self, target: Option<&str>, out: &Output) -> Result<(), Error> {
        let name = self.dir.name.as_str();
        let app = self.existing()?;
        let Some(release) = self.current_release(app)? else {
            return Err(fail(format!(
                "{name} has no release deployed yet: deploy it first"
            )));
        };
        let specs = self.present()?;
        let chosen: Vec<ContainerSpec> = specs
            .iter()
            .filter(|s| target.is_none_or(|t| s.process_type == t || s.name() == t))
            .cloned()
            .collect();
        if chosen.is_empty() {
            let names: BTreeSet<String> = specs
                .iter()
                .flat_map(|s| [s.process_type.clone(), s.name()])
                .collect();
            return Err(fail(match target {
                Some(t) => format!(
                    "{name} has no container or type {t:?} running (it has: {})",
                    names.into_iter().collect::<Vec<_>>().join(", ")
                ),
                None => format!("{name} has no container to restart: scale a process type up first"),
            }));
        }
        let names: BTreeSet<String> = chosen.iter().map(|s| s.name()).collect();
        out.step(&format!(
            "Restarting {}",
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        self.event(Event::Restart {
            scope: names.iter().cloned().collect(),
            release: release.number,
        });
        let config = app.load_config()?;
        let fresh = self.start_ready(app, &release, &config, chosen, out)?;
        self.replace(fresh, move |s| names.contains(&s.name()))?;
        Ok(())
    }

    /// `rollback [ID]`: roll out the release of an earlier successful deployment again,
    /// from its kept slug, without building.
    fn rollback(&self, id: Option<&str>, out: &Output) -> Result<Status, Error> {
        let name = self.dir.name.as_str();
        let app = self.existing()?;
        let current = app.current();
        let history = Deployment::list(app);
        let target = match id {
            Some(id) => history
                .iter()
                .find(|d| d.id == id || d.id.starts_with(id))
                .ok_or_else(|| {
                    fail(format!(
                        "{name} has no deployment {id}: `shipway deployments -a {name}` lists them"
                    ))
                })?,
            None => history
                .iter()
                .rev()
                .find(|d| d.status() == Some(Status::Success) && d.release.is_some() && d.release != current)
                .ok_or_else(|| {
                    fail(format!(
                        "{name} has no earlier successful deployment to roll back to"
                    ))
                })?,
        };
        let Some(number) = target
            .release
            .filter(|_| target.status() == Some(Status::Success))
        else {
            return Err(fail(format!(
                "deployment {} did not succeed: only a successful one can be rolled back to",
                target.id
            )));
        };
        if !app.release(number).join("release.toml").exists() {
            return Err(fail(format!(
                "release {number} of deployment {} was pruned (releases_kept = {})",
                target.id, self.ctx.settings.releases_kept
            )));
        }
        let release = Release::load(&app.release(number))?;
        let mut record = Deployment::new(
            name,
            &format!("rollback to release {number} (deployment {})", target.id),
            None,
        );
        record.record_release(&release);
        record.set_status(Status::Starting, app)?;
        out.step(&format!(
            "Rolling back {name} to release {number} (deployment {}), without rebuilding",
            target.id
        ));
        if release.process_types.contains_key("postdeploy") {
            out.detail("the postdeploy hook is not run again: a rollback ships no new code");
        }
        let config = app.load_config()?;
        let specs = rollout::specs(&release, &config.formation);
        match self.start_containers(app, &release, &config, specs, out) {
            Ok(containers) => {
                self.switch(number, containers)?;
                app.set_current(number)?;
                record.set_status(Status::Success, app)?;
                self.event(Event::Rollback {
                    deployment_id: record.id.clone(),
                    status: Status::Success.to_string(),
                    release: number,
                    rollback_to: target.id.clone(),
                });
                Ok(Status::Success)
            }
            Err(e) => {
                out.error(&e.to_string());
                for line in e.details() {
                    out.error(&line);
                }
                record.set_status(e.status(), app)?;
                self.event(Event::Rollback {
                    deployment_id: record.id.clone(),
                    status: e.status().to_string(),
                    release: number,
                    rollback_to: target.id.clone(),
                });
                Ok(e.status())
            }
        }
    }

    /// `destroy`: stop the app's routers and containers, then remove its state.
    /// `rename`: the app's containers and addon servers stop, its folder moves to the new
    /// name (`app_rename`), and its addons and current release start again under it, on
    /// the router ports it keeps. A rename that fails starts it again under its old name.
    fn rename(&self, new: &str, out: &Output) -> Result<(), Error> {
        let app = self.existing()?;
        crate::app_rename::check_new_name(&self.ctx.home, new)?;
        // A `shipway build` of the app in another process holds its lock.
        let Some(_lock) = app.try_lock()? else {
            return Err(Error::Platform {
                message: format!(
                    "a build of {} runs: rename it once the build is over",
                    self.dir.name
                ),
            });
        };
        let containers = self.supervisor.call(|reply| Message::Dismantle {
            app: self.dir.name.clone(),
            reply,
        })?;
        if !containers.is_empty() {
            out.step(&format!("Stopping the containers of {}", self.dir.name));
        }
        crate::container::stop_all(containers, self.ctx.settings.grace_period);
        let servers = self.supervisor.call(|reply| Message::AddonTake {
            app: self.dir.name.clone(),
            id: None,
            reply,
        })?;
        super::life::stop_servers(servers);
        let exe =
            std::env::current_exe().map_err(|source| Error::io("find", "the shipway executable", source))?;
        let home_root = std::path::absolute(&self.ctx.home.root)
            .map_err(|source| Error::io("resolve", self.ctx.home.root.clone(), source))?;
        let (started, result) = match crate::app_rename::rename(&self.ctx.home, app, new, &exe, &home_root) {
            Ok(moved) => (moved, Ok(())),
            Err(e) => (app.clone(), Err(e)),
        };
        // The folder this job was handed, moved or not: its privacy was checked when the
        // app was opened, and the move changed nothing in it.
        let mut jobs = Vec::new();
        if crate::addon::folder(&started).exists() {
            jobs.push(Job::RestoreAddons);
        }
        if let Some(number) = started.current() {
            out.step(&format!("Starting release {number} of {} again", started.name));
            jobs.push(Job::Restore(number));
        }
        send_restore(&self.ctx, &self.supervisor, &started, jobs);
        result
    }

    fn destroy(&self) -> Result<(), Error> {
        let app = self.existing()?;
        let containers = self.supervisor.call(|reply| Message::Dismantle {
            app: self.dir.name.clone(),
            reply,
        })?;
        crate::container::stop_all(containers, self.ctx.settings.grace_period);
        // Then the addon servers, whose data goes with the app's folder.
        let servers = self.supervisor.call(|reply| Message::AddonTake {
            app: self.dir.name.clone(),
            id: None,
            reply,
        })?;
        super::life::stop_servers(servers);
        // As root, each addon has an OS user of its own, which goes with the app.
        if let Err(e) = crate::addon::remove_users(app) {
            self.ctx.say(&format!("{}: {e}", self.dir.name));
        }
        std::fs::remove_dir_all(&app.root).map_err(|source| Error::io("remove", app.root.clone(), source))
    }
}

#[cfg(test)]
mod tests {
    //! What a job checks and stores before it waits for its turn (`Job::admit`), and the
    //! app's folder a job is handed.

    use super::*;
    use crate::pipeline::Input;
    use crate::settings::Settings;

    fn ctx() -> (tempfile::TempDir, Context) {
        let home = tempfile::tempdir().unwrap();
        let (ctx, _) = Context::for_tests(Settings::defaults(home.path().to_path_buf()));
        (home, ctx)
    }

    fn deploy(env: &[(&str, &str)]) -> Job {
        Job::Deploy(super::super::protocol::DeployArgs {
            input: Input {
                path: "/nonexistent/app".into(),
                git_ref: None,
            },
            port: None,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            source: None,
        })
    }

    #[test]
    fn a_deploy_creates_its_app_and_stores_its_config_vars_before_its_turn() {
        let (_home, ctx) = ctx();
        deploy(&[("GREETING", "hi")]).admit(&ctx, "fresh").unwrap();
        let app = ctx.home.existing_app("fresh").expect("created");
        assert_eq!(
            app.load_config()
                .unwrap()
                .config_vars
                .get("GREETING")
                .map(String::as_str),
            Some("hi")
        );
        // A second deploy adds to them.
        deploy(&[("OTHER", "1")]).admit(&ctx, "fresh").unwrap();
        let vars = app.load_config().unwrap().config_vars;
        assert_eq!((vars.len(), vars.contains_key("GREETING")), (2, true));
    }

    #[test]
    fn a_deploy_s_new_variables_are_said_in_the_log_it_is_sent_with() {
        let home = tempfile::tempdir().unwrap();
        // Held: a platform that is serving admits the job.
        let (ctx, _serving) = Context::for_tests(Settings::defaults(home.path().to_path_buf()));
        let (tx, rx) = crossbeam_channel::unbounded();
        admit_and_send(
            &ctx,
            &Handle(tx),
            "web".into(),
            deploy(&[("GREETING", "hi")]),
            None,
        );
        let Ok(Message::Job { opened, .. }) = rx.try_recv() else {
            panic!("the deployment was sent to the supervisor");
        };
        let log = std::fs::read_to_string(opened.dir.root.join("app.log")).unwrap();
        assert!(log.contains("GREETING"), "{log}");
    }

    #[test]
    fn a_bad_config_var_name_is_refused_and_not_stored() {
        let (_home, ctx) = ctx();
        let err = deploy(&[("OK", "1"), ("NOT-A-NAME", "x")])
            .admit(&ctx, "web")
            .unwrap_err()
            .to_string();
        assert!(err.contains("NOT-A-NAME"), "{err}");
        let app = ctx.home.existing_app("web").unwrap();
        assert!(
            app.load_config().unwrap().config_vars.is_empty(),
            "nothing stored"
        );
        let run = Job::RunDetached {
            command: "true".into(),
            env: [("_HIDDEN".to_string(), "x".to_string())].into(),
            size: None,
        };
        assert!(run
            .admit(&ctx, "web")
            .unwrap_err()
            .to_string()
            .contains("_HIDDEN"));
    }

    #[test]
    fn every_job_but_a_deploy_or_a_restore_needs_the_app() {
        let (_home, ctx) = ctx();
        let jobs = [
            Job::Scale(BTreeMap::new(), BTreeMap::new()),
            Job::Restart(None),
            Job::Rollback(None),
            Job::Destroy,
            Job::AddonsRemove("x".into()),
        ];
        for job in jobs {
            let err = job.admit(&ctx, "ghost").unwrap_err().to_string();
            assert!(err.contains("ghost"), "{err}");
        }
        assert!(!ctx.home.app("ghost").unwrap().exists(), "no job created it");
        // The platform's start hands over what it found on disk: nothing to check again.
        Job::Restore(1).admit(&ctx, "ghost").unwrap();
        // An app name is checked before any folder is made.
        assert!(deploy(&[]).admit(&ctx, "../up").is_err());
    }

    /// A worker of the app opened as `dir`, whose calls to the supervisor go nowhere.
    fn worker(ctx: Context, dir: AppDir) -> Worker {
        let opened = Opened::with_dir(dir).unwrap();
        let (tx, _) = crossbeam_channel::unbounded();
        Worker::new(Arc::new(ctx), Handle(tx), opened.dir, opened.log)
    }

    fn make_group_writable(dir: &AppDir) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir.root, std::fs::Permissions::from_mode(0o770)).unwrap();
    }

    #[test]
    fn a_job_is_admitted_with_the_app_s_folder_its_privacy_checked() {
        let (_home, ctx) = ctx();
        let (dir, _) = deploy(&[]).admit(&ctx, "fresh").unwrap();
        assert_eq!(dir.name, "fresh");
        assert!(dir.exists(), "the deploy created it");
        assert_eq!(Job::Restore(1).admit(&ctx, "fresh").unwrap().0.root, dir.root);
        // Another user could write in it: the next job is refused when it is admitted.
        make_group_writable(&dir);
        let err = Job::Restart(None).admit(&ctx, "fresh").unwrap_err().to_string();
        assert!(err.contains("writable by group or others"), "{err}");
    }

    #[test]
    fn a_job_works_in_the_folder_it_was_handed_without_checking_its_privacy_again() {
        let (_home, ctx) = ctx();
        let (dir, _) = deploy(&[]).admit(&ctx, "web").unwrap();
        // Changed after the app was opened: seen when it is opened next (the platform's
        // next start), not by each of its jobs.
        make_group_writable(&dir);
        let worker = worker(ctx, dir.clone());
        let counts = BTreeMap::from([("web".to_string(), Amount::To(2))]);
        worker.scale(counts, BTreeMap::new(), &Output::new()).unwrap();
        assert_eq!(dir.load_config().unwrap().formation.get("web"), Some(&2));
    }

    #[test]
    fn a_job_of_an_app_whose_folder_is_gone_fails_as_an_unknown_app() {
        let (_home, ctx) = ctx();
        let (dir, _) = deploy(&[]).admit(&ctx, "web").unwrap();
        let worker = worker(ctx, dir.clone());
        std::fs::remove_dir_all(&dir.root).unwrap();
        let counts = BTreeMap::from([("web".to_string(), Amount::To(2))]);
        let err = worker
            .scale(counts, BTreeMap::new(), &Output::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("app \"web\" does not exist"), "{err}");
        assert!(!dir.root.exists(), "nothing made it again");
    }

    #[test]
    fn a_deploy_called_off_while_a_build_holds_the_app_s_lock_is_recorded_in_its_folder() {
        let (_home, ctx) = ctx();
        let (dir, _) = deploy(&[]).admit(&ctx, "web").unwrap();
        // A `shipway build` of the app in another process.
        let build = dir.try_lock().unwrap().expect("a free lock");
        let worker = worker(ctx, dir.clone());
        let (destroy, called_off) = crossbeam_channel::bounded::<()>(0);
        drop(destroy);
        let (_serving, stopping) = crossbeam_channel::bounded::<()>(0);
        let cancel = Cancel::watch(None, &stopping, called_off);
        let Job::Deploy(args) = deploy(&[]) else {
            unreachable!("deploy() makes a deploy")
        };
        assert_eq!(
            worker.deploy(args, &Output::new(), &cancel).unwrap(),
            Status::Aborted
        );
        let recorded: Vec<Option<Status>> = Deployment::list(&dir).iter().map(|d| d.status()).collect();
        assert_eq!(recorded, [Some(Status::Aborted)]);
        drop(build);
    }

    #[test]
    fn the_platform_start_hands_over_each_app_s_addons_then_its_release_opened() {
        let (_home, ctx) = ctx();
        for name in ["served", "never-deployed"] {
            ctx.home.app(name).unwrap().create().unwrap();
        }
        let served = ctx.home.app("served").unwrap();
        served.set_current(3).unwrap();
        std::fs::create_dir_all(crate::addon::folder(&served)).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        restore(&ctx, &Handle(tx));
        let sent: Vec<String> = rx
            .try_iter()
            .map(|m| match m {
                Message::Job { app, job, opened, .. } => {
                    assert_eq!(opened.dir.name, app);
                    let job = match job {
                        Job::RestoreAddons => "addons".to_string(),
                        Job::Restore(n) => format!("release {n}"),
                        _ => "other".to_string(),
                    };
                    format!("{app}: {job}")
                }
                _ => "not a job".to_string(),
            })
            .collect();
        assert_eq!(sent, ["served: addons", "served: release 3"]);
    }
}
