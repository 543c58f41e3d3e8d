//! The one owner of the platform's state: every app's routers, release and containers
//! live on the supervisor thread, and change only through the [`Message`]s it receives,
//! one at a time. It never waits for long work: a deployment, a restart's probing, a
//! graceful stop run on worker threads that report back with messages, so `ps` answers
//! while a deploy runs and a crash during a deploy is handled at once.
//!
//! The crash policy (PLATFORM.md §4, "after a deploy"): a container that exits is
//! restarted at once; one that keeps crashing is restarted after growing pauses, then
//! left `crashed`. A crashed web container leaves the router until its replacement is
//! ready. Jobs of one app (deploy, scale, restart, rollback, destroy) run one at a time,
//! in the order they came.

use std::collections::{BTreeMap, VecDeque};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{after, bounded, never, select, unbounded, Receiver, Sender};

use super::applog::AppLog;
use super::caller::Caller;
use super::context::Context;
use super::cron::{self, Scheduler};
use super::jobs::{self, Worker};
use super::life::{self, stop_servers, Crash, Life, RestartError, Slot};
use super::message::{Handle, Job, Leaving, Message};
use super::protocol::{AddonRow, AppInfo, Event};
use super::routing::Routers;
use super::turn;
use crate::addon::{self, Server};
use crate::container::{self, Container};
use crate::error::Error;
use crate::process::Stream;
use crate::rollout::RolloutError;

/// A run longer than this resets the count of quick crashes.
const QUICK_CRASH: Duration = Duration::from_secs(60);
/// The longest pause between two restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the platform knows of one app.
struct App {
    log: AppLog,
    routers: Routers,
    /// The release being served.
    release: Option<u32>,
    slots: Vec<Slot>,
    /// Whether a job runs; the next ones wait in `queue`, in order.
    turn: Turn,
    queue: VecDeque<(Job, Option<Caller>)>,
    /// The app's running addon servers, by addon id.
    addons: BTreeMap<String, Server>,
    /// Quick crashes in a row of each addon server, and when it last started.
    addon_crashes: BTreeMap<String, (u32, Instant)>,
}

/// Where an app is in its jobs, which run one at a time.
enum Turn {
    /// No job runs.
    Idle,
    /// A job runs. Dropping `call_off` calls it off if it is a deployment, as the client's
    /// Ctrl-C would: `destroy` does, rather than wait for a long build or hook.
    Running { call_off: Option<Sender<()>> },
    /// The running job destroyed the app: it is forgotten when that job ends.
    Destroyed,
}

pub struct Supervisor {
    ctx: Arc<Context>,
    handle: Handle,
    apps: BTreeMap<String, App>,
    /// Dropped when the platform stops: `ctx.stopping` disconnects.
    stop: Option<Sender<()>>,
    /// Worker threads that will report back; the supervisor ends when none is left.
    workers: usize,
    next_token: u64,
    /// Every app's routers closed and containers sent to be stopped (platform stopping).
    dismantled: bool,
    /// The jobs of every app's `cron.json`; each run counts as a worker.
    cron: Scheduler,
}

/// Start the supervisor thread. `stop` is the sender of `ctx.stopping`.
pub fn start(ctx: Arc<Context>, stop: Sender<()>) -> (Handle, JoinHandle<()>) {
    let (tx, rx) = unbounded();
    let handle = Handle(tx);
    let supervisor = Supervisor {
        ctx,
        handle: handle.clone(),
        apps: BTreeMap::new(),
        stop: Some(stop),
        workers: 0,
        next_token: 1,
        dismantled: false,
        cron: Scheduler::default(),
    };
    let thread = std::thread::spawn(move || supervisor.run(rx));
    (handle, thread)
}

impl Supervisor {
    fn run(mut self, rx: Receiver<Message>) {
        loop {
            // Nothing is started by the clock once the platform stops.
            let cron_at = self.stop.as_ref().and_then(|_| self.cron.wake_at());
            let timer = match self.next_restart().into_iter().chain(cron_at).min() {
                Some(at) => after(at.saturating_duration_since(Instant::now())),
                None => never(),
            };
            select! {
                recv(rx) -> message => match message {
                    Ok(m) => self.handle(m),
                    Err(_) => return,
                },
                recv(timer) -> _ => {
                    self.restart_due();
                    self.cron_due();
                }
            }
            if self.stop.is_none() {
                if !self.dismantled && self.apps.values().all(|a| matches!(a.turn, Turn::Idle)) {
                    self.dismantle_all();
                }
                if self.dismantled && self.workers == 0 {
                    return;
                }
            }
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Message::Ps { app, reply } => {
                let rows = self.ctx.home.existing_app(&app).map_err(Error::from).map(|_| {
                    self.apps
                        .get(&app)
                        .map(|a| life::rows(&a.slots))
                        .unwrap_or_default()
                });
                let _ = reply.send(rows);
            }
            Message::Job { app, job, caller } => self.submit(app, job, caller),
            Message::Stop => self.stop(),
            Message::Routers {
                app,
                port,
                wants_tcp,
                reply,
            } => {
                let result = match (self.ctx.home.app(&app), self.apps.get_mut(&app)) {
                    (Ok(dir), Some(a)) => a.routers.ensure(&self.ctx.settings, &dir, port, wants_tcp),
                    (Err(e), _) => Err(e.into()),
                    (_, None) => Err(forgotten(&app)),
                };
                let _ = reply.send(result);
            }
            Message::Present { app, reply } => {
                let specs = self.apps.get(&app).map_or_else(Vec::new, |a| {
                    a.slots
                        .iter()
                        .filter(|s| s.is_present())
                        .map(|s| s.spec.clone())
                        .collect()
                });
                let _ = reply.send(specs);
            }
            Message::Switch {
                app,
                release,
                containers,
                reply,
            } => {
                if let Some(a) = self.apps.get_mut(&app) {
                    a.release = Some(release);
                }
                self.cron.load(&self.ctx, &app, release);
                // One-offs run on across a deploy, as on the platform.
                let stopped = self.replace(&app, containers, Box::new(|s| !s.is_one_off()));
                let _ = reply.send(stopped.len());
            }
            Message::Replace {
                app,
                fresh,
                leaving,
                reply,
            } => {
                let stopped = self.replace(&app, fresh, leaving);
                let _ = reply.send(stopped);
            }
            Message::OneOff {
                app,
                container,
                reply,
            } => {
                if self.apps.contains_key(&app) && self.stop.is_some() {
                    self.adopt(&app, vec![container]);
                } else {
                    self.discard(&app, vec![container]);
                }
                let _ = reply.send(());
            }
            Message::Dismantle { app, reply } => {
                self.cron.forget(&app);
                let containers = match self.apps.get_mut(&app) {
                    Some(a) => {
                        a.turn = Turn::Destroyed;
                        dismantle(a)
                    }
                    None => Vec::new(),
                };
                let _ = reply.send(containers);
            }
            Message::JobDone { app } => {
                self.workers -= 1;
                self.job_done(&app);
            }
            Message::HungUp { app } => {
                if let Some(a) = self.apps.get_mut(&app) {
                    turn::call_off_hung_up(&self.ctx, &app, &mut a.queue);
                }
            }
            Message::Exited { app, id } => self.exited(&app, id),
            Message::Reaped {
                app,
                token,
                exit,
                streak,
            } => {
                self.workers -= 1;
                if let Some((a, i)) =
                    self.find(&app, |l| matches!(l, Life::Exited { token: t } if *t == token))
                {
                    let name = self.apps[&a].slots[i].name();
                    let crash = Crash {
                        message: format!("{name} {exit}"),
                        details: Vec::new(),
                        reason: exit.to_string(),
                    };
                    self.crashed(&a, i, streak, crash);
                }
            }
            Message::Restarted { app, token, result } => {
                self.workers -= 1;
                self.restarted(&app, token, result);
            }
            Message::Stopped { app, ids } => {
                self.workers -= 1;
                if let Some(a) = self.apps.get_mut(&app) {
                    let gone = |s: &Slot| matches!(s.life, Life::Stopping { id, .. } if ids.contains(&id));
                    for s in a.slots.iter().filter(|s| gone(s)) {
                        let text = format!("{} stopped (release v{})", s.name(), s.release);
                        self.ctx.event(&a.log, &app, &text);
                    }
                    a.slots.retain(|s| !gone(s));
                }
            }
            Message::CronRun { app, job, caller } => {
                if self.stop.is_none() {
                    return refuse(Some(caller));
                }
                if let Some(found) = self.cron.on_demand(&self.ctx, &app, &job, caller) {
                    self.cron_start(vec![found]);
                }
            }
            Message::CronEnded {
                app,
                caller,
                line,
                run,
            } => {
                self.workers -= 1;
                // A run stopped by `destroy` is not recorded: the destroy job is removing
                // the app's folder, and a file written into it meanwhile fails that.
                let destroyed = self
                    .apps
                    .get(&app)
                    .is_some_and(|a| matches!(a.turn, Turn::Destroyed));
                if let Some(dir) = self.ctx.home.existing_app(&app).ok().filter(|_| !destroyed) {
                    let _ = crate::cron::Runs::record(&dir.root, &line, run);
                }
                if let Some((c, code)) = caller {
                    c.finish_code(code);
                }
            }
            Message::AddonUp { app, server } => self.addon_up(&app, *server),
            Message::AddonTake { app, id, reply } => {
                let taken = match self.apps.get_mut(&app) {
                    Some(a) => take_addons(a, id.as_deref()),
                    None => Vec::new(),
                };
                let _ = reply.send(taken);
            }
            Message::Addons { app, reply } => {
                let _ = reply.send(self.addon_rows(&app));
            }
            Message::AddonExited { app, id, pid } => self.addon_exited(&app, &id, pid),
            Message::AddonRestarted { app, id, result } => {
                self.workers -= 1;
                match result {
                    Some(server) => self.addon_up(&app, server),
                    None => {
                        if let Some(a) = self.apps.get_mut(&app) {
                            a.addon_crashes.remove(&id);
                        }
                    }
                }
            }
        }
    }

    /// Start the scheduled runs that are due.
    fn cron_due(&mut self) {
        if self.stop.is_some() {
            let due = self.cron.due();
            self.cron_start(due);
        }
    }

    /// Start runs, each in the app's log (the app opened if the platform has not yet).
    fn cron_start(&mut self, runs: Vec<(cron::Start, crossbeam_channel::Receiver<()>)>) {
        for (run, dismissed) in runs {
            if !self.apps.contains_key(&run.app) {
                match self.open_app(&run.app) {
                    Ok(a) => {
                        self.apps.insert(run.app.clone(), a);
                    }
                    Err(e) => {
                        self.ctx
                            .say(&format!("{}: cannot run a scheduled job: {e}", run.app));
                        finish(run.caller, Err(e));
                        continue;
                    }
                }
            }
            let log = self.apps[&run.app].log.clone();
            if cron::start(&self.ctx, &self.handle, &log, run, dismissed) {
                self.workers += 1;
            }
        }
    }

    /// Own a ready addon server, and watch it: a crash is restarted.
    fn addon_up(&mut self, app: &str, server: Server) {
        let Some(a) = self.apps.get_mut(app).filter(|_| self.stop.is_some()) else {
            // The platform is stopping, or the app is gone: stop it like a container.
            self.workers += 1;
            let (handle, app) = (self.handle.clone(), app.to_string());
            std::thread::spawn(move || {
                server.stop();
                handle.send(Message::Stopped { app, ids: Vec::new() });
            });
            return;
        };
        let (id, pid) = (server.addon.id.clone(), server.pid());
        let exited = server.exited().clone();
        let (handle, name, watched) = (self.handle.clone(), app.to_string(), id.clone());
        std::thread::spawn(move || {
            let _ = exited.recv();
            handle.send(Message::AddonExited {
                app: name,
                id: watched,
                pid,
            });
        });
        let streak = a.addon_crashes.get(&id).map_or(0, |(n, _)| *n);
        a.addon_crashes.insert(id.clone(), (streak, Instant::now()));
        a.addons.insert(id, server);
    }

    /// An addon server exited. Unless it was being stopped (then it is no longer
    /// here), it crashed: it is started again after a pause that grows with quick
    /// crashes in a row, and left stopped after `crash_limit` of them.
    fn addon_exited(&mut self, app: &str, id: &str, pid: u32) {
        let settings = self.ctx.settings.clone();
        let Some(a) = self.apps.get_mut(app) else { return };
        if a.addons.get(id).is_none_or(|s| s.pid() != pid) {
            return;
        }
        let Some(server) = a.addons.remove(id) else { return };
        let kind = server.addon.kind;
        let log = self.ctx.container_log(&a.log, app, kind.name());
        let (streak, started) = a.addon_crashes.get(id).copied().unwrap_or((0, Instant::now()));
        let streak = if started.elapsed() < QUICK_CRASH {
            streak + 1
        } else {
            1
        };
        a.addon_crashes.insert(id.to_string(), (streak, Instant::now()));
        if self.stop.is_none() {
            std::thread::spawn(move || {
                let _ = server.reap();
            });
            return;
        }
        if streak >= settings.crash_limit {
            log(
                Stream::Stderr,
                &format!("the {kind} server crashed {streak} times in a row: left stopped (`shipway restart` of the platform: `down`, then `up`)"),
            );
            std::thread::spawn(move || {
                let _ = server.reap();
            });
            return;
        }
        let pause = life::backoff(streak, settings.crash_backoff, MAX_BACKOFF);
        self.workers += 1;
        let (ctx, handle, app, id) = (
            self.ctx.clone(),
            self.handle.clone(),
            app.to_string(),
            id.to_string(),
        );
        std::thread::spawn(move || {
            let exit = server.reap();
            let addon = server_addon(&ctx, &app, &id);
            log(
                Stream::Stderr,
                &format!(
                    "the {kind} server {exit}: restarting it{}",
                    if pause.is_zero() {
                        String::new()
                    } else {
                        format!(" in {}", crate::ui::human_duration(pause))
                    }
                ),
            );
            let result = select! {
                recv(after(pause)) -> _ => addon.and_then(|(dir, a)| {
                    match addon::start(&dir, &a, &ctx.settings, log.clone(), &ctx.stopping) {
                        Ok(s) => {
                            if s.addon.port != a.port {
                                let vars = s.addon.config_vars();
                                let _ = dir.update_config(|c| c.config_vars.extend(vars));
                                log(Stream::Stderr, &format!(
                                    "port {} was taken: the server now listens on {}; its config vars say so, and the app sees them at its next restart",
                                    a.port, s.addon.port
                                ));
                            }
                            Some(s)
                        }
                        Err(e) => {
                            for line in e.to_string().lines() {
                                log(Stream::Stderr, line);
                            }
                            None
                        }
                    }
                }),
                recv(ctx.stopping) -> _ => None,
            };
            handle.send(Message::AddonRestarted { app, id, result });
        });
    }

    fn addon_rows(&self, app: &str) -> Result<Vec<AddonRow>, Error> {
        let dir = self.ctx.home.existing_app(app)?;
        let running = self.apps.get(app).map(|a| &a.addons);
        Ok(addon::list(&dir)?
            .into_iter()
            .map(|a| {
                let server = running.and_then(|r| r.get(&a.id));
                AddonRow {
                    status: if server.is_some() { "running" } else { "stopped" }.into(),
                    pid: server.map(Server::pid),
                    id: a.id,
                    addon: a.kind.name().into(),
                    plan: a.plan,
                    port: a.port,
                }
            })
            .collect())
    }

    fn status(&self) -> Event {
        Event::Info {
            pid: std::process::id(),
            settings: self.ctx.settings.describe(),
            apps: self
                .apps
                .iter()
                .map(|(name, a)| AppInfo {
                    name: name.clone(),
                    release: a.release,
                    url: a.routers.url(),
                    containers: a
                        .slots
                        .iter()
                        .filter_map(Slot::container)
                        .map(|c| c.name.clone())
                        .collect(),
                })
                .collect(),
        }
    }

    /// Admit a job, then run it now or queue it behind the app's running one.
    fn submit(&mut self, name: String, job: Job, caller: Option<Caller>) {
        if self.stop.is_none() {
            return refuse(caller);
        }
        if let Err(e) = job.admit(&self.ctx, &name) {
            return finish(caller, Err(e));
        }
        if !self.apps.contains_key(&name) {
            match self.open_app(&name) {
                Ok(a) => {
                    self.apps.insert(name.clone(), a);
                }
                Err(e) => return finish(caller, Err(e)),
            }
        }
        let Some(a) = self.apps.get_mut(&name) else { return };
        if !matches!(a.turn, Turn::Idle) {
            if matches!(job, Job::Destroy) {
                call_off_deployments(&self.ctx, &name, a);
            }
            if let (Job::Deploy(_), Some(c)) = (&job, &caller) {
                c.output().step(&format!(
                    "Another deployment of {name} is running: this one is queued"
                ));
            }
            if let Some(c) = &caller {
                turn::watch_hangup(c, &self.handle, &name);
            }
            a.queue.push_back((job, caller));
            return;
        }
        self.run_job(&name, job, caller);
    }

    fn open_app(&self, name: &str) -> Result<App, Error> {
        let dir = self.ctx.home.app(name)?;
        let path = dir.root.join("app.log");
        let log = AppLog::open(&path).map_err(|source| Error::io("open", path, source))?;
        Ok(App {
            log,
            routers: Routers::default(),
            release: None,
            slots: Vec::new(),
            turn: Turn::Idle,
            queue: VecDeque::new(),
            addons: BTreeMap::new(),
            addon_crashes: BTreeMap::new(),
        })
    }

    fn run_job(&mut self, name: &str, job: Job, caller: Option<Caller>) {
        let Some(a) = self.apps.get_mut(name) else { return };
        let (call_off, called_off) = bounded::<()>(0);
        a.turn = Turn::Running {
            call_off: Some(call_off),
        };
        self.workers += 1;
        let worker = Worker::new(self.ctx.clone(), self.handle.clone(), name, a.log.clone());
        let handle = self.handle.clone();
        let app = name.to_string();
        std::thread::spawn(move || {
            worker.run(job, caller, called_off);
            handle.send(Message::JobDone { app });
        });
    }

    fn job_done(&mut self, name: &str) {
        let Some(a) = self.apps.get_mut(name) else { return };
        if matches!(std::mem::replace(&mut a.turn, Turn::Idle), Turn::Destroyed) {
            // What waited for the destroyed app starts over with a new one.
            let Some(a) = self.apps.remove(name) else { return };
            for (job, caller) in a.queue {
                self.submit(name.to_string(), job, caller);
            }
            return;
        }
        if self.stop.is_none() {
            for (_, caller) in a.queue.drain(..) {
                refuse(caller);
            }
            return;
        }
        if let Some((job, caller)) = a.queue.pop_front() {
            self.run_job(name, job, caller);
        }
    }

    /// Put `fresh` containers in service in place of those `leaving` selects (running,
    /// waiting for a restart or crashed): the routers switch to the new set, then the
    /// old containers are stopped gracefully. Returns the names of those stopped.
    fn replace(&mut self, name: &str, fresh: Vec<Container>, leaving: Leaving) -> Vec<String> {
        let Some(a) = self.apps.get_mut(name) else {
            self.discard(name, fresh);
            return Vec::new();
        };
        let (out, keep): (Vec<Slot>, Vec<Slot>) = std::mem::take(&mut a.slots)
            .into_iter()
            .partition(|s| s.is_present() && leaving(&s.spec));
        a.slots = keep;
        let old: Vec<Container> = out
            .into_iter()
            .filter_map(|s| match s.life {
                Life::Ready(c) => Some(*c),
                _ => None,
            })
            .collect();
        self.adopt(name, fresh);
        let names = old.iter().map(|c| c.name.clone()).collect();
        self.retire(name, old);
        names
    }

    /// Ready containers join the app, each watched for its exit; the routers follow.
    fn adopt(&mut self, name: &str, fresh: Vec<Container>) {
        let Some(a) = self.apps.get_mut(name) else {
            self.discard(name, fresh);
            return;
        };
        for c in fresh {
            self.ctx.event(
                &a.log,
                name,
                &format!("{} started (release v{})", c.name, c.release),
            );
            a.slots.retain(|s| !(s.is_present() && s.name() == c.name));
            watch(&self.handle, name, &c);
            a.slots.push(Slot::ready(c));
        }
        a.slots.sort_by_key(Slot::name);
        a.routers.reroute(&a.slots);
    }

    /// Stop containers that leave the app: SIGTERM, SIGKILL after the grace period,
    /// listed as `stopping` meanwhile.
    fn retire(&mut self, name: &str, old: Vec<Container>) {
        if old.is_empty() {
            return;
        }
        if let Some(a) = self.apps.get_mut(name) {
            let now = Instant::now();
            for c in &old {
                a.slots.push(Slot {
                    spec: c.spec.clone(),
                    release: c.release,
                    restarts: c.restarts,
                    since: now,
                    life: Life::Stopping {
                        id: c.id,
                        pid: c.pid(),
                        port: c.port,
                    },
                });
            }
        }
        self.discard(name, old);
    }

    /// Stop containers on a worker thread, which reports when they are gone.
    fn discard(&mut self, name: &str, old: Vec<Container>) {
        self.discard_with(name, old, Vec::new());
    }

    /// Stop containers, then addon servers (the app first: it may still write while it
    /// stops), on a worker thread, which reports when they are gone.
    fn discard_with(&mut self, name: &str, old: Vec<Container>, servers: Vec<Server>) {
        let ids = old.iter().map(|c| c.id).collect();
        let grace = self.ctx.settings.grace_period;
        let (handle, app) = (self.handle.clone(), name.to_string());
        self.workers += 1;
        std::thread::spawn(move || {
            container::stop_all(old, grace);
            stop_servers(servers);
            handle.send(Message::Stopped { app, ids });
        });
    }

    /// The first slot of `app` whose life `pick` selects.
    fn find(&self, app: &str, pick: impl Fn(&Life) -> bool) -> Option<(String, usize)> {
        let a = self.apps.get(app)?;
        let i = a.slots.iter().position(|s| pick(&s.life))?;
        Some((app.to_string(), i))
    }

    /// A watched container's leader exited. If it is still one of the app's ready
    /// containers, it crashed: it leaves the router, and its group is cleaned up.
    fn exited(&mut self, app: &str, id: u64) {
        let Some((app, i)) = self.find(app, |l| matches!(l, Life::Ready(c) if c.id == id)) else {
            return;
        };
        if self.apps[&app].slots[i].spec.is_one_off() {
            return self.one_off_ended(&app, i);
        }
        let token = self.token();
        let Some(a) = self.apps.get_mut(&app) else { return };
        let slot = &mut a.slots[i];
        slot.since = Instant::now();
        let Life::Ready(mut crashed) = std::mem::replace(&mut slot.life, Life::Exited { token }) else {
            return;
        };
        a.routers.reroute(&a.slots);
        self.workers += 1;
        let handle = self.handle.clone();
        std::thread::spawn(move || {
            let exit = container::reap(&mut crashed);
            // A container that ran a while before crashing starts a new streak.
            let streak = if crashed.started.elapsed() < QUICK_CRASH {
                crashed.crash_streak + 1
            } else {
                1
            };
            handle.send(Message::Reaped {
                app,
                token,
                exit,
                streak,
            });
        });
    }

    /// A one-off's program ended: it is never restarted. Its group is cleaned up, and its
    /// end is a platform event in the app's log.
    fn one_off_ended(&mut self, app: &str, i: usize) {
        let Some(a) = self.apps.get_mut(app) else { return };
        let slot = a.slots.remove(i);
        let Life::Ready(mut ended) = slot.life else { return };
        let (ctx, log) = (self.ctx.clone(), a.log.clone());
        let (handle, app, id) = (self.handle.clone(), app.to_string(), ended.id);
        self.workers += 1;
        std::thread::spawn(move || {
            let exit = container::reap(&mut ended);
            let text = format!("{} {exit} (release v{})", ended.name, ended.release);
            ctx.event(&log, &app, &text);
            handle.send(Message::Stopped { app, ids: vec![id] });
        });
    }

    /// After a crash (or a failed restart): restart the container after a pause that
    /// grows with `streak`, or leave it crashed once the streak reaches `crash_limit`.
    fn crashed(&mut self, app: &str, i: usize, streak: u32, crash: Crash) {
        if self.stop.is_none() {
            return;
        }
        let settings = &self.ctx.settings;
        let Some(a) = self.apps.get_mut(app) else { return };
        let slot = &mut a.slots[i];
        let name = slot.name();
        let event = format!("{name} crashed: {} (release v{})", crash.reason, slot.release);
        self.ctx.event(&a.log, app, &event);
        let log = self.ctx.container_log(&a.log, app, &name);
        let say = |text: &str| {
            log(Stream::Stderr, text);
            for line in &crash.details {
                log(Stream::Stderr, line);
            }
        };
        if streak >= settings.crash_limit {
            say(&format!(
                "{}; it crashed {streak} times in a row: left crashed (`shipway restart {name}` tries again)",
                crash.message
            ));
            slot.life = Life::Crashed {
                reason: crash.reason.clone(),
            };
            return;
        }
        let pause = life::backoff(streak, settings.crash_backoff, MAX_BACKOFF);
        let when = if pause.is_zero() {
            String::new()
        } else {
            format!(" in {}", crate::ui::human_duration(pause))
        };
        say(&format!("{}: restarting it{when}", crash.message));
        slot.life = Life::Restarting {
            at: Instant::now() + pause,
            streak,
        };
    }

    /// When the next pending restart is due.
    fn next_restart(&self) -> Option<Instant> {
        // Nothing is restarted once the platform stops.
        self.stop.as_ref()?;
        self.apps
            .values()
            .flat_map(|a| &a.slots)
            .filter_map(|s| match s.life {
                Life::Restarting { at, .. } => Some(at),
                _ => None,
            })
            .min()
    }

    /// Start again, on worker threads, every crashed container whose pause is over.
    fn restart_due(&mut self) {
        let now = Instant::now();
        let mut starts = Vec::new();
        for (name, a) in &mut self.apps {
            for slot in &mut a.slots {
                let Life::Restarting { at, streak, .. } = slot.life else {
                    continue;
                };
                if at > now {
                    continue;
                }
                self.next_token += 1;
                let token = self.next_token;
                slot.life = Life::Starting { token, streak };
                slot.restarts += 1;
                starts.push((
                    name.clone(),
                    a.log.clone(),
                    token,
                    slot.release,
                    slot.spec.clone(),
                ));
            }
        }
        for (app, log, token, release, spec) in starts {
            self.workers += 1;
            let (ctx, handle) = (self.ctx.clone(), self.handle.clone());
            std::thread::spawn(move || {
                let result = jobs::start_again(&ctx, &app, &log, release, spec);
                handle.send(Message::Restarted { app, token, result });
            });
        }
    }

    fn restarted(&mut self, app: &str, token: u64, result: Result<Container, RestartError>) {
        let found = self.find(
            app,
            |l| matches!(l, Life::Starting { token: t, .. } if *t == token),
        );
        let Some((app, i)) = found.filter(|_| self.stop.is_some()) else {
            // A rollout or a `restart` took over meanwhile, or the platform is stopping.
            if let Ok(c) = result {
                self.discard(app, vec![c]);
            }
            return;
        };
        let slot = &self.apps[&app].slots[i];
        let (restarts, name) = (slot.restarts, slot.name());
        let streak = match slot.life {
            Life::Starting { streak, .. } => streak,
            _ => 1,
        };
        match result {
            Ok(mut c) => {
                c.restarts = restarts;
                c.crash_streak = streak;
                self.adopt(&app, vec![c]);
            }
            // The platform is stopping: nothing crashed.
            Err(RestartError::Rollout(RolloutError::Cancelled)) => {}
            Err(e) => self.crashed(&app, i, streak + 1, e.crash(&name)),
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// `down`, Ctrl-C: refuse new jobs, call off queued ones, cancel running ones (they
    /// select on `ctx.stopping`), and wake the server's accept loop.
    fn stop(&mut self) {
        if self.stop.take().is_none() {
            return;
        }
        for a in self.apps.values_mut() {
            for (_, caller) in a.queue.drain(..) {
                refuse(caller);
            }
        }
        let _ = UnixStream::connect(self.ctx.home.socket());
    }

    /// Stop every app, once no job runs: routers first (no new request), then
    /// containers gracefully.
    fn dismantle_all(&mut self) {
        self.dismantled = true;
        let names: Vec<String> = self.apps.keys().cloned().collect();
        for name in names {
            let (containers, servers) = match self.apps.get_mut(&name) {
                Some(a) => (dismantle(a), take_addons(a, None)),
                None => continue,
            };
            if !containers.is_empty() || !servers.is_empty() {
                self.discard_with(&name, containers, servers);
            }
        }
    }
}

/// Take the app out of service: the routers close, pending restarts are called off, and
/// the ready containers are handed back to be stopped.
fn dismantle(a: &mut App) -> Vec<Container> {
    a.routers.shutdown();
    let (leaving, stopping): (Vec<Slot>, Vec<Slot>) = std::mem::take(&mut a.slots)
        .into_iter()
        .partition(Slot::is_present);
    a.slots = stopping;
    leaving
        .into_iter()
        .filter_map(|s| match s.life {
            Life::Ready(c) => Some(*c),
            _ => None,
        })
        .collect()
}

/// `destroy` waits behind a running job: a deployment running or queued is called off,
/// as the client's Ctrl-C would, so the destroy does not wait for a long build or hook, and no deployment reports success
/// for an app about to be gone. Other jobs (scale, restart...) are short: they finish.
fn call_off_deployments(ctx: &Context, name: &str, a: &mut App) {
    if let Turn::Running { call_off } = &mut a.turn {
        drop(call_off.take());
    }
    turn::call_off_deployments(ctx, name, &mut a.queue);
}

/// The app's addon servers `id` selects (all when `None`), taken out of its care.
fn take_addons(a: &mut App, id: Option<&str>) -> Vec<Server> {
    let ids: Vec<String> = a
        .addons
        .keys()
        .filter(|k| id.is_none_or(|i| i == k.as_str()))
        .cloned()
        .collect();
    ids.iter()
        .filter_map(|k| {
            a.addon_crashes.remove(k);
            a.addons.remove(k)
        })
        .collect()
}

/// An addon as stored now (its port may have moved), with its app's folder.
fn server_addon(ctx: &Context, app: &str, id: &str) -> Option<(crate::state::AppDir, addon::Addon)> {
    let dir = ctx.home.existing_app(app).ok()?;
    let a = addon::list(&dir).ok()?.into_iter().find(|a| a.id == id)?;
    Some((dir, a))
}

/// Tell the supervisor when this container's leader exits.
fn watch(handle: &Handle, app: &str, c: &Container) {
    let exited = c.child.exited().clone();
    let (handle, app, id) = (handle.clone(), app.to_string(), c.id);
    std::thread::spawn(move || {
        let _ = exited.recv();
        handle.send(Message::Exited { app, id });
    });
}

fn forgotten(app: &str) -> Error {
    Error::Platform {
        message: format!("{app} was destroyed meanwhile"),
    }
}

fn finish(caller: Option<Caller>, result: Result<crate::deployment::Status, Error>) {
    if let Some(c) = caller {
        c.finish(result);
    }
}

fn refuse(caller: Option<Caller>) {
    finish(
        caller,
        Err(Error::Platform {
            message: "the platform is stopping: nothing was done".into(),
        }),
    );
}
