//! `/app`, as on the platform: a mount namespace in which a folder of the host is seen at
//! `/app` and everything else is the host's own, so that the paths buildpacks write into
//! scripts (`/app/.scalingo/python/bin/python`) hold at build and at run time, and the
//! host's own `/app` is never created or touched.
//!
//! The shim enters it in its program's process, between fork and exec (the shim is
//! single-threaded, so that is safe). Done here rather than by bubblewrap, because
//! bubblewrap puts a monitor process between the shim and the program that dies of the
//! container's SIGTERM and would end the container's graceful stop early; here the
//! program stays the shim's own child, in the container's group.
//!
//! As root, a mount namespace is enough; otherwise a user namespace maps the user to
//! itself first (where the kernel allows unprivileged user namespaces).

use std::ffi::OsStr;
use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, getgid, getuid, pivot_root};

use crate::process::Spawn;
use crate::settings::SandboxMode;

/// Where the new root is assembled before it becomes `/`: a tmpfs mounted there hides
/// nothing for long, since pivot_root moves it away again.
const STAGE: &str = "/tmp";
const OLD_ROOT: &str = "oldroot";

/// Make `app` (a folder of the host) appear at `/app`, with everything else of the host
/// where it was; a working folder in `app` becomes the same folder under `/app`. Only for a single-threaded process that is about
/// to exec (unshare of a user namespace requires it).
pub fn enter(app: &Path) -> io::Result<()> {
    let app = app.canonicalize()?;
    let cwd = std::env::current_dir()?;
    if getuid().is_root() {
        unshare(CloneFlags::CLONE_NEWNS)?;
    } else {
        let (uid, gid) = (getuid(), getgid());
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
        // Only this user, mapped to itself: no other identity is gained.
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    }
    // Nothing mounted here reaches the host; the host's later mounts still show here.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    mount(
        Some("tmpfs"),
        STAGE,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )?;
    let old = Path::new(STAGE).join(OLD_ROOT);
    std::fs::create_dir(&old)?;
    pivot_root(STAGE, &old)?;
    chdir("/")?;
    let old = Path::new("/").join(OLD_ROOT);
    for entry in std::fs::read_dir(&old)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == OsStr::new(OLD_ROOT) || name == OsStr::new("app") {
            continue;
        }
        let from = entry.path();
        let to = Path::new("/").join(&name);
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if kind.is_dir() {
            std::fs::create_dir(&to)?;
            bind(&from, &to)?;
        } else {
            std::fs::File::create(&to)?;
            bind(&from, &to)?;
        }
    }
    let inside = Path::new("/app");
    std::fs::create_dir(inside)?;
    bind(&old.join(app.strip_prefix("/").unwrap_or(&app)), inside)?;
    umount2(&old, MntFlags::MNT_DETACH)?;
    std::fs::remove_dir(&old)?;
    // The new root itself takes no writes: what a process writes goes where it goes on
    // the host, or into /app.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )?;
    // Where the process was, seen from inside: a folder of the app's is under /app, any
    // other (a buildpack's own) where it was.
    match cwd.strip_prefix(&app) {
        Ok(rel) => chdir(&inside.join(rel))?,
        Err(_) => chdir(&cwd)?,
    }
    Ok(())
}

fn bind(from: &Path, to: &Path) -> io::Result<()> {
    mount(
        Some(from),
        to,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    Ok(())
}

/// What to tell a user whose machine makes no sandbox.
const FIX: &str = "run shipway as root, or allow unprivileged user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1`, or `user.max_user_namespaces` above 0); `SHIPWAY_SANDBOX=off` runs without /app and says nothing";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("SHIPWAY_SANDBOX=required, but no /app sandbox can be made here ({reason}): {FIX}")]
    Unavailable { reason: String },
}

/// Whether builds and containers get `/app`, as the settings and this machine decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sandbox {
    On,
    /// Off by the settings (`reason` None), or because this machine makes none.
    Off {
        reason: Option<String>,
    },
}

impl Sandbox {
    /// Decided once per process: whether a sandbox can be made is tried the first time.
    pub fn resolve(mode: SandboxMode) -> Result<Sandbox, SandboxError> {
        static TRIED: OnceLock<Result<(), String>> = OnceLock::new();
        if mode == SandboxMode::Off {
            return Ok(Sandbox::Off { reason: None });
        }
        match (TRIED.get_or_init(try_one), mode) {
            (Ok(()), _) => Ok(Sandbox::On),
            (Err(reason), SandboxMode::Required) => Err(SandboxError::Unavailable {
                reason: reason.clone(),
            }),
            (Err(reason), _) => Ok(Sandbox::Off {
                reason: Some(reason.clone()),
            }),
        }
    }

    pub fn is_on(&self) -> bool {
        *self == Sandbox::On
    }

    /// The line that says why there is no `/app`, when the machine is the reason.
    pub fn warning(&self) -> Option<String> {
        match self {
            Sandbox::Off { reason: Some(reason) } => Some(format!(
                "No /app sandbox on this machine ({reason}): builds and containers run in their own folders, so /app paths written by buildpacks will not resolve. To fix: {FIX}"
            )),
            _ => None,
        }
    }
}

/// A sandbox of an empty folder running `true`: the whole mechanism, once.
fn try_one() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
    let out = Spawn::new("true", dir.path())
        .env([("PATH", "/usr/local/bin:/usr/bin:/bin")])
        .app(dir.path())
        .output(64 * 1024, Duration::from_secs(10), None)
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    Err(said
        .lines()
        .last()
        .map(|l| l.trim_start_matches("shipway: ").to_string())
        .unwrap_or_else(|| crate::process::Exit(out.status).to_string()))
}
