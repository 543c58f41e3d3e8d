//! A container's first process: `shipway shim PARENT GRACE_MS PROGRAM ARGS...`, started by
//! `process::Spawn` in front of every child. On the platform a container's end is the end
//! of everything in it; on a host a process can leave its process group (`setsid`, a
//! double fork) and outlive any stop aimed at the group. The shim closes that gap:
//!
//! - it is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so whatever its program starts
//!   stays below it, however it detaches, and is reparented to it rather than to init;
//! - a signal that stops the container (SIGTERM, SIGHUP, SIGQUIT, sent to its group) is
//!   passed on to those of its descendants that left the group, and one that reached the
//!   shim alone, before its program was forked, is passed on to the program;
//! - when the program ends, what it left behind gets SIGTERM, then SIGKILL after GRACE_MS,
//!   and the shim ends with the program's own status (exit code, or the same signal);
//! - when PARENT (the platform, or the CLI of `run` and `build`) dies, even by SIGKILL, it
//!   kills everything below it at once.
//!
//! It owns no state of the platform's and prints only when it has to stop leftovers.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgrp, getpid, getppid, Pid};

use crate::process::{self, ProcessInfo};
use crate::sandbox;

/// How often what was left behind is looked for again while it is being stopped: nothing
/// signals the end of a process the shim is not the parent of.
const RESCAN: Duration = Duration::from_millis(10);

/// The signals the shim handles itself; its program gets them back unblocked.
fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGINT,
    ] {
        set.add(s);
    }
    set
}

/// `shipway shim ...`: never returns when the program was killed by a signal (the shim
/// dies of the same one, so its parent reads the same status).
pub fn main(args: Vec<OsString>) -> i32 {
    let mut args = args.into_iter().peekable();
    let parent = args
        .next()
        .and_then(|a| a.to_str()?.parse::<i32>().ok())
        .map(Pid::from_raw);
    let grace = args
        .next()
        .and_then(|a| a.to_str()?.parse::<u64>().ok())
        .map(Duration::from_millis);
    let cgroups = process::read_cgroup_args(&mut args);
    let plan = process::read_sandbox_args(&mut args);
    let program = args.next();
    let (Some(parent), Some(grace), Some(program)) = (parent, grace, program) else {
        eprintln!(
            "usage: shipway shim PARENT_PID GRACE_MS [--cgroup PROCS]... [--app DIR [--layer] [--root DIR] [--bind DIR]...] PROGRAM [ARGS...] (internal)"
        );
        return 2;
    };
    match Shim::start(parent, grace, cgroups, plan, program, args.collect()) {
        Ok(mut shim) => {
            let status = shim.run();
            exit_like(status)
        }
        Err(message) => {
            eprintln!("shipway: {message}");
            127
        }
    }
}

struct Shim {
    program: Pid,
    grace: Duration,
    group: Pid,
    signals: SignalFd,
    /// Becomes readable when the parent has exited.
    parent: OwnedFd,
    /// When the container was told to stop: its leftovers have had SIGTERM since.
    stopping_since: Option<Instant>,
}

impl Shim {
    fn start(
        parent: Pid,
        grace: Duration,
        cgroups: Vec<std::path::PathBuf>,
        plan: Option<process::Plan>,
        program: OsString,
        args: Vec<OsString>,
    ) -> Result<Shim, String> {
        // SAFETY: prctl with these arguments only sets a flag of this process.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(format!(
                "cannot become a subreaper: {}",
                std::io::Error::last_os_error()
            ));
        }
        let parent_fd =
            pidfd_open(parent).map_err(|e| format!("cannot watch the platform (pid {parent}): {e}"))?;
        // The parent may have died before the pidfd was opened: then this process was
        // already reparented, and nobody is left to stop the container.
        if getppid() != parent {
            return Err(format!("the platform (pid {parent}) is gone"));
        }
        let set = handled();
        set.thread_block()
            .map_err(|e| format!("cannot block signals: {e}"))?;
        let signals = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| format!("cannot read signals: {e}"))?;
        let mut cmd = std::process::Command::new(&program);
        cmd.args(&args);
        // SAFETY: the shim is single-threaded, so between fork and exec its child may do
        // what the shim itself could (the sandbox allocates and writes files).
        unsafe {
            cmd.pre_exec(move || {
                pass_on_an_early_stop();
                // Into the container's cgroup before anything of it runs, so that its
                // limits hold from its first byte; before the sandbox, which may hide
                // the cgroup trees.
                for procs in &cgroups {
                    std::fs::write(procs, std::process::id().to_string()).map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot enter the cgroup {}: {e}", procs.display()),
                        )
                    })?;
                }
                if let Some(plan) = &plan {
                    sandbox::enter(plan).inspect_err(|e| {
                        // Only the errno crosses back to the shim: what went wrong is
                        // said here, in the program's process.
                        let said = match &plan.root {
                            Some(root) => crate::stack::cannot_enter(root, &e.to_string()),
                            None => format!("cannot make /app of {}: {e}", plan.app.display()),
                        };
                        eprintln!("shipway: {said}");
                    })?;
                }
                for s in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGINT] {
                    // Dispositions set to "ignore" survive exec: `shipway run` ignores
                    // SIGINT itself, which must not reach the command it runs.
                    nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigDfl)?;
                }
                nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
        Ok(Shim {
            program: Pid::from_raw(child.id() as i32),
            grace,
            group: getpgrp(),
            signals,
            parent: parent_fd,
            stopping_since: None,
        })
    }

    /// Until the program has ended and nothing it started is left; returns its status.
    fn run(&mut self) -> WaitStatus {
        let mut status = None;
        let mut deadline: Option<Instant> = None;
        loop {
            let (ended, childless) = self.reap();
            if let Some(exit) = ended {
                status = Some(exit);
            }
            if let Some(exit) = status {
                // Below a subreaper every descendant has a child of the shim among its
                // ancestors (or is one): with no child left, nothing is left.
                if childless {
                    return exit;
                }
                let left = self.descendants();
                if left.is_empty() {
                    return exit;
                }
                let at = *deadline.get_or_insert_with(|| self.stop_leftovers(&left));
                if Instant::now() >= at {
                    process::kill_descendants(getpid());
                    let _ = self.reap();
                    return exit;
                }
            }
            let timeout = if status.is_some() {
                PollTimeout::try_from(RESCAN).unwrap_or(PollTimeout::MAX)
            } else {
                PollTimeout::NONE
            };
            let mut fds = [
                PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.parent.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => std::thread::sleep(RESCAN),
            }
            let parent_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
            let signalled = fds[0].revents().is_some_and(|r| !r.is_empty());
            if parent_gone {
                // Nobody is left to stop the container in order: end it now, as the
                // platform's watchdog would.
                process::kill_descendants(getpid());
                let _ = self.reap();
                return status.unwrap_or(WaitStatus::Signaled(self.program, Signal::SIGKILL, false));
            }
            if signalled {
                self.read_signals();
            }
        }
    }

    fn descendants(&self) -> Vec<ProcessInfo> {
        process::descendants(getpid())
    }

    /// SIGTERM to what the program left running, unless the container's stop already
    /// reached it; returns when it gets SIGKILL.
    fn stop_leftovers(&mut self, left: &[ProcessInfo]) -> Instant {
        if let Some(since) = self.stopping_since {
            return crate::clock::saturating_add(since, self.grace);
        }
        let names: Vec<String> = left.iter().map(ProcessInfo::describe).collect();
        eprintln!(
            "shipway: the main process ended; stopping what it left running (SIGTERM, SIGKILL after {} ms): {}",
            self.grace.as_millis(),
            names.join(", ")
        );
        for p in left {
            let _ = kill(p.pid, Signal::SIGTERM);
        }
        crate::clock::deadline_in(self.grace)
    }

    fn read_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match signal {
                Signal::SIGTERM | Signal::SIGHUP | Signal::SIGQUIT => {
                    // The stop was sent to the group; those that left it hear it here.
                    for p in self.descendants() {
                        if p.pgid != self.group {
                            let _ = kill(p.pid, signal);
                        }
                    }
                    self.stopping_since.get_or_insert_with(Instant::now);
                }
                // SIGINT reaches the group from a terminal (`shipway run`): the program
                // got it too and decides. SIGCHLD: reaped in the loop.
                _ => {}
            }
        }
    }

    /// Reap every child that ended (the program and any orphan reparented here): the
    /// program's status when it is among them, and whether no child is left at all.
    fn reap(&self) -> (Option<WaitStatus>, bool) {
        let mut program = None;
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return (program, false),
                Err(e) => return (program, e == Errno::ECHILD),
                Ok(status) => {
                    if status.pid() == Some(self.program)
                        && matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..))
                    {
                        program = Some(status);
                    }
                }
            }
        }
    }
}

/// In the program's process, between fork and exec, while the shim's signals are still
/// blocked: a stop sent to the group before the fork is pending in the shim alone (a
/// child starts with no pending signal), so the program would never hear it and the
/// container would end only at the grace's SIGKILL. Reading the shim's signalfd before
/// forking would leave a window between that read and the fork; the shim's pending set
/// as the kernel shows it is read here, after the fork, and the shim does not read its
/// signalfd until the program has been started, so nothing can slip between. Each
/// pending stop is raised here too: one sent after the fork is pending here already
/// (they do not queue), and it is delivered once the mask is cleared below.
fn pass_on_an_early_stop() {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", getppid())) else {
        // Without /proc the window stays open, as it was: the grace still ends it.
        return;
    };
    // A stop sent to the group is pending for the process (ShdPnd); the shim is one
    // thread, so one sent to it alone is pending for that thread (SigPnd).
    let pending = status
        .lines()
        .filter_map(|l| l.strip_prefix("ShdPnd:").or_else(|| l.strip_prefix("SigPnd:")))
        .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .fold(0, |all, mask| all | mask);
    for s in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        if pending & (1u64 << (s as i32 - 1)) != 0 {
            let _ = nix::sys::signal::raise(s);
        }
    }
}

fn pidfd_open(pid: Pid) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Not inherited by the program: pidfds are opened close-on-exec.
    debug_assert!(fd.as_raw_fd() >= 0);
    Ok(fd)
}

/// End this process the way the program ended, so that its parent reads the same status.
fn exit_like(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => {
            // No core file of the shim's own: the program's was written, or not, already.
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: setrlimit only changes this process's limit.
            unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
            // SAFETY: restoring the default action of a signal is always sound.
            let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
            let mut only = SigSet::empty();
            only.add(signal);
            let _ = only.thread_unblock();
            let _ = kill(getpid(), signal);
            // A signal whose default is to go on (or one that was not delivered).
            128 + signal as i32
        }
        _ => 255,
    }
}

#[cfg(test)]
mod tests {
    //! The shim as the platform starts it: the built `shipway shim`, a child of the test.
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    use crate::process::self_exe;

    /// A stop sent to the container's group after the shim has blocked its signals but
    /// before it has forked its program must still end the program. The shim is started
    /// with SIGTERM blocked and already pending: the exact state that window leaves (a
    /// blocked mask and a pending signal both survive exec), reached without racing.
    #[test]
    fn a_stop_sent_before_the_program_is_forked_still_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(self_exe());
        cmd.args([
            "shim",
            &std::process::id().to_string(),
            "60000",
            "/bin/sleep",
            "1000",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .process_group(0);
        // SAFETY: only sigprocmask and kill on this process, both async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let mut term = nix::sys::signal::SigSet::empty();
                term.add(Signal::SIGTERM);
                term.thread_block()?;
                // As a stop to the group is: pending for the process, not one thread.
                kill(Pid::from_raw(std::process::id() as i32), Signal::SIGTERM)?;
                Ok(())
            });
        }
        let mut shim = cmd.spawn().unwrap();
        let group = Pid::from_raw(-(shim.id() as i32));
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = shim.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Without the fix the program sleeps on and only the grace would end it.
        let _ = kill(group, Signal::SIGKILL);
        let _ = shim.wait();
        let status = status.expect("the stop never reached the program: the container outlived it");
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    }
}
