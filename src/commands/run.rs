//! `shipway run CMD...`, as `scalingo run`: a one-off container of the current release,
//! attached to this terminal (its exit status passed through), or with `--detached`
//! started by the platform, its output going to the app's logs.

use crate::config_vars;
use crate::container;
use crate::error::Error;
use crate::platform::client;
use crate::platform::events::Event;
use crate::platform::protocol::Request;
use crate::release::Release;
use crate::settings::Settings;
use crate::ui::Output;

use super::AppChoice;

pub struct Options {
    pub env: Vec<String>,
    pub detached: bool,
    pub size: Option<String>,
    pub command: Vec<String>,
}

pub fn run(settings: &Settings, choice: &AppChoice, options: Options) -> Result<i32, Error> {
    let mut extra = config_vars::ConfigVars::new();
    for pair in &options.env {
        let (k, v) = config_vars::parse_pair(pair)
            .map_err(|e| Error::Usage(format!("-e {pair}: {e} (the form is -e NAME=value)")))?;
        extra.insert(k, v);
    }
    let notes = Output::new();
    notes.attach(Box::new(std::io::stderr()));
    let size = match &options.size {
        Some(size) => check_size(size)?,
        None => crate::platform_numbers::DEFAULT_SIZE,
    };
    let line = container::command_line(&options.command);
    let (home, app) = super::existing_app(settings, choice)?;
    let Some(number) = app.current() else {
        return Err(Error::Usage(format!(
            "{} has no release deployed yet: deploy it first",
            app.name
        )));
    };
    if options.detached {
        return client::stream(
            &home,
            Request::Run {
                app: app.name,
                command: line,
                env: extra,
                size: options.size,
            },
        );
    }
    let release_dir = app.release(number);
    let release = Release::load(&release_dir)?;
    let mut vars = app.load_config()?.config_vars;
    vars.extend(extra);
    // Ctrl-C belongs to the command, as in a terminal: shipway waits for it. (The shim
    // gives the command back the default action.)
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGINT,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
    // On the app's timeline as a one-off the platform runs (the command, never `-e`'s
    // values); a record that cannot be written is said, and the run goes on.
    let notes_for = |events: Vec<Event>| super::env::recorded(&app, events, &notes);
    notes_for(vec![Event::Run {
        container: "run-1".into(),
        command: line.clone(),
        release: number,
    }]);
    let status = container::one_off(settings, &release, &release_dir, &vars, "run-1", &line, size)
        .run_attached()
        .map_err(|e| Error::Platform {
            message: e.to_string(),
        })?;
    notes_for(vec![Event::RunEnded {
        container: "run-1".into(),
        exit: status.to_string(),
        release: number,
    }]);
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status.0).unwrap_or(0)))
}

/// A size the platform knows, or an error listing them.
pub fn check_size(size: &str) -> Result<crate::platform_numbers::Size, Error> {
    crate::platform_numbers::Size::named(size).map_err(|e| Error::Usage(e.to_string()))
}
