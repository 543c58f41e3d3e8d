//! `shipway env`, `env-get`, `env-set`, `env-unset`: an app's config vars, read and
//! written in its `app.toml`. As on the platform, changing them restarts nothing.

use std::path::PathBuf;

use super::tables;
use crate::error::{exit, Error};
use crate::platform::applog;
use crate::platform::events::Event;
use crate::settings::Settings;
use crate::ui::Output;

pub fn list(settings: &Settings, choice: &super::AppChoice, json: bool) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    let vars = app.load_config()?.config_vars;
    if json {
        tables::print_json(&vars);
    } else {
        tables::env(&vars);
    }
    Ok(exit::SUCCESS)
}

pub fn get(settings: &Settings, choice: &super::AppChoice, name: String) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    match app.load_config()?.config_vars.get(&name) {
        Some(v) => {
            tables::value(v);
            Ok(exit::SUCCESS)
        }
        None => Err(Error::Usage(format!("{name} is not set on {}", app.name))),
    }
}

pub fn set(
    settings: &Settings,
    choice: &super::AppChoice,
    pairs: Vec<String>,
    file: Option<PathBuf>,
) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    // Everything is validated before anything is written.
    let vars = super::read_vars(file.as_deref(), &pairs)?;
    if vars.is_empty() {
        return Err(Error::Usage("give NAME=value pairs or --file .env".into()));
    }
    let names: Vec<String> = vars.keys().cloned().collect();
    let events = app.update_config(|c| {
        let events = Event::variables_set(&names, |n| c.config_vars.contains_key(n));
        c.config_vars.extend(vars);
        events
    })?;
    let out = Output::stdout();
    out.step(&format!("Set {} on {}", names.join(", "), app.name));
    recorded(&app, events, &out);
    out.detail(&format!(
        "Nothing was restarted, as on the platform: `shipway restart -a {}` applies them",
        app.name
    ));
    Ok(exit::SUCCESS)
}

pub fn unset(settings: &Settings, choice: &super::AppChoice, names: Vec<String>) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    // A name that cannot be a config var is a mistake to say, not "not set"; one stored
    // before names were checked is still removed (the way out a build names).
    let stored = app.load_config()?.config_vars;
    for n in names.iter().filter(|n| !stored.contains_key(*n)) {
        crate::config_vars::check_name(n)?;
    }
    let (removed, missing) = app.update_config(|c| {
        let mut removed = Vec::new();
        let mut missing = Vec::new();
        for n in &names {
            if c.config_vars.remove(n).is_some() {
                removed.push(n.clone());
            } else {
                missing.push(n.clone());
            }
        }
        (removed, missing)
    })?;
    let out = Output::stdout();
    if !removed.is_empty() {
        out.step(&format!("Unset {} on {}", removed.join(", "), app.name));
        recorded(&app, [Event::DeleteVariable { names: removed }], &out);
        out.detail(&format!(
            "Nothing was restarted, as on the platform: `shipway restart -a {}` applies it",
            app.name
        ));
    }
    if !missing.is_empty() {
        out.detail(&format!("not set, nothing to do: {}", missing.join(", ")));
    }
    Ok(exit::SUCCESS)
}

/// Record the events of a change made (their names, never a value); one that cannot be
/// recorded is said, and the change stands.
pub(super) fn recorded(app: &crate::state::AppDir, events: impl IntoIterator<Item = Event>, out: &Output) {
    if let Err(e) = applog::record(app, events) {
        out.detail(&format!(
            "the change is not in `shipway timeline`: cannot write {}: {e}",
            app.root.display()
        ));
    }
}
