//! The platform process (`shipway up`, or started in the background by `deploy`): it
//! listens on a Unix socket (mode 0600) in `SHIPWAY_HOME`, decodes each request and
//! forwards it to the supervisor, which owns every app's routers and containers.
//!
//! It holds no state of its own: what it answers comes from the supervisor.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use crossbeam_channel::bounded;

use super::caller::Caller;
use super::context::Context;
use super::dashboard::Dashboard;
use super::jobs;
use super::message::{Handle, Job, Message};
use super::opened::Opened;
use super::protocol::{self, Event, Request};
use super::supervisor;
use super::watchdog::Watchdog;
use crate::clock::SystemClock;
use crate::error::{exit, Error};
use crate::process::{self, GroupEvent};
use crate::settings::Settings;
use crate::state::Home;

/// Run the platform until `down`, SIGINT or SIGTERM. Returns the exit status.
pub fn run(settings: Settings, foreground: bool) -> Result<i32, Error> {
    super::lock::close_inherited_descriptors();
    let home = Home::open(&settings.home)?;
    let platform_lock = super::lock::PlatformLock::acquire(&home)?;
    let mut listener = super::listen::Listener::bind(&home.socket())?;

    let watchdog = Arc::new(
        Watchdog::spawn().map_err(|source| Error::io("start the watchdog", home.root.clone(), source))?,
    );
    let w = watchdog.clone();
    process::set_guard(Box::new(move |event| match event {
        GroupEvent::Started(pgid) => w.watch(pgid),
        GroupEvent::Ended(pgid) => w.forget(pgid),
    }));

    let (stop_tx, stop_rx) = bounded::<()>(0);
    let clock = Arc::new(SystemClock {
        ahead: settings.cron_clock_ahead,
    });
    let ctx = Arc::new(Context {
        settings,
        home,
        foreground,
        stopping: stop_rx,
        telemetry: Default::default(),
        clock,
    });
    ctx.say(&format!(
        "shipway platform {} (pid {}) on {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        listener.path().display()
    ));
    for (k, v) in ctx.settings.describe() {
        if Settings::per_command(&k) {
            ctx.say(&format!(
                "  {k}: each deploy's own (--port, SHIPWAY_PORT), for an app's first deploy"
            ));
        } else {
            ctx.say(&format!("  {k} = {v}"));
        }
    }
    ctx.home.sweep().iter().for_each(|p| {
        ctx.say(&format!(
            "removed {}: left by an interrupted build or write",
            p.display()
        ))
    });
    let (supervisor, supervising) = supervisor::start(ctx.clone(), stop_tx)?;
    jobs::restore(&ctx, &supervisor);
    watch_signals(&ctx, &supervisor);

    let dashboard = Arc::new(Dashboard::default());
    while let Some(stream) = listener.next(&ctx.stopping) {
        let (s, c, d) = (supervisor.clone(), ctx.clone(), dashboard.clone());
        std::thread::spawn(move || serve(&c, &s, &d, stream));
    }
    // The supervisor ends once every app is stopped.
    let _ = supervising.join();
    drop(listener);
    if let Ok(w) = Arc::try_unwrap(watchdog) {
        w.finish();
    }
    platform_lock.release();
    Ok(exit::SUCCESS)
}

/// Stop, at the first SIGINT or SIGTERM; exit at the second (the watchdog then kills
/// what is left).
fn watch_signals(ctx: &Arc<Context>, supervisor: &Handle) {
    let cancel = crate::signals::cancel_on_interrupt();
    let (ctx, supervisor) = (ctx.clone(), supervisor.clone());
    std::thread::spawn(move || {
        let _ = cancel.recv();
        ctx.say("stopping: every app gets SIGTERM, then SIGKILL after the grace period (Ctrl-C again to kill now)");
        supervisor.send(Message::Stop);
    });
}

/// One client: decode its request and hand it to the supervisor, with a way to answer.
fn serve(ctx: &Arc<Context>, supervisor: &Handle, dashboard: &Dashboard, stream: UnixStream) {
    let grace = ctx.settings.grace_period;
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    let request: Request = match protocol::read(&mut reader) {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            let _ = protocol::write(
                &mut writer,
                &Event::Error {
                    message: format!("cannot read the request: {e}"),
                },
            );
            return;
        }
    };
    let (app, job) = match request {
        Request::Status => {
            if let Ok(info) = supervisor.call(|reply| Message::Status { reply }) {
                let _ = protocol::write(&mut writer, &info);
            }
            return;
        }
        Request::Ps { app } => {
            let event = match supervisor
                .call(|reply| Message::Ps { app, reply })
                .and_then(|r| r)
            {
                Ok(rows) => Event::Ps { rows },
                Err(e) => Event::Error {
                    message: e.to_string(),
                },
            };
            let _ = protocol::write(&mut writer, &event);
            return;
        }
        Request::Stats { app } => {
            let event = match supervisor
                .call(|reply| Message::Stats {
                    app,
                    cpu: true,
                    reply,
                })
                .and_then(|r| r)
            {
                Ok(mut stats) => {
                    // The router's half: read here, under the figures' own lock.
                    let telemetry = ctx.telemetry.get(&stats.app);
                    let now = crate::clock::now_ms();
                    stats.router = Some(super::telemetry::figures(telemetry.as_deref(), None, false, now));
                    Event::Stats { stats }
                }
                Err(e) => Event::Error {
                    message: e.to_string(),
                },
            };
            let _ = protocol::write(&mut writer, &event);
            return;
        }
        Request::Addons { app } => {
            let event = match supervisor
                .call(|reply| Message::Addons { app, reply })
                .and_then(|r| r)
            {
                Ok(rows) => Event::Addons { rows },
                Err(e) => Event::Error {
                    message: e.to_string(),
                },
            };
            let _ = protocol::write(&mut writer, &event);
            return;
        }
        Request::RouterMetrics { app, since, minutes } => {
            // Off the supervisor: the router's figures are read under their own lock.
            let telemetry = ctx.telemetry.get(&app);
            let figures =
                super::telemetry::figures(telemetry.as_deref(), since, minutes, crate::clock::now_ms());
            let _ = protocol::write(&mut writer, &Event::RouterMetrics { figures });
            return;
        }
        Request::RouterLogs { app, enabled } => {
            // A router that does not run yet reads app.toml, which the CLI wrote, when it starts.
            if let Some(t) = ctx.telemetry.get(&app) {
                t.logs.set_enabled(enabled);
            }
            let _ = protocol::write(&mut writer, &Event::Done { code: exit::SUCCESS });
            return;
        }
        Request::Dashboard => {
            let event = match dashboard.url(ctx, supervisor) {
                Ok(url) => Event::Dashboard { url },
                Err(e) => Event::Error {
                    message: e.to_string(),
                },
            };
            let _ = protocol::write(&mut writer, &event);
            return;
        }
        Request::Down => {
            supervisor.send(Message::Stop);
            // The reply comes when everything is stopped: the client waits for EOF.
            let _ = protocol::write(
                &mut writer,
                &Event::Line {
                    text: "stopping every app".into(),
                },
            );
            let _ = protocol::write(
                &mut writer,
                &Event::Progress {
                    progress: crate::ui::Progress::Wait {
                        what: "every app to stop".into(),
                        limit_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                    },
                },
            );
            return;
        }
        Request::OneOffStop { app, container } => {
            let event = match supervisor
                .call(|reply| Message::OneOffStop {
                    app,
                    name: container,
                    reply,
                })
                .and_then(|r| r)
            {
                Ok(()) => Event::Done { code: exit::SUCCESS },
                Err(e) => Event::Error {
                    message: e.to_string(),
                },
            };
            let _ = protocol::write(&mut writer, &event);
            return;
        }
        Request::SendSignal {
            app,
            signal,
            containers,
        } => {
            let event = match supervisor.call(|reply| Message::Targets {
                app,
                names: containers,
                reply,
            }) {
                Ok(targets) => send_signal(signal, targets),
                Err(e) => Event::Error {
                    message: e.to_string(),
                },
            };
            let _ = protocol::write(&mut writer, &event);
            return;
        }
        Request::CronRun { app, job } => {
            if let Ok(caller) = Caller::new(writer, reader) {
                match Opened::existing(ctx, &app) {
                    Ok(opened) => {
                        supervisor.send(Message::CronRun {
                            app,
                            job,
                            caller,
                            opened,
                        });
                    }
                    Err(e) => caller.finish(Err(e)),
                }
            }
            return;
        }
        Request::Deploy { app, args } => (app, Job::Deploy(args)),
        Request::Scale { app, counts, sizes } => (app, Job::Scale(counts, sizes)),
        Request::Restart { app, target } => (app, Job::Restart(target)),
        Request::Rollback { app, deployment } => (app, Job::Rollback(deployment)),
        Request::Destroy { app } => (app, Job::Destroy),
        Request::Rename { app, new_name } => (app, Job::Rename(new_name)),
        Request::AddonsAdd { app, addon, plan } => (app, Job::AddonsAdd { addon, plan }),
        Request::AddonsRemove { app, id } => (app, Job::AddonsRemove(id)),
        Request::Run {
            app,
            command,
            env,
            size,
        } => (app, Job::RunDetached { command, env, size }),
    };
    // A socket that cannot be cloned leaves no way to answer: the client sees it close.
    if let Ok(caller) = Caller::new(writer, reader) {
        jobs::admit_and_send(ctx, supervisor, app, job, Some(caller));
    }
}

/// `send-signal`, on the client's thread (it reads /proc, which the supervisor never
/// does): the signal goes to each container's program, the process the container is
/// known by (`ps`), as the platform delivers it to the container's command. Not to the
/// group: the shim, and a shell still running a compound command line, would die of a
/// signal they do not handle.
fn send_signal(signal: protocol::UserSignal, targets: super::message::Targets) -> Event {
    let sig = match signal {
        protocol::UserSignal::Usr1 => nix::sys::signal::Signal::SIGUSR1,
        protocol::UserSignal::Usr2 => nix::sys::signal::Signal::SIGUSR2,
    };
    let mut sent = Vec::new();
    let mut unmatched = targets.unmatched;
    for (name, shim) in targets.found {
        let delivered = process::program_of(nix::unistd::Pid::from_raw(shim as i32))
            .is_some_and(|program| nix::sys::signal::kill(program, sig).is_ok());
        if delivered {
            sent.push(name);
        } else {
            // It ended between the supervisor's answer and now.
            unmatched.push(name);
        }
    }
    Event::Signalled { sent, unmatched }
}
