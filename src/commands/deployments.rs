//! `shipway deployments`, `deployment-logs [ID]`, `deployment-delete-cache`: an app's
//! history, the whole output of one deployment, and its build cache.

use super::tables::{self, DeploymentRow};
use crate::deployment::Deployment;
use crate::error::{exit, Error};
use crate::settings::Settings;
use crate::ui::Output;
use crate::units::utc_ms;

pub fn list(settings: &Settings, choice: &super::AppChoice, json: bool) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    let rows: Vec<DeploymentRow> = Deployment::list(&app)
        .into_iter()
        .rev()
        .map(|d| DeploymentRow {
            created_at: d.statuses.first().map_or("-".into(), |s| utc_ms(s.at)),
            status: d.status().map_or("-".into(), |s| s.to_string()),
            id: d.id,
            duration_ms: d.duration_ms,
            git_ref: d.git_ref,
            image_size: d.slug_bytes,
            release: d.release,
            source: d.source,
            stack: d.stack,
            stack_digest: d.stack_digest,
        })
        .collect();
    if json {
        tables::print_json(&rows);
    } else {
        tables::deployments(&app.name, &rows);
    }
    Ok(exit::SUCCESS)
}

/// Exits with the code of the deployment it shows.
pub fn logs(settings: &Settings, choice: &super::AppChoice, id: Option<String>) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    let history = Deployment::list(&app);
    let chosen = match &id {
        Some(id) => history
            .iter()
            .find(|d| &d.id == id || d.id.starts_with(id.as_str())),
        None => history.last(),
    };
    let Some(d) = chosen else {
        return Err(Error::Usage(match id {
            Some(id) => format!(
                "{} has no deployment {id}: `shipway deployments -a {}` lists them",
                app.name, app.name
            ),
            None => format!("{} has no deployment yet", app.name),
        }));
    };
    let path = Deployment::log_path(&app, &d.id);
    // Without blocking, a regular file only; any bytes (a buildpack may print invalid UTF-8).
    match crate::state::read_regular(&path)? {
        // The buildpacks' output as they wrote it, shown so that it cannot drive the terminal.
        Some(bytes) => {
            let reader = crate::ui::Reader::stdout();
            for line in String::from_utf8_lossy(&bytes).lines() {
                tables::value(crate::ui::neutralise(line, reader));
            }
        }
        None if d.source.starts_with("rollback") => tables::value(format!("(a rollback: {})", d.source)),
        None => {
            let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(Error::io("read", path, missing));
        }
    }
    Ok(d.status().map_or(exit::ERROR, |s| s.exit_code()))
}

/// How often a followed deployment's log and record are read again.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// Once a deployment has ended, its last lines (the closing one) follow its final status
/// within moments: its log is read until it has been quiet this long.
const QUIET: std::time::Duration = std::time::Duration::from_millis(300);

/// `deployment-follow`, as the Scalingo CLI prints it (`[LOG] ...`, `[STATUS] New status:
/// building → pushing`): the running deployment live, from its start, until it ends; else
/// the last one. Exits with the code of its final status.
pub fn follow(settings: &Settings, choice: &super::AppChoice) -> Result<i32, Error> {
    use crate::ui::{neutralise, Reader};
    let (home, app) = super::existing_app(settings, choice)?;
    let Some(mut d) = Deployment::latest(&app) else {
        return Err(Error::Usage(format!(
            "{} has no deployment yet: `shipway deploy` or `git push shipway main` starts one",
            app.name
        )));
    };
    let record = Deployment::path(&app, &d.id);
    let mut log =
        super::follow::Follower::from_start(Deployment::log_path(&app, &d.id), super::follow::OnShrink::Skip);
    let reader = Reader::stdout();
    let show_log = |log: &mut super::follow::Follower| -> bool {
        let lines = log.lines();
        for line in &lines {
            tables::value(format!(
                "[LOG] {}",
                neutralise(&String::from_utf8_lossy(line), reader)
            ));
        }
        !lines.is_empty()
    };
    let mut shown = 0;
    loop {
        for (i, change) in d.statuses.iter().enumerate().skip(shown) {
            tables::value(match i.checked_sub(1).and_then(|p| d.statuses.get(p)) {
                Some(before) => format!("[STATUS] New status: {} → {}", before.status, change.status),
                None => format!("[STATUS] New status: {}", change.status),
            });
        }
        shown = d.statuses.len();
        show_log(&mut log);
        if d.status().is_some_and(|s| s.is_final()) {
            let mut quiet_since = std::time::Instant::now();
            while quiet_since.elapsed() < QUIET {
                std::thread::sleep(POLL);
                if show_log(&mut log) {
                    quiet_since = std::time::Instant::now();
                }
            }
            break;
        }
        if crate::platform::lock::running(&home).is_none() {
            let status = d.status().map_or("queued".to_string(), |s| s.to_string());
            return Err(Error::Platform {
                message: format!(
                    "no platform runs: deployment {} was left {status} when its platform stopped",
                    d.id
                ),
            });
        }
        std::thread::sleep(POLL);
        if let Ok(Some(now)) = Deployment::load(&record) {
            d = now;
        }
    }
    Ok(d.status().map_or(exit::ERROR, |s| s.exit_code()))
}

pub fn delete_cache(settings: &Settings, choice: &super::AppChoice) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    let cache = app.cache();
    let out = Output::stdout();
    if cache.exists() {
        std::fs::remove_dir_all(&cache).map_err(|source| Error::io("remove", cache.clone(), source))?;
        out.step(&format!(
            "Deleted the build cache of {}: the next build starts from scratch",
            app.name
        ));
    } else {
        out.step(&format!("{} has no build cache", app.name));
    }
    Ok(exit::SUCCESS)
}
