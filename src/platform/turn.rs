//! Waiting for a turn without losing the client: jobs of one app queue in the supervisor
//! (PLATFORM.md: queued, never interleaved), and a deployment waits for the app's file
//! lock held by a `shipway build` in another process. A client that hangs up while its
//! job waits (Ctrl-C, SIGTERM, SIGHUP to `deploy`) ends it at once, recorded `aborted`.
//!
//! It only waits and calls off; what runs in the turn is the jobs' business. Calling off
//! is two steps: taking the jobs out of the queue (the supervisor's, no effect), then
//! recording and answering them ([`CalledOff::tell`], a worker's: it writes).

use std::collections::VecDeque;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::caller::Caller;
use super::message::{Handle, Job, Message};
use crate::deployment::{Deployment, Status};
use crate::state::{AppDir, AppLock, StateError};

/// How often a deployment waiting for the app's file lock looks again: flock has no
/// wait that a channel can interrupt.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// When the client of a queued job hangs up, tell the supervisor, which then calls off
/// what waits for `app` with no one to answer ([`hung_up`]).
pub fn watch_hangup(caller: &Caller, supervisor: &Handle, app: &str) {
    let (hangup, supervisor, app) = (caller.hangup().clone(), supervisor.clone(), app.to_string());
    std::thread::spawn(move || {
        let _ = hangup.recv();
        supervisor.send(Message::HungUp { app });
    });
}

/// Jobs taken out of an app's queue, whose records and answers are still to be given
/// ([`CalledOff::tell`], on a worker: it writes to disk and to the clients).
pub struct CalledOff {
    jobs: VecDeque<(Job, Option<Caller>)>,
    why: String,
}

impl CalledOff {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Each deployment is recorded `aborted` in `app` (nothing was built), then its client,
    /// if it still reads, is told so: the record is there before the client hears of it.
    pub fn tell(self, app: &AppDir) {
        for (job, caller) in self.jobs {
            let result = match &job {
                Job::Deploy(args) => write_aborted(
                    app,
                    args.source.as_deref(),
                    &args.input.path,
                    args.input.git_ref.as_deref(),
                )
                .map(|_| Status::Aborted),
                _ => Ok(Status::Aborted),
            };
            if let Some(c) = caller {
                c.output().line(&match job {
                    Job::Deploy(_) => format!("<-- Deployment aborted while queued: {} -->", self.why),
                    _ => "<-- Called off while queued: nothing was done -->".into(),
                });
                c.finish(result);
            }
        }
    }
}

/// Take out of `queue` the jobs whose client hung up. Only channels are looked at: the
/// supervisor calls it, and hands what it returns to a worker.
pub fn hung_up(queue: &mut VecDeque<(Job, Option<Caller>)>) -> CalledOff {
    let hung_up = |c: &Option<Caller>| {
        c.as_ref()
            .is_some_and(|c| c.hangup().try_recv() == Err(crossbeam_channel::TryRecvError::Disconnected))
    };
    let (gone, kept): (VecDeque<_>, VecDeque<_>) = queue.drain(..).partition(|(_, c)| hung_up(c));
    *queue = kept;
    CalledOff {
        jobs: gone,
        why: "nothing was built".into(),
    }
}

/// Take out of `queue` the deployments waiting for their turn, because `name` is being
/// destroyed.
pub fn deployments(name: &str, queue: &mut VecDeque<(Job, Option<Caller>)>) -> CalledOff {
    let (gone, kept): (VecDeque<_>, VecDeque<_>) =
        queue.drain(..).partition(|(j, _)| matches!(j, Job::Deploy(_)));
    *queue = kept;
    CalledOff {
        jobs: gone,
        why: format!("{name} is being destroyed"),
    }
}

/// The record of a deployment that ended before it built anything, in the app's folder
/// as the supervisor opened it, under the name it was opened by.
pub fn write_aborted(
    app: &AppDir,
    source: Option<&str>,
    input: &std::path::Path,
    git_ref: Option<&str>,
) -> Result<(), crate::error::Error> {
    let source = source
        .map(String::from)
        .unwrap_or_else(|| input.display().to_string());
    Deployment::new(&app.name, &source, git_ref).set_status(Status::Aborted, app)?;
    Ok(())
}

/// The app's file lock (a `shipway build` of it in another process may hold it), or
/// `None` when `cancel` fires first.
pub fn app_lock(app: &AppDir, cancel: &Receiver<()>) -> Result<Option<AppLock>, StateError> {
    loop {
        if let Some(lock) = app.try_lock()? {
            return Ok(Some(lock));
        }
        if cancel.recv_timeout(LOOK_EVERY) != Err(crossbeam_channel::RecvTimeoutError::Timeout) {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_the_app_lock_ends_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let home = crate::state::Home::open(dir.path()).unwrap();
        let app = home.app("queued").unwrap();
        app.create().unwrap();
        let (keep, cancel) = crossbeam_channel::bounded::<()>(0);
        let held = app_lock(&app, &cancel).unwrap().expect("a free lock");
        let (cancel_tx, cancelled) = crossbeam_channel::bounded::<()>(0);
        let t = std::thread::spawn(move || drop(cancel_tx));
        assert!(app_lock(&app, &cancelled).unwrap().is_none());
        t.join().unwrap();
        drop(held);
        assert!(app_lock(&app, &cancel).unwrap().is_some());
        drop(keep);
    }
}
