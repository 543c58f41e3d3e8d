//! The guarantee that no app process outlives the platform, even when the platform is
//! killed with SIGKILL: a small `shipway watchdog` process, in its own process group,
//! reads `+PGID` / `-PGID` lines from a pipe whose only writer is the platform. When the
//! pipe closes (the platform is gone, however it died), it SIGKILLs every group still
//! registered, then exits.
//!
//! A process that leaves its group on purpose (setsid) is still below its container's
//! shim (`shim.rs`, a subreaper), and is killed through it.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

pub struct Watchdog {
    stdin: Mutex<ChildStdin>,
    child: Mutex<Child>,
}

impl Watchdog {
    pub fn spawn() -> std::io::Result<Watchdog> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("watchdog")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("watchdog has no stdin"))?;
        Ok(Watchdog {
            stdin: Mutex::new(stdin),
            child: Mutex::new(child),
        })
    }

    fn say(&self, line: String) {
        if let Ok(mut w) = self.stdin.lock() {
            let _ = w.write_all(line.as_bytes());
            let _ = w.flush();
        }
    }

    pub fn watch(&self, pgid: u32) {
        self.say(format!("+{pgid}\n"));
    }

    pub fn forget(&self, pgid: u32) {
        self.say(format!("-{pgid}\n"));
    }

    /// The platform stopped everything itself: let the watchdog go.
    pub fn finish(self) {
        drop(self.stdin);
        if let Ok(mut c) = self.child.lock() {
            let _ = c.wait();
        }
    }
}

/// The watchdog's own main loop (`shipway watchdog`).
pub fn run() -> i32 {
    // It must outlive a Ctrl-C aimed at the platform's terminal.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigIgn);
        let _ = nix::sys::signal::signal(Signal::SIGHUP, nix::sys::signal::SigHandler::SigIgn);
    }
    let platform = nix::unistd::getppid().as_raw();
    let mut groups = BTreeSet::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let (op, pgid) = line.split_at(1.min(line.len()));
        let Ok(pgid) = pgid.trim().parse::<i32>() else {
            continue;
        };
        match op {
            "+" => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    for pgid in groups {
        // Each group is led by a container's shim: what is below it goes first, while
        // the shim still keeps it there (SIGKILLed first, the shim would leave its
        // descendants to init). The shim, seeing the platform gone, does the same.
        crate::process::kill_descendants(Pid::from_raw(pgid));
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    // The containers' cgroups, which the platform removes as each container stops.
    crate::cgroup::remove_left_by(platform);
    0
}
