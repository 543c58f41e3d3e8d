//! The verbs that act on running containers through the platform: `restart
//! [TYPE|CONTAINER]` (new containers ready first), `one-off-stop`, and `send-signal`.

use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::{Event, Request, UserSignal};
use crate::settings::Settings;
use crate::ui::Output;

pub fn run(settings: &Settings, choice: &super::AppChoice, target: Option<String>) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    client::stream(
        &home,
        Request::Restart {
            app: app.name,
            target,
        },
    )
}

/// `one-off-stop one-off-1` (or `1`, as the Scalingo CLI reads a bare number).
pub fn one_off_stop(settings: &Settings, choice: &super::AppChoice, container: &str) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    let name = if !container.is_empty() && container.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{container}", crate::container::ONE_OFF)
    } else {
        container.to_string()
    };
    let request = Request::OneOffStop {
        app: app.name.clone(),
        container: name.clone(),
    };
    match client::ask(&home, &request)? {
        Some(Event::Done { .. }) => {
            Output::stdout().step(&format!(
                "Container one-off {name} of the app {} is being stopped (SIGTERM, SIGKILL after the grace period)",
                app.name
            ));
            Ok(exit::SUCCESS)
        }
        Some(Event::Error { message }) => Err(Error::Platform { message }),
        _ => Err(Error::Platform {
            message: format!(
                "The container '{name}' does not exist: no shipway platform runs, so {} has no running container",
                app.name
            ),
        }),
    }
}

/// `send-signal --signal SIGUSR1 web-1 worker`: one line per container signalled, one
/// per name that selects none. Exit 1 when no container got it.
pub fn send_signal(
    settings: &Settings,
    choice: &super::AppChoice,
    signal: &str,
    containers: Vec<String>,
) -> Result<i32, Error> {
    let Some(signal) = UserSignal::parse(signal) else {
        return Err(Error::Usage(format!(
            "the platform sends SIGUSR1 or SIGUSR2 only, not {signal:?}: `shipway restart CONTAINER` stops and starts one; `shipway one-off-stop` stops a one-off"
        )));
    };
    let (home, app) = super::existing_app(settings, choice)?;
    let request = Request::SendSignal {
        app: app.name.clone(),
        signal,
        containers: containers.clone(),
    };
    let (sent, unmatched) = match client::ask(&home, &request)? {
        Some(Event::Signalled { sent, unmatched }) => (sent, unmatched),
        Some(Event::Error { message }) => return Err(Error::Platform { message }),
        _ => (Vec::new(), containers),
    };
    let out = Output::stdout();
    for name in &unmatched {
        out.error(&format!(
            "'{name}' did not match any running container of {}",
            app.name
        ));
    }
    for name in &sent {
        out.step(&format!("Sent signal '{}' to '{name}' container.", signal.name()));
    }
    Ok(if sent.is_empty() {
        exit::ERROR
    } else {
        exit::SUCCESS
    })
}
