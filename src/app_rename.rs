//! Renaming an app (`rename --new-name`, as the Scalingo CLI has it): what moves with its
//! name. Its folder, and with it its config vars, router ports, releases, history, cache
//! and addons' data; its releases' `APP`; its addons' OS users' homes; and its git
//! remote's hook, which names the app.
//!
//! Whoever calls it has stopped the app's containers and addon servers (the platform's
//! job), or knows that none runs (no platform); it starts nothing again.

use std::path::Path;

use crate::error::Error;
use crate::release::Release;
use crate::state::{AppDir, Home};

/// Why `new` cannot be the app's name, if it cannot: invalid, or taken.
pub fn check_new_name(home: &Home, new: &str) -> Result<AppDir, Error> {
    let target = home.app(new)?;
    if target.root.exists() {
        return Err(Error::Usage(format!(
            "an app named {new} exists already: choose another name (`shipway apps` lists them)"
        )));
    }
    Ok(target)
}

/// Move `app` to the name `new`; the app under its new name. `exe` and `home` are what the
/// git remote's hook calls (`git-setup`'s).
pub fn rename(home: &Home, app: &AppDir, new: &str, exe: &Path, home_root: &Path) -> Result<AppDir, Error> {
    let target = check_new_name(home, new)?;
    // Atomic, and never over a folder another rename or deploy made meanwhile.
    match nix::fcntl::renameat2(
        None,
        &app.root,
        None,
        &target.root,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => {}
        Err(nix::errno::Errno::EEXIST | nix::errno::Errno::ENOTEMPTY) => {
            return Err(Error::Usage(format!(
                "an app named {new} exists already: choose another name (`shipway apps` lists them)"
            )))
        }
        Err(e) => return Err(Error::io("rename", app.root.clone(), e.into())),
    }
    // Containers get APP and HOSTNAME from their release.
    for number in target.release_numbers() {
        let dir = target.release(number);
        let mut release = Release::load(&dir)?;
        if release.app != new {
            release.app = new.to_string();
            release.save(&dir)?;
        }
    }
    crate::addon::rehome_users(&target).map_err(|e| Error::Platform {
        message: format!("{new}: its addons' users could not be moved with it: {e}"),
    })?;
    crate::git_remote::retarget_hook(&target, exe, home_root)?;
    Ok(target)
}
