//! `shipway router-logs [--enable|--disable]`: the app's router logs, as on the platform:
//! off by default; once on, one line per request in the app's log (`shipway logs
//! --filter router`). The setting is the app's (app.toml), so it outlives the platform; a
//! running router is told at once.

use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::{Event, Request};
use crate::settings::Settings;
use crate::ui::Output;

/// `Some(true)`: `--enable`; `Some(false)`: `--disable`; None: say what it is.
pub fn run(settings: &Settings, choice: &super::AppChoice, enable: Option<bool>) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    let out = Output::stdout();
    let Some(enabled) = enable else {
        let on = app.load_config()?.router_logs;
        out.step(&if on {
            format!(
                "Router logs of {} are enabled: `shipway logs --filter router` shows them; `shipway router-logs --disable` turns them off",
                app.name
            )
        } else {
            format!(
                "Router logs of {} are disabled (the default): `shipway router-logs --enable` turns them on",
                app.name
            )
        });
        return Ok(exit::SUCCESS);
    };
    app.update_config(|c| c.router_logs = enabled)?;
    let request = Request::RouterLogs {
        app: app.name.clone(),
        enabled,
    };
    // No platform runs (None): the router reads app.toml when it starts.
    if let Some(Event::Error { message }) = client::ask(&home, &request)? {
        return Err(Error::Platform { message });
    }
    out.step(&if enabled {
        format!(
            "Router logs of {} are enabled: one line per request in its log (`shipway logs --filter router`)",
            app.name
        )
    } else {
        format!("Router logs of {} are disabled", app.name)
    });
    Ok(exit::SUCCESS)
}
