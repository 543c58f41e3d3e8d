//! An app as the platform opens it, once: its folder, its privacy checked, and its log
//! open for appending. Whoever hands the supervisor an app's job or run opens it (the
//! client's thread, a worker, the platform's start), never the supervisor's thread, which
//! keeps the first one it is handed and drops the others. The supervisor then hands its
//! kept folder to the workers of the app (jobs, crash restarts, cron runs), which use it
//! rather than check the app's privacy again. It opens; it decides nothing.

use super::applog::AppLog;
use super::context::Context;
use crate::error::Error;
use crate::state::AppDir;

/// Cheap to clone: a folder's paths and a shared handle on the open log.
#[derive(Clone)]
pub struct Opened {
    pub dir: AppDir,
    pub log: AppLog,
}

impl Opened {
    /// Open `name`, which must exist already.
    pub fn existing(ctx: &Context, name: &str) -> Result<Opened, Error> {
        Opened::with_dir(ctx.home.existing_app(name)?)
    }

    /// Open the log of `dir`, whose privacy its caller has checked (`Home::app`, as
    /// `Job::admit` and the platform's start do): it is not checked twice. A job that
    /// creates the app (a deploy) has created its folder before: the log is opened in it.
    pub fn with_dir(dir: AppDir) -> Result<Opened, Error> {
        let path = dir.root.join("app.log");
        let log = AppLog::open(&path).map_err(|source| Error::io("open", path, source))?;
        Ok(Opened { dir, log })
    }
}
