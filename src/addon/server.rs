//! An addon's server: found among the host's packages, its data initialised once
//! (`provision`), started through `process::Spawn` (behind the shim, so that it never
//! outlives the platform) and ready once it says so in its log, stopped gracefully
//! (PostgreSQL's fast shutdown: SIGINT).
//!
//! What the app's credentials may do is decided here, as a hosted database decides it: the
//! app's PostgreSQL role owns its database and is no superuser (the superuser is shipway's,
//! its password never given to the app); MariaDB's user has its own database only (no FILE);
//! Redis's user is refused the administrative commands (CONFIG, MODULE, DEBUG...). No
//! secret is ever in a command line, which every local user can read: servers read theirs
//! from 0600 files. As root, each addon's server runs as its own OS user (`users.rs`).

use std::ffi::OsString;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{after, bounded, select, Receiver};
use nix::sys::signal::Signal;
use nix::unistd::User;

use super::{as_user, data_dir, io, list, remove, users, Addon, AddonError, Kind};
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
/// How long initdb, mariadb-install-db and psql may take.
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
    /// PostgreSQL's psql, which makes the app's role and database once the server runs.
    client: Option<PathBuf>,
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
            // initdb and psql of the same version, beside the server.
            let dir = server.parent().unwrap_or(Path::new("/"));
            let beside = |n: &str| Some(dir.join(n)).filter(|p| p.is_file());
            Ok(Binaries {
                init: Some(beside("initdb").ok_or_else(|| missing("initdb"))?),
                client: Some(beside("psql").ok_or_else(|| missing("psql"))?),
                server,
            })
        }
        Kind::Redis => Ok(Binaries {
            server: find(&["redis-server"]).ok_or_else(|| missing("redis-server"))?,
            init: None,
            client: None,
        }),
        Kind::Mysql => Ok(Binaries {
            server: find(&["mariadbd", "mysqld"]).ok_or_else(|| missing("mariadbd"))?,
            init: Some(
                find(&["mariadb-install-db", "mysql_install_db"])
                    .ok_or_else(|| missing("mariadb-install-db"))?,
            ),
            client: None,
        }),
    }
}

/// The user a server runs as: as root, the addon's own (made when missing, its data
/// given to it); otherwise shipway's, which the server runs as directly.
///
/// MariaDB is the exception: it resolves its data folder to its real path, under the
/// home, which stays 0700 and so cannot be reached by another user (`as_user.rs`). It runs
/// as shipway's user; its app user has no FILE privilege, so it reads and writes no file
/// of the server's for the app.
fn server_user(addon: &Addon, dir: &Path) -> Result<Option<User>, AddonError> {
    if !nix::unistd::geteuid().is_root() || addon.kind == Kind::Mysql {
        return Ok(None);
    }
    let user = users::ensure(&addon.id, dir)?;
    users::give(dir, &user)?;
    Ok(Some(user))
}

/// A command of the server's package, run in `dir` (as `user`, when given: it then
/// reaches `dir` as `/proc/self/fd/3`, see `as_user.rs`).
struct Runner<'a> {
    dir: &'a Path,
    user: Option<&'a User>,
}

impl Runner<'_> {
    /// The name of the user the programs run as.
    fn user_name(&self) -> String {
        self.user.map_or_else(current_user, |u| u.name.clone())
    }

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
    let mut addon = Addon::new(app, kind, plan)?;
    addon.port = free_port()?;
    let made = (|| {
        addon.save(app)?;
        let dir = data_dir(app, &addon.id);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io("create", &dir))?;
        let user = server_user(&addon, &dir)?;
        let runner = Runner {
            dir: &dir,
            user: user.as_ref(),
        };
        initialise(&addon, &bins, &runner, cancel)?;
        let server = launch(addon.clone(), &bins, &runner, sink, cancel)?;
        if let Some(psql) = &bins.client {
            if let Err(e) = create_database(&addon, psql, cancel) {
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
    let mut addon = addon.clone();
    if !port_free(addon.port) {
        addon.port = free_port()?;
        addon.save(app)?;
    }
    let dir = data_dir(app, &addon.id);
    // An addon an older shipway made runs as `postgres` or root: its data is given to its
    // own user here, once.
    let user = server_user(&addon, &dir)?;
    if addon.kind == Kind::Postgresql {
        clear_stale_lock(&dir.join("pgdata/postmaster.pid"));
        if addon.admin_password.is_empty() {
            sink(
                crate::process::Stream::Stderr,
                "shipway: this addon was made by an older shipway: its role is the cluster's superuser, which can read the host's files. `shipway addons-remove` then `addons-add` make one whose role is not (its data goes with it: `pg_dump` it first)",
            );
        }
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
    // Opened without blocking: the lock sits in the home, where a FIFO would hang the start.
    let Ok(Some(bytes)) = crate::state::read_regular(lock) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
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
            // The superuser is shipway's, with a password of its own: the app's role,
            // made once the server runs, is not one (`create_database`).
            let pwfile = runner.dir.join(".pwfile");
            write_private(&pwfile, addon.admin_password.as_bytes(), runner.user)?;
            let base = runner.path();
            (
                vec![
                    "-D".into(),
                    base.join("pgdata").into(),
                    "-U".into(),
                    super::SUPERUSER.into(),
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
            // The app's user has its own database and nothing else: no global
            // privilege (FILE would read and write the server's files), none on
            // another database; a grant an older shipway gave is taken back.
            let sql = format!(
                "CREATE DATABASE IF NOT EXISTS `{db}`;\n\
                 CREATE USER IF NOT EXISTS '{db}'@'%' IDENTIFIED BY '{pw}';\n\
                 ALTER USER '{db}'@'%' IDENTIFIED BY '{pw}';\n\
                 REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{db}'@'%';\n\
                 GRANT ALL PRIVILEGES ON `{db}`.* TO '{db}'@'%';\n\
                 FLUSH PRIVILEGES;\n",
                db = addon.database,
                pw = addon.password
            );
            write_private(&runner.dir.join("init.sql"), sql.as_bytes(), runner.user)?;
            let base = runner.path();
            (
                vec![
                    "--no-defaults".into(),
                    format!("--datadir={}", base.join("data").display()).into(),
                    // No --user: it runs as the server's user already, and would try
                    // to give MariaDB's own plugin folder to it.
                    "--skip-test-db".into(),
                    // Root only through the server's socket, which is in its 0700 folder.
                    "--auth-root-authentication-method=socket".into(),
                    own_tmpdir(runner)?,
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
        // What went wrong is on stderr; mariadb-install-db follows it on stdout with a
        // page of advice that would fill the whole tail.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let text = if stderr.trim().is_empty() {
            String::from_utf8_lossy(&out.stdout)
        } else {
            stderr
        };
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

/// The app's role and database, made once the server runs by shipway's superuser (initdb
/// makes only `postgres`). The role owns its database and may do there what an owner may
/// (tables, schemas, trusted extensions such as pgcrypto or hstore), and nothing a
/// superuser may: no file of the server read or written, no program run by it.
fn create_database(addon: &Addon, psql: &Path, cancel: &Receiver<()>) -> Result<(), AddonError> {
    let secrets = Secrets::new()?;
    let (db, pw) = (&addon.database, &addon.password);
    // The statements in a 0600 file, not psql's command line: they hold the password.
    let sql = secrets.file(
        "create.sql",
        &format!(
            "CREATE ROLE \"{db}\" LOGIN PASSWORD '{pw}' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;\n\
             CREATE DATABASE \"{db}\" OWNER \"{db}\";\n"
        ),
    )?;
    let passfile = secrets.file(
        "pgpass",
        &pgpass_line(addon.port, "*", super::SUPERUSER, &addon.admin_password),
    )?;
    let out = Spawn::new(psql.as_os_str(), Path::new("/"))
        .args([
            "-X".into(),
            "-q".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            addon.port.to_string().into(),
            "-U".into(),
            super::SUPERUSER.into(),
            "-d".into(),
            "postgres".into(),
            "-f".into(),
            sql.into_os_string(),
        ])
        .env([
            ("PATH", OsString::from("/usr/bin:/bin")),
            ("PGPASSFILE", passfile.into_os_string()),
            ("LANG", "C.UTF-8".into()),
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
            "refused to create role and database {} ({})",
            addon.database,
            Exit(out.status)
        ),
        tail: last_lines(&String::from_utf8_lossy(&out.stderr)),
    })
}

/// A line of a libpq password file (`host:port:database:user:password`), `:` and `\\`
/// escaped as libpq reads them.
pub fn pgpass_line(port: u16, database: &str, user: &str, password: &str) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    format!(
        "127.0.0.1:{port}:{}:{}:{}\n",
        esc(database),
        esc(user),
        esc(password)
    )
}

/// A private folder (0700, removed when dropped) for the files that carry a secret to a
/// client: psql's password file, a MariaDB defaults file. Never the command line, which
/// every local user can read in /proc.
pub struct Secrets(tempfile::TempDir);

impl Secrets {
    pub fn new() -> Result<Secrets, AddonError> {
        tempfile::Builder::new()
            .prefix("shipway-secret-")
            .tempdir()
            .map(Secrets)
            .map_err(|e| io("create", &std::env::temp_dir())(e).into())
    }

    /// A 0600 file of the folder holding `text`; its path.
    pub fn file(&self, name: &str, text: &str) -> Result<PathBuf, AddonError> {
        let path = self.0.path().join(name);
        write_private(&path, text.as_bytes(), None)?;
        Ok(path)
    }
}

/// `--tmpdir=` a folder of the server's own, made when missing (an addon an older shipway
/// made has none). At each start, MariaDB deletes every `#sql*` file in its tmpdir as
/// its own leftover temporary tables: in the shared /tmp it deleted those of every other
/// MariaDB of the machine, running or bootstrapping (another addon's, the host's), which
/// then failed ("Unknown table 'mysql.tmp_proxies_priv'") or crashed. On the platform,
/// each database runs in a container with a /tmp of its own.
fn own_tmpdir(runner: &Runner<'_>) -> Result<OsString, AddonError> {
    let dir = runner.dir.join("tmp");
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io("create", &dir)(e).into()),
        _ => {}
    }
    if let Some(u) = runner.user {
        nix::unistd::chown(&dir, Some(u.uid), Some(u.gid))
            .map_err(|e| IoError::new("give to the server's user", &dir, e.into()))?;
    }
    Ok(format!("--tmpdir={}", runner.path().join("tmp").display()).into())
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
        Kind::Redis => {
            // Its password in a 0600 file the server reads, never in its command line.
            write_private(
                &runner.dir.join("redis.conf"),
                redis_conf(&addon, &base).as_bytes(),
                runner.user,
            )?;
            (
                vec![base.join("redis.conf").into()],
                "Ready to accept connections",
            )
        }
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
                format!("--user={}", runner.user_name()).into(),
                // LOAD DATA LOCAL reads files of the client's machine, which is this one.
                "--local-infile=0".into(),
                own_tmpdir(runner)?,
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
            "was not ready within {}", crate::units::human_duration(START_TIMEOUT)
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

/// Redis's configuration: loopback only; every write on disk before it is acknowledged
/// (the data survives the platform being killed, which stops the server with SIGKILL);
/// the app's user (`default`, as the URL says) may use every command but the
/// administrative ones (CONFIG, MODULE, DEBUG, SHUTDOWN, SAVE, REPLICAOF, ACL SETUSER,
/// MONITOR...) and MIGRATE (which connects to any host), as a hosted Redis refuses them:
/// CONFIG SET dir and SAVE would write the server's files anywhere it may.
fn redis_conf(addon: &Addon, dir: &Path) -> String {
    format!(
        "bind 127.0.0.1\n\
         port {port}\n\
         dir {dir}\n\
         appendonly yes\n\
         appendfsync always\n\
         save \"\"\n\
         daemonize no\n\
         logfile \"\"\n\
         enable-protected-configs no\n\
         enable-debug-command no\n\
         enable-module-command no\n\
         user default on >{password} ~* &* +@all -@admin -migrate\n",
        port = addon.port,
        dir = dir.display(),
        password = addon.password,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_in_place_of_postgresqls_lock_is_left_alone_never_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("postmaster.pid");
        nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Before, reading it waited for a writer that never comes.
        clear_stale_lock(&lock);
        assert!(lock.exists());
    }

    #[test]
    fn a_lock_of_a_process_that_is_gone_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("postmaster.pid");
        std::fs::write(&lock, format!("{}\n/data\n", i32::MAX)).unwrap();
        clear_stale_lock(&lock);
        assert!(!lock.exists());
    }
}
