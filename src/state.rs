//! shipway's files under `SHIPWAY_HOME` (DESIGN.md "On disk"): where each thing lives,
//! atomic writes (temporary file beside, then rename), modes that keep config vars
//! private (0600 files in 0700 folders), and one lock per app.
//!
//! It stores and loads; it never decides what a deployment does.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::io_error::{io, IoError};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path} is damaged ({message}); move it aside to start that app afresh")]
    Corrupt { path: PathBuf, message: String },
    #[error("app name {0:?} is invalid: use lowercase letters, digits and dashes, starting with a letter, at most 48 characters")]
    AppName(String),
    #[error("cannot write shipway's state in {path}: {source}. Set SHIPWAY_HOME to a folder you can write")]
    HomeNotWritable { path: PathBuf, source: std::io::Error },
    #[error("app {0:?} does not exist: create it with `shipway create {0}` (or deploy it once)")]
    UnknownApp(String),
    #[error("refusing to use {path}: it is {problem}, so another user could change what shipway runs as you or read your config vars. {fix}")]
    Unsafe {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    /// A FIFO, a device or a socket where shipway keeps a file: reading it could block
    /// forever or never end.
    #[error(
        "refusing to read {path}: it is {kind}, not a regular file. Move it aside (shipway writes its own)"
    )]
    NotAFile { path: PathBuf, kind: &'static str },
}

/// Refuse `path` unless this user owns it and neither group nor others may write it
/// (a missing path is fine: shipway creates it private). Whoever can write a folder of
/// the home can replace a slug that runs as this user, or the socket that receives
/// config vars; nothing below a folder that passes can be replaced by anyone else.
pub fn check_private(path: &Path) -> Result<(), StateError> {
    match fs::metadata(path) {
        Ok(meta) => check_private_meta(path, &meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io("inspect", path)(source).into()),
    }
}

/// `check_private` on what is known of `path` already (an `fstat` of the open file).
fn check_private_meta(path: &Path, meta: &fs::Metadata) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(StateError::Unsafe {
            path: path.to_path_buf(),
            problem: format!("owned by uid {}, not by you (uid {me})", meta.uid()),
            fix: format!(
                "If it is yours, `chown -R {me} {}`; otherwise set SHIPWAY_HOME to a folder of your own",
                path.display()
            ),
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(StateError::Unsafe {
            path: path.to_path_buf(),
            problem: format!("writable by group or others (mode {:o})", meta.mode() & 0o7777),
            fix: format!(
                "Run `chmod go-w {}`, or set SHIPWAY_HOME to another folder",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Refuse a home that another user could replace, before anything in it is opened or
/// created: the home must be this user's alone (`check_private`), and no folder above it
/// may be writable by every user without the sticky bit (as `/tmp` has), or anyone could
/// rename the home aside and put their own in its place (OpenSSH refuses such paths for
/// `authorized_keys` for the same reason). A home that does not exist yet is fine: it is
/// created private.
pub fn check_home(root: &Path) -> Result<(), StateError> {
    check_above(root)?;
    check_private(root)
}

/// The folders above the home (see `check_home`).
fn check_above(root: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let absolute = std::path::absolute(root).map_err(io("find", root))?;
    for dir in absolute.ancestors().skip(1) {
        let meta = match fs::metadata(dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(io("inspect", dir)(source).into()),
        };
        let mode = meta.mode();
        if mode & 0o002 != 0 && mode & libc::S_ISVTX == 0 {
            return Err(StateError::Unsafe {
                path: dir.to_path_buf(),
                problem: format!(
                    "a folder above the home that every user may write, without the sticky bit (mode {:o}), so anyone could rename {} aside and put their own in its place",
                    mode & 0o7777,
                    root.display()
                ),
                fix: format!(
                    "Run `chmod +t {}` (as /tmp is) or `chmod o-w {}`, or set SHIPWAY_HOME to a folder in your own home",
                    dir.display(),
                    dir.display()
                ),
            });
        }
    }
    Ok(())
}

/// A file shipway reads from its home, opened without blocking and checked to be a regular
/// file (`fstat` of what was opened, so nothing can be swapped in between): a FIFO put in
/// its place would hang every command, a device never end. `None` when there is none.
pub fn open_regular(path: &Path) -> Result<Option<File>, StateError> {
    let file = match File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io("read", path)(source).into()),
    };
    let meta = file.metadata().map_err(io("inspect", path))?;
    regular(path, &meta)?;
    Ok(Some(file))
}

/// Refuse what is not a regular file, naming what it is.
fn regular(path: &Path, meta: &fs::Metadata) -> Result<(), StateError> {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    let kind = if kind.is_file() {
        return Ok(());
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a file"
    };
    Err(StateError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

/// The whole of a file of the home (`open_regular`), or `None` when there is none.
pub fn read_regular(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    use std::io::Read;
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io("read", path))?;
    Ok(Some(bytes))
}

/// `read_regular` of a file that decides what shipway runs as this user (`config.toml`):
/// it must be this user's alone too, checked on the open file.
pub fn read_private(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    use std::io::Read;
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
    };
    let meta = file.metadata().map_err(io("inspect", path))?;
    check_private_meta(path, &meta)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io("read", path))?;
    Ok(Some(bytes))
}

/// Create a private folder (0700) and its parents.
pub fn private_dir(path: &Path) -> Result<(), StateError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io("create", path)(e).into())
}

/// Write `bytes` to `path` so that a reader sees the old file or the new one, never half.
/// The temporary file's name is unique to this write (two threads of one platform may
/// write the same file at once), and it is removed when the write fails (a full disk),
/// so that nothing is left beside the file.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    replace_file(path, bytes, mode, true)
}

/// `write_atomic` without waiting for the disk: for a record that a later write replaces
/// within moments (a deployment's status while it runs). A crash still leaves the old
/// file or the new one whole; only a power loss may lose the newest.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    replace_file(path, bytes, mode, false)
}

fn replace_file(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> Result<(), StateError> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let serial = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{serial}.tmp", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("write", &tmp))
        .and_then(|mut file| {
            file.write_all(bytes)
                .and_then(|_| if sync { file.sync_all() } else { Ok(()) })
                .map_err(io("write", &tmp))
        })
        .and_then(|_| fs::rename(&tmp, path).map_err(io("replace", path)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    Ok(written?)
}

pub fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StateError> {
    let Some(bytes) = read_regular(path)? else {
        return Ok(None);
    };
    let corrupt = |message: String| StateError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let text = String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8".into()))?;
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| corrupt(e.message().to_string()))
}

pub fn write_toml<T: Serialize>(path: &Path, value: &T, mode: u32) -> Result<(), StateError> {
    write_atomic(path, toml_text(path, value)?.as_bytes(), mode)
}

/// `write_toml` with `write_atomic_unsynced`.
pub fn write_toml_unsynced<T: Serialize>(path: &Path, value: &T, mode: u32) -> Result<(), StateError> {
    write_atomic_unsynced(path, toml_text(path, value)?.as_bytes(), mode)
}

fn toml_text<T: Serialize>(path: &Path, value: &T) -> Result<String, StateError> {
    toml::to_string(value).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The root of shipway's state.
#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    pub fn open(root: &Path) -> Result<Home, StateError> {
        // Before anything is created in it: a foreign home must not gain an `apps/`.
        check_home(root)?;
        let apps = root.join("apps");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&apps)
            .map_err(|source| StateError::HomeNotWritable {
                path: root.to_path_buf(),
                source,
            })?;
        let home = Home {
            root: root.to_path_buf(),
        };
        home.check()?;
        Ok(home)
    }

    /// The home as `down` finds it, nothing created in it, with every problem its checks
    /// found (the home, its folders and files, each app's): `down` stops the platform this
    /// user started whatever became of the permissions, and says what it found.
    pub fn for_stop(root: &Path) -> (Home, Vec<StateError>) {
        let home = Home {
            root: root.to_path_buf(),
        };
        let mut problems: Vec<StateError> = check_above(root).err().into_iter().collect();
        problems.extend(home.private_paths().iter().filter_map(|p| check_private(p).err()));
        for name in home.apps() {
            let app = AppDir {
                root: home.root.join("apps").join(&name),
                name,
            };
            problems.extend(app.private_paths().iter().filter_map(|p| check_private(p).err()));
        }
        (home, problems)
    }

    /// The home's own folders and files must be this user's alone (see `check_private`).
    fn check(&self) -> Result<(), StateError> {
        self.private_paths().iter().try_for_each(|p| check_private(p))
    }

    fn private_paths(&self) -> [PathBuf; 7] {
        [
            self.root.clone(),
            self.root.join("apps"),
            // Buildpacks fetched by URL: their scripts run as this user.
            self.root.join("buildpacks"),
            self.root.join("config.toml"),
            self.socket(),
            self.pid_file(),
            self.log_file(),
        ]
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("platform.sock")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("platform.pid")
    }
    pub fn log_file(&self) -> PathBuf {
        self.root.join("platform.log")
    }

    pub fn app(&self, name: &str) -> Result<AppDir, StateError> {
        validate_app_name(name)?;
        let app = AppDir {
            name: name.to_string(),
            root: self.root.join("apps").join(name),
        };
        app.check()?;
        Ok(app)
    }

    /// An app that must exist already.
    pub fn existing_app(&self, name: &str) -> Result<AppDir, StateError> {
        let app = self.app(name)?;
        if !app.exists() {
            return Err(StateError::UnknownApp(name.to_string()));
        }
        Ok(app)
    }

    /// What interrupted builds and writes left behind (a platform killed during a
    /// compile, a full disk): the temporary files of atomic writes, and in each app
    /// `.build-*` scratch folders and releases that never got their `release.toml`.
    /// An app whose lock another process holds (a `shipway build` running now) is
    /// skipped. Returns what was removed.
    pub fn sweep(&self) -> Vec<PathBuf> {
        let mut removed = sweep_tmp_files(&self.root);
        for name in self.apps() {
            if let Ok(app) = self.app(&name) {
                removed.extend(app.sweep());
            }
        }
        removed
    }

    pub fn apps(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("apps"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().join("app.toml").exists())
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

pub fn validate_app_name(name: &str) -> Result<(), StateError> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(StateError::AppName(name.to_string()))
    }
}

/// An app name from a folder name: lowercase, other characters turned into dashes.
pub fn app_name_from(folder: &Path) -> String {
    let base = folder
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".into());
    let base = base
        .strip_suffix(".tar.gz")
        .or_else(|| base.strip_suffix(".tgz"))
        .or_else(|| base.strip_suffix(".war"))
        .or_else(|| base.strip_suffix(".jar"))
        .unwrap_or(&base)
        .to_string();
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_matches('-').to_string();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name = format!("app-{name}");
    }
    name.truncate(48);
    name.trim_end_matches('-').to_string()
}

/// What is stored about an app besides its releases: config vars, formation, ports.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AppConfig {
    #[serde(default)]
    pub config_vars: BTreeMap<String, String>,
    #[serde(default)]
    pub formation: BTreeMap<String, u32>,
    /// The size of each process type given one (`scale web:2:L`, scalingo.json); M
    /// otherwise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sizes: BTreeMap<String, String>,
    pub router_port: Option<u16>,
    pub tcp_port: Option<u16>,
    /// `router-logs --enable`: one line per request in the app's log. Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub router_logs: bool,
    /// How far scalingo.json was applied, at the app's first deployment (`manifest.rs`).
    #[serde(default)]
    pub manifest: ManifestStage,
    /// The app's stack (`stacks-set`): its next deployment builds and runs on it. None for
    /// an app made before stacks, which stays on the one it was built for ([`AppConfig::stack`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

impl AppConfig {
    /// Where its web router serves it, once its first deploy gave it a port.
    pub fn url(&self) -> Option<String> {
        self.router_port.map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// The container size of `process_type`: the one it was given, else M.
    pub fn size(&self, process_type: &str) -> crate::platform_numbers::Size {
        self.sizes
            .get(process_type)
            .and_then(|s| crate::platform_numbers::Size::named(s).ok())
            .unwrap_or(crate::platform_numbers::DEFAULT_SIZE)
    }

    /// The app's stack. An app made before shipway had stacks was built for `scalingo-24`
    /// (the `STACK` every app had then); it stays there, as the platform never moves an
    /// app to a new default stack, until `stacks-set` says otherwise.
    pub fn stack(&self) -> &str {
        self.stack
            .as_deref()
            .unwrap_or(crate::platform_numbers::BEFORE_STACKS)
    }
}

/// scalingo.json at an app's first deployment: its env (and addons) before the first
/// build, its formation after it, each once.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ManifestStage {
    #[default]
    Pending,
    EnvApplied,
    Applied,
}

/// One app's folder.
#[derive(Debug, Clone)]
pub struct AppDir {
    pub name: String,
    pub root: PathBuf,
}

impl AppDir {
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn releases(&self) -> PathBuf {
        self.root.join("releases")
    }
    pub fn release(&self, number: u32) -> PathBuf {
        self.releases().join(number.to_string())
    }
    pub fn deployments(&self) -> PathBuf {
        self.root.join("deployments")
    }
    pub fn current_file(&self) -> PathBuf {
        self.root.join("current")
    }

    /// The app's folder and what shipway keeps directly in it must be this user's alone
    /// (a few stats: the slugs below are safe once their folders are).
    fn check(&self) -> Result<(), StateError> {
        self.private_paths().iter().try_for_each(|p| check_private(p))
    }

    fn private_paths(&self) -> Vec<PathBuf> {
        [
            "",
            "app.toml",
            "current",
            "releases",
            "deployments",
            "cache",
            "app.log",
            ".lock",
            ".config.lock",
            "repo.git",
            // Addon records; the data folder of a PostgreSQL addon below it belongs to
            // the server's user when shipway runs as root (`addon.rs`): not checked.
            "addons",
        ]
        .iter()
        .map(|n| self.root.join(n))
        .collect()
    }

    /// Create the app's folders; an app exists once its app.toml does.
    pub fn create(&self) -> Result<(), StateError> {
        private_dir(&self.root)?;
        private_dir(&self.releases())?;
        private_dir(&self.deployments())?;
        // Under the config lock: two first deploys of one app at once must not both write
        // an empty app.toml, the second over the first's config vars.
        let _lock = exclusive_lock(&self.root.join(".config.lock"))?;
        if !self.exists() {
            // A new app is on the platform's default stack.
            self.save_config(&AppConfig {
                stack: Some(crate::platform_numbers::DEFAULT_STACK.to_string()),
                ..AppConfig::default()
            })?;
        }
        Ok(())
    }

    /// An app exists once its app.toml does.
    pub fn exists(&self) -> bool {
        self.config_path().exists()
    }

    fn config_path(&self) -> PathBuf {
        self.root.join("app.toml")
    }

    pub fn load_config(&self) -> Result<AppConfig, StateError> {
        Ok(read_toml(&self.config_path())?.unwrap_or_default())
    }

    pub fn save_config(&self, config: &AppConfig) -> Result<(), StateError> {
        write_toml(&self.config_path(), config, 0o600)
    }

    /// Read, change and write app.toml under the app's config lock, so that two
    /// writers (the platform saving a port, `env-set`) never lose each other's change.
    pub fn update_config<T>(&self, change: impl FnOnce(&mut AppConfig) -> T) -> Result<T, StateError> {
        let _lock = exclusive_lock(&self.root.join(".config.lock"))?;
        let mut config = self.load_config()?;
        let before = config.clone();
        let result = change(&mut config);
        // Unchanged (a deploy's `--env` given again), it is not written: the write is
        // synced to disk, which a loaded machine can take tens of milliseconds to do.
        if config != before {
            self.save_config(&config)?;
        }
        Ok(result)
    }

    /// The release being served, if any.
    pub fn current(&self) -> Option<u32> {
        let bytes = read_regular(&self.current_file()).ok()??;
        std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
    }

    pub fn set_current(&self, number: u32) -> Result<(), StateError> {
        write_atomic(&self.current_file(), format!("{number}\n").as_bytes(), 0o600)
    }

    /// Release numbers on disk, oldest first.
    pub fn release_numbers(&self) -> Vec<u32> {
        let mut numbers: Vec<u32> = fs::read_dir(self.releases())
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        numbers.sort_unstable();
        numbers
    }

    /// See `Home::sweep`.
    fn sweep(&self) -> Vec<PathBuf> {
        let Ok(Some(_lock)) = self.try_lock() else {
            return Vec::new();
        };
        let mut removed = sweep_tmp_files(&self.root);
        removed.extend(sweep_tmp_files(&self.deployments()));
        let entries: Vec<PathBuf> = fs::read_dir(self.releases())
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let scratch = name.starts_with(".build-");
            // A release is complete once its release.toml is written, the build's last step.
            let unfinished = name.parse::<u32>().is_ok() && !path.join("release.toml").exists();
            if (scratch || unfinished) && fs::remove_dir_all(&path).is_ok() {
                removed.push(path);
            } else if name.parse::<u32>().is_ok() {
                removed.extend(sweep_tmp_files(&path));
            }
        }
        removed
    }

    /// The app's lock if no other holder has it now.
    pub fn try_lock(&self) -> Result<Option<AppLock>, StateError> {
        Ok(try_exclusive_lock(&self.root.join(".lock"))?.map(|flock| AppLock { _flock: flock }))
    }

    /// Take the app's lock: held while a deployment or a build of it runs.
    pub fn lock(&self) -> Result<AppLock, StateError> {
        private_dir(&self.root)?;
        Ok(AppLock {
            _flock: exclusive_lock(&self.root.join(".lock"))?,
        })
    }
}

/// Remove the temporary files `write_atomic` leaves in `dir` when interrupted
/// (`.NAME.PID-N.tmp`), except those of a process still running: it may be writing.
fn sweep_tmp_files(dir: &Path) -> Vec<PathBuf> {
    let entries: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries
        .into_iter()
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
                return false;
            };
            let pid = stem
                .rsplit('.')
                .next()
                .and_then(|tail| tail.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            let writer_alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            !writer_alive && path.is_file() && fs::remove_file(path).is_ok()
        })
        .collect()
}

/// A log of this user's alone, opened to append (created 0600). One an older shipway
/// created 0644 is tightened: logs hold what apps print, secrets included.
/// Opened without blocking and refused unless it is a regular file: opening a FIFO to
/// write waits for a reader that may never come.
pub fn open_private_log(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // A FIFO without a reader: O_NONBLOCK makes the open fail rather than wait.
            Some(libc::ENXIO) => std::io::Error::other(format!(
                "{} is a FIFO, not a regular file: move it aside",
                path.display()
            )),
            _ => e,
        })?;
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file: move it aside",
            path.display()
        )));
    }
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// An exclusive flock on `path` (created if needed), released when dropped or when the
/// process dies.
pub(crate) fn exclusive_lock(path: &Path) -> Result<nix::fcntl::Flock<File>, StateError> {
    lock_with(path, nix::fcntl::FlockArg::LockExclusive)
}

/// The same lock if no other process holds it now, else `None`.
pub(crate) fn try_exclusive_lock(path: &Path) -> Result<Option<nix::fcntl::Flock<File>>, StateError> {
    match lock_with(path, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(flock) => Ok(Some(flock)),
        Err(StateError::Io(e)) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A lock file of this user's alone (0600, never through a link), locked as `how` says.
fn lock_with(path: &Path, how: nix::fcntl::FlockArg) -> Result<nix::fcntl::Flock<File>, StateError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io("open", path))?;
    nix::fcntl::Flock::lock(file, how)
        .map_err(|(_, e)| StateError::Io(IoError::new("lock", path.to_path_buf(), e.into())))
}

/// Released when dropped (or when the process dies: flock dies with its holder).
pub struct AppLock {
    _flock: nix::fcntl::Flock<File>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn config_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        let app = home.app("my-app").unwrap();
        app.create().unwrap();
        let mut config = app.load_config().unwrap();
        config.config_vars.insert("SECRET".into(), "s3cr3t".into());
        config.formation.insert("web".into(), 2);
        app.save_config(&config).unwrap();
        assert_eq!(app.load_config().unwrap(), config);
        let mode = fs::metadata(app.root.join("app.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = fs::metadata(&app.root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(home.apps(), vec!["my-app".to_string()]);
    }

    #[test]
    fn an_update_that_changes_nothing_writes_nothing() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let app = Home::open(dir.path()).unwrap().app("my-app").unwrap();
        app.create().unwrap();
        let inode = || fs::metadata(app.root.join("app.toml")).unwrap().ino();
        app.update_config(|c| c.config_vars.insert("A".into(), "1".into()))
            .unwrap();
        let written = inode();
        app.update_config(|c| c.config_vars.insert("A".into(), "1".into()))
            .unwrap();
        assert_eq!(inode(), written, "the same value again is no write");
        app.update_config(|c| c.config_vars.insert("A".into(), "2".into()))
            .unwrap();
        assert_ne!(inode(), written, "a write replaces the file");
        assert_eq!(app.load_config().unwrap().config_vars["A"], "2");
    }

    #[test]
    fn app_names_are_checked_and_derived() {
        assert!(validate_app_name("my-app-2").is_ok());
        assert!(validate_app_name("My_App").is_err());
        assert!(validate_app_name("../x").is_err());
        assert!(validate_app_name("").is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("My_Cool.App");
        fs::create_dir(&f).unwrap();
        assert_eq!(app_name_from(&f), "my-cool-app");
        let war = dir.path().join("shop.war");
        fs::write(&war, "").unwrap();
        assert_eq!(app_name_from(&war), "shop");
    }

    #[test]
    fn a_failed_atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A rename over a non-empty folder fails, as a full disk fails the write before it.
        let target = dir.path().join("busy");
        fs::create_dir_all(target.join("inside")).unwrap();
        assert!(write_atomic(&target, b"x", 0o600).is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("busy")]);
    }

    #[test]
    fn the_sweep_keeps_the_temporary_files_of_live_writers() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join(format!(".app.toml.{}-3.tmp", std::process::id()));
        let gone = dir.path().join(".app.toml.999999999-3.tmp");
        let other = dir.path().join("notes.tmp");
        for p in [&mine, &gone, &other] {
            fs::write(p, "").unwrap();
        }
        assert_eq!(sweep_tmp_files(dir.path()), vec![gone.clone()]);
        assert!(mine.exists() && other.exists() && !gone.exists());
    }

    #[test]
    fn others_may_not_write_the_home() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o775)).unwrap();
        let err = Home::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("chmod go-w"), "{err}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        Home::open(dir.path()).unwrap();
    }

    #[test]
    fn damaged_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        let app = home.app("x").unwrap();
        app.create().unwrap();
        fs::write(app.root.join("app.toml"), "formation = [").unwrap();
        let err = app.load_config().unwrap_err().to_string();
        assert!(err.contains("app.toml"), "{err}");
    }
}
