//! The test harness: the real binary in a temporary SHIPWAY_HOME, with short timeouts
//! set through settings, fixtures copied before use, every wait under a deadline, and
//! every process reaped on drop (`Spawned`, `Guarded`), even when the test panics.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

pub const BIN: &str = env!("CARGO_BIN_EXE_shipway");

/// The longest one command of a test may run: far beyond a deploy of real buildpacks on
/// a loaded 2-core machine, so that only a hang reaches it, and fails the test saying
/// which command hung (nextest's terminate-after, in `.config/nextest.toml`, is longer).
pub const COMMAND_LIMIT: Duration = Duration::from_secs(600);

/// How long the pipes of a command that has ended may stay open: only a process it
/// left behind can hold them, which is a failure of its own.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture_buildpack(name: &str) -> PathBuf {
    repo().join("fixtures/buildpacks").join(name)
}

/// The `BUILDPACK_URL=` config var of the `procfile-only` fixture buildpack.
pub fn procfile_only() -> String {
    format!("BUILDPACK_URL={}", fixture_buildpack("procfile-only").display())
}

/// An Env whose crash policy gives up quickly (a 50 ms back-off, 3 crashes), with the
/// `crash-loop-worker` fixture deployed as `app` and its worker scaled to 1, crashing.
pub fn crash_looping_worker(app: &str) -> Env {
    let mut env = Env::new();
    env.set("SHIPWAY_CRASH_BACKOFF", "50ms")
        .set("SHIPWAY_CRASH_LIMIT", "3");
    let dir = env.app("crash-loop-worker");
    env.deploy(&dir, app, &["--env", &procfile_only()]).ok();
    env.run(&["scale", "-a", app, "worker=1"]).ok();
    env
}

/// The `PIDS_DIR=` config var of fixtures that tell their pids: the work folder, since a
/// container's own writes under `/app` stay in its layer.
pub fn pids_dir(env: &Env) -> String {
    format!("PIDS_DIR={}", env.work.path().display())
}

/// A stack registry that refuses every connection at once (port 1 of the loopback).
pub const NO_REGISTRY: &str = "http://127.0.0.1:1";

/// One isolated shipway installation.
pub struct Env {
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
    pub vars: BTreeMap<String, String>,
}

/// What a command did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A `--json` command's output, parsed; the test fails with the whole output when it is not JSON.
pub fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()))
}

/// The `type` of each event of a timeline (`timeline --json`, the dashboard's), in order.
pub fn types(timeline: &serde_json::Value) -> Vec<String> {
    timeline
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {timeline}"))
        .iter()
        .map(|e| {
            e["type"]
                .as_str()
                .unwrap_or_else(|| panic!("an event without a type: {e}"))
                .to_string()
        })
        .collect()
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            0,
            "expected success, got {}:\n{}",
            self.code,
            self.all()
        );
        self
    }
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            code,
            "expected exit {code}, got {}:\n{}",
            self.code,
            self.all()
        );
        self
    }
    #[track_caller]
    pub fn has(self, text: &str) -> Run {
        assert!(self.all().contains(text), "expected {text:?} in:\n{}", self.all());
        self
    }
    #[track_caller]
    pub fn lacks(self, text: &str) -> Run {
        assert!(
            !self.all().contains(text),
            "did not expect {text:?} in:\n{}",
            self.all()
        );
        self
    }
}

impl Env {
    pub fn new() -> Env {
        let home = tempfile::Builder::new().prefix("sw-home").tempdir().unwrap();
        let work = tempfile::Builder::new().prefix("sw-work").tempdir().unwrap();
        let mut vars = BTreeMap::new();
        vars.insert("SHIPWAY_HOME".to_string(), home.path().display().to_string());
        vars.insert("SHIPWAY_BOOT_TIMEOUT".to_string(), "10s".to_string());
        vars.insert("SHIPWAY_GRACE_PERIOD".to_string(), "1s".to_string());
        vars.insert("SHIPWAY_LOOPBACK_BIND".to_string(), "allow".to_string());
        vars.insert("SHIPWAY_PORT".to_string(), "0".to_string());
        // Tests reach no server but their own: the official buildpacks' tests set a mirror.
        vars.insert("SHIPWAY_OFFICIAL_BUILDPACKS".to_string(), "never".to_string());
        // Nor Docker Hub: a deployment that needs a stack image nobody pulled tries this
        // port, which refuses at once, and runs on the host's userland (tests that need an
        // image import or serve one).
        vars.insert("SHIPWAY_STACK_REGISTRY".to_string(), NO_REGISTRY.to_string());
        Env { home, work, vars }
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Env {
        self.vars.insert(key.to_string(), value.to_string());
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.work.path())
            // The app is named by each test, never by the environment it runs in.
            .env_remove("SHIPWAY_APP")
            .envs(&self.vars)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// `shipway ARGS` to its end, at most [`COMMAND_LIMIT`].
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(output_within(&mut self.command(args), COMMAND_LIMIT))
    }

    /// `run` with `dir` as the current folder.
    #[track_caller]
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Run {
        Run::from(output_within(self.command(args).current_dir(dir), COMMAND_LIMIT))
    }

    /// A copy of `fixtures/apps/<name>` in the work folder, at `<work>/<as_name>`.
    pub fn app(&self, name: &str) -> PathBuf {
        self.app_as(name, name)
    }

    pub fn app_as(&self, name: &str, as_name: &str) -> PathBuf {
        let dest = self.work.path().join(as_name);
        copy_dir(&repo().join("fixtures/apps").join(name), &dest);
        dest
    }

    /// `shipway deploy` of `dir` as app `app`, binding 127.0.0.1 only.
    pub fn deploy(&self, dir: &Path, app: &str, extra: &[&str]) -> Run {
        let d = dir.display().to_string();
        let mut args = vec!["deploy", d.as_str(), "-a", app, "--env", "BIND_HOST=127.0.0.1"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    pub fn platform_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.home.path().join("platform.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let pid = self.platform_pid();
        // `down` stops every app within its grace period (1s here); a `down` that hangs
        // is killed, and the platform with it below.
        if let Ok(child) = self
            .command(&["down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            let _ = Guarded(child).wait_or_kill(Duration::from_secs(60));
        }
        if let Some(pid) = pid {
            // Whatever `down` did, nothing of this test may outlive it.
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    let out = output_within(Command::new("cp").arg("-a").arg(from).arg(to), COMMAND_LIMIT);
    assert!(out.status.success(), "cp -a {} {}", from.display(), to.display());
}

/// `cmd` run to its end with its output captured, as `Command::output` does, but at most
/// `limit`: past it the child is killed and reaped, and the test fails naming it.
#[track_caller]
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{:?}", cmd);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut spawned = Spawned::watch(child, what);
    let run = spawned.finish(limit);
    Output {
        status: spawned.status.take().unwrap(),
        stdout: run.stdout.into_bytes(),
        stderr: run.stderr.into_bytes(),
    }
}

/// A child of a test, killed (SIGKILL) and reaped when dropped if it still runs, so that
/// a failing assertion never leaves it behind. `Command::spawn_guarded` makes one.
pub struct Guarded(pub Child);

impl Guarded {
    /// Waits for its exit, at most `limit`: past it the test fails (and drop kills it).
    #[track_caller]
    pub fn wait_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let what = format!("pid {}", self.0.id());
        self.wait_for(limit, &what)
    }

    /// [`Guarded::wait_within`], failing with `what` (the command) named.
    #[track_caller]
    pub fn wait_for(&mut self, limit: Duration, what: &str) -> std::process::ExitStatus {
        let mut status = None;
        eventually(limit, &format!("{what} to exit"), || {
            status = self.0.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }

    /// Its exit within `limit`, or None, and then drop kills it: for cleanup code, which
    /// must not panic (a panic while a test unwinds aborts the whole binary).
    pub fn wait_or_kill(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => return None,
            }
        }
    }

    /// Its exit, with all it wrote on its piped stdout and stderr, at most `limit`.
    #[track_caller]
    pub fn output_within(mut self, limit: Duration) -> Output {
        let drain = |r: Option<Box<dyn Read + Send>>| r.map(drain);
        let out = drain(self.0.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
        let err = drain(self.0.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
        let status = self.wait_within(limit);
        let collect =
            |rx: Option<Receiver<String>>| rx.map(|rx| drained(&rx)).unwrap_or_default().into_bytes();
        Output {
            status,
            stdout: collect(out),
            stderr: collect(err),
        }
    }
}

impl std::ops::Deref for Guarded {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // A child that leads its own process group takes what it forked with it. Only
            // while it runs: a reaped child's pid may be someone else's already.
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            if nix::unistd::getpgid(Some(pid)) == Ok(pid) {
                let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = self.0.kill();
            // SIGKILL cannot be caught: the wait returns at once.
            let _ = self.0.wait();
        }
    }
}

/// A Python HTTP server of a test's (`script` run by `python3 -c` with `args`) that binds
/// 127.0.0.1 on a port the OS gives and prints that port as its first line; its stderr goes
/// to `stderr`. Returns it, guarded, with the port.
pub fn python_server(script: &str, args: &[&str], stderr: Stdio) -> (Guarded, u16) {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn_guarded();
    let port = first_line_within(
        child.stdout.take().expect("the server's stdout"),
        COMMAND_LIMIT,
        "the python3 test server to print its port",
    );
    let port = port
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the python3 test server printed {port:?}, not a port"));
    (child, port)
}

/// The first line `r` gives, read on a thread of its own so that a writer that never
/// writes one fails the test after `limit`, naming `what` it waited for. The caller's
/// guard ends the writer, which ends the thread.
#[track_caller]
pub fn first_line_within(r: impl Read + Send + 'static, limit: Duration, what: &str) -> String {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(r).read_line(&mut line).map(|_| line);
        let _ = tx.send(read);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => panic!("cannot read while waiting for {what}: {e}"),
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// `Command`'s ways to run a child, each reaping it on a panic and under a deadline.
pub trait SpawnGuarded {
    /// `spawn`, guarded: see [`Guarded`].
    fn spawn_guarded(&mut self) -> Guarded;
    /// `output`, at most `limit` (see [`output_within`]).
    fn output_within(&mut self, limit: Duration) -> Output;
    /// `status`, at most `limit`: its output goes where this command sends it.
    fn status_within(&mut self, limit: Duration) -> std::process::ExitStatus;
}

impl SpawnGuarded for Command {
    #[track_caller]
    fn spawn_guarded(&mut self) -> Guarded {
        Guarded(
            self.spawn()
                .unwrap_or_else(|e| panic!("cannot start {self:?}: {e}")),
        )
    }

    #[track_caller]
    fn output_within(&mut self, limit: Duration) -> Output {
        output_within(self, limit)
    }

    #[track_caller]
    fn status_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let what = format!("{self:?}");
        self.spawn_guarded().wait_for(limit, &what)
    }
}

/// Reads `r` to its end on a thread of its own; the text comes on the channel.
fn drain(mut r: Box<dyn Read + Send>) -> Receiver<String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = r.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// What `drain` read, once the pipe closed; a pipe still open [`DRAIN_LIMIT`] after its
/// writer ended is held by something it left running, and fails the test.
#[track_caller]
fn drained(rx: &Receiver<String>) -> String {
    rx.recv_timeout(DRAIN_LIMIT)
        .unwrap_or_else(|_| panic!("an output pipe stayed open {DRAIN_LIMIT:?} after its process ended: something it started still runs"))
}

/// What the thread `handle` returned, once it ended: for a thread reading a child's pipe,
/// called once the child ended. A thread still running [`DRAIN_LIMIT`] later reads a pipe
/// that something the child left holds open, and fails the test naming `what` it reads.
#[track_caller]
pub fn joined<T>(handle: std::thread::JoinHandle<T>, what: &str) -> T {
    eventually(
        DRAIN_LIMIT,
        &format!("{what} to end (something still holds it open)"),
        || handle.is_finished(),
    );
    handle
        .join()
        .unwrap_or_else(|_| panic!("the thread reading {what} panicked"))
}

/// The URL a deploy printed: `<-- http://127.0.0.1:PORT -->`.
pub fn url_of(run: &Run) -> String {
    run.stdout
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("<-- http://")
                .and_then(|r| r.strip_suffix(" -->"))
        })
        .map(|a| a.to_string())
        .unwrap_or_else(|| panic!("no URL in:\n{}", run.all()))
}

/// GET / over a new connection: (status, body).
pub fn get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    get_within(addr, path, Duration::from_secs(10))
}

/// `get` for an app whose first answer may be slow: Tomcat listens before its web app
/// is deployed, and holds the first request until it is, which takes long under load.
pub fn get_within(addr: &str, path: &str, limit: Duration) -> std::io::Result<(u16, String)> {
    let mut s = connect(addr, limit)?;
    s.set_read_timeout(Some(limit))?;
    s.set_write_timeout(Some(limit))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// One GET / on a kept-alive connection, opened when `conn` is empty: the body of a 200,
/// or what went wrong (and then the connection is dropped, to be opened anew).
pub fn keep_alive_get(addr: &str, conn: &mut Option<BufReader<TcpStream>>) -> Result<String, String> {
    if conn.is_none() {
        let limit = Duration::from_secs(10);
        let s = connect(addr, limit).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(limit)).map_err(|e| e.to_string())?;
        *conn = Some(BufReader::new(s));
    }
    let reader = conn.as_mut().ok_or("no connection")?;
    let result = (|| {
        reader
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .map_err(|e| format!("write: {e}"))?;
        let mut status = String::new();
        if reader
            .read_line(&mut status)
            .map_err(|e| format!("read status: {e}"))?
            == 0
        {
            return Err("connection closed before the status line".to_string());
        }
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader
                .read_line(&mut line)
                .map_err(|e| format!("read head: {e}"))?
                == 0
            {
                return Err("connection closed in the head".to_string());
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().map_err(|_| "bad content-length".to_string())?;
            }
        }
        let mut body = vec![0; length];
        reader
            .read_exact(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
        let body = String::from_utf8_lossy(&body).into_owned();
        if status.contains(" 200 ") {
            Ok(body)
        } else {
            Err(format!("{} {}", status.trim(), body.trim()))
        }
    })();
    if result.is_err() {
        *conn = None;
    }
    result
}

/// A TCP connection to `addr` (`host:port`), at most `limit` in the making.
pub fn connect(addr: &str, limit: Duration) -> std::io::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr} names no address"));
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, limit) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The body of GET / on a new connection (which must succeed).
pub fn body(addr: &str) -> String {
    get(addr, "/").unwrap().1
}

/// Poll `check` until it holds or `limit` passes.
#[track_caller]
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let config = [
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "-c",
        "init.defaultBranch=main",
        "-c",
        "commit.gpgsign=false",
    ];
    let all: Vec<&str> = config.iter().chain(args).copied().collect();
    run_ok(dir, "git", &all)
}

/// `program ARGS` run in `dir`, which must succeed within [`COMMAND_LIMIT`]; its trimmed
/// stdout.
#[track_caller]
pub fn run_ok(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = output_within(Command::new(program).args(args).current_dir(dir), COMMAND_LIMIT);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Send `sig` (a name `kill` knows, without SIG) to a process, which must exist.
#[track_caller]
pub fn signal(pid: impl std::fmt::Display, sig: &str) {
    let status = output_within(
        Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]),
        COMMAND_LIMIT,
    )
    .status;
    assert!(status.success(), "kill -{sig} {pid}");
}

/// Ctrl-C for a process: SIGINT.
pub fn ctrl_c(pid: impl std::fmt::Display) {
    signal(pid, "INT");
}

/// `kill -9`: SIGKILL, which a process cannot catch.
pub fn kill(pid: impl std::fmt::Display) {
    signal(pid, "KILL");
}

/// The pids a fixture wrote to `path`, one per line: lines that are not (yet) a whole
/// number are skipped, and a missing file is no pid at all.
pub fn read_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Every live pid of the containers started in `dir` (a release's app folder): those whose
/// working folder is `dir` on the host (each container's shim, and every process where
/// there is no sandbox), compared as the same inode, and all their descendants (inside
/// the sandbox a container's `/app` is a layer of its own, no longer that folder).
pub fn pids_in(dir: &Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(want) = std::fs::metadata(dir) else {
        return Vec::new();
    };
    let mut parents = Vec::new();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
        let Ok(cwd) = std::fs::metadata(format!("/proc/{pid}/cwd")) else {
            continue;
        };
        if cwd.dev() == want.dev() && cwd.ino() == want.ino() && alive(pid) {
            pids.push(pid);
        }
    }
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        let children: Vec<i32> = parents
            .iter()
            .filter(|(p, pp)| *pp == parent && !pids.contains(p) && alive(*p))
            .map(|(p, _)| *p)
            .collect();
        pids.extend(children);
        i += 1;
    }
    pids
}

/// Start `shipway deploy` of `dir` as `app` with the `compile-hangs` buildpack and wait
/// until its compile runs: the deploy process, and the compile's pids (script and child).
pub fn start_hanging_deploy(env: &Env, dir: &Path, app: &str) -> (Guarded, Vec<i32>) {
    let pids_file = env.work.path().join(format!("{app}-hang.pids"));
    let bp = format!("BUILDPACK_URL={}", fixture_buildpack("compile-hangs").display());
    let pf = format!("PIDS_FILE={}", pids_file.display());
    let child = env
        .command(&[
            "deploy",
            dir.to_str().unwrap(),
            "-a",
            app,
            "--env",
            &bp,
            "--env",
            &pf,
        ])
        .stdout(Stdio::piped())
        .spawn_guarded();
    eventually(Duration::from_secs(20), "compile to start", || {
        read_pids(&pids_file).len() == 2
    });
    (child, read_pids(&pids_file))
}

/// A `shipway` run in the background, its output read as it comes, killed and reaped on
/// drop if still running.
pub struct Spawned {
    child: Guarded,
    what: String,
    stdout: Option<Receiver<String>>,
    stderr: Option<Receiver<String>>,
    status: Option<std::process::ExitStatus>,
}

impl Spawned {
    #[track_caller]
    pub fn start(env: &Env, args: &[&str]) -> Spawned {
        let child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Spawned::watch(child, format!("shipway {}", args.join(" ")))
    }

    fn watch(mut child: Child, what: String) -> Spawned {
        let stdout = child.stdout.take().map(|s| drain(Box::new(s)));
        let stderr = child.stderr.take().map(|s| drain(Box::new(s)));
        Spawned {
            child: Guarded(child),
            what,
            stdout,
            stderr,
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the exit, at most `limit`: past it the test fails (and drop kills it).
    #[track_caller]
    pub fn finish(&mut self, limit: Duration) -> Run {
        let mut status = None;
        eventually(limit, &format!("{} to exit", self.what), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let status = status.unwrap();
        self.status = Some(status);
        let text = |rx: Option<Receiver<String>>| rx.map(|rx| drained(&rx)).unwrap_or_default();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: text(self.stdout.take()),
            stderr: text(self.stderr.take()),
        }
    }
}

/// `env.run`, but a hang fails the test instead of blocking it forever.
#[track_caller]
pub fn run_within(env: &Env, args: &[&str], limit: Duration) -> Run {
    Spawned::start(env, args).finish(limit)
}

/// Where the list of what was skipped goes (`.ci/run` prints it after the tests).
pub fn skipped_list() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.txt")
}

/// Says that `what` (a test, or a part of one) did not run on this machine, and why: on
/// stderr, and as a line of [`skipped_list`], which `.ci/run` prints once the tests are
/// done, so that a check that could not run never passes in silence.
pub fn skipped(what: &str, why: &str) {
    let line = format!("skipped: {what}: {why}");
    eprintln!("{line}");
    if let Ok(mut list) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skipped_list())
    {
        let _ = writeln!(list, "{line}");
    }
}

/// Whether this runs as root; if not, says that `what` is skipped (see [`skipped`]).
pub fn root_or_skip(what: &str, why: &str) -> bool {
    let root = nix::unistd::getuid().is_root();
    if !root {
        skipped(what, why);
    }
    root
}

/// A SHIPWAY_HOME of nobody's own in the work folder, which nobody may then enter: where
/// this runs as root and has setpriv. None elsewhere, said (see [`skipped`]): `what`, the
/// test, is skipped.
pub fn nobody_home(env: &Env, what: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::getuid().is_root() || Path::new("/usr/bin/setpriv").metadata().is_err() {
        skipped(what, "needs root and setpriv to become nobody");
        return None;
    }
    // Sticky, as /tmp is: shipway refuses a home under a folder anyone may write without it.
    std::fs::set_permissions(env.work.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let home = env.work.path().join("nobody-home");
    std::fs::create_dir(&home).unwrap();
    // Its own: shipway refuses a home that another user owns or may write.
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    Some(home)
}

/// `shipway ARGS` as nobody, in the work folder, with `home` as SHIPWAY_HOME.
#[track_caller]
pub fn run_as_nobody(env: &Env, home: &Path, args: &[&str]) -> Run {
    output_within(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(args)
            .env("SHIPWAY_HOME", home)
            .env("SHIPWAY_OFFICIAL_BUILDPACKS", "never")
            .env("SHIPWAY_STACK_REGISTRY", NO_REGISTRY)
            // The settings of `Env::new`, for the deployments nobody makes.
            .env("SHIPWAY_BOOT_TIMEOUT", "10s")
            .env("SHIPWAY_GRACE_PERIOD", "1s")
            .env("SHIPWAY_LOOPBACK_BIND", "allow")
            .env("SHIPWAY_PORT", "0")
            .env("NO_COLOR", "1")
            .current_dir(env.work.path()),
        COMMAND_LIMIT,
    )
    .into()
}

/// What a failed test leaves: `kill -9` each of `pids` that still lives and whose command
/// line holds one of `markers` (so that a reused pid is spared). The platform may be
/// killing it at the same moment: a kill that finds nobody is fine.
pub fn kill_strays(pids: &[i32], markers: &[&str]) {
    for &pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if alive(pid) && markers.iter().any(|m| cmdline.contains(m)) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Requests sent to `addr` without pause until stopped, by two clients: one opening a new
/// connection per request, one keeping its connection alive. Each failure is kept with
/// what went wrong; the clients stop when this is dropped.
pub struct Traffic {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    failures: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    /// Starts the clients; `answer` tells a good body.
    pub fn start(addr: &str, answer: fn(&str) -> bool) -> Traffic {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let clients = [false, true]
            .into_iter()
            .map(|keep_alive| {
                let (stop, served, failures, addr) =
                    (stop.clone(), served.clone(), failures.clone(), addr.to_string());
                std::thread::spawn(move || {
                    let mut conn: Option<BufReader<TcpStream>> = None;
                    while !stop.load(Ordering::SeqCst) {
                        let result = if keep_alive {
                            keep_alive_get(&addr, &mut conn)
                        } else {
                            match get(&addr, "/") {
                                Ok((200, b)) => Ok(b),
                                Ok((s, b)) => Err(format!("{s} {}", b.trim())),
                                Err(e) => Err(e.to_string()),
                            }
                        };
                        match result {
                            Ok(b) if answer(&b) => {
                                served.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(b) => failures.lock().unwrap().push(format!("unexpected answer {b:?}")),
                            Err(e) => failures.lock().unwrap().push(e),
                        }
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            served,
            failures,
            clients,
        }
    }

    /// Requests answered well so far.
    pub fn served(&self) -> usize {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops the clients (each within its 10 s request timeout): the failures.
    pub fn stop(mut self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in self.clients.drain(..) {
            let _ = c.join();
        }
        std::mem::take(&mut *self.failures.lock().unwrap())
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
