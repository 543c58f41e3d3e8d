//! `shipway dashboard [-a APP]`: the address of the platform's dashboard (started, with
//! the platform if none runs), opened in a browser when a person runs it on a terminal
//! with one to open; elsewhere, the URL alone.

use std::io::IsTerminal;

use super::tables;
use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::{Event, Request};
use crate::settings::Settings;
use crate::ui::Output;

pub fn run(settings: &Settings, choice: &super::AppChoice) -> Result<i32, Error> {
    let home = super::home(settings)?;
    // Only an app named outright (`-a`, SHIPWAY_APP): the dashboard lists every app.
    let app = match choice.given()? {
        Some(name) => Some(home.existing_app(&name)?.name),
        None => None,
    };
    let terminal = std::io::stdout().is_terminal();
    // Not on a terminal, stdout is the URL alone (`curl "$(shipway dashboard)api/apps"`):
    // the note that a platform was started goes to stderr.
    let out = if terminal {
        Output::stdout()
    } else {
        let out = Output::new();
        out.attach(Box::new(std::io::stderr()));
        out
    };
    let url = match client::ask_or_start(&home, &out, &Request::Dashboard)? {
        Some(Event::Dashboard { url }) => url,
        Some(Event::Error { message }) => return Err(Error::Platform { message }),
        _ => {
            return Err(Error::Platform {
                message: format!(
                    "the platform gave no dashboard address: see its log, {}",
                    home.log_file().display()
                ),
            })
        }
    };
    let url = match app {
        Some(app) => format!("{url}apps/{app}"),
        None => url,
    };
    let graphical = ["BROWSER", "DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if !terminal || !graphical {
        tables::value(&url);
        return Ok(exit::SUCCESS);
    }
    match super::info::in_browser(&url) {
        Ok(browser) => out.step(&format!("Dashboard at {url} (opened with {browser})")),
        Err(tried) => out.step(&format!(
            "Dashboard at {url} (no browser opened it: {})",
            tried.join(", ")
        )),
    }
    Ok(exit::SUCCESS)
}
