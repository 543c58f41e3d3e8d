//! `shipway destroy APP --force`: stop its containers (through the platform, when one
//! runs) and delete everything shipway keeps of it.

use crate::error::{exit, Error};
use crate::platform::client;
use crate::platform::protocol::{Event, Request};
use crate::settings::Settings;
use crate::ui::Output;

pub fn run(settings: &Settings, name: String, force: bool) -> Result<i32, Error> {
    let home = super::home(settings)?;
    let app = home.existing_app(&name)?;
    if !force {
        return Err(Error::Usage(format!(
            "destroying {name} deletes its config vars, releases, history and cache: confirm with --force"
        )));
    }
    match client::ask(&home, &Request::Destroy { app: name.clone() })? {
        Some(Event::Error { message }) => return Err(Error::Platform { message }),
        Some(_) => {}
        None => {
            std::fs::remove_dir_all(&app.root).map_err(|source| Error::Io {
                action: "remove",
                path: app.root.clone(),
                source,
            })?;
        }
    }
    Output::stdout().step(&format!("App {name} destroyed"));
    Ok(exit::SUCCESS)
}
