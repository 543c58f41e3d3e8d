//! The one way shipway starts a child: its own process group, an explicit environment
//! and working folder, stdin closed unless attached, stdout and stderr each drained on
//! a thread into a line sink. Also how a group is stopped (signal, grace, SIGKILL,
//! reap) and how an exit status is written everywhere.
//!
//! It knows nothing of buildpacks or containers: those modules say what to run.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{after, bounded, select, Receiver};
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
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

/// What to start.
pub struct Spawn {
    program: OsString,
    args: Vec<OsString>,
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
    attach: bool,
}

impl Spawn {
    pub fn new(program: impl Into<OsString>, cwd: &Path) -> Spawn {
        Spawn {
            program: program.into(),
            args: Vec::new(),
            cwd: cwd.to_path_buf(),
            env: Vec::new(),
            attach: false,
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

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.attach {
            // Its own group, so that signals reach its grandchildren and a Ctrl-C
            // in the terminal reaches shipway only, which then stops it in order.
            cmd.process_group(0);
        }
        cmd
    }

    /// Start it with stdout and stderr drained into `sink` on two threads, so a full
    /// pipe never blocks the child.
    pub fn start(self, sink: LineSink) -> Result<Child, ProcessError> {
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source,
        })?;
        let pid = Pid::from_raw(child.id() as i32);
        notify(GroupEvent::Started(child.id()));
        let mut drains = Vec::new();
        if let Some(out) = child.stdout.take() {
            drains.push(drain(out, Stream::Stdout, sink.clone()));
        }
        if let Some(err) = child.stderr.take() {
            drains.push(drain(err, Stream::Stderr, sink));
        }
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
            // The pipes close when the last holder exits; a grandchild may hold them
            // longer, so the exit is reported as soon as the leader is gone.
            drop(tx);
            drains
        });
        Ok(Child {
            pid,
            exited,
            exit,
            waiter: Some(waiter),
        })
    }

    /// Run attached to this terminal and wait; shipway ignores SIGINT meanwhile so
    /// that Ctrl-C goes to the child, as in a terminal session.
    pub fn run_attached(mut self) -> Result<Exit, ProcessError> {
        self.attach = true;
        let mut cmd = self.command();
        let program = self.program.to_string_lossy().into_owned();
        let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            program: program.clone(),
            source,
        })?;
        child
            .wait()
            .map(Exit)
            .map_err(|source| ProcessError::Spawn { program, source })
    }
}

fn drain(pipe: impl Read + Send + 'static, stream: Stream, sink: LineSink) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(64 * 1024, pipe);
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if buf.last() == Some(&b'\n') {
                        buf.pop();
                    }
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                    sink(stream, &String::from_utf8_lossy(&buf));
                }
            }
        }
    })
}

/// A started child: the leader of its own process group.
pub struct Child {
    pid: Pid,
    exited: Receiver<()>,
    exit: Arc<OnceLock<Exit>>,
    /// Reaps the leader, then hands back the output drains; taken once the group has ended
    /// (`stop`, `reap_group`), so `None` means the group is gone and the watchdog told.
    waiter: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

/// Why `wait_until` returned without an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    TimedOut,
    Cancelled,
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
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
        let deadline = after(timeout);
        select! {
            recv(self.exited) -> _ => Ok(self.wait_exit()),
            recv(deadline) -> _ => Err(Interrupted::TimedOut),
            recv(cancel) -> _ => Err(Interrupted::Cancelled),
        }
    }

    /// Stop the whole group: `signal`, then SIGKILL whatever is left after `grace`;
    /// always reaps the leader and waits until the group is empty.
    pub fn stop(&mut self, signal: Signal, grace: Duration) -> Exit {
        signal_group(self.pid, signal);
        let deadline = Instant::now() + grace;
        let exit = match self.status() {
            Some(exit) => exit,
            None => {
                select! {
                    recv(self.exited) -> _ => self.wait_exit(),
                    recv(after(grace)) -> _ => {
                        signal_group(self.pid, Signal::SIGKILL);
                        self.wait_exit()
                    }
                }
            }
        };
        // The leader is gone; grandchildren of the group get what is left of the grace.
        wait_group_empty(self.pid, deadline);
        self.join_drains();
        self.ended();
        exit
    }

    /// After the leader exited on its own: stop anything it left in its group.
    pub fn reap_group(&mut self, grace: Duration) {
        if group_alive(self.pid) {
            signal_group(self.pid, Signal::SIGTERM);
            wait_group_empty(self.pid, Instant::now() + grace);
        }
        self.join_drains();
        self.ended();
    }

    /// Tells the watchdog the group is gone, once, as soon as it is: a pid told late could
    /// already lead someone else's group.
    fn ended(&self) {
        notify(GroupEvent::Ended(self.pid()));
    }

    fn join_drains(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            if let Ok(drains) = waiter.join() {
                for d in drains {
                    let _ = d.join();
                }
            }
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
            signal_group(self.pid, Signal::SIGKILL);
            self.wait_exit();
        }
        self.ended();
    }
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
    !group_members(pid).is_empty()
}

/// The live processes of a group, read from /proc.
pub fn group_members(pgid: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
            pgrp == Some(pgid.as_raw()) && state != Some("Z") && state != Some("X")
        })
        .map(Pid::from_raw)
        .collect()
}

/// Wait until no process is left in the group, SIGKILLing it at `deadline`.
fn wait_group_empty(pid: Pid, deadline: Instant) {
    let mut killed = false;
    while group_alive(pid) {
        if !killed && Instant::now() >= deadline {
            signal_group(pid, Signal::SIGKILL);
            killed = true;
        }
        // Nothing signals the end of a grandchild we are not the parent of: poll.
        std::thread::sleep(Duration::from_millis(5));
        if killed && Instant::now() >= deadline + Duration::from_secs(5) {
            break;
        }
    }
}

/// The interpreter line of a script, for scripts shipped without the execute bit.
pub fn script_command(script: &Path) -> Result<(OsString, Vec<OsString>), ProcessError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(script).map_err(|source| ProcessError::Read {
        path: script.to_path_buf(),
        source,
    })?;
    if meta.permissions().mode() & 0o111 != 0 {
        return Ok((script.as_os_str().to_owned(), Vec::new()));
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|source| ProcessError::Read {
            path: script.to_path_buf(),
            source,
        })?;
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
