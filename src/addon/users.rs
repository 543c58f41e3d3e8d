//! As root, each addon's server runs as an OS user of its own, `shipway-<id>`, made when
//! the addon is (or, for an addon an older shipway made, when it next starts) and removed
//! with it. Why: the servers of two addons must not read each other's files. One user for
//! every cluster (Debian's `postgres`) let any cluster's server, hence anyone who could
//! make it run a program, read every other cluster's data and `pg_hba.conf`. Its data folder
//! is given to it; it reaches it through a descriptor root opens (`as_user.rs`).
//!
//! The user's home is the addon's data folder (never made by useradd), so that a user
//! whose folder is gone, its home deleted without `destroy` (a test's temporary home), is
//! known to be left over: it is removed when the next addon is made.
//!
//! Not root: every server runs as shipway's user, as do the apps; no user is made.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User};

use super::AddonError;
use crate::io_error::{io, IoError};
use crate::process::Spawn;

/// `useradd` and `userdel` lock /etc/passwd; platforms of other homes may hold it a moment.
const LOCKED_FOR: Duration = Duration::from_secs(30);
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// One change to /etc/passwd at a time from this process.
static PASSWD: Mutex<()> = Mutex::new(());

/// The OS user of addon `id`: `shipway-ad-1a2b3c4d`, within the 32 characters a user
/// name may have.
pub fn name(id: &str) -> String {
    format!("shipway-{id}")
}

/// What the comment (GECOS) of every user shipway makes starts with.
const COMMENT: &str = "shipway addon ";

/// The addon's user, made when it is missing: a system user with its own group, its data
/// folder `dir` as its home (not made: it is there), no shell, no password (nobody logs
/// in as it).
pub fn ensure(id: &str, dir: &Path) -> Result<User, AddonError> {
    let user = name(id);
    if let Some(u) = lookup(&user)? {
        return Ok(u);
    }
    sweep();
    let comment = format!("{COMMENT}{id}");
    // A folder /etc/passwd cannot hold (a `:` or a newline in the home's path) is no
    // home: such a user is never taken for a left-over one.
    let home = dir
        .to_str()
        .filter(|h| h.starts_with('/') && !h.contains([':', '\n']))
        .unwrap_or(NO_HOME);
    run_locked(
        "useradd",
        &[
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            home,
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            &comment,
            &user,
        ],
        &user,
        "create",
    )?;
    lookup(&user)?.ok_or_else(|| AddonError::User {
        action: "find",
        user,
        message: "useradd succeeded, yet the user is not there".into(),
    })
}

/// Give `dir` and everything under it to `user`, when it is not theirs already (an addon
/// an older shipway made belongs to `postgres` or root). Symbolic links are changed, never
/// followed.
pub fn give(dir: &Path, user: &User) -> Result<(), AddonError> {
    let owner = std::fs::symlink_metadata(dir)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .map_err(io("read", dir))?;
    if owner == user.uid.as_raw() {
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.map_err(|e| IoError::new("read", dir, e.into()))?;
        chown_nofollow(entry.path(), user.uid, user.gid)?;
    }
    Ok(())
}

fn chown_nofollow(path: &Path, uid: Uid, gid: Gid) -> Result<(), AddonError> {
    nix::unistd::fchownat(
        None,
        path,
        Some(uid),
        Some(gid),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| IoError::new("give to the server's user", path, e.into()).into())
}

/// Remove the addon's user (and its group), when there is one: as root only, and only a
/// user shipway made (its name and comment say so).
pub fn remove(id: &str) -> Result<(), AddonError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let user = name(id);
    let Some(u) = lookup(&user)? else {
        return Ok(());
    };
    if !u.gecos.to_string_lossy().starts_with(COMMENT) {
        return Ok(());
    }
    run_locked("userdel", &[&user], &user, "remove")
}

/// The addon's user, when there is one, given its data folder's new place as its home
/// (its app was renamed): a user whose home is gone is taken for a left-over one.
pub fn rehome(id: &str, dir: &Path) -> Result<(), AddonError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let user = name(id);
    match lookup(&user)? {
        Some(u) if u.gecos.to_string_lossy().starts_with(COMMENT) => {}
        _ => return Ok(()),
    }
    let home = dir
        .to_str()
        .filter(|h| h.starts_with('/') && !h.contains([':', '\n']))
        .unwrap_or(NO_HOME);
    run_locked("usermod", &["--home", home, &user], &user, "move")
}

/// The home of a user whose data folder's path /etc/passwd cannot hold.
const NO_HOME: &str = "/nonexistent";

/// Remove the users shipway made whose data folder is gone: their addon's home was
/// deleted without `destroy`, so no server of theirs can run again. One that still runs a
/// process is left (userdel refuses it), as is any user shipway did not make.
fn sweep() {
    let Ok(passwd) = std::fs::read_to_string("/etc/passwd") else {
        return;
    };
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let [name, _, _, _, gecos, home, ..] = fields[..] else {
            continue;
        };
        let ours = name.starts_with("shipway-ad-") && gecos.starts_with(COMMENT);
        if ours && home != NO_HOME && home.starts_with('/') && !Path::new(home).exists() {
            let _ = run_locked("userdel", &[name], name, "remove");
        }
    }
}

fn lookup(user: &str) -> Result<Option<User>, AddonError> {
    User::from_name(user).map_err(|e| AddonError::User {
        action: "look up",
        user: user.to_string(),
        message: e.to_string(),
    })
}

/// Run `program` (useradd, userdel), again while /etc/passwd is locked by another.
fn run_locked(program: &str, args: &[&str], user: &str, action: &'static str) -> Result<(), AddonError> {
    let _one = PASSWD.lock().unwrap_or_else(|p| p.into_inner());
    let deadline = Instant::now() + LOCKED_FOR;
    loop {
        let out = Spawn::new(program, Path::new("/"))
            .args(args.iter().copied())
            .env([("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")])
            .output(64 * 1024, LOCKED_FOR, None)
            .map_err(|e| AddonError::User {
                action,
                user: user.to_string(),
                message: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if said.contains("lock") && Instant::now() < deadline {
            std::thread::sleep(RETRY_EVERY);
            continue;
        }
        return Err(AddonError::User {
            action,
            user: user.to_string(),
            message: format!("{program} {}: {said}", crate::process::Exit(out.status)),
        });
    }
}
