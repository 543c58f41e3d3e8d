//! `git-setup`, `git-show` and the hidden `git-receive` that the remote's `pre-receive`
//! hook runs: the `git push` trigger of PLATFORM.md §1, on top of git_remote.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{exit, Error};
use crate::git_remote::{self, GitRemoteError, HookEnv, IncomingView, RefUpdate, RemoteChange};
use crate::pipeline::Input;
use crate::platform::client;
use crate::platform::protocol::{DeployArgs, Request};
use crate::settings::Settings;
use crate::state::Home;
use crate::ui::Output;

use super::app_choice::current_dir;
use super::AppChoice;

/// `shipway git-setup [-a APP] [-r REMOTE] [--force]`. The app: `-a`, SHIPWAY_APP, the
/// one the remote already deploys (a second run rewrites its hook), else the work
/// tree's folder name.
pub fn setup(settings: &Settings, choice: &AppChoice, force: bool) -> Result<i32, Error> {
    let remote = choice.remote_name();
    let cwd = current_dir()?;
    let top = git_remote::work_tree_top(&cwd)?;
    let name = match choice.given()? {
        Some(name) => name,
        None => match git_remote::remote_url(&top, remote)?.and_then(|u| git_remote::app_of_url(&u)) {
            Some(name) => name,
            None => crate::state::app_name_from(&top),
        },
    };
    crate::state::validate_app_name(&name)?;
    let home = Home::open(&settings.home)?;
    let app = home.app(&name)?;
    app.create()?;
    let exe =
        std::env::current_exe().map_err(|source| Error::io("find", "the shipway executable", source))?;
    let home_root =
        std::path::absolute(&home.root).map_err(|source| Error::io("resolve", home.root.clone(), source))?;
    let change = git_remote::setup(&top, &app, remote, force, &exe, &home_root)?;
    let repo = git_remote::repository(&app);
    let out = Output::stdout();
    match change {
        RemoteChange::Added => out.step(&format!("Added the git remote {remote} -> {}", repo.display())),
        RemoteChange::Unchanged => out.step(&format!(
            "The git remote {remote} already points to {} (hook rewritten)",
            repo.display()
        )),
        RemoteChange::Replaced { previous } => out.step(&format!(
            "The git remote {remote} now points to {} (was {previous})",
            repo.display()
        )),
    }
    out.detail(&format!(
        "`git push {remote} {}` deploys the app {name}; a failed deployment refuses the push",
        push_refspec(&top)
    ));
    if let Some(sub) = subfolder(&top, &cwd) {
        let project_dir = app.load_config()?.config_vars.get("PROJECT_DIR").cloned();
        let sub = sub.display();
        out.detail(&format!(
            "you are in {sub}/ of the work tree {}: a push carries the whole tree (the remote belongs to the repository, not to a folder)",
            top.display()
        ));
        match project_dir {
            Some(dir) if Path::new(&dir) == Path::new(&sub.to_string()) => out.detail(&format!(
                "PROJECT_DIR={dir} is set on {name}: each push builds only {dir}/"
            )),
            Some(dir) => out.detail(&format!(
                "PROJECT_DIR={dir} is set on {name}: each push builds {dir}/, not this folder; `shipway -a {name} env-set PROJECT_DIR={sub}` builds this one"
            )),
            None => out.detail(&format!(
                "each push builds the whole tree; to build only this folder, as on the platform: `shipway -a {name} env-set PROJECT_DIR={sub}`"
            )),
        }
    }
    Ok(exit::SUCCESS)
}

/// Where `dir` is below `top`, when it is not `top` itself.
fn subfolder(top: &Path, dir: &Path) -> Option<PathBuf> {
    let (top, dir) = (top.canonicalize().ok()?, dir.canonicalize().ok()?);
    let rel = dir.strip_prefix(&top).ok()?;
    (!rel.as_os_str().is_empty()).then(|| rel.to_path_buf())
}

/// `shipway git-show`: the remote's URL in this repository, else the app's repository.
pub fn show(settings: &Settings, choice: &AppChoice) -> Result<i32, Error> {
    let remote = choice.remote_name();
    let app = choice.given()?;
    let cwd = current_dir()?;
    if let Ok(top) = git_remote::work_tree_top(&cwd) {
        if let Some(url) = git_remote::remote_url(&top, remote)? {
            super::tables::value(url);
            return Ok(exit::SUCCESS);
        }
        if app.is_none() {
            return Err(GitRemoteError::NoRemote {
                remote: remote.into(),
            }
            .into());
        }
    }
    let Some(name) = app else {
        return Err(GitRemoteError::NotAWorkTree { dir: cwd }.into());
    };
    let home = Home::open(&settings.home)?;
    let repo = git_remote::repository(&home.app(&name)?);
    if !repo.join("HEAD").exists() {
        return Err(Error::Usage(format!(
            "the app {name} has no git repository yet: run `shipway git-setup -a {name}` in its work tree"
        )));
    }
    super::tables::value(repo.display());
    Ok(exit::SUCCESS)
}

/// `shipway git-receive -a APP`, run by the `pre-receive` hook: judge the push, deploy
/// the pushed commit, and exit non-zero (git then declines the push) unless it succeeded.
pub fn receive(settings: &Settings, choice: &AppChoice) -> Result<i32, Error> {
    let Some(app) = choice.flag.as_deref() else {
        return Err(Error::Usage(
            "git-receive is run by a git-setup repository's hook, with --app APP".into(),
        ));
    };
    let remote = choice.remote_name();
    let hook = HookEnv::take()?;
    let mut updates = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|source| Error::io("read the push from", "git", source))?;
        if !line.trim().is_empty() {
            updates.push(RefUpdate::parse(&line)?);
        }
    }
    let out = Output::stdout();
    let shallow = git_remote::is_shallow_push(hook.shallow_file.as_deref());
    if let Err(refusal) = git_remote::judge(&updates, shallow, remote) {
        out.line("");
        out.error(&refusal.to_string());
        out.line("");
        return Ok(exit::ERROR);
    }
    let home = Home::open(&settings.home)?;
    for update in &updates {
        let branch = update.branch().unwrap_or("main");
        let view = IncomingView::create(&hook, branch, &update.new)?;
        let request = Request::Deploy {
            app: app.to_string(),
            args: DeployArgs {
                input: Input {
                    path: view.path().to_path_buf(),
                    git_ref: Some(branch.to_string()),
                },
                port: settings.port,
                env: Default::default(),
                source: Some(format!("git push of {} to {}", update.new, hook.repo.display())),
            },
        };
        let code = client::stream(&home, request)?;
        if code != exit::SUCCESS {
            let kept = match update.previous() {
                Some(old) => format!("stays at {}", crate::source::short(old)),
                None => "is not created".to_string(),
            };
            out.error(&format!(
                "The deployment failed, so the push is refused: {remote}/{branch} {kept}."
            ));
            return Ok(code);
        }
    }
    Ok(exit::SUCCESS)
}

/// What to push from the work tree's current branch: the branch itself when it is
/// `main` or `master` (the remote deploys both), else the branch onto `main`.
fn push_refspec(top: &Path) -> String {
    let branch = std::process::Command::new("git")
        .args(["symbolic-ref", "--quiet", "--short", "HEAD"])
        .current_dir(top)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|b| !b.is_empty());
    match branch.as_deref() {
        Some(b @ ("main" | "master")) => b.to_string(),
        Some(b) => format!("{b}:main"),
        None => "HEAD:main".to_string(),
    }
}
