//! The one way shipway starts a child: its own process group, an explicit environment
//! and working folder, stdin closed unless attached, stdout and stderr each drained on
//! a thread into a line sink. Also how a group is stopped (signal, grace, SIGKILL,
//! reap) and how an exit status is written everywhere.
//!
//! It knows nothing of buildpacks or containers: those modules say what to run.
//!
//! Two processes start otherwise, on purpose, because their whole point is to outlive
//! the process that starts them, which a shim forbids: the platform started in the
//! background by the CLI (`platform::client`), and the platform's watchdog
//! (`platform::watchdog`), which must be alive when the platform dies.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, RecvTimeoutError, Sender};
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::cgroup::{Cgroup, Meter};
use crate::clock::Clock;
use crate::io_error::{io, IoError};
use crate::platform_numbers::Size;
use crate::tail::{SharedTail, Tail};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{program} did not finish within {limit:?}; it was stopped")]
    TimedOut { program: String, limit: Duration },
    #[error("{program} was stopped: the operation was cancelled")]
    Cancelled { program: String },
    #[error("{program} printed more than {limit} bytes on its standard output; it was stopped")]
    TooMuchOutput { program: String, limit: usize },
}

/// Told of every process group shipway starts and finishes with (the platform's
/// watchdog listens, so that no group outlives the platform).
pub enum GroupEvent {
    Started(u32),
    Ended(u32),
}

static GUARD: std::sync::OnceLock<Box<dyn Fn(GroupEvent) + Send + Sync>> = std::sync::OnceLock::new();

/// Install the one listener of [`GroupEvent`]s, for the life of the process.
pub fn set_guard(guard: Box<dyn Fn(GroupEvent) + Send + Sync>) {
    let _ = GUARD.set(guard);
}

fn notify(event: GroupEvent) {
    if let Some(guard) = GUARD.get() {
        guard(event);
    }
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where a child's output goes, one line at a time (without its newline).
pub type LineSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// How a child ended. Rendered one way everywhere: "exited with code 3", "killed by SIGKILL".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub ExitStatus);

impl Exit {
    pub fn success(&self) -> bool {
        self.0.success()
    }
    pub fn code(&self) -> Option<i32> {
        self.0.code()
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(code) = self.0.code() {
            write!(f, "exited with code {code}")
        } else if let Some(sig) = self.0.signal() {
            match Signal::try_from(sig) {
                Ok(s) => write!(f, "killed by {}", s.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            }
        } else {
            write!(f, "ended with status {:?}", self.0)
        }
    }
}

/// The shim's arguments that ask for a sandbox (`--app DIR [--layer] [--root DIR]
/// [--bind DIR]...`, before the program). They sit with the rest of the shim's command
/// line, which this module writes and `shim.rs` reads.
pub const APP_FLAG: &str = "--app";

/// What a sandboxed process sees (`sandbox.rs` makes it so): handed from `Spawn` to the
/// shim as arguments (`sandbox_args`, `read_sandbox_args`). It is part of the shim's
/// command line, and so sits here with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The host folder seen at `/app`.
    pub app: PathBuf,
    /// A container: `/app` is an overlay on `app`, its writes in a layer of its own.
    pub layer: bool,
    /// The stack image's root filesystem, else the host's own folders.
    pub root: Option<PathBuf>,
    /// Host folders seen at their own paths inside an image (a build's folders).
    pub binds: Vec<PathBuf>,
}

impl Plan {
    /// `dir` at `/app`, everything else the host's.
    pub fn app(dir: &Path) -> Plan {
        Plan {
            app: dir.to_path_buf(),
            ..Plan::default()
        }
    }
}

const LAYER_FLAG: &str = "--layer";
/// `--cgroup FILE`: a `cgroup.procs` the shim puts its program in before it runs.
pub const CGROUP_FLAG: &str = "--cgroup";
const ROOT_FLAG: &str = "--root";
const BIND_FLAG: &str = "--bind";

fn sandbox_args(plan: &Plan) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![APP_FLAG.into(), plan.app.clone().into()];
    if plan.layer {
        args.push(LAYER_FLAG.into());
    }
    if let Some(root) = &plan.root {
        args.push(ROOT_FLAG.into());
        args.push(root.clone().into());
    }
    for bind in &plan.binds {
        args.push(BIND_FLAG.into());
        args.push(bind.clone().into());
    }
    args
}

/// The sandbox at the head of the shim's arguments, if they start with one; the rest is
/// left in `args`, the program first.
pub fn read_sandbox_args(args: &mut std::iter::Peekable<impl Iterator<Item = OsString>>) -> Option<Plan> {
    use std::os::unix::ffi::OsStrExt;
    if args.peek().map(|a| a.as_bytes()) != Some(APP_FLAG.as_bytes()) {
        return None;
    }
    args.next();
    let mut plan = Plan::app(Path::new(&args.next().unwrap_or_default()));
    loop {
        match args.peek().map(|a| a.as_bytes()) {
            Some(f) if f == LAYER_FLAG.as_bytes() => {
                args.next();
                plan.layer = true;
            }
            Some(f) if f == ROOT_FLAG.as_bytes() => {
                args.next();
                plan.root = args.next().map(PathBuf::from);
            }
            Some(f) if f == BIND_FLAG.as_bytes() => {
                args.next();
                plan.binds.extend(args.next().map(PathBuf::from));
            }
            _ => return Some(plan),
        }
    }
}

/// The cgroups at the head of the shim's arguments (`--cgroup FILE`...), taken from `args`.
pub fn read_cgroup_args(args: &mut std::iter::Peekable<impl Iterator<Item = OsString>>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    while args.peek().is_some_and(|a| a == CGROUP_FLAG) {
        args.next();
        files.extend(args.next().map(PathBuf::from));
    }
    files
}

/// How long what a process left running may take to end after SIGTERM, unless the
/// caller says otherwise (`Spawn::leftover_grace`).
const LEFTOVER_GRACE: Duration = Duration::from_secs(1);

/// How long the output of a child that has ended may still be read: the shim has stopped
/// everything below it by then, so only a process outside the container can still hold a
/// pipe (one handed a descriptor over a socket, say).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// The longest line a drain hands on whole: a longer one is split, not lost, so that a
/// process writing without newlines cannot grow shipway's memory.
pub const MAX_LINE: usize = 64 * 1024;

/// What to start.
pub struct Spawn {
    program: OsString,
    args: Vec<OsString>,
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
    attach: bool,
    leftover_grace: Duration,
    sandbox: Option<Plan>,
    /// A container's size, enforced by a cgroup of its own (`cgroup.rs`), named after it.
    size: Option<(String, Size)>,
    /// What its timeouts and grace periods are measured on.
    clock: Arc<dyn Clock>,
}

impl Spawn {
    pub fn new(program: impl Into<OsString>, cwd: &Path) -> Spawn {
        Spawn {
            program: program.into(),
            args: Vec::new(),
            cwd: cwd.to_path_buf(),
            env: Vec::new(),
            attach: false,
            leftover_grace: LEFTOVER_GRACE,
            sandbox: None,
            size: None,
            clock: crate::clock::system(),
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Spawn {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The whole environment: nothing of shipway's own leaks in.
    pub fn env<I, K, V>(mut self, env: I) -> Spawn
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self
    }

    /// For a tool of the host's whose messages shipway reads (git, curl): this process's
    /// own environment less the variables `drop` names, with `LC_ALL=C` so that they come
    /// in English, and `set` on top.
    pub fn host_env(self, drop: impl Fn(&str) -> bool, set: &[(&str, &str)]) -> Spawn {
        let overridden = |name: &str| name == "LC_ALL" || set.iter().any(|(k, _)| *k == name);
        let env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(name, _)| {
                let name = name.to_string_lossy();
                !drop(&name) && !overridden(&name)
            })
            .chain([("LC_ALL".into(), "C".into())])
            .chain(set.iter().map(|(k, v)| (k.into(), v.into())))
            .collect();
        self.env(env)
    }

    /// Between SIGTERM and SIGKILL for what the program leaves running when it ends.
    pub fn leftover_grace(mut self, grace: Duration) -> Spawn {
        self.leftover_grace = grace;
        self
    }

    /// Measure its timeouts and grace periods on `clock` (a unit test's), not the host's.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Spawn {
        self.clock = clock;
        self
    }

    /// Show `dir` to the program at `/app`, in a sandbox (`sandbox.rs`), and start it there.
    pub fn app(self, dir: &Path) -> Spawn {
        self.sandbox(Plan::app(dir))
    }

    /// Start it in the sandbox `plan` describes: `/app`, a container's own layer, the
    /// stack's image as `/`.
    pub fn sandbox(mut self, plan: Plan) -> Spawn {
        self.sandbox = Some(plan);
        self
    }

    /// Run it as a container of `size`, called `label`: in a cgroup of its own with the
    /// size's memory (no swap), process and CPU limits, where the machine allows it.
    pub fn size(mut self, label: &str, size: Size) -> Spawn {
        self.size = Some((label.to_string(), size));
        self
    }

    /// The cgroup the program is to run in, and the note to give when none can be made
    /// (once per shipway process: every container after it runs the same way).
    fn cgroup(&self) -> (Option<Cgroup>, Option<String>) {
        let Some((label, size)) = &self.size else {
            return (None, None);
        };
        match Cgroup::create(label, *size) {
            Ok(cgroup) => (Some(cgroup), None),
            Err(why) => {
                static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
                let first = !SAID.swap(true, std::sync::atomic::Ordering::Relaxed);
                (None, first.then(|| format!("shipway: {why}")))
            }
        }
    }

    /// The program behind its shim (`shim.rs`), which keeps everything it starts below it.
    /// The shim's command line is written here and read there: `shim PID GRACE_MS
    /// [--cgroup PROCS]... [--app DIR] PROGRAM ARGS...`.
    fn command(&self, cgroup: Option<&Cgroup>) -> Result<Command, ProcessError> {
        self.check_program()?;
        let mut cmd = Command::new(self_exe());
        cmd.arg0("shipway")
            .arg("shim")
            .arg(std::process::id().to_string())
            // The shim reads whole milliseconds as a u64: a longer grace is an endless one.
            .arg(
                u64::try_from(self.leftover_grace.as_millis())
                    .unwrap_or(u64::MAX)
                    .to_string(),
            );
        for procs in cgroup.iter().flat_map(|c| c.procs_files()) {
            cmd.arg(CGROUP_FLAG).arg(procs);
        }
        if let Some(plan) = &self.sandbox {
            cmd.args(sandbox_args(plan));
        }
        cmd.arg(&self.program)
            .args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.attach {
            // Its own group, so that signals reach its grandchildren and a Ctrl-C
            // in the terminal reaches shipway only, which then stops it in order.
            cmd.process_group(0);
        }
        // SAFETY: cloexec_beyond_stdio only makes async-signal-safe calls.
        // Descriptors shipway inherited (`3>&1` on its command line) must not reach the
        // child and keep its caller's pipe open.
        unsafe {
            cmd.pre_exec(cloexec_beyond_stdio);
        }
        Ok(cmd)
    }

    /// The shim reports a program it cannot start only as exit 127: say it here, as the
    /// "cannot start" error callers keep apart from a program that failed.
    fn check_program(&self) -> Result<(), ProcessError> {
        let missing = |kind: std::io::ErrorKind| ProcessError::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source: std::io::Error::from(kind),
        };
        let runnable =
            |path: &Path| nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok() && path.is_file();
        let program = Path::new(&self.program);
        if program.as_os_str().as_encoded_bytes().contains(&b'/') {
            let path = self.cwd.join(program);
            return match path.exists() {
                false => Err(missing(std::io::ErrorKind::NotFound)),
                true if runnable(&path) => Ok(()),
                true => Err(missing(std::io::ErrorKind::PermissionDenied)),
            };
        }
        let path_var = self
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        if std::env::split_paths(&path_var).any(|dir| runnable(&self.cwd.join(dir).join(program))) {
            Ok(())
        } else {
            Err(missing(std::io::ErrorKind::NotFound))
        }
    }

    /// Start it with stdin closed and both outputs piped: the shim, the leader of its
    /// group, told to the watchdog.
    fn launch(&self, cgroup: Option<&Cgroup>) -> Result<std::process::Child, ProcessError> {
        let mut cmd = self.command(cgroup)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            program: self.program(),
            source,
        })?;
        notify(GroupEvent::Started(child.id()));
        Ok(child)
    }

    fn program(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// Start it with stdout and stderr drained into `sink` on two threads, so a full
    /// pipe never blocks the child.
    pub fn start(self, sink: LineSink) -> Result<Child, ProcessError> {
        let (cgroup, note) = self.cgroup();
        if let Some(note) = note {
            sink(Stream::Stderr, &note);
        }
        let mut child = self.launch(cgroup.as_ref())?;
        // Nothing is ever sent: the channel disconnects when both drains have ended.
        let (drains_tx, drained) = bounded::<()>(0);
        if let Some(out) = child.stdout.take() {
            drain(out, Stream::Stdout, sink.clone(), drains_tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            drain(err, Stream::Stderr, sink.clone(), drains_tx);
        }
        let mut child = Child::watch(child, drained, sink, self.clock.clone());
        child.cgroup = cgroup;
        Ok(child)
    }

    /// Run it to the end and return what it printed: at most `limit` bytes of stdout
    /// (more is an error: the program is stopped) and the last 64 KiB of stderr. It is
    /// stopped, with what it started, at `timeout` or when `cancel` fires.
    pub fn output(
        self,
        limit: usize,
        timeout: Duration,
        cancel: Option<&Receiver<()>>,
    ) -> Result<Output, ProcessError> {
        let mut piped = self.read_stdout()?;
        // Read on a thread, so that the timeout holds whatever the program does with its
        // pipe; past the limit the rest is read and dropped, so it never blocks writing.
        let (overflow_tx, overflowed) = bounded::<()>(1);
        // Held here so that the reader's end does not read as an overflow.
        let _overflow_open = overflow_tx.clone();
        let (read_tx, read) = bounded::<Vec<u8>>(1);
        if let Some(mut out) = piped.stdout.take() {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let _ = (&mut out).take(limit as u64 + 1).read_to_end(&mut kept);
                if kept.len() > limit {
                    let _ = overflow_tx.send(());
                    let _ = std::io::copy(&mut out, &mut std::io::sink());
                }
                let _ = read_tx.send(kept);
            });
        }
        let never = bounded::<()>(0);
        let cancel = cancel.unwrap_or(&never.1);
        let stopped = select! {
            recv(piped.child.exited) -> _ => None,
            recv(overflowed) -> _ => Some(ProcessError::TooMuchOutput { program: self.program(), limit }),
            recv(self.clock.after(timeout)) -> _ => Some(ProcessError::TimedOut { program: self.program(), limit: timeout }),
            recv(cancel) -> _ => Some(ProcessError::Cancelled { program: self.program() }),
        };
        if let Some(error) = stopped {
            piped.child.stop(Signal::SIGTERM, LEFTOVER_GRACE);
            return Err(error);
        }
        let exit = piped.child.wait_exit();
        piped.child.reap_group(LEFTOVER_GRACE);
        // The pipe closes when the group has ended; a holder outside it gets the same
        // deadline as every drain.
        let stdout = read.recv_timeout(DRAIN_DEADLINE).unwrap_or_default();
        Ok(Output {
            status: exit.0,
            stdout,
            stderr: piped.stderr(),
        })
    }

    /// Start it with its stdout handed to the caller to read as a stream (`git archive`),
    /// its stderr kept (the last 64 KiB).
    pub fn read_stdout(&self) -> Result<Piped, ProcessError> {
        let mut child = self.launch(None)?;
        let stdout = child.stdout.take();
        let (drains_tx, drained) = bounded::<()>(0);
        let stderr = Tail::with_max_bytes(usize::MAX, STDERR_KEPT).shared();
        if let Some(err) = child.stderr.take() {
            let kept = stderr.clone();
            std::thread::spawn(move || {
                let _done = drains_tx;
                let mut err = BufReader::new(err);
                let mut line = Vec::new();
                // A line is read up to the tail's whole budget at most: a child that
                // never prints a newline still costs a bounded amount.
                while let Ok(1..) = (&mut err).take(STDERR_KEPT as u64).read_until(b'\n', &mut line) {
                    let text = String::from_utf8_lossy(&line);
                    kept.push(text.strip_suffix('\n').unwrap_or(&text));
                    line.clear();
                }
            });
        }
        let quiet: LineSink = Arc::new(|_, _| {});
        Ok(Piped {
            child: Child::watch(child, drained, quiet, self.clock.clone()),
            stdout,
            kept: stderr,
        })
    }

    /// Run attached to this terminal and wait; shipway ignores SIGINT meanwhile so
    /// that Ctrl-C goes to the child, as in a terminal session.
    pub fn run_attached(mut self) -> Result<Exit, ProcessError> {
        self.attach = true;
        let (cgroup, note) = self.cgroup();
        if let Some(note) = note {
            eprintln!("{note}");
        }
        let mut cmd = self.command(cgroup.as_ref())?;
        let program = self.program.to_string_lossy().into_owned();
        let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            program: program.clone(),
            source,
        })?;
        let exit = child
            .wait()
            .map(Exit)
            .map_err(|source| ProcessError::Spawn { program, source })?;
        if let Some(size) = cgroup.as_ref().and_then(stopped_for_memory) {
            eprintln!("shipway: {}", out_of_memory(size));
        }
        Ok(exit)
    }
}

/// How much of a captured child's stderr is kept: the end, where the error is.
const STDERR_KEPT: usize = 64 * 1024;

/// A child whose stdout the caller reads (`Spawn::read_stdout`).
pub struct Piped {
    pub child: Child,
    pub stdout: Option<std::process::ChildStdout>,
    kept: SharedTail,
}

impl Piped {
    /// The end of what it printed on stderr so far (all of it, once it has ended), one
    /// line per line.
    pub fn stderr(&self) -> Vec<u8> {
        let lines = self.kept.lines();
        let mut text = lines.join("\n");
        if !lines.is_empty() {
            text.push('\n');
        }
        text.into_bytes()
    }
}

/// For a child about to exec (between fork and exec, so async-signal-safe only): mark
/// every descriptor beyond 0, 1 and 2 close-on-exec, so that the child inherits none of
/// ours. Marking rather than closing keeps std's own exec-error pipe working.
pub fn cloexec_beyond_stdio() -> std::io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let marked = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if marked != 0 {
        // Before 5.11: flag them one by one, as far as the descriptor limit goes.
        // SAFETY: sysconf and fcntl are async-signal-safe.
        let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(0, 65536) as i32;
        for fd in 3..max {
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    Ok(())
}

/// This program, to start again in another role (`shipway shim`, `as-user`): this one,
/// even if its file was replaced since it started. Unit tests run inside the test
/// harness, so they use the built `shipway` beside it (`cargo test` builds it before
/// running any test).
pub fn self_exe() -> PathBuf {
    if cfg!(test) {
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.to_path_buf()))
        {
            return dir.join("shipway");
        }
    }
    PathBuf::from("/proc/self/exe")
}

/// Read `pipe` line by line into `sink` until it closes; `_done` is dropped then.
fn drain(pipe: impl Read + Send + 'static, stream: Stream, sink: LineSink, _done: Sender<()>) {
    std::thread::spawn(move || {
        let _done = _done;
        let mut reader = BufReader::with_capacity(MAX_LINE, pipe);
        let mut line = Vec::with_capacity(256);
        loop {
            let chunk = match reader.fill_buf() {
                Ok([]) | Err(_) => break,
                Ok(chunk) => chunk,
            };
            let room = MAX_LINE - line.len();
            let (take, ends) = match chunk.iter().take(room).position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len().min(room), false),
            };
            line.extend_from_slice(&chunk[..take]);
            reader.consume(take);
            if ends {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                sink(stream, &String::from_utf8_lossy(&line));
                line.clear();
            } else if line.len() == MAX_LINE {
                // Split at a character boundary: the rest starts the next line.
                let cut = utf8_cut(&line);
                sink(stream, &String::from_utf8_lossy(&line[..cut]));
                line.drain(..cut);
            }
        }
        if !line.is_empty() {
            sink(stream, &String::from_utf8_lossy(&line));
        }
    });
}

/// Where to cut `bytes` so that no UTF-8 character is split: before a character that is
/// not whole at the end (at most 3 bytes back), else at the end.
fn utf8_cut(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=3.min(n) {
        let b = bytes[n - back];
        if b & 0xC0 == 0xC0 {
            // A leading byte `back` bytes from the end: is its character whole?
            let len = if b >= 0xF0 {
                4
            } else if b >= 0xE0 {
                3
            } else {
                2
            };
            return if back < len { n - back } else { n };
        }
        if b & 0x80 == 0 {
            return n;
        }
    }
    n
}

/// How a container stopped for memory is described: `out of memory (limit 256 MB, size S)`.
pub fn out_of_memory(size: Size) -> String {
    format!(
        "out of memory (limit {}, size {})",
        crate::units::human_memory(size.memory),
        size.name
    )
}

/// The size of the container of `cgroup`, if the kernel stopped a process of it for memory.
fn stopped_for_memory(cgroup: &Cgroup) -> Option<Size> {
    let meter = cgroup.meter();
    (meter.read()?.oom_kills > 0).then_some(meter.size)
}

/// A started child: its shim, the leader of its own process group, with the program
/// and everything it starts below it.
pub struct Child {
    pid: Pid,
    exited: Receiver<()>,
    exit: Arc<OnceLock<Exit>>,
    /// Disconnects when both output pipes have closed.
    drained: Receiver<()>,
    /// The program's pid, once looked up (the shim's first child).
    program: OnceLock<Pid>,
    sink: LineSink,
    /// The container's cgroup, removed once its group has ended (`end`), when whether the
    /// kernel stopped it for memory is kept in `ended_for_memory`.
    cgroup: Option<Cgroup>,
    ended_for_memory: Option<Size>,
    /// Reaps the leader; taken once the group has ended (`stop`, `reap_group`), so `None`
    /// means the group is gone and the watchdog told.
    waiter: Option<JoinHandle<()>>,
    /// What `wait_until`'s timeout and `stop`'s grace are measured on.
    clock: Arc<dyn Clock>,
}

/// Why `wait_until` returned without an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    TimedOut,
    Cancelled,
}

impl Child {
    /// Watch a started shim: a thread reaps it and reports its exit.
    fn watch(
        mut child: std::process::Child,
        drained: Receiver<()>,
        sink: LineSink,
        clock: Arc<dyn Clock>,
    ) -> Child {
        let pid = Pid::from_raw(child.id() as i32);
        // Nothing is ever sent: the channel disconnects when the leader has exited, which
        // every clone of the receiver sees (the rollout and the supervisor both watch).
        let (tx, exited) = bounded::<()>(0);
        let exit = Arc::new(OnceLock::new());
        let cell = exit.clone();
        let waiter = std::thread::spawn(move || {
            let status = child
                .wait()
                .map(Exit)
                .unwrap_or(Exit(ExitStatus::from_raw(255 << 8)));
            let _ = cell.set(status);
            // The exit is reported as soon as the leader is gone; the pipes close a
            // moment later, when the shim's last descendant has gone too.
            drop(tx);
        });
        Child {
            pid,
            exited,
            exit,
            drained,
            program: OnceLock::new(),
            sink,
            cgroup: None,
            ended_for_memory: None,
            waiter: Some(waiter),
            clock,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// How to read its cgroup's figures, while it has one.
    pub fn meter(&self) -> Option<Meter> {
        self.cgroup.as_ref().map(Cgroup::meter)
    }

    /// Its size, when the kernel stopped it (or a process of it) for memory.
    pub fn stopped_for_memory(&self) -> Option<Size> {
        match &self.cgroup {
            Some(cgroup) => stopped_for_memory(cgroup),
            None => self.ended_for_memory,
        }
    }

    /// Why it ended, when the kernel stopped it for memory: `out of memory (limit 256
    /// MB, size S)`.
    pub fn out_of_memory(&self) -> Option<String> {
        self.stopped_for_memory().map(out_of_memory)
    }

    /// A receiver that becomes ready (disconnected) when the leader exits, for
    /// `select!`; clone it to watch from another thread.
    pub fn exited(&self) -> &Receiver<()> {
        &self.exited
    }

    /// How the leader ended, once it has.
    pub fn status(&self) -> Option<Exit> {
        self.exit.get().copied()
    }

    /// The live processes of the container: the program and whatever it started, in or
    /// out of its group.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        descendants(self.pid)
    }

    /// The program's pid if [`Child::program_pid`] found it already: never reads /proc,
    /// for the supervisor's thread.
    pub fn known_program_pid(&self) -> Option<u32> {
        self.program.get().map(|pid| pid.as_raw() as u32)
    }

    /// The pid of the program itself, which people know the container by (the shim's is
    /// `pid()`): the shim's child, looked for among the pids right after the shim's the
    /// first time it is found, then kept. `None` while it is not forked yet, or when pids
    /// wrapped: not worth a scan of all of /proc per container at a rollout, since `ps`
    /// reads all of it anyway.
    pub fn program_pid(&self) -> Option<u32> {
        if let Some(pid) = self.program.get() {
            return Some(pid.as_raw() as u32);
        }
        let first = program_near(self.pid)?;
        Some(self.program.get_or_init(|| first).as_raw() as u32)
    }

    /// Block until the leader has exited.
    fn wait_exit(&self) -> Exit {
        let _ = self.exited.recv();
        self.status().unwrap_or(Exit(ExitStatus::from_raw(255 << 8)))
    }

    /// Wait for the leader, at most `timeout`, or until `cancel` fires (its sender
    /// dropped). The group is left as it is: the caller decides how to stop it.
    pub fn wait_until(&mut self, timeout: Duration, cancel: &Receiver<()>) -> Result<Exit, Interrupted> {
        if let Some(exit) = self.status() {
            return Ok(exit);
        }
        let deadline = self.clock.after(timeout);
        select! {
            recv(self.exited) -> _ => Ok(self.wait_exit()),
            recv(deadline) -> _ => Err(Interrupted::TimedOut),
            recv(cancel) -> _ => Err(Interrupted::Cancelled),
        }
    }

    /// Stop the whole container: `signal` to its group (the shim passes it on to what
    /// left the group), then SIGKILL to everything left after `grace`; always reaps the
    /// leader and waits until the group is empty.
    pub fn stop(&mut self, signal: Signal, grace: Duration) -> Exit {
        signal_group(self.pid, signal);
        let deadline = self.clock.deadline_in(grace);
        let exit = match self.status() {
            Some(exit) => exit,
            None => {
                select! {
                    recv(self.exited) -> _ => self.wait_exit(),
                    recv(self.clock.after(grace)) -> _ => {
                        self.kill();
                        self.wait_exit()
                    }
                }
            }
        };
        // The shim is gone; what is left of its group gets what is left of the grace.
        wait_group_empty(self.pid, deadline, &*self.clock);
        self.end();
        exit
    }

    /// After the leader exited on its own: stop anything it left in its group.
    pub fn reap_group(&mut self, grace: Duration) {
        if group_alive(self.pid) {
            signal_group(self.pid, Signal::SIGTERM);
            wait_group_empty(self.pid, self.clock.deadline_in(grace), &*self.clock);
        }
        self.end();
    }

    /// SIGKILL to everything below the shim first (killed first, the shim could no longer
    /// keep them below it), then to its group.
    fn kill(&self) {
        kill_descendants(self.pid);
        signal_group(self.pid, Signal::SIGKILL);
    }

    /// The group has ended: read what is left of the output, within a deadline, and tell
    /// the watchdog, once, as soon as it can be (a pid told late could already lead
    /// someone else's group).
    fn end(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.join();
            notify(GroupEvent::Ended(self.pid()));
        }
        if let Some(cgroup) = self.cgroup.take() {
            self.ended_for_memory = stopped_for_memory(&cgroup);
        }
        if let Err(RecvTimeoutError::Timeout) = self.drained.recv_timeout(DRAIN_DEADLINE) {
            (self.sink)(
                Stream::Stderr,
                "shipway: a process outside the container still holds its output open; going on without the rest",
            );
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.waiter.is_none() {
            return;
        }
        // A child must never outlive the value that owns it.
        if self.status().is_none() || group_alive(self.pid) {
            self.kill();
            self.wait_exit();
        }
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.join();
        }
        notify(GroupEvent::Ended(self.pid()));
    }
}

/// The program a shim runs: the shim's oldest child, while it runs.
pub fn program_of(shim: Pid) -> Option<Pid> {
    // Through all of /proc (a few milliseconds) only if pids wrapped around.
    program_near(shim).or_else(|| program_in(&processes(), shim))
}

/// The program of `shim` in `table`, a read of /proc: the shim's oldest child.
pub fn program_in(table: &[ProcessInfo], shim: Pid) -> Option<Pid> {
    table
        .iter()
        .filter(|p| p.ppid == shim)
        .min_by_key(|p| p.start)
        .map(|p| p.pid)
}

/// The program a shim runs, looked for among the next 64 pids: it was forked right after
/// the shim started, so its pid is almost always among them.
fn program_near(shim: Pid) -> Option<Pid> {
    (1..=64).find_map(|n| {
        let pid = shim.as_raw().checked_add(n)?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        (parse_stat(pid, &stat)?.ppid == shim).then_some(Pid::from_raw(pid))
    })
}

/// Send `signal` to the group led by `pid`. ESRCH means already gone: not an error.
pub fn signal_group(pid: Pid, signal: Signal) {
    // ESRCH (already gone) is the expected failure; no other changes what the caller does.
    let _ = killpg(pid, signal);
}

/// Whether any live (non-zombie) process is left in the group. Signal 0 is not
/// enough: an orphaned zombie whose new parent does not reap it still "exists".
pub fn group_alive(pid: Pid) -> bool {
    if matches!(killpg(pid, None), Err(Errno::ESRCH)) {
        return false;
    }
    processes().iter().any(|p| p.pgid == pid)
}

/// A live process, as /proc tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: Pid,
    pub ppid: Pid,
    pub pgid: Pid,
    /// When it started, in clock ticks since boot.
    pub start: u64,
}

impl ProcessInfo {
    /// Its command line, for people: `1234 sleep 300`.
    pub fn command(&self) -> String {
        let raw = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        let words: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        // One line: an inline script's newlines and indentation folded into spaces.
        words.join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
    }

    pub fn describe(&self) -> String {
        format!("{} {}", self.pid, self.command())
    }
}

/// Every live (non-zombie) process of the machine, read from /proc.
pub fn processes() -> Vec<ProcessInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(process)
        .collect()
}

/// Process `pid` while it lives: a zombie waiting for its reaper is gone already.
pub fn process(pid: i32) -> Option<ProcessInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

/// A live process from its `/proc/<pid>/stat` line; None for a zombie.
fn parse_stat(pid: i32, stat: &str) -> Option<ProcessInfo> {
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse::<i32>().ok()?;
    let pgid = fields.next()?.parse::<i32>().ok()?;
    // starttime is field 22; `fields` stands at field 6.
    let start = fields.nth(16)?.parse::<u64>().ok()?;
    (state != "Z" && state != "X").then(|| ProcessInfo {
        pid: Pid::from_raw(pid),
        ppid: Pid::from_raw(ppid),
        pgid: Pid::from_raw(pgid),
        start,
    })
}

/// The live processes below `root`, parents before their children. Below a shim nothing
/// can leave this tree: the shim is a subreaper, so orphans are reparented to it.
pub fn descendants(root: Pid) -> Vec<ProcessInfo> {
    descendants_in(&processes(), root)
}

/// The processes below `root` in a snapshot of /proc (`processes()`), parents first.
pub fn descendants_in(all: &[ProcessInfo], root: Pid) -> Vec<ProcessInfo> {
    let mut found: Vec<ProcessInfo> = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            parents.push(p.pid);
            found.push(p.clone());
        }
    }
    found
}

/// SIGKILL everything below `root` until a look finds nobody (a process may fork while
/// it is being killed; its child is found by the next look).
pub fn kill_descendants(root: Pid) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = descendants(root);
        if left.is_empty() || Instant::now() >= deadline {
            return;
        }
        for p in left {
            let _ = nix::sys::signal::kill(p.pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Wait until no process is left in the group, SIGKILLing it at `deadline`.
fn wait_group_empty(pid: Pid, deadline: Instant, clock: &dyn Clock) {
    // After the SIGKILL, a few seconds for the kernel to end the group, in real time:
    // a process in uninterruptible sleep is not the clock's to hurry.
    let mut killed_at: Option<Instant> = None;
    while group_alive(pid) {
        if killed_at.is_none() && clock.instant() >= deadline {
            signal_group(pid, Signal::SIGKILL);
            killed_at = Some(Instant::now());
        }
        // Nothing signals the end of a grandchild we are not the parent of: poll.
        std::thread::sleep(Duration::from_millis(5));
        if killed_at.is_some_and(|at| at.elapsed() >= Duration::from_secs(5)) {
            break;
        }
    }
}

/// The interpreter line of a script, for scripts shipped without the execute bit.
pub fn script_command(script: &Path) -> Result<(OsString, Vec<OsString>), ProcessError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(script).map_err(io("read", script))?;
    if meta.permissions().mode() & 0o111 != 0 {
        return Ok((script.as_os_str().to_owned(), Vec::new()));
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script)
        .and_then(|mut f| f.read(&mut head))
        .map_err(io("read", script))?;
    let first = head[..n].split(|b| *b == b'\n').next().unwrap_or(&[]);
    let mut words: Vec<OsString> = match first.strip_prefix(b"#!") {
        Some(line) => String::from_utf8_lossy(line)
            .split_whitespace()
            .map(OsString::from)
            .collect(),
        None => Vec::new(),
    };
    if words.is_empty() {
        words.push("bash".into());
    }
    let program = words.remove(0);
    words.push(script.as_os_str().to_owned());
    Ok((program, words))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn collect() -> (LineSink, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        (
            Arc::new(move |_, line: &str| l.lock().unwrap().push(line.to_string())),
            lines,
        )
    }

    #[test]
    fn a_sandbox_reaches_the_shim_whole_and_leaves_the_program() {
        let plan = Plan {
            app: "/srv/app".into(),
            layer: true,
            root: Some("/images/x/rootfs".into()),
            binds: vec!["/b/one".into(), "/b/two".into()],
        };
        let mut args = sandbox_args(&plan);
        args.extend(["bash".into(), "--layer".into()]);
        let mut args = args.into_iter().peekable();
        assert_eq!(read_sandbox_args(&mut args), Some(plan));
        assert_eq!(
            args.collect::<Vec<_>>(),
            vec![OsString::from("bash"), "--layer".into()]
        );
        let mut none = vec![OsString::from("true")].into_iter().peekable();
        assert_eq!(read_sandbox_args(&mut none), None);
        assert_eq!(none.next(), Some("true".into()));
    }

    #[test]
    fn exit_statuses_render_one_way() {
        assert_eq!(
            Exit(ExitStatus::from_raw(3 << 8)).to_string(),
            "exited with code 3"
        );
        assert_eq!(Exit(ExitStatus::from_raw(9)).to_string(), "killed by SIGKILL");
    }

    #[test]
    fn output_is_drained_and_environment_is_explicit() {
        let (sink, lines) = collect();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Spawn::new("/bin/sh", dir.path())
            .args([
                "-c",
                "echo out; echo err >&2; echo \"v=$ONLY\"; pwd; echo \"home=${HOME-unset}\"",
            ])
            .env([("ONLY", "1"), ("PATH", "/usr/bin:/bin")])
            .start(sink)
            .unwrap();
        let (_tx, never) = bounded::<()>(0);
        let exit = child.wait_until(Duration::from_secs(10), &never).unwrap();
        child.reap_group(Duration::from_secs(1));
        assert!(exit.success());
        let lines = lines.lock().unwrap().clone();
        assert!(lines.contains(&"out".to_string()));
        assert!(lines.contains(&"err".to_string()));
        assert!(lines.contains(&"v=1".to_string()));
        assert!(lines.contains(&"home=unset".to_string()));
        assert!(lines.contains(&dir.path().display().to_string()));
    }

    #[test]
    fn stop_and_a_leftover_grace_as_long_as_a_duration_goes_never_overflow() {
        let (sink, _) = collect();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Spawn::new("/bin/sleep", dir.path())
            .args(["1000"])
            .leftover_grace(Duration::MAX)
            .start(sink)
            .unwrap();
        // The program is in the group before the group is signalled, so that this test is
        // about the grace alone (a stop sent before the fork: `shim::tests`).
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.processes().is_empty() {
            assert!(Instant::now() < deadline, "the shim never started its program");
            std::thread::sleep(Duration::from_millis(5));
        }
        // sleep dies of SIGTERM at once: the endless grace is never waited for.
        let exit = child.stop(Signal::SIGTERM, Duration::MAX);
        assert_eq!(exit.to_string(), "killed by SIGTERM");
    }

    #[test]
    fn stop_kills_a_group_that_ignores_sigterm_including_grandchildren() {
        let (sink, _) = collect();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("gc");
        let script = format!(
            "trap '' TERM; (trap '' TERM; sleep 1000 & echo $! > {p}; wait) & while :; do sleep 0.05; done",
            p = pidfile.display()
        );
        let mut child = Spawn::new("/bin/bash", dir.path())
            .args(["-c", &script])
            .env([("PATH", "/usr/bin:/bin")])
            .start(sink)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            assert!(Instant::now() < deadline, "grandchild never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let gc: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        let exit = child.stop(Signal::SIGTERM, Duration::from_millis(300));
        assert_eq!(exit.to_string(), "killed by SIGKILL");
        // Orphans are reparented to pid 1, which may reap them late: a zombie is dead.
        let state = std::fs::read_to_string(format!("/proc/{gc}/stat")).unwrap_or_default();
        let state = state
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            .map(String::from);
        assert!(
            state.is_none() || state.as_deref() == Some("Z"),
            "grandchild survived: {state:?}"
        );
    }

    /// A program that ignores SIGTERM, started on `clock`, once it is running.
    fn stubborn(dir: &Path, clock: &Arc<crate::clock::ManualClock>) -> Child {
        let (sink, _) = collect();
        let ready = dir.join("ready");
        let script = format!(
            "trap '' TERM; touch {r}; while :; do sleep 0.05; done",
            r = ready.display()
        );
        let child = Spawn::new("/bin/bash", dir)
            .args(["-c", &script])
            .env([("PATH", "/usr/bin:/bin")])
            .clock(clock.clone())
            .start(sink)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "the program never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    #[test]
    fn the_platforms_grace_period_ends_in_sigkill_on_the_clock_not_before() {
        let clock = Arc::new(crate::clock::ManualClock::at(0));
        let dir = tempfile::tempdir().unwrap();
        let mut child = stubborn(dir.path(), &clock);
        let pid = child.pid();
        let (tell, stopped) = bounded(1);
        let stopping = std::thread::spawn(move || {
            let exit = child.stop(Signal::SIGTERM, Duration::from_secs(30));
            let _ = tell.send(exit.to_string());
        });
        clock.until_waiting(1, "the child");
        clock.advance(Duration::from_millis(29_999));
        // SIGTERM was ignored: a millisecond before the grace ends, it is still there.
        assert!(
            stopped.recv_timeout(Duration::from_millis(200)).is_err(),
            "killed before the grace period ended"
        );
        assert!(process(pid as i32).is_some());
        clock.advance(Duration::from_millis(1));
        let exit = stopped
            .recv_timeout(Duration::from_secs(10))
            .expect("not killed when the grace period ended");
        assert_eq!(exit, "killed by SIGKILL");
        stopping.join().unwrap();
    }

    #[test]
    fn a_wait_times_out_on_the_clock_and_leaves_the_group_to_its_caller() {
        let clock = Arc::new(crate::clock::ManualClock::at(0));
        let dir = tempfile::tempdir().unwrap();
        let mut child = stubborn(dir.path(), &clock);
        let (_keep, cancel) = bounded::<()>(0);
        let (tell, ended) = bounded(1);
        let waiting = std::thread::spawn(move || {
            // The platform's postdeploy hook timeout.
            let why = child.wait_until(Duration::from_secs(20 * 60), &cancel);
            let _ = tell.send(why);
            child
        });
        clock.until_waiting(1, "the child");
        clock.advance(Duration::from_secs(20 * 60) - Duration::from_millis(1));
        assert!(
            ended.recv_timeout(Duration::from_millis(200)).is_err(),
            "timed out early"
        );
        clock.advance(Duration::from_millis(1));
        let why = ended
            .recv_timeout(Duration::from_secs(10))
            .expect("never timed out");
        assert_eq!(why.unwrap_err(), Interrupted::TimedOut);
        let mut child = waiting.join().unwrap();
        assert!(child.status().is_none(), "a timeout must not stop the program");
        let stopping = std::thread::spawn(move || child.stop(Signal::SIGTERM, Duration::from_secs(30)));
        clock.until_waiting(1, "the child");
        clock.advance(Duration::from_secs(30));
        assert_eq!(stopping.join().unwrap().to_string(), "killed by SIGKILL");
    }

    #[test]
    fn long_lines_are_split_at_character_boundaries_and_nothing_is_lost() {
        let (sink, lines) = collect();
        let dir = tempfile::tempdir().unwrap();
        // 2.5 lines' worth of "é" (2 bytes each) without a newline, then a short line.
        let chars = MAX_LINE * 5 / 4;
        let mut child = Spawn::new("python3", dir.path())
            .args([
                "-c",
                &format!("import sys; sys.stdout.write('\\u00e9' * {chars} + '\\nend\\n')"),
            ])
            .env([("PATH", std::env::var("PATH").unwrap())])
            .start(sink)
            .unwrap();
        let (_tx, never) = bounded::<()>(0);
        assert!(child
            .wait_until(Duration::from_secs(10), &never)
            .unwrap()
            .success());
        child.reap_group(Duration::from_secs(1));
        let lines = lines.lock().unwrap().clone();
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE), "a line over the limit");
        assert!(lines.len() >= 3, "{} lines", lines.len());
        let (last, flood) = lines.split_last().unwrap();
        assert_eq!(last, "end");
        assert_eq!(flood.concat(), "\u{e9}".repeat(chars));
    }

    #[test]
    fn output_is_captured_within_its_limits_and_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let sh = |script: &str| {
            Spawn::new("/bin/sh", dir.path())
                .args(["-c", script])
                .env([("PATH", "/usr/bin:/bin")])
        };
        let out = sh("printf 'a\\0b'; echo oops >&2; exit 4")
            .output(16, Duration::from_secs(10), None)
            .unwrap();
        assert_eq!(out.stdout, b"a\0b");
        assert_eq!(out.stderr, b"oops\n");
        assert_eq!(out.status.code(), Some(4));
        let too_much = sh("yes").output(1000, Duration::from_secs(10), None);
        assert!(
            matches!(too_much, Err(ProcessError::TooMuchOutput { limit: 1000, .. })),
            "{too_much:?}"
        );
        // A daemon holding stdout open does not hold the caller past the timeout.
        let started = Instant::now();
        let hung = sh("setsid sleep 1000 & sleep 1000").output(16, Duration::from_millis(300), None);
        assert!(matches!(hung, Err(ProcessError::TimedOut { .. })), "{hung:?}");
        assert!(started.elapsed() < Duration::from_secs(8));
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        assert_eq!(utf8_cut(b"abc"), 3);
        assert_eq!(utf8_cut("a\u{e9}".as_bytes()), 3);
        assert_eq!(utf8_cut(&"a\u{e9}".as_bytes()[..2]), 1);
        assert_eq!(utf8_cut(&"a\u{20ac}".as_bytes()[..3]), 1);
        assert_eq!(utf8_cut(&"a\u{1f600}".as_bytes()[..4]), 1);
        assert_eq!(utf8_cut("a\u{1f600}".as_bytes()), 5);
    }

    #[test]
    fn scripts_without_execute_bit_run_through_their_shebang() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/usr/bin/env bash\necho hi\n").unwrap();
        let (program, args) = script_command(&script).unwrap();
        assert_eq!(program, "/usr/bin/env");
        assert_eq!(
            args,
            vec![OsString::from("bash"), script.clone().into_os_string()]
        );
        std::fs::write(&script, "echo no shebang\n").unwrap();
        assert_eq!(script_command(&script).unwrap().0, "bash");
    }
}
