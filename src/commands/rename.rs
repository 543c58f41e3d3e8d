//! `shipway rename --new-name NEW`, as `scalingo rename`: the user types the app's name to
//! confirm; the app moves to its new name with its config vars, router port, addons,
//! releases and history (`app_rename`), stopped and started again by the platform when
//! one runs; this work tree's git remote follows.

use crate::error::{exit, Error};
use crate::git_remote;
use crate::platform::client;
use crate::platform::protocol::Request;
use crate::settings::Settings;
use crate::ui::Output;

use super::AppChoice;

pub fn run(settings: &Settings, choice: &AppChoice, new_name: &str) -> Result<i32, Error> {
    let (home, app) = super::existing_app(settings, choice)?;
    crate::app_rename::check_new_name(&home, new_name)?;
    confirm(&app.name, new_name)?;
    let exe =
        std::env::current_exe().map_err(|source| Error::io("find", "the shipway executable", source))?;
    let home_root =
        std::path::absolute(&home.root).map_err(|source| Error::io("resolve", home.root.clone(), source))?;
    if crate::platform::lock::running(&home).is_some() {
        let request = Request::Rename {
            app: app.name.clone(),
            new_name: new_name.to_string(),
        };
        let code = client::stream(&home, request)?;
        if code != exit::SUCCESS {
            return Ok(code);
        }
    } else {
        // No platform: nothing runs; a `shipway build` of the app may, holding its lock.
        let Some(_lock) = app.try_lock()? else {
            return Err(Error::Platform {
                message: format!("a build of {} runs: rename it once the build is over", app.name),
            });
        };
        crate::app_rename::rename(&home, &app, new_name, &exe, &home_root)?;
    }
    let out = Output::stdout();
    out.step(&format!("App {} has been renamed to {new_name}", app.name));
    let renamed = home.existing_app(new_name)?;
    if let Some(port) = renamed.load_config()?.router_port {
        out.detail(&format!(
            "its URL stays http://127.0.0.1:{port}: the router port moved with it, as its config vars, addons and history did"
        ));
    }
    if !git_remote::repository(&renamed).exists() {
        return Ok(exit::SUCCESS);
    }
    let cwd = std::env::current_dir().ok();
    let here = cwd
        .as_deref()
        .and_then(|d| git_remote::app_of_remote(d, choice.remote_name()))
        .filter(|(deployed, _)| *deployed == app.name);
    match (here, cwd) {
        (Some((_, remote)), Some(cwd)) => {
            let top = git_remote::work_tree_top(&cwd)?;
            git_remote::setup(&top, &renamed, &remote, true, &exe, &home_root)?;
            out.detail(&format!(
                "the git remote `{remote}` of this work tree now points at it: `git push {remote}` deploys {new_name}"
            ));
        }
        _ => out.detail(&format!(
            "a work tree whose git remote pointed at {} needs `shipway -a {new_name} git-setup --force` there",
            app.name
        )),
    }
    Ok(exit::SUCCESS)
}

/// The user types the app's name, as `scalingo rename` asks (from a pipe too: `echo APP |
/// shipway rename --new-name NEW`).
fn confirm(name: &str, new_name: &str) -> Result<(), Error> {
    let answer = super::typed_answer(&format!(
        "/!\\ You're going to rename '{name}' to '{new_name}'\nTo confirm type the name of the application: "
    ))?;
    if answer != name {
        return Err(Error::Usage(format!(
            "'{answer}' is not '{name}': nothing was renamed. Type the app's name to confirm (`echo {name} | shipway -a {name} rename --new-name {new_name}`)"
        )));
    }
    Ok(())
}
