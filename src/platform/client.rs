//! The CLI side of the platform socket: find a running platform or start one in the
//! background, send one request, print what comes back.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::lock;
use super::protocol::{self, Event, Request};
use crate::error::{exit, Error};
use crate::state::Home;
use crate::ui::{Output, Progress};

/// How long a freshly started platform may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(15);

pub fn connect(home: &Home) -> Option<UnixStream> {
    UnixStream::connect(home.socket()).ok()
}

/// Start `shipway platform` in its own session, detached from this terminal, with
/// this command's environment (so it reads the same settings), logging to platform.log.
/// Returns its pid and the first connection that got through.
pub fn start_detached(home: &Home) -> Result<(u32, UnixStream), Error> {
    let log_path = home.log_file();
    let io_err =
        |action: &'static str, path: std::path::PathBuf| move |source| Error::io(action, path, source);
    let log = crate::state::open_private_log(&log_path).map_err(io_err("write", log_path.clone()))?;
    let log2 = log.try_clone().map_err(io_err("write", log_path.clone()))?;
    let exe = std::env::current_exe().map_err(io_err("find", "shipway".into()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("platform").stdin(Stdio::null()).stdout(log).stderr(log2);
    // SAFETY: setsid is async-signal-safe, and nothing else runs between fork and exec.
    // The platform closes what it inherited beyond stdio first thing (`run`), so this
    // command's `3>&1` pipe does not stay open for as long as it runs.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let child = cmd.spawn().map_err(io_err("start", "shipway platform".into()))?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(stream) = connect(home) {
            return Ok((pid, stream));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(Error::Platform {
        message: format!(
            "the platform did not open {} within {}s: see {}",
            home.socket().display(),
            START_TIMEOUT.as_secs(),
            log_path.display()
        ),
    })
}

/// A connection to the platform, starting one if none runs (and saying so); `None` when
/// `cancel` fires first.
pub fn connect_or_start(
    home: &Home,
    out: &Output,
    cancel: &Receiver<()>,
) -> Result<Option<UnixStream>, Error> {
    if let Some(s) = connect(home) {
        return Ok(Some(s));
    }
    if let Some(pid) = lock::running(home) {
        // It runs but its socket is gone (deleted): it binds it again within a moment.
        return wait_for_socket(home, cancel).map_err(|e| Error::Platform {
            message: format!(
                "the shipway platform (pid {pid}) does not answer: {e}; `shipway down` stops it"
            ),
        });
    }
    let (pid, stream) = start_detached(home)?;
    out.step(&format!(
        "Started the shipway platform in the background (pid {pid}, log {}); `shipway down` stops it",
        home.log_file().display()
    ));
    Ok(Some(stream))
}

/// Wait until the running platform's socket answers (`None`: cancelled first).
fn wait_for_socket(home: &Home, cancel: &Receiver<()>) -> Result<Option<UnixStream>, Error> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(stream) = connect(home) {
            return Ok(Some(stream));
        }
        if cancel.recv_timeout(Duration::from_millis(10)) != Err(crossbeam_channel::RecvTimeoutError::Timeout)
        {
            return Ok(None);
        }
    }
    Err(Error::Platform {
        message: format!(
            "{} did not answer within {}s",
            home.socket().display(),
            START_TIMEOUT.as_secs()
        ),
    })
}

/// Send a request that streams output (deploy, scale, restart, rollback), starting a
/// platform if none runs, print its events, and return its exit status. Ctrl-C, SIGTERM
/// or SIGHUP closes our side, which aborts a deployment, at whatever step it is (queued
/// included); before the request is sent, they end the command at once.
pub fn stream(home: &Home, request: Request) -> Result<i32, Error> {
    let out = Output::stdout();
    let cancel = crate::signals::cancel_on_interrupt();
    let Some(mut stream) = connect_or_start(home, &out, &cancel)? else {
        return Ok(exit::ABORTED);
    };
    if cancel.try_recv() == Err(crossbeam_channel::TryRecvError::Disconnected) {
        return Ok(exit::ABORTED);
    }
    let sock_err = |source| Error::io("talk to the platform on", home.socket(), source);
    protocol::write(&mut stream, &request).map_err(sock_err)?;
    let half = stream.try_clone().map_err(sock_err)?;
    std::thread::spawn(move || {
        let _ = cancel.recv();
        let _ = half.shutdown(std::net::Shutdown::Write);
    });
    let mut reader = BufReader::new(stream);
    loop {
        match protocol::read::<Event>(&mut reader) {
            Ok(Some(Event::Line { text })) => out.line(&text),
            Ok(Some(Event::Error { message })) => out.error(&message),
            Ok(Some(Event::Progress { progress })) => out.progress(progress),
            Ok(Some(Event::Done { code })) => return Ok(code),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                out.progress(Progress::Done);
                out.error(&format!(
                    "the platform closed the connection before the request ended: see its log, {}",
                    home.log_file().display()
                ));
                return Ok(exit::ERROR);
            }
        }
    }
}

/// Ask a running platform for one answer (no platform: `None`).
pub fn ask(home: &Home, request: &Request) -> Result<Option<Event>, Error> {
    // A platform that runs without its socket (deleted) binds it again within a moment:
    // "no platform" must not be concluded from that (`destroy` would delete what it serves).
    let stream = match connect(home) {
        Some(s) => Some(s),
        None if lock::running(home).is_some() => wait_for_socket(home, &crossbeam_channel::never())?,
        None => None,
    };
    let Some(mut stream) = stream else {
        return Ok(None);
    };
    let sock_err = |source| Error::io("talk to the platform on", home.socket(), source);
    protocol::write(&mut stream, request).map_err(sock_err)?;
    let mut reader = BufReader::new(stream);
    protocol::read::<Event>(&mut reader).map_err(sock_err)
}

/// Ask the platform for one answer, starting one if none runs (and saying so).
pub fn ask_or_start(home: &Home, out: &Output, request: &Request) -> Result<Option<Event>, Error> {
    let Some(mut stream) = connect_or_start(home, out, &crossbeam_channel::never())? else {
        return Ok(None);
    };
    let sock_err = |source| Error::io("talk to the platform on", home.socket(), source);
    protocol::write(&mut stream, request).map_err(sock_err)?;
    let mut reader = BufReader::new(stream);
    protocol::read::<Event>(&mut reader).map_err(sock_err)
}

/// `shipway up --detach`.
pub fn up_detached(home: &Home) -> Result<i32, Error> {
    if let Some(pid) = lock::running(home) {
        println!(
            "-----> The shipway platform already runs (pid {pid}, {})",
            home.socket().display()
        );
        return Ok(exit::SUCCESS);
    }
    let (pid, _) = start_detached(home)?;
    println!(
        "-----> Started the shipway platform in the background (pid {pid}, log {})",
        home.log_file().display()
    );
    Ok(exit::SUCCESS)
}

/// `shipway down`: ask the platform to stop and wait until it has. A platform whose
/// socket is gone is found through the home's lock and stopped with SIGTERM.
///
/// `problems` are what the home's checks found (`Home::for_stop`): `down` still stops
/// the platform, after saying them. In such a home another user may have replaced the
/// socket or the pid file, so the platform is then found only through the lock, checked
/// to be this user's shipway, and stopped with SIGTERM.
pub fn down(home: &Home, problems: &[crate::state::StateError]) -> Result<i32, Error> {
    let out = Output::stdout();
    for problem in problems {
        out.error(&format!("warning: {problem}"));
    }
    let Some(pid) = lock::running(home) else {
        out.step(&format!("No shipway platform runs for {}", home.root.display()));
        return Ok(exit::SUCCESS);
    };
    let trusted = problems.is_empty();
    if !trusted && !ours(pid) {
        return Err(Error::Platform {
            message: format!(
                "{} names pid {pid}, which is not a shipway platform of yours: nothing was stopped. Fix the permissions above, then `shipway down` again",
                home.pid_file().display()
            ),
        });
    }
    out.step("Stopping the shipway platform: every app gets SIGTERM, then SIGKILL after the grace period");
    match connect(home).filter(|_| trusted) {
        Some(mut stream) => {
            let sock_err = |source| Error::io("talk to the platform on", home.socket(), source);
            protocol::write(&mut stream, &Request::Down).map_err(sock_err)?;
            let mut reader = BufReader::new(stream);
            while let Ok(Some(event)) = protocol::read::<Event>(&mut reader) {
                if let Event::Progress { progress } = event {
                    out.progress(progress);
                }
            }
        }
        None => {
            let target = nix::unistd::Pid::from_raw(pid as i32);
            nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM).map_err(|e| {
                Error::Platform {
                    message: format!("cannot send SIGTERM to the shipway platform (pid {pid}): {e}"),
                }
            })?;
        }
    }
    // The reply ends early; the platform is gone when it no longer holds the home's lock
    // (not when its pid file is emptied, which it does just before it exits).
    let started = Instant::now();
    while if trusted {
        lock::held(home)
    } else {
        crate::process::process(pid as i32).is_some()
    } {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(Error::Platform {
                message: "the platform did not stop within 10 minutes".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The lock goes with its descriptors, a moment before the exit completes: "Stopped"
    // waits for that too, so that what runs next (a test, a script starting another)
    // never sees it still there.
    let exit_deadline = Instant::now() + Duration::from_secs(10);
    while crate::process::process(pid as i32).is_some() && Instant::now() < exit_deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    out.progress(Progress::Done);
    out.step("Stopped");
    Ok(exit::SUCCESS)
}

/// Whether `pid` is a shipway of this user: the same program as this one, run by the same
/// user. What a pid file of a home others may write names must pass this before it is
/// signalled.
fn ours(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(format!("/proc/{pid}")) else {
        return false;
    };
    let program = |cmdline: &[u8]| {
        use std::os::unix::ffi::OsStrExt;
        let first = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        std::path::Path::new(std::ffi::OsStr::from_bytes(first))
            .file_name()
            .map(|n| n.to_os_string())
    };
    let theirs = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mine = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    meta.uid() == nix::unistd::geteuid().as_raw()
        && program(&theirs).is_some()
        && program(&theirs) == program(&mine)
}
