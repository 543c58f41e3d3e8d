//! The platform's scheduler (Scalingo Scheduler): each job of the current release's
//! `cron.json` runs on its schedule, in UTC, as a one-off container of that release
//! (the environment and profile of `shipway run`), named `cron-<job number>`, its output
//! in the app's log. `cron-run` starts one now, the same way.
//!
//! The supervisor owns the table of jobs and counts every run as one of its workers: a
//! run is stopped (SIGTERM, SIGKILL after the grace period) when the platform stops or
//! the app is destroyed, and the watchdog kills its group if the platform dies. A run
//! lasts at most 15 minutes, or its job's interval when shorter, as on the platform.
//!
//! Departures, said in docs/cron.md: runs start on the minute (the platform may delay
//! one by up to 10% of its interval), and runs missed while no platform ran are not
//! made up (the platform's scheduler runs all the time).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{after, bounded, select, Receiver, Sender};
use nix::sys::signal::Signal;

use super::applog::AppLog;
use super::caller::Caller;
use super::context::Context;
use super::message::{Handle, Message};
use crate::cron::{self, now, Job, Run, UnixTime};
use crate::error::Error;
use crate::process::{LineSink, Stream};
use crate::release::Release;

/// How often the scheduler looks at the clock at least, so that a clock set forward or
/// back (or a laptop waking up) does not leave it waiting for a moment long past.
const CLOCK_CHECK: Duration = Duration::from_secs(60);

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    /// `shipway cron-run`.
    OnDemand,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::OnDemand => "cron-run",
        }
    }
}

/// The jobs of one app's current release and when each runs next.
struct Table {
    release: u32,
    jobs: Vec<(Job, Option<UnixTime>)>,
    /// Dropped when the app is destroyed: its runs see `dismissed` disconnect.
    _alive: Sender<()>,
    dismissed: Receiver<()>,
}

/// Every app's jobs; lives on the supervisor thread.
#[derive(Default)]
pub struct Scheduler {
    tables: BTreeMap<String, Table>,
}

impl Scheduler {
    fn table(&mut self, app: &str) -> &mut Table {
        self.tables.entry(app.to_string()).or_insert_with(|| {
            let (alive, dismissed) = bounded(0);
            Table {
                release: 0,
                jobs: Vec::new(),
                _alive: alive,
                dismissed,
            }
        })
    }

    /// `release` now serves `app`: its jobs replace the previous release's, each to
    /// run next after now. Runs already started go on.
    pub fn load(&mut self, ctx: &Context, app: &str, release: u32) {
        let jobs = match ctx.home.app(app).map_err(cron::CronError::from) {
            Ok(dir) => cron::load(&dir.release(release)),
            Err(e) => Err(e),
        };
        let jobs = jobs.unwrap_or_else(|e| {
            ctx.say(&format!(
                "{app}: its scheduled jobs cannot be read, none will run: {e}"
            ));
            Vec::new()
        });
        let now = now();
        let table = self.table(app);
        table.release = release;
        table.jobs = jobs
            .into_iter()
            .map(|j| {
                let next = j.schedule.next_after(now);
                (j, next)
            })
            .collect();
    }

    /// The app is destroyed: no more runs, and its running ones are stopped.
    pub fn forget(&mut self, app: &str) {
        self.tables.remove(app);
    }

    /// When the supervisor should next call [`Scheduler::due`].
    pub fn wake_at(&self) -> Option<Instant> {
        let next = self
            .tables
            .values()
            .flat_map(|t| t.jobs.iter().filter_map(|(_, n)| *n))
            .min()?;
        let wait = Duration::from_secs(u64::try_from(next - now()).unwrap_or(0));
        Some(Instant::now() + wait.min(CLOCK_CHECK))
    }

    /// The runs the schedule says are due now, each job's next run moved on.
    pub fn due(&mut self) -> Vec<(Start, Receiver<()>)> {
        let now = now();
        let mut due = Vec::new();
        for (app, table) in &mut self.tables {
            for (index, (job, next)) in table.jobs.iter_mut().enumerate() {
                if next.is_some_and(|at| at <= now) {
                    let start = Start {
                        app: app.clone(),
                        release: table.release,
                        index,
                        job: job.clone(),
                        trigger: Trigger::Schedule,
                        caller: None,
                    };
                    due.push((start, table.dismissed.clone()));
                    *next = job.schedule.next_after(now);
                }
            }
        }
        due
    }

    /// `cron-run JOB`: the job of the app's current release that `wanted` names, by
    /// its number (`1`) or its command (with or without the schedule). None: there is
    /// no such job, and the caller has been told.
    pub fn on_demand(
        &mut self,
        ctx: &Context,
        app: &str,
        wanted: &str,
        caller: Caller,
    ) -> Option<(Start, Receiver<()>)> {
        match find_job(ctx, app, wanted) {
            Ok((release, index, job)) => Some((
                Start {
                    app: app.to_string(),
                    release,
                    index,
                    job,
                    trigger: Trigger::OnDemand,
                    caller: Some(caller),
                },
                self.table(app).dismissed.clone(),
            )),
            Err(e) => {
                caller.finish(Err(e));
                None
            }
        }
    }
}

/// One run to start: which job of which release, and who waits for it.
pub struct Start {
    pub app: String,
    pub release: u32,
    pub index: usize,
    pub job: Job,
    pub trigger: Trigger,
    pub caller: Option<Caller>,
}

fn find_job(ctx: &Context, app: &str, wanted: &str) -> Result<(u32, usize, Job), Error> {
    let dir = ctx.home.existing_app(app)?;
    let release = dir.current().ok_or_else(|| Error::Platform {
        message: format!("{app} has no release deployed yet: deploy it first"),
    })?;
    let jobs = cron::load(&dir.release(release)).map_err(|e| Error::Platform {
        message: e.to_string(),
    })?;
    if jobs.is_empty() {
        return Err(Error::Platform {
            message: format!("release {release} of {app} has no scheduled job: its source has no cron.json"),
        });
    }
    let wanted = wanted.trim();
    let by_number = wanted
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .filter(|i| *i < jobs.len());
    let index = by_number.or_else(|| jobs.iter().position(|j| j.line == wanted || j.command == wanted));
    match index {
        Some(i) => Ok((release, i, jobs[i].clone())),
        None => Err(Error::Platform {
            message: format!(
                "{app} has no job {wanted:?}: give its number (1 to {}) or its command, as `shipway cron-tasks -a {app}` lists them",
                jobs.len()
            ),
        }),
    }
}

/// Start a run on a thread of its own, which tells the supervisor when it has ended
/// (`Message::CronEnded`). Returns false when it could not start: the caller, if any,
/// or the app's log has been told why, and no worker is to be counted.
pub fn start(ctx: &Arc<Context>, handle: &Handle, log: &AppLog, run: Start, dismissed: Receiver<()>) -> bool {
    let Start {
        app,
        release,
        index,
        job,
        trigger,
        caller,
    } = run;
    let name = format!("cron-{}", index + 1);
    let app_log = ctx.container_log(log, &app, &name);
    let sink: LineSink = match &caller {
        Some(c) => {
            let out = c.output().clone();
            let to_log = app_log.clone();
            Arc::new(move |stream: Stream, line: &str| {
                to_log(stream, line);
                out.line(line);
            })
        }
        None => app_log.clone(),
    };
    let spawn = (|| -> Result<_, Error> {
        let dir = ctx.home.app(&app)?;
        let release_dir = dir.release(release);
        let loaded = Release::load(&release_dir)?;
        let config = dir.load_config()?;
        Ok(crate::container::one_off(
            &ctx.settings,
            &loaded,
            &release_dir,
            &config.config_vars,
            &name,
            &job.command,
            Some((&job.size, job.memory())),
        ))
    })();
    let say = |text: &str| app_log(Stream::Stderr, text);
    let starting = format!(
        "Starting job {} ({}) of release {release}, size {}: {}",
        index + 1,
        trigger.name(),
        job.size,
        job.line
    );
    say(&starting);
    if let Some(c) = &caller {
        c.output()
            .step(&format!("{starting} (its output is in `shipway logs` too)"));
    }
    let child = spawn.and_then(|s| {
        s.start(sink).map_err(|e| Error::Platform {
            message: format!("cannot start {name}: {e}"),
        })
    });
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            say(&e.to_string());
            if let Some(c) = caller {
                c.finish(Err(e));
            }
            return false;
        }
    };
    let started = now();
    if let Ok(dir) = ctx.home.app(&app) {
        let running = Run {
            started,
            exit: None,
            code: None,
            duration_ms: None,
            trigger: trigger.name().into(),
        };
        if let Err(e) = cron::Runs::record(&dir.root, &job.line, running) {
            say(&format!("cannot record this run: {e}"));
        }
    }
    let (ctx, handle) = (ctx.clone(), handle.clone());
    std::thread::spawn(move || {
        let clock = Instant::now();
        let limit = job.time_limit();
        let grace = ctx.settings.grace_period;
        let exited = child.exited().clone();
        let exit = select! {
            recv(exited) -> _ => {
                child.reap_group(Duration::from_secs(1));
                child.status()
            }
            recv(after(limit)) -> _ => {
                app_log(Stream::Stderr, &format!(
                    "{name} ran for {}, the longest a run of this job may last on the platform: stopping it",
                    crate::settings::render_duration(limit)
                ));
                Some(child.stop(Signal::SIGTERM, grace))
            }
            recv(ctx.stopping) -> _ => Some(child.stop(Signal::SIGTERM, grace)),
            recv(dismissed) -> _ => Some(child.stop(Signal::SIGTERM, grace)),
        };
        let elapsed = clock.elapsed();
        let text = exit.map_or_else(|| "ended, how is unknown".to_string(), |e| e.to_string());
        let ended = format!("{name} {text} after {}", crate::ui::human_duration(elapsed));
        app_log(Stream::Stderr, &ended);
        let code = exit.and_then(|e| e.code());
        // The caller is answered by the supervisor once the run is recorded, so that
        // `cron-tasks` right after `cron-run` shows it.
        let caller = caller.map(|c| {
            c.output().step(&ended);
            let signalled = exit.and_then(|e| std::os::unix::process::ExitStatusExt::signal(&e.0));
            (c, code.unwrap_or_else(|| 128 + signalled.unwrap_or(127)))
        });
        handle.send(Message::CronEnded {
            app,
            caller,
            line: job.line,
            run: Run {
                started,
                exit: Some(text),
                code,
                duration_ms: Some(elapsed.as_millis() as u64),
                trigger: trigger.name().into(),
            },
        });
    });
    true
}
