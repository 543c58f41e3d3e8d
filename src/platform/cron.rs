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
use std::time::Duration;

use crossbeam_channel::{bounded, select, Receiver, Sender};
use nix::sys::signal::Signal;

use super::applog::AppLog;
use super::caller::Caller;
use super::context::Context;
use crate::cron::{self, Job, Run, UnixTime};
use crate::error::Error;
use crate::process::{LineSink, Stream};
use crate::release::Release;
use crate::state::AppDir;

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

    /// `release` now serves `app`: its jobs (read by [`read_jobs`] on a worker) replace
    /// the previous release's, each to run next after `now`.
    pub fn load(&mut self, app: &str, release: u32, jobs: Vec<Job>, now: UnixTime) {
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

    /// How long from `now` until the supervisor should next call [`Scheduler::due`].
    pub fn wake_in(&self, now: UnixTime) -> Option<Duration> {
        let next = self
            .tables
            .values()
            .flat_map(|t| t.jobs.iter().filter_map(|(_, n)| *n))
            .min()?;
        let wait = Duration::from_secs(u64::try_from(next - now).unwrap_or(0));
        Some(wait.min(CLOCK_CHECK))
    }

    /// The runs the schedule says are due at `now`, each job's next run moved on.
    pub fn due(&mut self, now: UnixTime) -> Vec<(Start, Receiver<()>)> {
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

    /// What a run of `app`'s jobs watches to learn that the app is destroyed.
    pub fn dismissed(&mut self, app: &str) -> Receiver<()> {
        self.table(app).dismissed.clone()
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

/// The job `wanted` of the current release of the app opened as `dir`.
fn find_job(dir: &AppDir, wanted: &str) -> Result<(u32, usize, Job), Error> {
    super::jobs::exists(dir)?;
    let app = &dir.name;
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

/// The jobs of `release` of the app opened as `dir`, for [`Scheduler::load`]: read on a
/// worker, never on the supervisor thread. Jobs that cannot be read are none, said in the
/// platform's log.
pub fn read_jobs(ctx: &Context, dir: &AppDir, release: u32) -> Vec<Job> {
    cron::load(&dir.release(release)).unwrap_or_else(|e| {
        ctx.say(&format!(
            "{}: its scheduled jobs cannot be read, none will run: {e}",
            dir.name
        ));
        Vec::new()
    })
}

/// `cron-run JOB`, on a worker: the job of the app's current release that `wanted`
/// names, by its number (`1`) or its command (with or without the schedule), run now;
/// or the caller told there is no such job.
pub fn run_on_demand(
    ctx: &Context,
    dir: &AppDir,
    log: &AppLog,
    wanted: &str,
    caller: Caller,
    dismissed: Receiver<()>,
) {
    match find_job(dir, wanted) {
        Ok((release, index, job)) => {
            let start = Start {
                app: dir.name.clone(),
                release,
                index,
                job,
                trigger: Trigger::OnDemand,
                caller: Some(caller),
            };
            run(ctx, dir, log, start, dismissed);
        }
        Err(e) => caller.finish(Err(e)),
    }
}

/// One run, from start to end, on the worker that calls this: the container started,
/// the run recorded, waited for (stopped past its time limit, or when the platform stops
/// or the app is destroyed), and its end recorded, then the caller of a `cron-run`
/// answered. A run that cannot start is said in the caller's output or the app's log.
/// `dir` is the app's folder as the supervisor opened it: its privacy is not checked
/// again.
pub fn run(ctx: &Context, dir: &AppDir, log: &AppLog, run: Start, dismissed: Receiver<()>) {
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
            job.container_size(),
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
            return;
        }
    };
    let started = ctx.clock.unix_secs();
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
    {
        let began = ctx.clock.instant();
        let limit = job.time_limit();
        let grace = ctx.settings.grace_period;
        let exited = child.exited().clone();
        let exit = select! {
            recv(exited) -> _ => {
                child.reap_group(Duration::from_secs(1));
                child.status()
            }
            recv(ctx.clock.after(limit)) -> _ => {
                app_log(Stream::Stderr, &format!(
                    "{name} ran for {}, the longest a run of this job may last on the platform: stopping it",
                    crate::settings::render_duration(limit)
                ));
                Some(child.stop(Signal::SIGTERM, grace))
            }
            recv(ctx.stopping) -> _ => Some(child.stop(Signal::SIGTERM, grace)),
            recv(dismissed) -> _ => Some(child.stop(Signal::SIGTERM, grace)),
        };
        let elapsed = ctx.clock.instant().saturating_duration_since(began);
        let text = match child.out_of_memory() {
            Some(why) => format!("stopped: {why}"),
            None => exit.map_or_else(|| "ended, how is unknown".to_string(), |e| e.to_string()),
        };
        let ended = format!("{name} {text} after {}", crate::units::human_duration(elapsed));
        app_log(Stream::Stderr, &ended);
        let code = exit.and_then(|e| e.code());
        // A run stopped by `destroy` is not recorded: the destroy job is removing the
        // app's folder, and a file written into it meanwhile fails that.
        let destroyed = dismissed.try_recv() == Err(crossbeam_channel::TryRecvError::Disconnected);
        // The folder is looked at again (one stat, not a privacy check): the platform
        // never removes it but through `destroy`, yet a record must not make a folder
        // removed by other means appear again.
        if !destroyed && dir.exists() {
            let ended = Run {
                started,
                exit: Some(text),
                code,
                duration_ms: Some(elapsed.as_millis() as u64),
                trigger: trigger.name().into(),
            };
            let _ = cron::Runs::record(&dir.root, &job.line, ended);
        }
        // The caller is answered once the run is recorded, so that `cron-tasks` right
        // after `cron-run` shows it.
        if let Some(c) = caller {
            c.output().step(&ended);
            let signalled = exit.and_then(|e| std::os::unix::process::ExitStatusExt::signal(&e.0));
            c.finish_code(code.unwrap_or_else(|| 128 + signalled.unwrap_or(127)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07 10:00:30 UTC.
    const T0: UnixTime = 1_796_637_630;

    fn job(line: &str) -> Job {
        Job::parse(line, None).unwrap()
    }

    #[test]
    fn nothing_loaded_never_wakes() {
        let mut s = Scheduler::default();
        assert_eq!(s.wake_in(T0), None);
        assert!(s.due(T0).is_empty());
    }

    #[test]
    fn a_job_wakes_at_its_next_minute_and_is_due_then() {
        let mut s = Scheduler::default();
        s.load("a", 3, vec![job("* * * * * echo hi")], T0);
        assert_eq!(s.wake_in(T0), Some(Duration::from_secs(30)));
        assert!(s.due(T0 + 29).is_empty());
        let due = s.due(T0 + 30);
        assert_eq!(due.len(), 1);
        let (start, _) = &due[0];
        assert_eq!((start.app.as_str(), start.release, start.index), ("a", 3, 0));
        assert_eq!(start.trigger, Trigger::Schedule);
        // Moved on: the next run is a minute later, not due again at once.
        assert!(s.due(T0 + 30).is_empty());
        assert_eq!(s.wake_in(T0 + 30), Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_far_run_wakes_at_least_every_clock_check() {
        let mut s = Scheduler::default();
        s.load("a", 1, vec![job("@daily echo once")], T0);
        assert_eq!(s.wake_in(T0), Some(CLOCK_CHECK));
    }

    #[test]
    fn a_clock_set_forward_makes_the_missed_run_due_once() {
        let mut s = Scheduler::default();
        s.load("a", 1, vec![job("*/10 * * * * echo")], T0);
        // A laptop that slept an hour: one run, not six.
        assert_eq!(s.due(T0 + 3600).len(), 1);
        assert!(s.due(T0 + 3600).is_empty());
    }

    #[test]
    fn a_new_release_replaces_the_jobs_of_the_previous_one() {
        let mut s = Scheduler::default();
        s.load("a", 1, vec![job("* * * * * one"), job("* * * * * two")], T0);
        s.load("a", 2, vec![job("* * * * * three")], T0);
        let due = s.due(T0 + 30);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].0.release, due[0].0.job.command.as_str()), (2, "three"));
    }

    #[test]
    fn forgetting_an_app_dismisses_its_runs() {
        let mut s = Scheduler::default();
        s.load("a", 1, vec![job("* * * * * echo")], T0);
        let due = s.due(T0 + 30);
        let dismissed = due[0].1.clone();
        assert_eq!(dismissed.try_recv(), Err(crossbeam_channel::TryRecvError::Empty));
        s.forget("a");
        assert_eq!(
            dismissed.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        );
        assert_eq!(s.wake_in(T0 + 30), None);
    }

    /// App `a`, opened, serving release 2 whose jobs are `lines`.
    fn served(lines: &[&str]) -> (tempfile::TempDir, Context, AppDir) {
        let home = tempfile::tempdir().unwrap();
        let (ctx, _) = Context::for_tests(crate::settings::Settings::defaults(home.path().to_path_buf()));
        let dir = ctx.home.app("a").unwrap();
        dir.create().unwrap();
        crate::state::private_dir(&dir.release(2)).unwrap();
        let jobs: Vec<Job> = lines.iter().map(|l| job(l)).collect();
        cron::save(&dir.release(2), &jobs).unwrap();
        dir.set_current(2).unwrap();
        (home, ctx, dir)
    }

    #[test]
    fn a_job_run_on_demand_is_found_in_the_opened_app_s_current_release() {
        let (_home, _ctx, dir) = served(&["*/5 * * * * echo hi", "@daily backup"]);
        let (release, index, found) = find_job(&dir, "2").unwrap();
        assert_eq!((release, index, found.command.as_str()), (2, 1, "backup"));
        assert_eq!(find_job(&dir, " echo hi ").unwrap().1, 0);
        let err = find_job(&dir, "3").unwrap_err().to_string();
        assert!(err.contains("give its number (1 to 2)"), "{err}");
        // Gone since it was opened (destroyed): said as for an unknown app.
        std::fs::remove_dir_all(&dir.root).unwrap();
        let err = find_job(&dir, "1").unwrap_err().to_string();
        assert!(err.contains("app \"a\" does not exist"), "{err}");
    }

    #[test]
    fn a_release_s_jobs_are_read_in_the_opened_folder() {
        let (_home, ctx, dir) = served(&["* * * * * echo hi"]);
        let jobs = read_jobs(&ctx, &dir, 2);
        assert_eq!(
            jobs.iter().map(|j| j.line.as_str()).collect::<Vec<_>>(),
            ["* * * * * echo hi"]
        );
        // A release made before the scheduler existed has none.
        assert!(read_jobs(&ctx, &dir, 1).is_empty());
    }

    #[test]
    fn apps_are_scheduled_apart() {
        let mut s = Scheduler::default();
        s.load("a", 1, vec![job("* * * * * a")], T0);
        s.load("b", 4, vec![job("*/5 * * * * b")], T0);
        let apps: Vec<String> = s.due(T0 + 30).into_iter().map(|(r, _)| r.app).collect();
        assert_eq!(apps, ["a"]);
        // 10:05:00 is b's.
        let mut apps: Vec<String> = s.due(T0 + 270).into_iter().map(|(r, _)| r.app).collect();
        apps.sort();
        assert_eq!(apps, ["a", "b"]);
    }
}
