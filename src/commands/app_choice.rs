//! Which app a verb works on, as the Scalingo CLI decides it (its `detect` package):
//! the global `-a/--app`, else `SHIPWAY_APP` (the CLI's `SCALINGO_APP`), else the app
//! that the work tree's `shipway` git remote deploys (`-r/--remote` names another), else
//! the current folder's name when such an app exists. Verbs that take a SOURCE look at
//! the source instead of the current folder (see `for_source`).
//!
//! It resolves names only; it creates nothing and prints nothing.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::git_remote;
use crate::state::{self, AppDir, Home};

/// The remote `git-setup` adds, and the one read when `-r` names none.
pub const DEFAULT_REMOTE: &str = "shipway";

/// The variable that names the app when `-a` does not.
pub const APP_VAR: &str = "SHIPWAY_APP";

/// What the command line and the environment say about the app.
#[derive(Debug, Clone, Default)]
pub struct AppChoice {
    /// `-a/--app`.
    pub flag: Option<String>,
    /// `-r/--remote`, when given.
    pub remote: Option<String>,
    /// `SHIPWAY_APP`, when set and not empty.
    pub var: Option<String>,
}

/// Where a resolved name came from, for the messages about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Var,
    Remote { remote: String },
    Source,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    pub origin: Origin,
}

impl AppChoice {
    pub fn new(flag: Option<String>, remote: Option<String>) -> AppChoice {
        let var = std::env::var(APP_VAR).ok().filter(|v| !v.is_empty());
        AppChoice { flag, remote, var }
    }

    pub fn remote_name(&self) -> &str {
        self.remote.as_deref().unwrap_or(DEFAULT_REMOTE)
    }

    /// `-a`, then `SHIPWAY_APP`: what the user said outright.
    fn explicit(&self) -> Result<Option<Resolved>, Error> {
        if let Some(name) = &self.flag {
            state::validate_app_name(name)?;
            return Ok(Some(Resolved {
                name: name.clone(),
                origin: Origin::Flag,
            }));
        }
        if let Some(name) = &self.var {
            state::validate_app_name(name).map_err(|e| Error::Usage(format!("{APP_VAR}={name}: {e}")))?;
            return Ok(Some(Resolved {
                name: name.clone(),
                origin: Origin::Var,
            }));
        }
        Ok(None)
    }

    /// The app the remote of the work tree holding `dir` deploys. A remote named with
    /// `-r` must exist; the default one may be missing.
    fn by_remote(&self, dir: &Path) -> Result<Option<Resolved>, Error> {
        match git_remote::app_of_remote(dir, self.remote_name()) {
            Some((name, remote)) => Ok(Some(Resolved {
                name,
                origin: Origin::Remote { remote },
            })),
            None => match &self.remote {
                Some(remote) => Err(Error::Usage(format!(
                    "-r {remote}: the work tree of {} has no remote `{remote}` made by `shipway git-setup` (`git remote -v` lists them)",
                    dir.display()
                ))),
                None => Ok(None),
            },
        }
    }

    /// The app of a verb that works on an existing one (ps, logs, scale, env...): `-a`,
    /// `SHIPWAY_APP`, the git remote of the current work tree, else the current folder's
    /// name when such an app exists. Nothing found: an error listing the apps.
    pub fn existing(&self, home: &Home) -> Result<AppDir, Error> {
        let cwd = current_dir()?;
        let resolved = match self.explicit()? {
            Some(r) => Some(r),
            None => self.by_remote(&cwd)?,
        };
        if let Some(r) = resolved {
            let app = home.app(&r.name)?;
            if app.exists() {
                return Ok(app);
            }
            return Err(self.unknown(home, &r));
        }
        let name = state::app_name_from(&cwd);
        if let Ok(app) = home.existing_app(&name) {
            return Ok(app);
        }
        Err(self.none_found(home, &name))
    }

    /// The app of a verb that takes a SOURCE (deploy, build, archive, git-setup): `-a`,
    /// `SHIPWAY_APP`, the git remote of the source's work tree when the source is that
    /// work tree's top folder (what `git push` would carry), else the source's name.
    pub fn for_source(&self, source: &Path) -> Result<Resolved, Error> {
        if let Some(r) = self.explicit()? {
            return Ok(r);
        }
        if source.is_dir() && is_work_tree_top(source) {
            if let Some(r) = self.by_remote(source)? {
                return Ok(r);
            }
        } else if let Some(remote) = &self.remote {
            return Err(Error::Usage(format!(
                "-r {remote} names the app through a git remote, but {} is not the top folder of a git work tree: use -a APP",
                source.display()
            )));
        }
        let name = state::app_name_from(source);
        state::validate_app_name(&name)?;
        Ok(Resolved {
            name,
            origin: Origin::Source,
        })
    }

    /// `-a` or `SHIPWAY_APP` only: for `detect`, where no app is needed.
    pub fn given(&self) -> Result<Option<String>, Error> {
        Ok(self.explicit()?.map(|r| r.name))
    }

    /// A name was found but no such app exists: say where the name came from.
    fn unknown(&self, home: &Home, r: &Resolved) -> Error {
        let name = &r.name;
        let whence = match &r.origin {
            Origin::Flag => format!("app {name} does not exist"),
            Origin::Var => format!("{APP_VAR}={name}, but app {name} does not exist"),
            Origin::Remote { remote } => format!(
                "the git remote `{remote}` of this work tree deploys {name}, but app {name} does not exist (destroyed, or made with another SHIPWAY_HOME)"
            ),
            Origin::Source => format!("app {name} does not exist"),
        };
        Error::Usage(format!(
            "{whence}\ncreate it with `shipway create {name}` or deploy it once; {}",
            known_apps(home)
        ))
    }

    fn none_found(&self, home: &Home, folder_name: &str) -> Error {
        Error::Usage(format!(
            "no app given, and none found here: no -a, no {APP_VAR}, no `{}` git remote, and no app named {folder_name:?} after this folder\n{}\nchoose one with `-a APP` (before or after the verb) or `{APP_VAR}=APP`, or run the command in a work tree that `shipway git-setup` set up",
            self.remote_name(),
            known_apps(home)
        ))
    }
}

/// `known apps: a, b` or how to make one.
fn known_apps(home: &Home) -> String {
    let apps = home.apps();
    if apps.is_empty() {
        "no app exists yet: `shipway deploy [FOLDER]` makes one".to_string()
    } else {
        format!("known apps: {}", apps.join(", "))
    }
}

fn is_work_tree_top(dir: &Path) -> bool {
    // The top of a work tree holds its `.git`: without one, git need not be asked.
    if !dir.join(".git").exists() {
        return false;
    }
    let Ok(top) = git_remote::work_tree_top(dir) else {
        return false;
    };
    match (top.canonicalize(), dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub fn current_dir() -> Result<PathBuf, Error> {
    std::env::current_dir().map_err(|source| Error::io("find", ".", source))
}
