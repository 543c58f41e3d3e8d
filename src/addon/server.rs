//! An addon's server: found among the host's packages, its data initialised once
//! (`provision`), started through `process::Spawn` (behind the shim, so that it never
//! outlives the platform) and ready once it says so in its log, stopped gracefully
//! (PostgreSQL's fast shutdown: SIGINT).

use std::ffi::OsString;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{after, bounded, select, Receiver};
use nix::sys::signal::Signal;
use nix::unistd::User;

use super::{as_user, data_dir, io, list, remove, Addon, AddonError, Kind};
use crate::io_error::IoError;
use crate::process::{Child, Exit, LineSink, Spawn};
use crate::settings::Settings;
use crate::state::AppDir;
use crate::tail::{SharedTail, Tail};

/// How long a server may take to say it is ready: the platform's boot timeout. A fixed
/// number, not the boot_timeout setting, which tests shrink for apps that fail on
/// purpose, while a database recovering after a kill may need a while on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to stop before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long initdb, mariadb-install-db and createdb may take.
const INIT_TIMEOUT: Duration = Duration::from_secs(120);
/// How many of a server's last lines a failure shows.
const TAIL: usize = 15;

/// A running addon server, owned by the platform's supervisor.
pub struct Server {
    pub addon: Addon,
    child: Child,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Ready (disconnected) when the server has exited.
    pub fn exited(&self) -> &Receiver<()> {
        self.child.exited()
    }

    /// Stop gracefully: PostgreSQL's fast shutdown (SIGINT: open sessions are rolled
    /// back, the data checkpointed), SIGTERM for Redis and MariaDB; SIGKILL after a
    /// while.
    pub fn stop(mut self) -> Exit {
        let signal = match self.addon.kind {
            Kind::Postgresql => Signal::SIGINT,
            Kind::Redis | Kind::Mysql => Signal::SIGTERM,
        };
        self.child.stop(signal, STOP_GRACE)
    }

    /// After it exited on its own: clean up what it left.
    pub fn reap(mut self) -> Exit {
        self.child.stop(Signal::SIGTERM, Duration::from_secs(2))
    }
}

/// The programs of one kind of server.
struct Binaries {
    server: PathBuf,
    /// initdb, mariadb-install-db.
    init: Option<PathBuf>,
    /// PostgreSQL's createdb.
    createdb: Option<PathBuf>,
}

/// Where to look: the setting, else Debian's places (PostgreSQL's newest version first).
fn search_dirs(kind: Kind, settings: &Settings) -> Vec<PathBuf> {
    if let Some(dirs) = &settings.addon_bin_dirs {
        return dirs.clone();
    }
    let mut dirs = Vec::new();
    if kind == Kind::Postgresql {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|e| {
                e.flatten()
                    .filter_map(|d| Some((d.file_name().to_str()?.parse().ok()?, d.path().join("bin"))))
                    .collect()
            })
            .unwrap_or_default();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        dirs.extend(versions.into_iter().map(|(_, d)| d));
    }
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    dirs
}

fn binaries(kind: Kind, settings: &Settings) -> Result<Binaries, AddonError> {
    let dirs = search_dirs(kind, settings);
    let find = |names: &[&str]| -> Option<PathBuf> {
        dirs.iter()
            .flat_map(|d| names.iter().map(move |n| d.join(n)))
            .find(|p| nix::unistd::access(p.as_path(), nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file())
    };
    let missing = |program: &str| AddonError::Missing {
        kind,
        program: program.to_string(),
        looked: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        package: kind.package(),
    };
    match kind {
        Kind::Postgresql => {
            let server = find(&["postgres"]).ok_or_else(|| missing("postgres"))?;
            // initdb and createdb of the same version, beside the server.
            let dir = server.parent().unwrap_or(Path::new("/"));
            let beside = |n: &str| Some(dir.join(n)).filter(|p| p.is_file());
            Ok(Binaries {
                init: Some(beside("initdb").ok_or_else(|| missing("initdb"))?),
                createdb: Some(beside("createdb").ok_or_else(|| missing("createdb"))?),
                server,
            })
        }
        Kind::Redis => Ok(Binaries {
            server: find(&["redis-server"]).ok_or_else(|| missing("redis-server"))?,
            init: None,
            createdb: None,
        }),
        Kind::Mysql => Ok(Binaries {
            server: find(&["mariadbd", "mysqld"]).ok_or_else(|| missing("mariadbd"))?,
            init: Some(
                find(&["mariadb-install-db", "mysql_install_db"])
                    .ok_or_else(|| missing("mariadb-install-db"))?,
            ),
            createdb: None,
        }),
    }
}

/// The user a server runs as when shipway runs as root: PostgreSQL refuses root, so it
/// runs as Debian's `postgres` user (else `nobody`). The others run as shipway does.
fn unprivileged(kind: Kind) -> Result<Option<User>, AddonError> {
    if kind != Kind::Postgresql || !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Ok(Some(user)) = User::from_name(name) {
            return Ok(Some(user));
        }
    }
    Err(AddonError::NoUser { kind })
}

/// A command of the server's package, run in `dir` (as `user`, when given: it then
/// reaches `dir` as `/proc/self/fd/3`, see `as_user.rs`).
struct Runner<'a> {
    dir: &'a Path,
    user: Option<&'a User>,
}

impl Runner<'_> {
    /// How the program names the server's folder.
    fn path(&self) -> PathBuf {
        match self.user {
            Some(_) => PathBuf::from(format!("/proc/self/fd/{}", as_user::FD)),
            None => self.dir.to_path_buf(),
        }
    }

    fn spawn(&self, program: &Path, args: Vec<OsString>) -> Spawn {
        let env = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into()),
            ("LANG", "C.UTF-8".into()),
            ("HOME", self.path().into_os_string()),
        ];
        // Started from `/`: PostgreSQL's programs look up their own path by changing
        // folder and back, which fails in a folder their user cannot reach.
        let spawn = match self.user {
            Some(u) => Spawn::new(crate::process::self_exe(), Path::new("/"))
                .args([OsString::from("as-user"), u.name.clone().into(), self.dir.into()])
                .args([program.as_os_str().to_owned()])
                .args(args),
            None => Spawn::new(program.as_os_str(), Path::new("/")).args(args),
        };
        spawn.env(env)
    }
}

/// A port no one listens on now, chosen as containers' are: outside the range the OS
/// hands to outgoing connections, which could take it before the server binds it.
fn free_port() -> Result<u16, AddonError> {
    Ok(crate::container::free_port().map_err(io("bind", Path::new("127.0.0.1")))?)
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Create an addon of `kind` for the app: its record, its data, its server started and
/// ready. On any failure nothing of it is left.
pub fn provision(
    app: &AppDir,
    kind: Kind,
    plan: Option<&str>,
    settings: &Settings,
    sink: LineSink,
    cancel: &Receiver<()>,
) -> Result<Server, AddonError> {
    if let Some(a) = list(app)?.into_iter().find(|a| a.kind == kind) {
        return Err(AddonError::Duplicate {
            app: app.name.clone(),
            kind,
            id: a.id,
        });
    }
    // Checked before anything is made: a missing server leaves nothing behind.
    let bins = binaries(kind, settings)?;
    let user = unprivileged(kind)?;
    let mut addon = Addon::new(app, kind, plan)?;
    addon.port = free_port()?;
    let made = (|| {
        addon.save(app)?;
        let dir = data_dir(app, &addon.id);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io("create", &dir))?;
        if let Some(u) = &user {
            nix::unistd::chown(&dir, Some(u.uid), Some(u.gid)).map_err(|e| {
                AddonError::Io(IoError::new("give to the server's user", dir.clone(), e.into()))
            })?;
        }
        let runner = Runner {
            dir: &dir,
            user: user.as_ref(),
        };
        initialise(&addon, &bins, &runner, cancel)?;
        let server = launch(addon.clone(), &bins, &runner, sink, cancel)?;
        if let Some(createdb) = &bins.createdb {
            if let Err(e) = create_database(&addon, createdb, cancel) {
                server.stop();
                return Err(e);
            }
        }
        Ok(server)
    })();
    if made.is_err() {
        let _ = remove(app, &addon.id);
    }
    made
}

/// Start an existing addon's server (the platform starting, a crash). When its port was
/// taken meanwhile it moves to a free one: the returned addon says which, and the
/// caller updates the app's config vars.
pub fn start(
    app: &AppDir,
    addon: &Addon,
    settings: &Settings,
    sink: LineSink,
    cancel: &Receiver<()>,
) -> Result<Server, AddonError> {
    let bins = binaries(addon.kind, settings)?;
    let user = unprivileged(addon.kind)?;
    let mut addon = addon.clone();
    if !port_free(addon.port) {
        addon.port = free_port()?;
        addon.save(app)?;
    }
    let dir = data_dir(app, &addon.id);
    if addon.kind == Kind::Postgresql {
        clear_stale_lock(&dir.join("pgdata/postmaster.pid"));
    }
    let runner = Runner {
        dir: &dir,
        user: user.as_ref(),
    };
    launch(addon, &bins, &runner, sink, cancel)
}

/// After the platform was killed, PostgreSQL's lock file names a server that is gone;
/// where nothing reaps orphans (a container's init), it may linger as a zombie, which
/// PostgreSQL takes for a live server and refuses to start. A lock whose process is
/// gone, a zombie or another program is stale: removed. A live postgres is left, and
/// PostgreSQL says so.
fn clear_stale_lock(lock: &Path) {
    let Ok(text) = std::fs::read_to_string(lock) else {
        return;
    };
    let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else {
        return;
    };
    // A pid reused by another program is stale too.
    let live_postgres = crate::process::process(pid).is_some()
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("postgres"));
    if !live_postgres {
        let _ = std::fs::remove_file(lock);
    }
}

/// Make the server's data once: PostgreSQL's cluster (its superuser named after the
/// app, with the password), MariaDB's system tables and the SQL that makes the app's
/// user and database at each start.
fn initialise(
    addon: &Addon,
    bins: &Binaries,
    runner: &Runner<'_>,
    cancel: &Receiver<()>,
) -> Result<(), AddonError> {
    let Some(init) = &bins.init else { return Ok(()) };
    let kind = addon.kind;
    let (args, secret): (Vec<OsString>, Option<PathBuf>) = match kind {
        Kind::Postgresql => {
            let pwfile = runner.dir.join(".pwfile");
            write_private(&pwfile, addon.password.as_bytes(), runner.user)?;
            let base = runner.path();
            (
                vec![
                    "-D".into(),
                    base.join("pgdata").into(),
                    "-U".into(),
                    addon.database.clone().into(),
                    "--auth=scram-sha-256".into(),
                    format!("--pwfile={}", base.join(".pwfile").display()).into(),
                    "-E".into(),
                    "UTF8".into(),
                    "--locale=C.UTF-8".into(),
                ],
                Some(pwfile),
            )
        }
        Kind::Mysql => {
            let sql = format!(
                "CREATE DATABASE IF NOT EXISTS `{db}`;\n\
                 CREATE USER IF NOT EXISTS '{db}'@'%' IDENTIFIED BY '{pw}';\n\
                 ALTER USER '{db}'@'%' IDENTIFIED BY '{pw}';\n\
                 GRANT ALL PRIVILEGES ON `{db}`.* TO '{db}'@'%';\n\
                 FLUSH PRIVILEGES;\n",
                db = addon.database,
                pw = addon.password
            );
            write_private(&runner.dir.join("init.sql"), sql.as_bytes(), None)?;
            (
                vec![
                    "--no-defaults".into(),
                    format!("--datadir={}", runner.dir.join("data").display()).into(),
                    format!("--user={}", current_user()).into(),
                    "--skip-test-db".into(),
                    "--auth-root-authentication-method=socket".into(),
                ],
                None,
            )
        }
        Kind::Redis => return Ok(()),
    };
    let ran = runner
        .spawn(init, args)
        .output(1024 * 1024, INIT_TIMEOUT, Some(cancel));
    if let Some(p) = secret {
        let _ = std::fs::remove_file(p);
    }
    let out = ran.map_err(|source| AddonError::Process { kind, source })?;
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return Err(AddonError::Failed {
            kind,
            what: format!(
                "could not be initialised ({} {})",
                init.display(),
                Exit(out.status)
            ),
            tail: last_lines(&text),
        });
    }
    Ok(())
}

/// The app's database, made once the server runs (initdb makes only `postgres`).
fn create_database(addon: &Addon, createdb: &Path, cancel: &Receiver<()>) -> Result<(), AddonError> {
    let out = Spawn::new(createdb.as_os_str(), Path::new("/"))
        .args([
            "-h".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            addon.port.to_string(),
            "-U".into(),
            addon.database.clone(),
            addon.database.clone(),
        ])
        .env([
            ("PATH", "/usr/bin:/bin"),
            ("PGPASSWORD", addon.password.as_str()),
            ("LANG", "C.UTF-8"),
        ])
        .output(64 * 1024, INIT_TIMEOUT, Some(cancel))
        .map_err(|source| AddonError::Process {
            kind: addon.kind,
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(AddonError::Failed {
        kind: addon.kind,
        what: format!(
            "refused to create database {} ({})",
            addon.database,
            Exit(out.status)
        ),
        tail: last_lines(&String::from_utf8_lossy(&out.stderr)),
    })
}

/// Start the server and wait until its log says it accepts connections.
fn launch(
    addon: Addon,
    bins: &Binaries,
    runner: &Runner<'_>,
    sink: LineSink,
    cancel: &Receiver<()>,
) -> Result<Server, AddonError> {
    let kind = addon.kind;
    let port = addon.port.to_string();
    let base = runner.path();
    let (args, ready): (Vec<OsString>, &'static str) = match kind {
        Kind::Postgresql => (
            vec![
                "-D".into(),
                base.join("pgdata").into(),
                "-p".into(),
                port.into(),
                "-c".into(),
                "listen_addresses=127.0.0.1".into(),
                // TCP only: no socket in /var/run/postgresql, which may not exist.
                "-c".into(),
                "unix_socket_directories=".into(),
                "-c".into(),
                "logging_collector=off".into(),
            ],
            "database system is ready to accept connections",
        ),
        Kind::Redis => (
            vec![
                "--bind".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.into(),
                "--requirepass".into(),
                addon.password.clone().into(),
                "--dir".into(),
                base.clone().into(),
                // Every write on disk before it is acknowledged: the data survives
                // the platform being killed, which stops the server with SIGKILL.
                "--appendonly".into(),
                "yes".into(),
                "--appendfsync".into(),
                "always".into(),
                "--save".into(),
                "".into(),
                "--daemonize".into(),
                "no".into(),
                "--logfile".into(),
                "".into(),
            ],
            "Ready to accept connections",
        ),
        Kind::Mysql => (
            vec![
                "--no-defaults".into(),
                format!("--datadir={}", base.join("data").display()).into(),
                format!("--port={port}").into(),
                "--bind-address=127.0.0.1".into(),
                format!("--socket={}", base.join("mysqld.sock").display()).into(),
                format!("--pid-file={}", base.join("mysqld.pid").display()).into(),
                format!("--init-file={}", base.join("init.sql").display()).into(),
                "--skip-name-resolve".into(),
                format!("--user={}", current_user()).into(),
            ],
            "ready for connections",
        ),
    };
    let tail = SharedTail::new(TAIL);
    let (ready_tx, is_ready) = bounded::<()>(1);
    let kept = tail.clone();
    let watched: LineSink = Arc::new(move |stream, line: &str| {
        kept.push(line);
        if line.contains(ready) {
            let _ = ready_tx.try_send(());
        }
        sink(stream, line);
    });
    let mut child = runner
        .spawn(&bins.server, args)
        .start(watched)
        .map_err(|source| AddonError::Process { kind, source })?;
    let exited = child.exited().clone();
    let failure = select! {
        recv(is_ready) -> _ => None,
        recv(exited) -> _ => Some("exited before it was ready".to_string()),
        recv(after(START_TIMEOUT)) -> _ => Some(format!(
            "was not ready within {}", crate::ui::human_duration(START_TIMEOUT)
        )),
        recv(cancel) -> _ => {
            child.stop(Signal::SIGKILL, Duration::from_secs(2));
            return Err(AddonError::Cancelled { kind });
        }
    };
    let Some(what) = failure else {
        return Ok(Server { addon, child });
    };
    // Stopping it also reads the rest of its output: the tail is then complete.
    let exit = child.stop(Signal::SIGKILL, Duration::from_secs(2));
    let what = if what.starts_with("exited") {
        format!("{exit} before it was ready")
    } else {
        what
    };
    let tail = tail.joined();
    Err(AddonError::Failed { kind, what, tail })
}

fn current_user() -> String {
    User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map_or_else(|| nix::unistd::geteuid().to_string(), |u| u.name)
}

/// A 0600 file, given to `user` when one is named.
fn write_private(path: &Path, bytes: &[u8], user: Option<&User>) -> Result<(), AddonError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io("write", path))?;
    f.write_all(bytes).map_err(io("write", path))?;
    if let Some(u) = user {
        nix::unistd::chown(path, Some(u.uid), Some(u.gid)).map_err(|e| {
            AddonError::Io(IoError::new(
                "give to the server's user",
                path.to_path_buf(),
                e.into(),
            ))
        })?;
    }
    Ok(())
}

fn last_lines(text: &str) -> String {
    Tail::of_text(text, TAIL).joined()
}
