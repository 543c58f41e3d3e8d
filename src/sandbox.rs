//! A build's or a container's filesystem, as on the platform: the app at `/app`, so that
//! the paths buildpacks write into scripts (`/app/.scalingo/python/bin/python`) hold at
//! build and at run time, and the host's own `/app` is never created or touched.
//!
//! - Under `/`: the host's own folders (the `host` stack), or the stack's image, read-only
//!   (`root`), with a private `/tmp`, a minimal `/dev`, the host's `/proc`, the host's
//!   `/etc/resolv.conf` and `/etc/hosts`, and the build's folders at their own paths.
//! - At `/app`: the folder itself (a build's home), or, for a container (`layer`), an
//!   overlay whose lower layer is the slug and whose upper layer lives in a tmpfs of the
//!   container's own mount namespace: what a container writes reaches no other container,
//!   no restart and no rollback, and is gone when its last process ends.
//!
//! The shim enters it in its program's process, between fork and exec (the shim is
//! single-threaded, so that is safe). Done here rather than by bubblewrap, because
//! bubblewrap puts a monitor process between the shim and the program that dies of the
//! container's SIGTERM and would end the container's graceful stop early; here the
//! program stays the shim's own child, in the container's group. The network and the PID
//! namespace stay the host's: the router and probes reach `127.0.0.1:PORT`, and the shim,
//! `ps` and the watchdog see the program's real pid.
//!
//! As root, a mount namespace is enough; otherwise a user namespace maps the user to
//! itself first (where the kernel allows unprivileged user namespaces; overlays in one
//! need Linux 5.11).

use std::ffi::CString;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;
use std::time::Duration;

use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, getgid, getuid, pivot_root};

use crate::process::{Plan, Spawn};
use crate::settings::SandboxMode;

/// Where the new root is assembled before it becomes `/`: a tmpfs mounted there hides
/// nothing for long, since pivot_root moves the root away and the tmpfs goes with the
/// old root. It also holds the container's writable layers.
const STAGE: &str = "/tmp";
const OLD_ROOT: &str = "oldroot";

/// A folder opened in the new mount namespace, before anything covers it: reached as
/// `/proc/self/fd/N` whatever is mounted over its path later (the stage hides `/tmp`).
/// Only for folders that are no mount point themselves: the path of a covered mount
/// point leads to what covers it. For a layer's lower folder.
struct Held(OwnedFd);

impl Held {
    fn open(path: &Path) -> io::Result<Held> {
        let fd = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
        // SAFETY: the descriptor was just opened and is owned by nobody else.
        Ok(Held(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.0.as_raw_fd()))
    }
}

/// A copy of the mounts at and below a folder, detached (`open_tree`): bound later
/// wherever it goes, whatever covers its path by then (the stage covers `/tmp`).
struct Tree(OwnedFd);

impl Tree {
    fn clone_of(path: &Path) -> io::Result<Tree> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint;
        // SAFETY: open_tree reads a NUL-terminated path and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the descriptor was just created and is owned by nobody else.
        Ok(Tree(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// Mount it at `to` (the only use of a tree: it is consumed).
    fn attach(self, to: &Path) -> io::Result<()> {
        let to = CString::new(to.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: move_mount reads two NUL-terminated paths; the descriptor is ours.
        let done = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                self.0.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if done < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Enter the sandbox `plan` describes; a working folder in `plan.app` becomes the same
/// folder under `/app`. Only for a single-threaded process that is about to exec
/// (unshare of a user namespace requires it).
pub fn enter(plan: &Plan) -> io::Result<()> {
    let app = plan.app.canonicalize()?;
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
    // Opened in this namespace (a mount of another one cannot be bound or layered) and
    // before the stage covers /tmp, where SHIPWAY_HOME may be.
    let held_app = match plan.layer {
        true => Err(Held::open(&app)?),
        false => Ok(Tree::clone_of(&app)?),
    };
    let held_root = plan.root.as_deref().map(Held::open).transpose()?;
    let held_tmp = match plan.root {
        None => Some(Tree::clone_of(Path::new("/tmp"))?),
        Some(_) => None,
    };
    let held_binds = plan
        .binds
        .iter()
        .map(|b| Ok((b.canonicalize()?, Tree::clone_of(b)?)))
        .collect::<io::Result<Vec<_>>>()?;

    tmpfs(Path::new(STAGE), "mode=0700")?;
    let stage = Path::new(STAGE);
    let new_root = stage.join("root");
    std::fs::create_dir(&new_root)?;
    match (&held_root, held_tmp) {
        (Some(image), _) => image_root(&image.path(), &new_root)?,
        (None, host_tmp) => host_root(host_tmp, &new_root)?,
    }
    let inside = new_root.join("app");
    if !inside.is_dir() {
        std::fs::create_dir(&inside)?;
    }
    match held_app {
        Err(slug) => layer(&slug.path(), &stage.join("app"), &inside)?,
        Ok(tree) => tree.attach(&inside)?,
    }
    if held_root.is_some() {
        image_mounts(&new_root)?;
        for (path, tree) in held_binds {
            let to = new_root.join(path.strip_prefix("/").unwrap_or(&path));
            std::fs::create_dir_all(&to)?;
            tree.attach(&to)?;
        }
    }
    drop(held_root);

    let old = new_root.join(OLD_ROOT);
    std::fs::create_dir(&old)?;
    pivot_root(&new_root, &old)?;
    chdir("/")?;
    let old = Path::new("/").join(OLD_ROOT);
    umount2(&old, MntFlags::MNT_DETACH)?;
    std::fs::remove_dir(&old)?;
    // The new root itself takes no writes: what a process writes goes to /app's layer,
    // /tmp, or where it goes on the host (the host stack's own folders).
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
        Ok(rel) => chdir(&Path::new("/app").join(rel))?,
        Err(_) => chdir(&cwd)?,
    }
    Ok(())
}

/// The host stack: a tmpfs holding the host's own top-level folders, bound, and links.
fn host_root(mut host_tmp: Option<Tree>, root: &Path) -> io::Result<()> {
    tmpfs(root, "mode=0755")?;
    for entry in std::fs::read_dir("/")? {
        let entry = entry?;
        let name = entry.file_name();
        if name == OsStr::new("app") {
            continue;
        }
        let from = Path::new("/").join(&name);
        let to = root.join(&name);
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if kind.is_dir() {
            std::fs::create_dir(&to)?;
            // The stage covers the host's /tmp by now.
            let tmp = (name == OsStr::new("tmp")).then(|| host_tmp.take()).flatten();
            match tmp {
                Some(tmp) => tmp.attach(&to)?,
                None => bind(&from, &to)?,
            }
        } else {
            std::fs::File::create(&to)?;
            bind(&from, &to)?;
        }
    }
    Ok(())
}

/// A stack image: an overlay whose only lower layer is the image, so that mount points
/// (`/app`, `/dev`, a build's folders) can be made without writing to the image, which
/// every app shares; the root is made read-only once they are.
fn image_root(image: &Path, root: &Path) -> io::Result<()> {
    let upper = Path::new(STAGE).join("root-layer");
    overlay(image, &upper, root)?;
    for dir in ["app", "tmp", "dev", "proc", "etc"] {
        let path = root.join(dir);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(&path)?;
        }
        if !path.is_dir() {
            std::fs::create_dir(&path)?;
        }
    }
    if root.join("app").read_dir()?.next().is_some() {
        // The image's own /app (if it has one) is never shown under the app's.
        std::fs::remove_dir_all(root.join("app"))?;
        std::fs::create_dir(root.join("app"))?;
    }
    Ok(())
}

/// Inside an image: a private /tmp, a minimal /dev, the host's /proc, and the host's
/// name resolution.
fn image_mounts(root: &Path) -> io::Result<()> {
    tmpfs(&root.join("tmp"), "mode=1777")?;
    let dev = root.join("dev");
    tmpfs(&dev, "mode=0755")?;
    // The host's nodes, bound: creating device nodes needs privileges a user namespace
    // does not give.
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let to = dev.join(node);
        std::fs::File::create(&to)?;
        bind(&Path::new("/dev").join(node), &to)?;
    }
    std::fs::create_dir(dev.join("pts"))?;
    // A devpts of its own: terminals opened inside are numbered apart from the host's.
    mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx"))?;
    std::fs::create_dir(dev.join("shm"))?;
    tmpfs(&dev.join("shm"), "mode=1777")?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(name))?;
    }
    // The host's /proc, bound: a new proc would need a PID namespace of its own, which
    // would hide the program's real pid from the shim, ps and the watchdog.
    bind(Path::new("/proc"), &root.join("proc"))?;
    for file in ["resolv.conf", "hosts"] {
        let from = Path::new("/etc").join(file);
        if !from.exists() {
            continue;
        }
        let to = root.join("etc").join(file);
        // A link in the image (to systemd-resolved's file) would lead outside: replaced,
        // in the root's own layer.
        if std::fs::symlink_metadata(&to).is_ok_and(|m| !m.is_file()) {
            std::fs::remove_file(&to)?;
        }
        if !to.exists() {
            std::fs::File::create(&to)?;
        }
        bind(&from, &to)?;
    }
    Ok(())
}

/// An overlay at `at` over `lower`, its upper and work folders made in `layer` (on the
/// stage's tmpfs, so that they end with the namespace).
fn overlay(lower: &Path, layer: &Path, at: &Path) -> io::Result<()> {
    let (upper, work) = (layer.join("upper"), layer.join("work"));
    std::fs::create_dir_all(&upper)?;
    std::fs::create_dir_all(&work)?;
    let mut options = OsString::from("lowerdir=");
    options.push(lower);
    options.push(",upperdir=");
    options.push(&upper);
    options.push(",workdir=");
    options.push(&work);
    // Inodes of the lower layer keep their numbers, and a file is copied up whole only
    // when it is written to.
    mount(
        Some("overlay"),
        at,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_os_str()),
    )?;
    Ok(())
}

/// `/app` of a container: an overlay on the slug, or, where the kernel makes none, the
/// slug itself (the writes are then shared, as they were before layers; the probe of
/// [`Sandbox::layer_warning`] found that out already, and the deployment said so).
fn layer(slug: &Path, layer: &Path, at: &Path) -> io::Result<()> {
    overlay(slug, layer, at).or_else(|_| bind(slug, at))
}

fn tmpfs(at: &Path, options: &str) -> io::Result<()> {
    mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options),
    )?;
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

    /// The line that says containers share their writes, where this kernel makes no
    /// overlay for their own layer (once per deployment, with the sandbox's own note).
    pub fn layer_warning(&self) -> Option<String> {
        static TRIED: OnceLock<Result<(), String>> = OnceLock::new();
        if !self.is_on() {
            return None;
        }
        TRIED.get_or_init(try_layer).as_ref().err().map(|reason| {
            format!("No writable layer of their own for containers on this machine ({reason}): what a container writes under /app is seen by the others of the release, and stays; overlayfs in a user namespace needs Linux 5.11, or run shipway as root")
        })
    }
}

/// A container's layer over an empty folder: what it writes must not reach the folder.
fn try_layer() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
    let mut plan = Plan::app(dir.path());
    plan.layer = true;
    let out = Spawn::new("/bin/sh", dir.path())
        .args(["-c", ": > /app/written"])
        .env([("PATH", "/usr/local/bin:/usr/bin:/bin")])
        .sandbox(plan)
        .output(64 * 1024, Duration::from_secs(10), None)
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    match dir.path().join("written").exists() {
        true => Err("the kernel refused an overlay".into()),
        false => Ok(()),
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
