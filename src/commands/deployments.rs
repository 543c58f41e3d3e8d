//! `shipway deployments`, `deployment-logs [ID]`, `deployment-delete-cache`: an app's
//! history, the whole output of one deployment, and its build cache.

use std::time::{Duration, UNIX_EPOCH};

use crate::deployment::Deployment;
use crate::error::{exit, Error};
use crate::settings::Settings;
use crate::ui::tables::{self, DeploymentRow};
use crate::ui::{utc, Output};

pub fn list(settings: &Settings, choice: &super::AppChoice, json: bool) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    let rows: Vec<DeploymentRow> = Deployment::list(&app)
        .into_iter()
        .rev()
        .map(|d| DeploymentRow {
            created_at: d
                .statuses
                .first()
                .map_or("-".into(), |s| utc(UNIX_EPOCH + Duration::from_millis(s.at))),
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
