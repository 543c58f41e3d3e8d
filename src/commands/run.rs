//! `shipway run CMD...`: a one-off container of the current release, attached to this
//! terminal; its exit status is passed through.

use crate::error::Error;
use crate::release::Release;
use crate::settings::Settings;

pub fn run(settings: &Settings, app: Option<String>, command: Vec<String>) -> Result<i32, Error> {
    let (_, app) = super::existing_app(settings, app)?;
    let Some(number) = app.current() else {
        return Err(Error::Usage(format!(
            "{} has no release deployed yet: deploy it first",
            app.name
        )));
    };
    let release_dir = app.release(number);
    let release = Release::load(&release_dir)?;
    let config = app.load_config()?;
    let line = command.join(" ");
    // Ctrl-C belongs to the command, as in a terminal: shipway waits for it. (The shim
    // gives the command back the default action.)
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGINT,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
    let status = crate::container::one_off(
        settings,
        &release,
        &release_dir,
        &config.config_vars,
        "run-1",
        &line,
    )
    .run_attached()
    .map_err(|e| Error::Platform {
        message: e.to_string(),
    })?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status.0).unwrap_or(0)))
}
