//! `shipway apps`: every app with its release, URL and whether it runs.

use super::tables::{self, AppRow};
use crate::error::{exit, Error};
use crate::settings::Settings;

pub fn run(settings: &Settings, json: bool) -> Result<i32, Error> {
    let home = super::home(settings)?;
    let mut list = Vec::new();
    for name in home.apps() {
        let app = home.app(&name)?;
        let config = app.load_config()?;
        let containers = super::ps::containers(&home, &name)?.unwrap_or_default();
        let status = crate::platform::protocol::app_status(&containers);
        let running = app
            .current()
            .and_then(|n| crate::release::Release::load(&app.release(n)).ok());
        list.push(AppRow {
            name,
            release: app.current(),
            url: config.url(),
            status,
            stack: config.stack().to_string(),
            running_stack: running
                .as_ref()
                .map(|r| r.stack.clone())
                .filter(|s| !s.is_empty()),
            running_digest: running.and_then(|r| r.stack_digest),
        });
    }
    if json {
        tables::print_json(&list);
    } else {
        tables::apps(&list);
    }
    Ok(exit::SUCCESS)
}
