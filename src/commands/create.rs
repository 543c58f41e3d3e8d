//! `shipway create APP`: an app with no release yet, to set config vars before its first
//! build.

use crate::error::{exit, Error};
use crate::settings::Settings;
use crate::ui::Output;

pub fn run(settings: &Settings, name: String) -> Result<i32, Error> {
    let home = super::home(settings)?;
    let app = home.app(&name)?;
    if app.exists() {
        return Err(Error::Usage(format!("app {name} exists already")));
    }
    app.create()?;
    Output::stdout().step(&format!(
        "App {name} created; set its config vars with `shipway env-set -a {name} NAME=value`"
    ));
    Ok(exit::SUCCESS)
}
