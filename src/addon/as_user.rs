//! `shipway as-user USER DIR PROGRAM ARGS...` (internal): run PROGRAM as the unprivileged
//! USER with DIR open on descriptor 3, so that it reaches DIR as `/proc/self/fd/3`.
//!
//! Why: as root, an addon's server runs as the addon's own user (`users.rs`; PostgreSQL
//! refuses root anyway), and its data lives under `SHIPWAY_HOME`, which stays private to
//! root (0700), as may its parents (`/root`). Rather than open those
//! folders to another user, root opens the data folder and hands the server the open
//! descriptor; a process may always follow its own `/proc/self/fd` links, and the
//! server's children inherit the descriptor. Started by `process::Spawn` behind the
//! shim, which stays root and so can still stop everything below it.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{dup2, execv, setgid, setgroups, setuid, User};

/// The descriptor the folder is handed on.
pub const FD: i32 = 3;

/// Never returns on success (PROGRAM replaces this process).
pub fn main(args: Vec<OsString>) -> i32 {
    let mut args = args.into_iter();
    let (Some(user), Some(dir), Some(program)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: shipway as-user USER DIR PROGRAM [ARGS...] (internal)");
        return 2;
    };
    match run(&user, &dir, program, args.collect()) {
        Ok(never) => match never {},
        Err(message) => {
            eprintln!("shipway as-user: {message}");
            127
        }
    }
}

fn run(
    user: &OsString,
    dir: &OsString,
    program: OsString,
    args: Vec<OsString>,
) -> Result<std::convert::Infallible, String> {
    let name = user.to_string_lossy();
    let user = User::from_name(&name)
        .map_err(|e| format!("cannot look up user {name}: {e}"))?
        .ok_or_else(|| format!("no user {name}"))?;
    let fd = open(
        dir.as_os_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {}: {e}", dir.to_string_lossy()))?;
    if fd != FD {
        dup2(fd, FD).map_err(|e| format!("cannot hand over {}: {e}", dir.to_string_lossy()))?;
        let _ = nix::unistd::close(fd);
    }
    // Groups first, then the group, then the user: once the user is dropped, nothing
    // else can be changed.
    setgroups(&[]).map_err(|e| format!("cannot drop supplementary groups: {e}"))?;
    setgid(user.gid).map_err(|e| format!("cannot become group {}: {e}", user.gid))?;
    setuid(user.uid).map_err(|e| format!("cannot become {name}: {e}"))?;
    let c = |s: &OsString| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} holds a NUL byte"));
    let path = c(&program)?;
    let mut argv = vec![path.clone()];
    for a in &args {
        argv.push(c(a)?);
    }
    execv(&path, &argv).map_err(|e| format!("cannot run {}: {e}", program.to_string_lossy()))
}
