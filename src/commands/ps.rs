//! `shipway ps`: the containers of an app, as the running platform knows them.

use super::tables;
use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::{ContainerRow, Event, Request};
use crate::settings::Settings;
use crate::state::Home;

pub fn run(settings: &Settings, choice: &super::AppChoice, json: bool) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    let rows = containers(&home, &app.name)?;
    if json {
        tables::print_json(&rows.unwrap_or_default());
    } else {
        tables::ps(&app.name, rows.as_deref());
    }
    Ok(exit::SUCCESS)
}

/// The containers of a running platform, or None when no platform runs.
pub fn containers(home: &Home, app: &str) -> Result<Option<Vec<ContainerRow>>, Error> {
    match client::ask(home, &Request::Ps { app: app.to_string() })? {
        Some(Event::Ps { rows }) => Ok(Some(rows)),
        Some(Event::Error { message }) => Err(Error::Platform { message }),
        _ => Ok(None),
    }
}
