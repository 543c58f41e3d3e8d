//! The one owner of the platform's state: every app's routers, release and containers
//! live on the supervisor thread, and change only through the [`Message`]s it receives,
//! one at a time. It decides; it must not wait or touch the disk, /proc or a child: a
//! deployment, a restart's probing, a graceful stop, the records of called-off jobs, a
//! container's processes run on workers ([`Supervisor::spawn`], which counts them) that
//! report back with messages, and its log lines go to one writer thread. So `ps` answers
//! while a deploy runs and a crash during a deploy is handled at once. It reads time only
//! from `ctx.clock`, so its tests move a manual clock. What it still does itself: an
//! app's first router bind and the router's threads it starts, and joining them when
//! the routers close.
//!
//! The crash policy (PLATFORM.md §4, "after a deploy"): a container that exits is
//! restarted at once; one that keeps crashing (a run shorter than [`life::QUICK_CRASH`]
//! on the clock) is restarted after growing pauses, then left `crashed`. A crashed web
//! container leaves the router until its replacement is ready. Jobs of one app (deploy,
//! scale, restart, rollback, destroy) run one at a time, in the order they came.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, never, select, unbounded, Receiver, Sender};

use super::applog::AppLog;
use super::caller::Caller;
use super::context::Context;
use super::cron::{self, Scheduler};
use super::events;
use super::jobs::{self, Worker};
use super::life::{self, stop_servers, AfterCrash, Crash, Life, RestartError, Slot};
use super::message::{Handle, Job, Leaving, Message, Targets};
use super::opened::Opened;
use super::protocol::{AddonRow, AppInfo, AppStats, ContainerRow, Event};
use super::routing::{Reporting, Routers};
use super::turn;
use crate::addon::{self, Server};
use crate::container::{self, Container};
use crate::error::Error;
use crate::process::Stream;
use crate::rollout::RolloutError;
use crate::state::AppDir;

/// What the platform knows of one app.
struct App {
    /// Its folder, its privacy checked once, when the app was opened: handed to its jobs,
    /// crash restarts and cron runs, which do not check it again.
    dir: AppDir,
    log: AppLog,
    routers: Routers,
    /// The release being served.
    release: Option<u32>,
    slots: Vec<Slot>,
    /// Whether a job runs; the next ones wait in `queue`, in order.
    turn: Turn,
    queue: VecDeque<(Job, Option<Caller>)>,
    /// Call-offs (by token) whose jobs a worker is recording `aborted` and answering: the
    /// next job waits for them, so that a `destroy` never removes the folder a record is
    /// being written to.
    recording: BTreeSet<u64>,
    /// The app's addon servers the platform has started, by addon id.
    addons: BTreeMap<String, AddonLife>,
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

/// An addon server's life, as a container's is a [`Life`]; the same crash policy
/// ([`life::after_crash`]) moves it.
enum AddonLife {
    /// Serving since `since`, after `streak` quick crashes in a row.
    Running {
        server: Box<Server>,
        streak: u32,
        since: Instant,
    },
    /// Crashed: a worker starts it again after the pause (`AddonRestarted`).
    Restarting { streak: u32 },
    /// Crashed `crash_limit` times in a row, or could not start again: left stopped.
    Crashed,
}

/// Where the platform is in its life.
enum Phase {
    /// Jobs are taken. Dropping `stop` disconnects `ctx.stopping`: every wait ends.
    Serving { stop: Sender<()> },
    /// `down`, Ctrl-C: no new job; the running ones are cancelled, and once none runs
    /// every app is dismantled.
    Stopping,
    /// Every app's routers closed and containers sent to be stopped: the supervisor ends
    /// once its last worker reports.
    Dismantled,
}

pub struct Supervisor {
    ctx: Arc<Context>,
    handle: Handle,
    apps: BTreeMap<String, App>,
    phase: Phase,
    /// Worker threads that will report back; the supervisor ends when none is left.
    workers: usize,
    next_token: u64,
    /// The jobs of every app's `cron.json`; each run counts as a worker.
    cron: Scheduler,
    /// Writes the supervisor's lines in the app logs.
    writer: Writer,
}

/// A write the supervisor hands over.
type Write = Box<dyn FnOnce() + Send>;

/// The thread that writes what the supervisor says in app logs (`[platform] web-1
/// started`, a crash and its restart) and on the terminal under `up`, in the order said.
/// A write can block (a full disk, a terminal scrolled back): the supervisor never waits
/// on one. Dropped, it writes what is left, then ends.
struct Writer {
    writes: Option<Sender<Write>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn start() -> Writer {
        let (tx, rx) = unbounded::<Write>();
        let thread = std::thread::spawn(move || {
            for write in rx {
                write();
            }
        });
        Writer {
            writes: Some(tx),
            thread: Some(thread),
        }
    }

    fn write(&self, write: impl FnOnce() + Send + 'static) {
        if let Some(tx) = &self.writes {
            let _ = tx.send(Box::new(write));
        }
    }

    /// Wait until what was handed over before is written.
    #[cfg(test)]
    fn flush(&self) {
        let (done, written) = bounded(1);
        self.write(move || {
            let _ = done.send(());
        });
        let _ = written.recv_timeout(std::time::Duration::from_secs(10));
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.writes.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Start the supervisor thread. `stop` is the sender of `ctx.stopping`.
pub fn start(ctx: Arc<Context>, stop: Sender<()>) -> Result<(Handle, JoinHandle<()>), Error> {
    let (supervisor, rx) = Supervisor::new(ctx, stop);
    let handle = supervisor.handle.clone();
    // Named, so that `bench/supervisor.sh` (and `top -H`) can tell it from its workers.
    let thread = std::thread::Builder::new()
        .name("supervisor".into())
        .spawn(move || supervisor.run(rx))
        .map_err(|source| Error::io("start", "the supervisor thread", source))?;
    Ok((handle, thread))
}

impl Supervisor {
    /// A supervisor reading `ctx.clock`, and the queue of its messages.
    fn new(ctx: Arc<Context>, stop: Sender<()>) -> (Supervisor, Receiver<Message>) {
        let (tx, rx) = unbounded();
        let supervisor = Supervisor {
            ctx,
            handle: Handle(tx),
            apps: BTreeMap::new(),
            phase: Phase::Serving { stop },
            workers: 0,
            next_token: 1,
            cron: Scheduler::default(),
            writer: Writer::start(),
        };
        (supervisor, rx)
    }

    fn run(mut self, rx: Receiver<Message>) {
        loop {
            // Nothing is started by the clock once the platform stops.
            let cron_at = if self.serving() {
                let now = self.ctx.clock.instant();
                self.cron
                    .wake_in(self.ctx.clock.unix_secs())
                    .map(|wait| now + wait)
            } else {
                None
            };
            let timer = match self.next_restart().into_iter().chain(cron_at).min() {
                Some(at) => self
                    .ctx
                    .clock
                    .after(at.saturating_duration_since(self.ctx.clock.instant())),
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
            if matches!(self.phase, Phase::Stopping)
                && self.apps.values().all(|a| matches!(a.turn, Turn::Idle))
            {
                self.dismantle_all();
            }
            if matches!(self.phase, Phase::Dismantled) && self.workers == 0 {
                return;
            }
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Message::Ps { app, reply } => self.ps(&app, reply),
            Message::Stats { app, cpu, reply } => self.stats(&app, cpu, reply),
            Message::Job {
                app,
                job,
                caller,
                opened,
            } => self.submit(app, job, caller, opened),
            Message::OneOffStop { app, name, reply } => {
                let _ = reply.send(self.one_off_stop(&app, &name));
            }
            Message::Targets { app, names, reply } => {
                let _ = reply.send(self.targets(&app, names));
            }
            Message::Stop => self.stop(),
            Message::Routers {
                app,
                port,
                wants_tcp,
                kept,
                router_logs,
                reply,
            } => {
                // The other apps' router ports, so that a clash with one names it.
                let held: Vec<(String, u16)> = self
                    .apps
                    .iter()
                    .filter(|(name, _)| **name != app)
                    .flat_map(|(name, a)| {
                        let ports = a.routers.ports();
                        [ports.web, ports.tcp]
                            .into_iter()
                            .flatten()
                            .map(|p| (name.clone(), p))
                    })
                    .collect();
                let held = |port: u16| held.iter().find(|(_, p)| *p == port).map(|(n, _)| n.clone());
                let result = match self.apps.get_mut(&app) {
                    Some(a) => {
                        let reporting = Reporting {
                            app: &app,
                            log: &a.log,
                            router_logs,
                            telemetries: &self.ctx.telemetry,
                        };
                        a.routers
                            .ensure(&self.ctx.settings, kept, port, wants_tcp, held, reporting)
                    }
                    None => Err(forgotten(&app)),
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
                let dir = self.apps.get_mut(&app).map(|a| {
                    a.release = Some(release);
                    a.dir.clone()
                });
                // One-offs run on across a deploy, as on the platform.
                let leaving: Leaving = Box::new(|s| !s.is_one_off());
                self.replace(&app, containers, leaving, |stopped| {
                    let _ = reply.send(stopped.len());
                });
                // The release's cron.toml is read on a worker (`CronLoaded`), in the
                // folder the supervisor opened.
                if let Some(dir) = dir {
                    let ctx = self.ctx.clone();
                    self.spawn(move || {
                        let jobs = cron::read_jobs(&ctx, &dir, release);
                        Some(Message::CronLoaded {
                            app: dir.name,
                            release,
                            jobs,
                        })
                    });
                }
            }
            Message::Replace {
                app,
                fresh,
                leaving,
                reply,
            } => {
                self.replace(&app, fresh, leaving, |stopped| {
                    let _ = reply.send(stopped);
                });
            }
            Message::OneOff {
                app,
                container,
                reply,
            } => {
                if self.apps.contains_key(&app) && self.serving() {
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
            Message::Worked(report) => {
                self.workers -= 1;
                if let Some(m) = report {
                    self.handle(*m);
                }
            }
            Message::JobDone { app } => self.job_done(&app),
            Message::HungUp { app } => {
                if let Some(a) = self.apps.get_mut(&app) {
                    let gone = turn::hung_up(&mut a.queue);
                    self.call_off(&app, gone);
                }
            }
            Message::Recorded { app, token } => {
                let Some(a) = self.apps.get_mut(&app) else { return };
                a.recording.remove(&token);
                self.next_job(&app);
            }
            Message::Exited { app, id } => self.exited(&app, id),
            Message::Reaped {
                app,
                token,
                exit,
                out_of_memory,
                streak,
            } => {
                if let Some((a, i)) =
                    self.find(&app, |l| matches!(l, Life::Exited { token: t } if *t == token))
                {
                    let name = self.apps[&a].slots[i].name();
                    let crash = match out_of_memory {
                        Some(size) => {
                            let why = crate::process::out_of_memory(size);
                            Crash {
                                message: format!("{name} stopped: {why}"),
                                details: Vec::new(),
                                reason: why,
                                out_of_memory: Some(size),
                            }
                        }
                        None => Crash {
                            message: format!("{name} {exit}"),
                            details: Vec::new(),
                            reason: exit.to_string(),
                            out_of_memory: None,
                        },
                    };
                    self.crashed(&a, i, streak, crash);
                }
            }
            Message::Restarted { app, token, result } => {
                self.restarted(&app, token, result);
            }
            Message::Stopped { app, ids } => {
                if let Some(a) = self.apps.get_mut(&app) {
                    let gone = |s: &Slot| matches!(s.life, Life::Stopping { id, .. } if ids.contains(&id));
                    let stopped: Vec<events::Event> = a
                        .slots
                        .iter()
                        .filter(|s| gone(s))
                        .map(|s| events::Event::ContainerStopped {
                            container: s.name(),
                            release: s.release,
                        })
                        .collect();
                    a.slots.retain(|s| !gone(s));
                    self.in_log(&app, move |ctx, log, app| {
                        for event in stopped {
                            ctx.event(log, app, event);
                        }
                    });
                }
            }
            Message::CronRun {
                app,
                job,
                caller,
                opened,
            } => {
                if !self.serving() {
                    return self.refuse(vec![Some(caller)]);
                }
                let a = self.keep(&app, opened);
                let (dir, log) = (a.dir.clone(), a.log.clone());
                let (ctx, dismissed) = (self.ctx.clone(), self.cron.dismissed(&app));
                self.spawn(move || {
                    cron::run_on_demand(&ctx, &dir, &log, &job, caller, dismissed);
                    None
                });
            }
            Message::CronLoaded { app, release, jobs } => {
                // A later switch may have reported first: only the serving release's jobs.
                if self.apps.get(&app).is_some_and(|a| a.release == Some(release)) {
                    self.cron.load(&app, release, jobs, self.ctx.clock.unix_secs());
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
            Message::Addons { app, reply } => self.addon_rows(&app, reply),
            Message::AddonExited { app, id, pid } => self.addon_exited(&app, &id, pid),
            Message::AddonRestarted { app, id, result } => self.addon_restarted(&app, &id, result),
        }
    }

    /// `shipway ps`: what the supervisor knows of each container now; their processes
    /// are read from /proc on a worker. An app it has not opened is looked for there too.
    fn ps(&mut self, app: &str, reply: Sender<Result<Vec<ContainerRow>, Error>>) {
        let now = self.ctx.clock.instant();
        let known = self
            .apps
            .get(app)
            .filter(|a| !matches!(a.turn, Turn::Destroyed))
            .map(|a| a.slots.iter().map(|s| s.seen(now)).collect::<Vec<_>>());
        let (ctx, app) = (self.ctx.clone(), app.to_string());
        self.spawn(move || {
            let rows = match known {
                Some(seen) => Ok(life::with_processes(seen)),
                None => ctx
                    .home
                    .existing_app(&app)
                    .map(|_| Vec::new())
                    .map_err(Error::from),
            };
            let _ = reply.send(rows);
            None
        });
    }

    /// `one-off-stop`: the running one-off `name` leaves the app and is stopped as any
    /// container is (SIGTERM, SIGKILL after the grace period), on a worker.
    fn one_off_stop(&mut self, app: &str, name: &str) -> Result<(), Error> {
        let missing = || Error::Platform {
            message: format!("The container '{name}' does not exist: `shipway ps` lists the app's one-offs"),
        };
        let a = self.apps.get_mut(app).ok_or_else(missing)?;
        let i = a
            .slots
            .iter()
            .position(|s| s.spec.is_one_off() && s.name() == name && matches!(s.life, Life::Ready(_)))
            .ok_or_else(missing)?;
        let Life::Ready(c) = a.slots.remove(i).life else {
            return Err(missing());
        };
        let event = events::Event::RunStopped {
            container: name.to_string(),
            release: c.release,
        };
        self.in_log(app, move |ctx, log, app| ctx.event(log, app, event));
        self.retire(app, vec![*c]);
        Ok(())
    }

    /// `send-signal`: the running containers each name selects, as the Scalingo CLI reads
    /// them: a container's name (`web-1`), else a type (`web`: every `web-N`).
    fn targets(&self, app: &str, names: Vec<String>) -> Targets {
        let running: Vec<&Container> = self
            .apps
            .get(app)
            .map(|a| a.slots.iter().filter_map(Slot::container).collect())
            .unwrap_or_default();
        let mut targets = Targets::default();
        for name in names {
            let exact: Vec<&&Container> = running.iter().filter(|c| c.name == name).collect();
            let selected = if exact.is_empty() {
                running.iter().filter(|c| c.spec.process_type == name).collect()
            } else {
                exact
            };
            if selected.is_empty() {
                targets.unmatched.push(name);
            }
            for c in selected {
                if !targets.found.iter().any(|(n, _)| *n == c.name) {
                    targets.found.push((c.name.clone(), c.child.pid()));
                }
            }
        }
        targets
    }

    /// `shipway stats`: each container's cgroup is read on a worker, with `cpu` twice, a
    /// moment apart.
    fn stats(&mut self, app: &str, cpu: bool, reply: Sender<Result<AppStats, Error>>) {
        let known = self
            .apps
            .get(app)
            .filter(|a| !matches!(a.turn, Turn::Destroyed))
            .map(|a| a.slots.iter().map(life::Slot::metered).collect::<Vec<_>>());
        let (ctx, app) = (self.ctx.clone(), app.to_string());
        self.spawn(move || {
            let stats = match known {
                Some(metered) => Ok(life::stats(&app, metered, cpu)),
                None => ctx
                    .home
                    .existing_app(&app)
                    .map_err(Error::from)
                    .map(|_| AppStats {
                        app: app.clone(),
                        containers: Vec::new(),
                        unmeasured: None,
                        router: None,
                    }),
            };
            let _ = reply.send(stats);
            None
        });
    }

    /// Start the scheduled runs that are due, each on a worker.
    fn cron_due(&mut self) {
        if !self.serving() {
            return;
        }
        for (run, dismissed) in self.cron.due(self.ctx.clock.unix_secs()) {
            // Only the apps the supervisor keeps have jobs (`CronLoaded`).
            let Some((dir, log)) = self.apps.get(&run.app).map(|a| (a.dir.clone(), a.log.clone())) else {
                continue;
            };
            let ctx = self.ctx.clone();
            self.spawn(move || {
                cron::run(&ctx, &dir, &log, run, dismissed);
                None
            });
        }
    }

    /// The app `name`, kept from `opened` if the supervisor did not know it yet.
    fn keep(&mut self, name: &str, opened: Opened) -> &mut App {
        self.apps.entry(name.to_string()).or_insert_with(|| App {
            dir: opened.dir,
            log: opened.log,
            routers: Routers::default(),
            release: None,
            slots: Vec::new(),
            turn: Turn::Idle,
            queue: VecDeque::new(),
            recording: BTreeSet::new(),
            addons: BTreeMap::new(),
        })
    }

    /// Own a ready addon server, and watch it: a crash is restarted.
    fn addon_up(&mut self, app: &str, server: Server) {
        let now = self.ctx.clock.instant();
        let serving = self.serving();
        let Some(a) = self.apps.get_mut(app).filter(|_| serving) else {
            // The platform is stopping, or the app is gone: stop it like a container.
            return self.stop_server(app, server);
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
        let streak = match a.addons.get(&id) {
            Some(AddonLife::Restarting { streak }) => *streak,
            _ => 0,
        };
        a.addons.insert(
            id,
            AddonLife::Running {
                server: Box::new(server),
                streak,
                since: now,
            },
        );
    }

    /// Stop an addon server nobody keeps, on a worker.
    fn stop_server(&mut self, app: &str, server: Server) {
        let app = app.to_string();
        self.spawn(move || {
            server.stop();
            Some(Message::Stopped { app, ids: Vec::new() })
        });
    }

    /// A crashed addon server was started again (or could not be, `None`).
    fn addon_restarted(&mut self, app: &str, id: &str, result: Option<Server>) {
        let serving = self.serving();
        let waiting = self
            .apps
            .get_mut(app)
            .and_then(|a| a.addons.get_mut(id))
            .filter(|l| matches!(l, AddonLife::Restarting { .. }));
        match (result, waiting) {
            (Some(server), Some(_)) if serving => self.addon_up(app, server),
            // Removed (`addons-remove`, `destroy`) or the platform stopping meanwhile.
            (Some(server), _) => self.stop_server(app, server),
            (None, Some(life)) if serving => *life = AddonLife::Crashed,
            (None, _) => {}
        }
    }

    /// An addon server exited. Unless it was being stopped (then it is no longer
    /// here), it crashed: the crash policy of containers applies (`life::after_crash`),
    /// and one given up is left stopped.
    fn addon_exited(&mut self, app: &str, id: &str, pid: u32) {
        let settings = self.ctx.settings.clone();
        let now = self.ctx.clock.instant();
        let serving = self.serving();
        let Some(a) = self.apps.get_mut(app) else { return };
        if !matches!(a.addons.get(id), Some(AddonLife::Running { server, .. }) if server.pid() == pid) {
            return;
        }
        let Some(AddonLife::Running {
            server,
            streak,
            since,
        }) = a.addons.remove(id)
        else {
            return;
        };
        let kind = server.addon.kind;
        let log = self.ctx.container_log(&a.log, app, kind.name());
        let streak = life::crash_streak(streak, now.saturating_duration_since(since));
        if !serving {
            self.spawn(move || {
                server.reap();
                None
            });
            return;
        }
        let pause = match life::after_crash(streak, settings.crash_limit, settings.crash_backoff) {
            AfterCrash::GiveUp => {
                let text = format!("the {kind} server crashed {streak} times in a row: left stopped (`shipway restart` of the platform: `down`, then `up`)");
                self.writer.write(move || log(Stream::Stderr, &text));
                a.addons.insert(id.to_string(), AddonLife::Crashed);
                self.spawn(move || {
                    server.reap();
                    None
                });
                return;
            }
            AfterCrash::Restart(pause) => pause,
        };
        a.addons.insert(id.to_string(), AddonLife::Restarting { streak });
        let dir = a.dir.clone();
        let (ctx, app, id) = (self.ctx.clone(), app.to_string(), id.to_string());
        self.spawn(move || {
            let exit = server.reap();
            let addon = server_addon(dir, &id);
            log(
                Stream::Stderr,
                &format!(
                    "the {kind} server {exit}: restarting it{}",
                    if pause.is_zero() {
                        String::new()
                    } else {
                        format!(" in {}", crate::units::human_duration(pause))
                    }
                ),
            );
            let result = select! {
                recv(ctx.clock.after(pause)) -> _ => addon.and_then(|(dir, a)| {
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
            Some(Message::AddonRestarted { app, id, result })
        });
    }

    /// `shipway addons`: the addons' records are read on a worker, beside what the
    /// supervisor knows of their servers.
    fn addon_rows(&mut self, app: &str, reply: Sender<Result<Vec<AddonRow>, Error>>) {
        let lives: BTreeMap<String, (&'static str, Option<u32>)> = self
            .apps
            .get(app)
            .map(|a| {
                a.addons
                    .iter()
                    .map(|(id, life)| {
                        let seen = match life {
                            AddonLife::Running { server, .. } => ("running", Some(server.pid())),
                            AddonLife::Restarting { .. } => ("restarting", None),
                            AddonLife::Crashed => ("crashed", None),
                        };
                        (id.clone(), seen)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let opened = self.apps.get(app).map(|a| a.dir.clone());
        let (ctx, app) = (self.ctx.clone(), app.to_string());
        self.spawn(move || {
            let rows = (|| -> Result<Vec<AddonRow>, Error> {
                let dir = match opened.filter(AppDir::exists) {
                    Some(dir) => dir,
                    None => ctx.home.existing_app(&app)?,
                };
                Ok(addon::list(&dir)?
                    .into_iter()
                    .map(|a| {
                        let (status, pid) = lives.get(&a.id).copied().unwrap_or(("stopped", None));
                        AddonRow {
                            status: status.into(),
                            pid,
                            id: a.id,
                            addon: a.kind.name().into(),
                            plan: a.plan,
                            port: a.port,
                        }
                    })
                    .collect())
            })();
            let _ = reply.send(rows);
            None
        });
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
    fn submit(&mut self, name: String, job: Job, caller: Option<Caller>, opened: Opened) {
        if !self.serving() {
            return self.refuse(vec![caller]);
        }
        let handle = self.handle.clone();
        let a = self.keep(&name, opened);
        if busy(a) {
            if matches!(job, Job::Destroy) {
                let gone = call_off_deployments(&name, a);
                self.call_off(&name, gone);
            }
            let Some(a) = self.apps.get_mut(&name) else { return };
            if let (Job::Deploy(_), Some(c)) = (&job, &caller) {
                c.output().step(&format!(
                    "Another deployment of {name} is running: this one is queued"
                ));
            }
            if let Some(c) = &caller {
                turn::watch_hangup(c, &handle, &name);
            }
            a.queue.push_back((job, caller));
            return;
        }
        self.run_job(&name, job, caller);
    }

    /// Record and answer jobs taken out of `name`'s queue, on a worker (it writes the
    /// deployments' records); the app's next job waits until it reports (`Recorded`).
    fn call_off(&mut self, name: &str, gone: turn::CalledOff) {
        if gone.is_empty() {
            return;
        }
        let token = self.token();
        let Some(a) = self.apps.get_mut(name) else { return };
        a.recording.insert(token);
        let (dir, app) = (a.dir.clone(), name.to_string());
        self.spawn(move || {
            gone.tell(&dir);
            Some(Message::Recorded { app, token })
        });
    }

    fn run_job(&mut self, name: &str, job: Job, caller: Option<Caller>) {
        let Some(a) = self.apps.get_mut(name) else { return };
        let (call_off, called_off) = bounded::<()>(0);
        a.turn = Turn::Running {
            call_off: Some(call_off),
        };
        let worker = Worker::new(
            self.ctx.clone(),
            self.handle.clone(),
            a.dir.clone(),
            a.log.clone(),
        );
        let app = name.to_string();
        self.spawn(move || {
            worker.run(job, caller, called_off);
            Some(Message::JobDone { app })
        });
    }

    fn job_done(&mut self, name: &str) {
        let serving = self.serving();
        let Some(a) = self.apps.get_mut(name) else { return };
        if matches!(std::mem::replace(&mut a.turn, Turn::Idle), Turn::Destroyed) {
            // What waited for the destroyed app starts over with a new one: admitted
            // again (a deploy creates the app), in order, on a worker.
            let Some(a) = self.apps.remove(name) else { return };
            if a.queue.is_empty() {
                return;
            }
            let (ctx, handle, app) = (self.ctx.clone(), self.handle.clone(), name.to_string());
            self.spawn(move || {
                for (job, caller) in a.queue {
                    super::jobs::admit_and_send(&ctx, &handle, app.clone(), job, caller);
                }
                None
            });
            return;
        }
        if !serving {
            let refused = a.queue.drain(..).map(|(_, c)| c).collect();
            return self.refuse(refused);
        }
        self.next_job(name);
    }

    /// Start `name`'s next queued job, unless a job runs or call-offs are being recorded.
    fn next_job(&mut self, name: &str) {
        let Some(a) = self.apps.get_mut(name).filter(|a| !busy(a)) else {
            return;
        };
        if let Some((job, caller)) = a.queue.pop_front() {
            self.run_job(name, job, caller);
        }
    }

    /// Put `fresh` containers in service in place of those `leaving` selects (running,
    /// waiting for a restart or crashed): the routers switch to the new set, `answer` is
    /// given the names of the old ones, then they are stopped gracefully.
    ///
    /// A deploy's switch waits for `answer` alone, so it comes as soon as the routers point
    /// at the new set: starting the watchers and the stopping worker, writing the log
    /// lines, would hold it, and the threads they start compete for the cores with the
    /// deploy that waits.
    fn replace(
        &mut self,
        name: &str,
        fresh: Vec<Container>,
        leaving: Leaving,
        answer: impl FnOnce(Vec<String>),
    ) {
        let Some(a) = self.apps.get_mut(name) else {
            answer(Vec::new());
            return self.discard(name, fresh);
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
        let adopted = self.take_in(name, fresh);
        self.mark_stopping(name, &old);
        answer(old.iter().map(|c| c.name.clone()).collect());
        self.settle(name, adopted);
        if !old.is_empty() {
            self.discard(name, old);
        }
    }

    /// Ready containers join the app, each watched for its exit; the routers follow.
    fn adopt(&mut self, name: &str, fresh: Vec<Container>) {
        let adopted = self.take_in(name, fresh);
        self.settle(name, adopted);
    }

    /// Ready containers join the app's slots, and the routers point at them: what a
    /// switch must have done before it is answered. The rest is [`Supervisor::settle`]'s.
    fn take_in(&mut self, name: &str, fresh: Vec<Container>) -> Adopted {
        let now = self.ctx.clock.instant();
        let Some(a) = self.apps.get_mut(name) else {
            self.discard(name, fresh);
            return Adopted::default();
        };
        let mut adopted = Adopted::default();
        for c in fresh {
            // A one-off's start is the platform's `run` event.
            adopted.started.push(if c.spec.is_one_off() {
                events::Event::Run {
                    container: c.name.clone(),
                    command: c.spec.command.clone(),
                    release: c.release,
                }
            } else {
                events::Event::ContainerStarted {
                    container: c.name.clone(),
                    release: c.release,
                }
            });
            adopted.watch.push((c.id, c.child.exited().clone()));
            a.slots.retain(|s| !(s.is_present() && s.name() == c.name));
            a.slots.push(Slot::ready(c, now));
        }
        a.slots.sort_by_key(Slot::name);
        a.routers.reroute(&a.slots);
        adopted
    }

    /// What follows taking containers in: each is watched for its exit (a leader that
    /// exited meanwhile is seen at once), and their start is said in the app's log.
    fn settle(&mut self, name: &str, adopted: Adopted) {
        for (id, exited) in adopted.watch {
            watch(&self.handle, name, id, exited);
        }
        if adopted.started.is_empty() {
            return;
        }
        self.in_log(name, move |ctx, log, app| {
            for event in adopted.started {
                ctx.event(log, app, event);
            }
        });
    }

    /// Stop containers that leave the app: SIGTERM, SIGKILL after the grace period,
    /// listed as `stopping` meanwhile.
    fn retire(&mut self, name: &str, old: Vec<Container>) {
        if old.is_empty() {
            return;
        }
        self.mark_stopping(name, &old);
        self.discard(name, old);
    }

    /// List containers as `stopping` until they are gone (`Message::Stopped`).
    fn mark_stopping(&mut self, name: &str, old: &[Container]) {
        let now = self.ctx.clock.instant();
        let Some(a) = self.apps.get_mut(name) else { return };
        for c in old {
            a.slots.push(Slot {
                spec: c.spec.clone(),
                release: c.release,
                restarts: c.restarts,
                since: now,
                life: Life::Stopping {
                    id: c.id,
                    program: c.program_pid(),
                    shim: c.child.pid(),
                    port: c.port,
                },
            });
        }
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
        let app = name.to_string();
        self.spawn(move || {
            container::stop_all(old, grace);
            stop_servers(servers);
            Some(Message::Stopped { app, ids })
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
        let now = self.ctx.clock.instant();
        let Some(a) = self.apps.get_mut(&app) else { return };
        let slot = &mut a.slots[i];
        // How long it ran, on the platform's clock: one that ran a while before crashing
        // starts a new streak.
        let ran = now.saturating_duration_since(slot.since);
        slot.since = now;
        let Life::Ready(mut crashed) = std::mem::replace(&mut slot.life, Life::Exited { token }) else {
            return;
        };
        let streak = life::crash_streak(crashed.crash_streak, ran);
        a.routers.reroute(&a.slots);
        self.spawn(move || {
            let exit = container::reap(&mut crashed);
            let out_of_memory = crashed.child.stopped_for_memory();
            Some(Message::Reaped {
                app,
                token,
                exit,
                out_of_memory,
                streak,
            })
        });
    }

    /// A one-off's program ended: it is never restarted. Its group is cleaned up, and its
    /// end is a platform event in the app's log.
    fn one_off_ended(&mut self, app: &str, i: usize) {
        let Some(a) = self.apps.get_mut(app) else { return };
        let slot = a.slots.remove(i);
        let Life::Ready(mut ended) = slot.life else { return };
        let (ctx, log) = (self.ctx.clone(), a.log.clone());
        let (app, id) = (app.to_string(), ended.id);
        self.spawn(move || {
            let exit = container::reap(&mut ended);
            if let Some(size) = ended.child.stopped_for_memory() {
                ctx.event(&log, &app, life::out_of_memory_event(&ended.name, size));
            }
            let event = events::Event::RunEnded {
                container: ended.name.clone(),
                exit: exit.to_string(),
                release: ended.release,
            };
            ctx.event(&log, &app, event);
            Some(Message::Stopped { app, ids: vec![id] })
        });
    }

    /// Hand `write` to the writer thread with the log of `app` (nothing if the supervisor
    /// does not keep it): its lines land in the order said, and the supervisor never
    /// waits on the disk.
    fn in_log(&self, app: &str, write: impl FnOnce(&Context, &AppLog, &str) + Send + 'static) {
        let Some(a) = self.apps.get(app) else { return };
        let (ctx, log, app) = (self.ctx.clone(), a.log.clone(), app.to_string());
        self.writer.write(move || write(&ctx, &log, &app));
    }

    /// After a crash (or a failed restart): restart the container after a pause that
    /// grows with `streak`, or leave it crashed once the streak reaches `crash_limit`.
    fn crashed(&mut self, app: &str, i: usize, streak: u32, crash: Crash) {
        if !self.serving() {
            return;
        }
        let settings = &self.ctx.settings;
        let now = self.ctx.clock.instant();
        let Some(a) = self.apps.get_mut(app) else { return };
        let slot = &mut a.slots[i];
        let name = slot.name();
        let event = match crash.out_of_memory {
            Some(size) => life::out_of_memory_event(&name, size),
            None => events::Event::Crash {
                container: name.clone(),
                reason: crash.reason.clone(),
                release: slot.release,
            },
        };
        // The crash policy giving up is an event of its own, after the crash's lines.
        let mut given_up = None;
        let said = match life::after_crash(streak, settings.crash_limit, settings.crash_backoff) {
            AfterCrash::Restart(pause) => {
                slot.life = Life::Restarting {
                    at: now + pause,
                    streak,
                };
                let when = if pause.is_zero() {
                    String::new()
                } else {
                    format!(" in {}", crate::units::human_duration(pause))
                };
                format!("{}: restarting it{when}", crash.message)
            }
            AfterCrash::GiveUp => {
                slot.life = Life::Crashed {
                    reason: crash.reason.clone(),
                };
                given_up = Some(events::Event::RepeatedCrash {
                    container: name.clone(),
                    crashes: streak,
                    reason: crash.reason.clone(),
                    release: slot.release,
                });
                format!(
                    "{}; it crashed {streak} times in a row: left crashed (`shipway restart {name}` tries again)",
                    crash.message
                )
            }
        };
        self.in_log(app, move |ctx, log, app| {
            ctx.event(log, app, event);
            let lines = ctx.container_log(log, app, &name);
            for line in std::iter::once(&said).chain(&crash.details) {
                lines(Stream::Stderr, line);
            }
            if let Some(e) = given_up {
                ctx.event(log, app, e);
            }
        });
    }

    /// When the next pending restart is due.
    fn next_restart(&self) -> Option<Instant> {
        // Nothing is restarted once the platform stops.
        if !self.serving() {
            return None;
        }
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
        let now = self.ctx.clock.instant();
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
                    (a.dir.clone(), a.log.clone()),
                    token,
                    slot.release,
                    slot.spec.clone(),
                ));
            }
        }
        for (app, (dir, log), token, release, spec) in starts {
            let ctx = self.ctx.clone();
            self.spawn(move || {
                let result = jobs::start_again(&ctx, &dir, &log, release, spec);
                Some(Message::Restarted { app, token, result })
            });
        }
    }

    fn restarted(&mut self, app: &str, token: u64, result: Result<Container, RestartError>) {
        let found = self.find(
            app,
            |l| matches!(l, Life::Starting { token: t, .. } if *t == token),
        );
        let Some((app, i)) = found.filter(|_| self.serving()) else {
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

    fn serving(&self) -> bool {
        matches!(self.phase, Phase::Serving { .. })
    }

    /// Run `work` on a worker thread; what it returns comes back as a message. The one
    /// place a worker is counted: the supervisor ends only once every one has reported
    /// (`Message::Worked`).
    fn spawn(&mut self, work: impl FnOnce() -> Option<Message> + Send + 'static) {
        self.workers += 1;
        let handle = self.handle.clone();
        std::thread::spawn(move || {
            let report = work();
            handle.send(Message::Worked(report.map(Box::new)));
        });
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// `down`, Ctrl-C: refuse new jobs, call off queued ones, cancel running ones (they
    /// select on `ctx.stopping`), and wake the server's accept loop (a worker answers the
    /// queued ones and connects to the socket).
    fn stop(&mut self) {
        if !self.serving() {
            return;
        }
        if let Phase::Serving { stop } = std::mem::replace(&mut self.phase, Phase::Stopping) {
            drop(stop);
        }
        let refused: Vec<Option<Caller>> = self
            .apps
            .values_mut()
            .flat_map(|a| a.queue.drain(..).map(|(_, c)| c))
            .collect();
        let socket = self.ctx.home.socket();
        self.spawn(move || {
            for caller in refused {
                refuse(caller);
            }
            let _ = UnixStream::connect(socket);
            None
        });
    }

    /// Tell the callers of jobs the platform will not run that it is stopping, on a
    /// worker: a client that does not read could hold the write.
    fn refuse(&mut self, callers: Vec<Option<Caller>>) {
        if callers.iter().all(Option::is_none) {
            return;
        }
        self.spawn(move || {
            for caller in callers {
                refuse(caller);
            }
            None
        });
    }

    /// Stop every app, once no job runs: routers first (no new request), then
    /// containers gracefully.
    fn dismantle_all(&mut self) {
        self.phase = Phase::Dismantled;
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
/// as the client's Ctrl-C would, so the destroy does not wait for a long build or hook,
/// and no deployment reports success for an app about to be gone. Other jobs (scale,
/// restart...) are short: they finish. The queued ones are returned, to be recorded.
fn call_off_deployments(name: &str, a: &mut App) -> turn::CalledOff {
    if let Turn::Running { call_off } = &mut a.turn {
        drop(call_off.take());
    }
    turn::deployments(name, &mut a.queue)
}

/// Whether the app's next job must wait: one runs, or call-offs are being recorded.
fn busy(a: &App) -> bool {
    !matches!(a.turn, Turn::Idle) || !a.recording.is_empty()
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
        .filter_map(|k| match a.addons.remove(k) {
            Some(AddonLife::Running { server, .. }) => Some(*server),
            _ => None,
        })
        .collect()
}

/// An addon as stored now (its port may have moved), with its app's folder as the
/// supervisor opened it; none if the app is gone meanwhile.
fn server_addon(dir: AppDir, id: &str) -> Option<(AppDir, addon::Addon)> {
    let dir = Some(dir).filter(AppDir::exists)?;
    let a = addon::list(&dir).ok()?.into_iter().find(|a| a.id == id)?;
    Some((dir, a))
}

/// Containers taken in whose watchers are still to start, and the log lines to say.
#[derive(Default)]
struct Adopted {
    watch: Vec<(u64, Receiver<()>)>,
    started: Vec<events::Event>,
}

/// Tell the supervisor when container `id`'s leader exits (`exited` disconnects).
fn watch(handle: &Handle, app: &str, id: u64, exited: Receiver<()>) {
    let (handle, app) = (handle.clone(), app.to_string());
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

#[cfg(test)]
mod tests {
    //! The supervisor driven by hand: messages in, its state and its app logs out, the
    //! clock moved by the test. Workers run for real (on an empty home they fail fast)
    //! and their reports are handled as the supervisor's loop would.

    use std::os::unix::process::ExitStatusExt;
    use std::time::Duration;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::container::ContainerSpec;
    use crate::process::Exit;
    use crate::settings::Settings;

    /// 2026-12-07 10:00:30 UTC.
    const T0_MS: u64 = 1_796_637_630_000;
    const BACKOFF: Duration = Duration::from_secs(1);
    const REPORT: Duration = Duration::from_secs(20);

    struct Bench {
        sup: Supervisor,
        rx: Receiver<Message>,
        clock: Arc<ManualClock>,
        home: tempfile::TempDir,
    }

    fn bench() -> Bench {
        let home = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults(home.path().to_path_buf());
        settings.crash_limit = 4;
        settings.crash_backoff = BACKOFF;
        let (mut ctx, stop) = Context::for_tests(settings);
        let clock = Arc::new(ManualClock::at(T0_MS));
        ctx.clock = clock.clone();
        let (sup, rx) = Supervisor::new(Arc::new(ctx), stop);
        Bench { sup, rx, clock, home }
    }

    impl Bench {
        /// App `name` created on disk and kept by the supervisor, with `lives` as web-1,
        /// web-2...
        fn app(&mut self, name: &str, lives: Vec<Life>) {
            self.sup.ctx.home.app(name).unwrap().create().unwrap();
            let opened = Opened::existing(&self.sup.ctx, name).unwrap();
            let since = self.clock.instant();
            let a = self.sup.keep(name, opened);
            a.release = Some(1);
            for (i, life) in lives.into_iter().enumerate() {
                a.slots.push(Slot {
                    spec: ContainerSpec {
                        process_type: "web".into(),
                        index: i as u32 + 1,
                        command: "serve".into(),
                    },
                    release: 1,
                    restarts: 0,
                    since,
                    life,
                });
            }
        }

        fn life(&self, app: &str, i: usize) -> &Life {
            &self.sup.apps[app].slots[i].life
        }

        /// Handle the queue's messages (workers' reports, their calls) until `done`.
        fn pump(&mut self, what: &str, done: impl Fn(&Supervisor) -> bool) {
            while !done(&self.sup) {
                match self.rx.recv_timeout(REPORT) {
                    Ok(m) => self.sup.handle(m),
                    Err(_) => panic!("no report came for {what}"),
                }
            }
        }

        /// What the supervisor wrote in `app`'s log.
        fn log(&self, app: &str) -> String {
            self.sup.writer.flush();
            let path = self.home.path().join("apps").join(app).join("app.log");
            std::fs::read_to_string(path).unwrap_or_default()
        }

        fn crash(&mut self, app: &str, token: u64, streak: u32) {
            self.sup.handle(Message::Reaped {
                app: app.into(),
                token,
                exit: Exit(std::process::ExitStatus::from_raw(3 << 8)),
                streak,
                out_of_memory: None,
            });
        }

        /// Start the due restarts; each fails (no release on disk) and is handled.
        fn restart_due_and_fail(&mut self) {
            self.sup.restart_due();
            self.pump("the failed restart", |s| {
                s.workers == 0
                    && !s.apps["a"]
                        .slots
                        .iter()
                        .any(|s| matches!(s.life, Life::Starting { .. }))
            });
        }
    }

    /// A client of a job: the platform's end, and the client's, to read or hang up.
    fn caller() -> (Caller, UnixStream) {
        let (server, client) = UnixStream::pair().unwrap();
        let caller = Caller::new(server.try_clone().unwrap(), std::io::BufReader::new(server)).unwrap();
        client.set_read_timeout(Some(REPORT)).unwrap();
        (caller, client)
    }

    /// What the client read, up to the last event.
    fn answer(client: UnixStream) -> String {
        let mut said = String::new();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(client));
        while !said.contains("\"code\"") {
            said.push_str(&lines.next().expect("an answer").unwrap());
        }
        said
    }

    fn deploy_job() -> Job {
        Job::Deploy(crate::platform::protocol::DeployArgs {
            input: crate::pipeline::Input {
                path: "/nonexistent/app".into(),
                git_ref: Some("main".into()),
            },
            port: None,
            env: BTreeMap::new(),
            source: None,
        })
    }

    /// A ready `web-1` whose program exits with code 3 at once, after `streak` quick
    /// crashes in a row.
    fn crashing_web(dir: &std::path::Path, streak: u32) -> Container {
        web(dir, &["/bin/sh", "-c", "exit 3"], streak)
    }

    /// A ready `web-1` running `program`, after `streak` quick crashes in a row.
    fn web(dir: &std::path::Path, program: &[&str], streak: u32) -> Container {
        let child = crate::process::Spawn::new(program[0], dir)
            .args(program[1..].iter().copied())
            .start(Arc::new(|_, _| {}))
            .unwrap();
        Container {
            id: 42,
            release: 1,
            restarts: 0,
            crash_streak: streak,
            spec: ContainerSpec {
                process_type: "web".into(),
                index: 1,
                command: program.join(" "),
            },
            name: "web-1".into(),
            port: None,
            child,
            size: crate::platform_numbers::DEFAULT_SIZE,
            tail: crate::tail::SharedTail::new(20),
        }
    }

    /// The crash streak after web-1, taken in with 2 quick crashes behind it, ran `ran`
    /// on the platform's clock (its program exits at once in real time).
    fn streak_after_a_run_of(ran: Duration) -> Option<(Duration, u32)> {
        let mut b = bench();
        b.app("a", Vec::new());
        let web = crashing_web(b.home.path(), 2);
        b.sup.adopt("a", vec![web]);
        b.clock.advance(ran);
        b.pump("the crash", |s| {
            s.workers == 0 && restarting_at(&s.apps["a"].slots[0].life).is_some()
        });
        let (at, streak) = restarting_at(b.life("a", 0))?;
        Some((at - b.clock.instant(), streak))
    }

    fn restarting_at(life: &Life) -> Option<(Instant, u32)> {
        match life {
            Life::Restarting { at, streak } => Some((*at, *streak)),
            _ => None,
        }
    }

    #[test]
    fn a_switch_reads_the_release_s_jobs_in_the_folder_the_supervisor_opened() {
        use std::os::unix::fs::PermissionsExt;
        let mut b = bench();
        b.app("a", Vec::new());
        let dir = b.sup.apps["a"].dir.clone();
        crate::state::private_dir(&dir.release(2)).unwrap();
        let job = crate::cron::Job::parse("* * * * * echo hi", None).unwrap();
        crate::cron::save(&dir.release(2), &[job]).unwrap();
        // Group-writable since the app was opened: seen at its next opening (the
        // platform's next start), not at each switch.
        std::fs::set_permissions(&dir.root, std::fs::Permissions::from_mode(0o770)).unwrap();
        let (reply, answered) = bounded(1);
        b.sup.handle(Message::Switch {
            app: "a".into(),
            release: 2,
            containers: Vec::new(),
            reply,
        });
        assert_eq!(answered.recv_timeout(REPORT), Ok(0));
        b.pump("the release's jobs read", |s| s.workers == 0);
        let now = b.sup.ctx.clock.unix_secs();
        assert_eq!(b.sup.cron.wake_in(now), Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_first_crash_is_restarted_at_once() {
        let mut b = bench();
        b.app("a", vec![Life::Exited { token: 7 }]);
        let t0 = b.clock.instant();
        b.crash("a", 7, 1);
        assert_eq!(restarting_at(b.life("a", 0)), Some((t0, 1)));
        assert_eq!(b.sup.next_restart(), Some(t0));
        b.sup.restart_due();
        assert!(matches!(b.life("a", 0), Life::Starting { streak: 1, .. }));
        assert_eq!(b.sup.apps["a"].slots[0].restarts, 1);
        assert_eq!(b.sup.workers, 1, "the start runs on a worker");
        let log = b.log("a");
        assert!(
            log.contains("[platform] web-1 crashed: exited with code 3 (release v1)"),
            "{log}"
        );
        assert!(
            log.contains("[web-1] web-1 exited with code 3: restarting it\n"),
            "{log}"
        );
    }

    #[test]
    fn a_failed_restart_waits_the_backoff_on_the_clock_then_twice_as_long() {
        let mut b = bench();
        b.app("a", vec![Life::Exited { token: 7 }]);
        b.crash("a", 7, 1);
        b.restart_due_and_fail();
        // Its release cannot be read: a second quick crash, restarted after the backoff.
        let (at, streak) = restarting_at(b.life("a", 0)).expect("restarting");
        assert_eq!((at - b.clock.instant(), streak), (BACKOFF, 2));
        b.clock.advance(BACKOFF - Duration::from_millis(1));
        b.sup.restart_due();
        assert!(
            restarting_at(b.life("a", 0)).is_some(),
            "not due a millisecond early"
        );
        assert_eq!(b.sup.workers, 0);
        b.clock.advance(Duration::from_millis(1));
        b.restart_due_and_fail();
        let (at, streak) = restarting_at(b.life("a", 0)).expect("restarting");
        assert_eq!((at - b.clock.instant(), streak), (BACKOFF * 2, 3));
        assert!(b.log("a").contains("cannot be restarted"), "{}", b.log("a"));
        assert!(b.log("a").contains("restarting it in 2.0s"), "{}", b.log("a"));
    }

    #[test]
    fn quick_crashes_up_to_the_limit_leave_it_crashed_and_say_how_to_try_again() {
        let mut b = bench();
        b.app("a", vec![Life::Exited { token: 7 }]);
        b.crash("a", 7, 1);
        for _ in 0..3 {
            let (at, _) = restarting_at(b.life("a", 0)).expect("restarting");
            b.clock.advance(at.saturating_duration_since(b.clock.instant()));
            b.restart_due_and_fail();
        }
        assert!(
            matches!(b.life("a", 0), Life::Crashed { reason } if reason.contains("cannot be restarted")),
            "crash_limit 4: left crashed"
        );
        assert_eq!(b.sup.next_restart(), None);
        assert_eq!(b.sup.apps["a"].slots[0].restarts, 3);
        let log = b.log("a");
        assert!(
            log.contains("it crashed 4 times in a row: left crashed (`shipway restart web-1` tries again)"),
            "{log}"
        );
    }

    #[test]
    fn the_next_restart_is_the_earliest_of_every_app() {
        let mut b = bench();
        let t0 = b.clock.instant();
        let later = |s: u64| Life::Restarting {
            at: t0 + Duration::from_secs(s),
            streak: 2,
        };
        b.app("a", vec![later(9), Life::Crashed { reason: "x".into() }]);
        b.app("b", vec![later(4), later(6)]);
        assert_eq!(b.sup.next_restart(), Some(t0 + Duration::from_secs(4)));
        b.clock.advance(Duration::from_secs(5));
        b.sup.restart_due();
        assert!(matches!(b.life("b", 0), Life::Starting { .. }));
        assert!(restarting_at(b.life("b", 1)).is_some());
        assert_eq!(b.sup.workers, 1);
    }

    #[test]
    fn a_report_of_an_attempt_taken_over_meanwhile_changes_nothing() {
        let mut b = bench();
        b.app(
            "a",
            vec![Life::Exited { token: 7 }, Life::Starting { token: 8, streak: 1 }],
        );
        b.crash("a", 99, 1);
        assert!(matches!(b.life("a", 0), Life::Exited { token: 7 }));
        b.sup.handle(Message::Restarted {
            app: "a".into(),
            token: 99,
            result: Err(RestartError::Rollout(RolloutError::Cancelled)),
        });
        assert!(matches!(b.life("a", 1), Life::Starting { token: 8, .. }));
        // A report for an app the platform no longer knows.
        b.crash("gone", 7, 1);
        assert!(!b.sup.apps.contains_key("gone"));
    }

    #[test]
    fn a_stopping_platform_restarts_nothing_and_ends_once_idle() {
        let mut b = bench();
        b.app("a", vec![Life::Exited { token: 7 }]);
        b.sup.handle(Message::Stop);
        b.crash("a", 7, 1);
        assert!(
            matches!(b.life("a", 0), Life::Exited { .. }),
            "nothing crashed: it stops"
        );
        assert_eq!(b.sup.next_restart(), None);
        // The loop, woken by a message (a second `down`), dismantles every app and ends,
        // no worker being out.
        let Bench { sup, rx, .. } = b;
        sup.handle.send(Message::Stop);
        let (done, ended) = bounded(1);
        std::thread::spawn(move || {
            sup.run(rx);
            let _ = done.send(());
        });
        ended
            .recv_timeout(REPORT)
            .expect("the supervisor ended once nothing ran");
    }

    #[test]
    fn a_job_sent_while_stopping_is_refused() {
        let mut b = bench();
        b.sup.handle(Message::Stop);
        let (caller, client) = caller();
        b.sup.ctx.home.app("a").unwrap().create().unwrap();
        let opened = Opened::existing(&b.sup.ctx, "a").unwrap();
        b.sup.submit("a".into(), Job::Destroy, Some(caller), opened);
        assert!(!b.sup.apps.contains_key("a"), "not kept");
        let said = answer(client);
        assert!(
            said.contains("the platform is stopping: nothing was done"),
            "{said}"
        );
    }

    #[test]
    fn a_scheduled_job_starts_on_its_minute_of_the_clock() {
        let mut b = bench();
        b.app("a", Vec::new());
        let job = crate::cron::Job::parse("* * * * * echo tick", None).unwrap();
        b.sup.handle(Message::CronLoaded {
            app: "a".into(),
            release: 1,
            jobs: vec![job],
        });
        // 10:00:30: the next minute is 30 s away.
        let wake = b.sup.cron.wake_in(b.clock.unix_secs());
        assert_eq!(wake, Some(Duration::from_secs(30)));
        b.clock.advance(Duration::from_secs(29));
        b.sup.cron_due();
        assert_eq!(b.sup.workers, 0, "not due before its minute");
        b.clock.advance(Duration::from_secs(1));
        b.sup.cron_due();
        assert_eq!(b.sup.workers, 1, "the run starts on a worker");
        b.pump("the run", |s| s.workers == 0);
        let log = b.log("a");
        assert!(
            log.contains("[cron-1] Starting job 1 (schedule) of release 1, size M: * * * * * echo tick"),
            "{log}"
        );
        // Release 1 is not on disk: the run says so and ends.
        assert!(log.contains("[cron-1] "), "{log}");
        assert_eq!(
            b.sup.cron.wake_in(b.clock.unix_secs()),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn the_jobs_of_a_release_no_longer_serving_are_not_scheduled() {
        let mut b = bench();
        b.app("a", Vec::new());
        b.sup.apps.get_mut("a").unwrap().release = Some(2);
        let job = crate::cron::Job::parse("* * * * * echo old", None).unwrap();
        b.sup.handle(Message::CronLoaded {
            app: "a".into(),
            release: 1,
            jobs: vec![job],
        });
        assert_eq!(b.sup.cron.wake_in(b.clock.unix_secs()), None);
        // Nor once the platform stops (its worker wakes the server's accept loop).
        b.sup.handle(Message::Stop);
        b.pump("the stop's worker", |s| s.workers == 0);
        b.clock.advance(Duration::from_secs(3600));
        b.sup.cron_due();
        assert_eq!(b.sup.workers, 0);
    }

    #[test]
    fn jobs_of_one_app_run_one_at_a_time_in_order() {
        let mut b = bench();
        b.app("a", Vec::new());
        let opened = || Opened::existing(&b.sup.ctx, "a").unwrap();
        let (first, second) = (opened(), opened());
        b.sup.submit("a".into(), Job::Restart(None), None, first);
        assert!(matches!(b.sup.apps["a"].turn, Turn::Running { .. }));
        b.sup
            .submit("a".into(), Job::Restart(Some("web".into())), None, second);
        assert_eq!(b.sup.apps["a"].queue.len(), 1, "the second waits its turn");
        b.pump("both jobs", |s| {
            s.workers == 0 && s.apps["a"].queue.is_empty() && matches!(s.apps["a"].turn, Turn::Idle)
        });
    }

    #[test]
    fn a_destroyed_app_is_forgotten_when_its_job_ends() {
        let mut b = bench();
        b.app("a", vec![Life::Crashed { reason: "x".into() }]);
        b.sup.apps.get_mut("a").unwrap().turn = Turn::Running { call_off: None };
        let (reply, handed) = bounded(1);
        b.sup.handle(Message::Dismantle {
            app: "a".into(),
            reply,
        });
        assert!(handed.recv().unwrap().is_empty(), "no container was ready");
        assert!(matches!(b.sup.apps["a"].turn, Turn::Destroyed));
        b.sup.handle(Message::JobDone { app: "a".into() });
        assert!(!b.sup.apps.contains_key("a"));
    }

    #[test]
    fn ps_answers_from_the_slots_with_each_life_s_status() {
        let mut b = bench();
        b.app(
            "a",
            vec![
                Life::Crashed {
                    reason: "exited with code 3".into(),
                },
                Life::Restarting {
                    at: b.clock.instant(),
                    streak: 2,
                },
            ],
        );
        b.clock.advance(Duration::from_millis(1500));
        let (reply, answer) = bounded(1);
        b.sup.handle(Message::Ps {
            app: "a".into(),
            reply,
        });
        let rows = answer.recv_timeout(REPORT).unwrap().unwrap();
        let seen: Vec<(&str, &str, Option<u64>)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.status.as_str(), r.uptime_ms))
            .collect();
        assert_eq!(
            seen,
            [("web-1", "crashed", None), ("web-2", "starting", Some(1500))]
        );
    }

    #[test]
    fn a_queued_deployment_whose_client_hung_up_is_recorded_aborted_by_a_worker() {
        let mut b = bench();
        b.app("a", Vec::new());
        let a = b.sup.apps.get_mut("a").unwrap();
        a.turn = Turn::Running { call_off: None };
        let (gone, client) = caller();
        drop(client);
        // The client's end is closed: its reader thread sees it.
        let _ = gone.hangup().recv_timeout(REPORT);
        a.queue.push_back((deploy_job(), Some(gone)));
        a.queue.push_back((Job::Restart(None), None));
        b.sup.handle(Message::HungUp { app: "a".into() });
        let a = &b.sup.apps["a"];
        assert!(
            matches!(a.queue.front(), Some((Job::Restart(_), None))) && a.queue.len() == 1,
            "the deployment leaves the queue at once; the job whose client is there stays"
        );
        assert_eq!(a.recording.len(), 1, "its record is a worker's to write");
        assert_eq!(b.sup.workers, 1);
        b.pump("the record", |s| {
            s.workers == 0 && s.apps["a"].recording.is_empty()
        });
        let dir = b.sup.ctx.home.app("a").unwrap();
        let statuses: Vec<_> = crate::deployment::Deployment::list(&dir)
            .iter()
            .map(|d| (d.status(), d.source.clone(), d.git_ref.clone()))
            .collect();
        assert_eq!(
            statuses,
            [(
                Some(crate::deployment::Status::Aborted),
                "/nonexistent/app".to_string(),
                Some("main".to_string())
            )]
        );
        assert!(
            matches!(b.sup.apps["a"].turn, Turn::Running { .. }),
            "the running job goes on"
        );
    }

    #[test]
    fn a_destroy_starts_only_once_the_deployments_it_called_off_are_recorded() {
        let mut b = bench();
        b.app("a", Vec::new());
        let (running, called_off) = bounded::<()>(0);
        b.sup.apps.get_mut("a").unwrap().turn = Turn::Running {
            call_off: Some(running),
        };
        let opened = || Opened::existing(&b.sup.ctx, "a").unwrap();
        let (queued, client) = caller();
        let (first, second) = (opened(), opened());
        b.sup.submit("a".into(), deploy_job(), Some(queued), first);
        b.sup.submit("a".into(), Job::Destroy, None, second);
        assert_eq!(
            called_off.recv_timeout(REPORT),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected),
            "the running deployment is called off"
        );
        let a = &b.sup.apps["a"];
        assert!(matches!(a.queue.front(), Some((Job::Destroy, None))) && a.queue.len() == 1);
        assert_eq!(a.recording.len(), 1);
        // The running job ends before the worker has reported: the destroy still waits.
        b.sup.handle(Message::JobDone { app: "a".into() });
        let a = &b.sup.apps["a"];
        assert!(
            matches!(a.turn, Turn::Idle) && a.queue.len() == 1,
            "the destroy waits"
        );
        // Then, message by message: the destroy never runs while the record is written.
        while b.sup.apps.contains_key("a") || b.sup.workers > 0 {
            if let Some(a) = b.sup.apps.get("a") {
                assert!(
                    a.recording.is_empty() || !matches!(a.turn, Turn::Running { .. }),
                    "the destroy ran before the record was written"
                );
            }
            let m = b.rx.recv_timeout(REPORT).expect("a report");
            b.sup.handle(m);
        }
        assert!(!b.home.path().join("apps").join("a").exists(), "destroyed");
        let said = answer(client);
        assert!(
            said.contains("Deployment aborted while queued: a is being destroyed"),
            "{said}"
        );
        assert!(said.contains("\"code\":130"), "{said}");
    }

    #[test]
    fn a_crash_after_a_long_run_on_the_clock_starts_a_new_streak() {
        assert_eq!(
            streak_after_a_run_of(life::QUICK_CRASH),
            Some((Duration::ZERO, 1)),
            "restarted at once, as a first crash"
        );
    }

    #[test]
    fn a_crash_within_the_quick_crash_window_on_the_clock_adds_to_the_streak() {
        assert_eq!(
            streak_after_a_run_of(life::QUICK_CRASH - Duration::from_millis(1)),
            Some((BACKOFF * 2, 3)),
            "the third quick crash in a row waits twice the backoff"
        );
    }

    #[test]
    fn ps_finds_a_program_the_supervisor_did_not_know_on_its_worker_even_once_stopping() {
        let mut b = bench();
        b.app("a", Vec::new());
        let web = web(b.home.path(), &["/bin/sleep", "1000"], 0);
        let shim = web.child.pid();
        b.sup.adopt("a", vec![web]);
        let deadline = Instant::now() + REPORT;
        let program = loop {
            match crate::process::program_of(nix::unistd::Pid::from_raw(shim as i32)) {
                Some(p) => break p.as_raw() as u32,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                None => panic!("the shim never started its program"),
            }
        };
        let ps = |b: &mut Bench| {
            let (reply, answer) = bounded(1);
            b.sup.handle(Message::Ps {
                app: "a".into(),
                reply,
            });
            let rows = answer.recv_timeout(REPORT).unwrap().unwrap();
            rows.iter().map(|r| (r.status.clone(), r.pid)).collect::<Vec<_>>()
        };
        assert_eq!(ps(&mut b), [("running".to_string(), Some(program))]);
        let known = |b: &Bench| {
            b.sup.apps["a"]
                .slots
                .iter()
                .find_map(Slot::container)
                .map(Container::program_pid)
        };
        assert_eq!(
            known(&b),
            Some(None),
            "the supervisor's thread did not look it up"
        );
        // Being stopped, it is listed as stopping under the same pid (the test stops it
        // itself, after `ps`: a stop's worker could end it before `ps` reads /proc).
        let Life::Ready(mut web) = b.sup.apps.get_mut("a").unwrap().slots.remove(0).life else {
            panic!("web-1 is ready");
        };
        b.sup.mark_stopping("a", std::slice::from_ref(&*web));
        assert!(matches!(b.life("a", 0), Life::Stopping { program: None, .. }));
        assert_eq!(ps(&mut b), [("stopping".to_string(), Some(program))]);
        web.stop(Duration::from_secs(1));
        b.pump("the ps workers", |s| s.workers == 0);
    }
}
