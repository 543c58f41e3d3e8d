//! `shipway destroy APP` (or `-a APP destroy`), as `scalingo destroy`: on a terminal it
//! asks for the app's name unless `--force`; then it stops the app's containers (through
//! the platform, when one runs) and deletes everything shipway keeps of it.

use std::io::IsTerminal;

use crate::error::{exit, Error};
use crate::git_remote;
use crate::platform::client;
use crate::platform::protocol::{Event, Request};
use crate::settings::Settings;
use crate::ui::Output;

use super::AppChoice;

pub fn run(settings: &Settings, choice: &AppChoice, name: Option<String>, force: bool) -> Result<i32, Error> {
    // The app to destroy is named, never guessed from a remote or a folder.
    let name = match (name, &choice.flag) {
        (Some(n), Some(a)) if n != *a => {
            return Err(Error::Usage(format!(
                "destroy {n} or -a {a}? Name one app (they differ): nothing was deleted"
            )))
        }
        (Some(n), _) => n,
        (None, Some(a)) => a.clone(),
        (None, None) => {
            return Err(Error::Usage(
                "name the app to destroy: `shipway destroy APP` or `shipway -a APP destroy`".into(),
            ))
        }
    };
    let home = super::home(settings)?;
    let app = home.existing_app(&name)?;
    let doomed = what_is_deleted(&app);
    if !force {
        confirm(&name, &doomed)?;
    }
    match client::ask(&home, &Request::Destroy { app: name.clone() })? {
        Some(Event::Error { message }) => return Err(Error::Platform { message }),
        Some(_) => {}
        None => {
            std::fs::remove_dir_all(&app.root)
                .map_err(|source| Error::io("remove", app.root.clone(), source))?;
        }
    }
    let out = Output::stdout();
    out.step(&format!("App {name} has been deleted"));
    if let Ok(cwd) = std::env::current_dir() {
        if let Some((deployed, remote)) = git_remote::app_of_remote(&cwd, choice.remote_name()) {
            if deployed == name {
                out.detail(&format!(
                    "the git remote `{remote}` of this work tree pointed at it: its repository is deleted, so `git push {remote}` now fails; `shipway -a {name} git-setup` makes the app again and repoints it (or `git remote remove {remote}`)"
                ));
            }
        }
    }
    Ok(exit::SUCCESS)
}

/// What destroying the app deletes, in words: its addons' data is named one by one, since
/// a database is what a user least expects to lose with an app.
fn what_is_deleted(app: &crate::state::AppDir) -> String {
    let addons = match crate::addon::list(app) {
        Ok(addons) => addons,
        Err(_) => return "its config vars, releases, history and cache, and its addons' data (their list could not be read)".into(),
    };
    if addons.is_empty() {
        return "its config vars, releases, history and cache".into();
    }
    let data: Vec<String> = addons
        .iter()
        .map(|a| format!("{} {} ({})", a.kind.name(), a.id, a.plan))
        .collect();
    format!(
        "its config vars, releases, history and cache, and the data of its addons: {}",
        data.join(", ")
    )
}

/// On a terminal, the user types the app's name, as `scalingo destroy` asks; elsewhere
/// `--force` is required, since nobody can answer.
fn confirm(name: &str, doomed: &str) -> Result<(), Error> {
    let refuse = |why: String| Error::Usage(format!("{why}: nothing was deleted"));
    if !std::io::stdin().is_terminal() {
        return Err(refuse(format!(
            "destroying {name} deletes {doomed}; not on a terminal, so confirm with --force"
        )));
    }
    let answer = super::typed_answer(&format!(
        "/!\\ You're going to delete {name}: {doomed}. This is irreversible.\nTo confirm, type the name of the app: "
    ))?;
    if answer != name {
        return Err(refuse(format!("{answer:?} is not {name:?}")));
    }
    Ok(())
}
