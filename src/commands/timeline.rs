//! `shipway timeline [--json]`, as `scalingo timeline`: the app's events, newest first,
//! each with its time, type and detail, read from the app's event record
//! ([`crate::platform::events`]). It only reads: it works with or without a platform, and
//! never changes the record.

use super::tables;
use crate::error::{exit, Error};
use crate::platform::events::{self, Entry};
use crate::settings::Settings;
use crate::ui::{neutralise, Reader};

pub fn run(settings: &Settings, choice: &super::AppChoice, json: bool) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, choice)?;
    let records = events::timeline(&app)?;
    if json {
        let entries: Vec<Entry> = records.into_iter().map(Entry::from).collect();
        tables::print_json(&entries);
        return Ok(exit::SUCCESS);
    }
    if records.is_empty() {
        tables::value(format!(
            "{} has no event yet: deployments, restarts, scale, crashes and config changes appear here",
            app.name
        ));
        return Ok(exit::SUCCESS);
    }
    // The types in one column, as the platform's CLI lines them up.
    let width = records.iter().map(|r| r.event.title().len()).max().unwrap_or(0);
    let reader = Reader::stdout();
    for r in &records {
        // A detail may quote what a user typed (a one-off's command): shown so that it
        // cannot drive the terminal.
        let text = r.event.to_string();
        let detail = neutralise(&text, reader);
        tables::value(format!(
            "* {} - {:<width$} - {detail}",
            r.created_at,
            r.event.title()
        ));
    }
    Ok(exit::SUCCESS)
}
