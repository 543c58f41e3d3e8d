//! Readiness, the platform's way (PLATFORM.md §4 step 2): a `web` or `tcp` container is
//! ready when a raw TCP connect to its PORT succeeds (no HTTP); it must be so within
//! the boot timeout, and a container that exits first has crashed.
//!
//! Beyond the platform: when a container is not ready, say what it is doing instead,
//! read from /proc (the sockets its process group listens on).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};

use crate::clock::Clock;
use crate::container::{self, Container};
use crate::process::Exit;
use crate::settings::LoopbackBind;

/// How often a container's port is tried: a loopback connect costs microseconds, and
/// readiness must be seen within a few milliseconds of the listen.
const POLL: Duration = Duration::from_millis(2);

/// How often a container that does not accept on its PORT yet is looked at in /proc, for
/// a listener elsewhere: reading /proc costs milliseconds, and a wrong port must be said
/// within a second of the listen.
const LOOK: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub enum ProbeFailure {
    /// The leader exited before every container was ready.
    Crashed {
        container: String,
        exit: Exit,
        tail: Vec<String>,
    },
    TimedOut {
        container: String,
        port: u16,
        diagnosis: String,
        tail: Vec<String>,
    },
    Cancelled,
}

/// Wait until every routed container accepts connections on its PORT, at most `timeout`
/// on `clock`. `on_note` receives hints worth showing at once (a loopback-only bind).
pub fn wait_ready(
    containers: &mut [Container],
    timeout: Duration,
    clock: &dyn Clock,
    loopback: LoopbackBind,
    cancel: &Receiver<()>,
    on_note: &dyn Fn(&str),
) -> Result<(), ProbeFailure> {
    let deadline = clock.after(timeout);
    // Set when the deadline has passed: one more look, then the containers not ready fail.
    let mut over = false;
    let mut ready: Vec<bool> = containers.iter().map(|c| c.port.is_none()).collect();
    // Containers found listening on 127.0.0.1 only, and told about.
    let mut loopback_only: Vec<bool> = vec![false; containers.len()];
    // Containers found listening elsewhere than on their PORT, and told about: the
    // platform waits out its boot timeout, and so does this, but the cause is said at once.
    let mut told_elsewhere: Vec<bool> = vec![false; containers.len()];
    let mut next_look = Instant::now() + LOOK;
    loop {
        let look = Instant::now() >= next_look;
        if look {
            next_look = Instant::now() + LOOK;
        }
        for (i, c) in containers.iter_mut().enumerate() {
            if c.child.status().is_some() {
                let exit = container::reap(c);
                return Err(ProbeFailure::Crashed {
                    container: c.name.clone(),
                    exit,
                    tail: c.tail.lines(),
                });
            }
            let Some(port) = c.port else { continue };
            if ready[i] {
                continue;
            }
            // All of 127/8 is this machine: a listener bound to every interface also
            // accepts on 127.0.0.2, one bound to 127.0.0.1 does not. One connect, where
            // reading /proc would cost milliseconds on the path from listen to switch.
            let on_every_interface = || accepts(Ipv4Addr::new(127, 0, 0, 2), port);
            if loopback_only[i] {
                // Already told: only a bind to every interface changes anything, and the
                // app need not accept a connection on 127.0.0.1 every 2 ms meanwhile.
                ready[i] = on_every_interface();
                continue;
            }
            if !accepts(Ipv4Addr::LOCALHOST, port) {
                if look && !told_elsewhere[i] {
                    if let Some(text) = listening_elsewhere(c, port) {
                        told_elsewhere[i] = true;
                        on_note(&text);
                    }
                }
                continue;
            }
            if loopback == LoopbackBind::Fail && !on_every_interface() {
                loopback_only[i] = true;
                on_note(&format!(
                    "{} listens on 127.0.0.1:{port} only: on the platform the router cannot reach it and the deployment times out. Bind 0.0.0.0 (or set SHIPWAY_LOOPBACK_BIND=allow to rehearse anyway).",
                    c.name
                ));
                continue;
            }
            ready[i] = true;
        }
        if ready.iter().all(|r| *r) {
            return Ok(());
        }
        if over {
            let i = ready.iter().position(|r| !r).unwrap_or(0);
            let c = &containers[i];
            let port = c.port.unwrap_or(0);
            return Err(ProbeFailure::TimedOut {
                container: c.name.clone(),
                port,
                diagnosis: diagnose(c, port),
                tail: c.tail.lines(),
            });
        }
        // Sleep until the next try, waking at once if the user cancels or the time is up;
        // a container that exits meanwhile is seen at the top of the next pass, at most
        // 2 ms later.
        select! {
            recv(cancel) -> _ => return Err(ProbeFailure::Cancelled),
            recv(deadline) -> _ => over = true,
            default(POLL) => {}
        }
    }
}

fn accepts(ip: Ipv4Addr, port: u16) -> bool {
    let addr = SocketAddr::from((ip, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
}

fn loopback_only(binds: &[SocketAddr], port: u16) -> bool {
    let on_port: Vec<&SocketAddr> = binds.iter().filter(|a| a.port() == port).collect();
    !on_port.is_empty() && on_port.iter().all(|a| a.ip().is_loopback())
}

/// The note for a container that listens, but not on its PORT: where it listens, and the
/// whole fix. `None` while it listens nowhere (it may still be starting).
fn listening_elsewhere(c: &Container, port: u16) -> Option<String> {
    let members: Vec<_> = c.child.processes().into_iter().map(|p| p.pid).collect();
    let others: Vec<String> = listening_addresses(&members)
        .iter()
        .filter(|a| a.port() != port)
        .map(|a| a.to_string())
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "{} listens on {}, not on its PORT ({port}): on the platform the router reaches a container only on $PORT, so this deployment will time out. Listen on $PORT, on 0.0.0.0. Waiting out the boot timeout, as the platform does.",
            c.name,
            others.join(", ")
        )
    })
}

/// Why a container is not ready, in words a user can act on.
fn diagnose(c: &Container, port: u16) -> String {
    let members: Vec<_> = c.child.processes().into_iter().map(|p| p.pid).collect();
    let binds = listening_addresses(&members);
    if members.is_empty() {
        return format!("{} has no process left running", c.name);
    }
    if loopback_only(&binds, port) {
        return format!(
            "{} listens on 127.0.0.1:{port}, which only the container itself can reach: bind 0.0.0.0:$PORT (the commonest cause of a boot timeout)",
            c.name
        );
    }
    let others: Vec<String> = binds
        .iter()
        .filter(|a| a.port() != port)
        .map(|a| a.to_string())
        .collect();
    if !others.is_empty() {
        return format!(
            "{} was given PORT={port} but listens on {} instead: read the port from the PORT environment variable",
            c.name,
            others.join(", ")
        );
    }
    format!(
        "{} was given PORT={port} but listens on no TCP port at all: is its command a server, and does it start within the boot timeout?",
        c.name
    )
}

/// The addresses the given processes listen on (TCP, IPv4 and IPv6), from /proc.
pub fn listening_addresses(pids: &[nix::unistd::Pid]) -> Vec<SocketAddr> {
    let mut inodes = BTreeSet::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let mut addrs = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            if fields.len() < 10 || fields[3] != "0A" || !inodes.contains(fields[9]) {
                continue;
            }
            if let Some(addr) = parse_proc_addr(fields[1]) {
                addrs.push(addr);
            }
        }
    }
    addrs
}

/// `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6), as /proc/net/tcp* writes them.
/// The process listening on TCP `port` (any address), from /proc: the one whose
/// descriptors hold the listening socket. `None` when it cannot be seen (another user's).
pub fn listener_of(port: u16) -> Option<nix::unistd::Pid> {
    let mut inodes = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 10
                && fields[3] == "0A"
                && parse_proc_addr(fields[1]).is_some_and(|a| a.port() == port)
            {
                inodes.insert(format!("socket:[{}]", fields[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let holds = std::fs::read_dir(entry.path().join("fd"))
            .ok()?
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|t| inodes.contains(t.to_string_lossy().as_ref()))
            });
        holds.then(|| nix::unistd::Pid::from_raw(pid))
    })
}

/// When shipway holds `port` (the platform of another SHIPWAY_HOME): the words for it.
/// This process is not another: its own apps' ports are named by the supervisor.
pub fn shipway_holder(port: u16) -> Option<String> {
    let pid = listener_of(port).filter(|p| p.as_raw() as u32 != std::process::id())?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let ours = std::env::current_exe().ok().is_some_and(|me| me == exe)
        || exe.file_name().is_some_and(|n| n == "shipway");
    if !ours {
        return None;
    }
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let home = environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"SHIPWAY_HOME="))
        .map(|h| String::from_utf8_lossy(h).into_owned());
    Some(match home {
        Some(h) => format!(
            "shipway itself holds it: the platform of SHIPWAY_HOME={h} (pid {pid}) routes another app there. Deploy with --port to choose another port, or stop that platform (`SHIPWAY_HOME={h} shipway down`)"
        ),
        None => format!(
            "shipway itself holds it: another shipway platform (pid {pid}) routes an app there. Deploy with --port to choose another port, or stop that platform"
        ),
    })
}

fn parse_proc_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    match ip.len() {
        8 => {
            let raw = u32::from_str_radix(ip, 16).ok()?;
            Some(SocketAddr::from((Ipv4Addr::from(u32::from_be(raw)), port)))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for word in 0..4 {
                let raw = u32::from_str_radix(&ip[word * 8..word * 8 + 8], 16).ok()?;
                bytes[word * 4..word * 4 + 4].copy_from_slice(&u32::from_be(raw).to_be_bytes());
            }
            let v6 = std::net::Ipv6Addr::from(bytes);
            // An IPv4-mapped address is the IPv4 one for our purposes.
            let ip = v6
                .to_ipv4_mapped()
                .map(std::net::IpAddr::V4)
                .unwrap_or(std::net::IpAddr::V6(v6));
            Some(SocketAddr::new(ip, port))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `web` container that runs but never listens on its PORT.
    fn deaf_web(dir: &std::path::Path, port: u16) -> Container {
        let child = crate::process::Spawn::new("/bin/sleep", dir)
            .args(["1000"])
            .start(std::sync::Arc::new(|_, _| {}))
            .unwrap();
        Container {
            id: 0,
            release: 1,
            restarts: 0,
            crash_streak: 0,
            spec: container::ContainerSpec {
                process_type: "web".into(),
                index: 1,
                command: "sleep 1000".into(),
            },
            name: "web-1".into(),
            port: Some(port),
            child,
            size: crate::platform_numbers::DEFAULT_SIZE,
            tail: crate::tail::SharedTail::new(20),
        }
    }

    #[test]
    fn the_platforms_boot_timeout_is_measured_on_the_clock() {
        let clock = std::sync::Arc::new(crate::clock::ManualClock::at(0));
        let dir = tempfile::tempdir().unwrap();
        // A port nothing listens on: taken from the OS, then let go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut containers = vec![deaf_web(dir.path(), port)];
        let (_keep, cancel) = crossbeam_channel::bounded::<()>(0);
        let (tell, ended) = crossbeam_channel::bounded(1);
        let c = clock.clone();
        let probing = std::thread::spawn(move || {
            let ready = wait_ready(
                &mut containers,
                Duration::from_secs(60),
                &*c,
                LoopbackBind::Fail,
                &cancel,
                &|_| {},
            );
            let _ = tell.send(ready);
            containers
        });
        // The probe waits on the clock once it has looked at the port.
        clock.until_waiting(1, "the probe");
        clock.advance(Duration::from_millis(59_999));
        assert!(
            ended.recv_timeout(Duration::from_millis(200)).is_err(),
            "gave up before the boot timeout"
        );
        clock.advance(Duration::from_millis(1));
        let ready = ended
            .recv_timeout(Duration::from_secs(10))
            .expect("still waiting past the boot timeout");
        match ready {
            Err(ProbeFailure::TimedOut {
                container,
                port: p,
                diagnosis,
                ..
            }) => {
                assert_eq!((container.as_str(), p), ("web-1", port));
                assert!(!diagnosis.is_empty());
            }
            other => panic!("not a timeout: {other:?}"),
        }
        for mut c in probing.join().unwrap() {
            c.stop(Duration::from_secs(1));
        }
    }

    #[test]
    fn reads_proc_addresses() {
        assert_eq!(
            parse_proc_addr("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("00000000:0050"),
            Some("0.0.0.0:80".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("00000000000000000000000001000000:0050"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("00000000000000000000000000000000:0050"),
            Some("[::]:80".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("0000000000000000FFFF00000100007F:0050"),
            Some("127.0.0.1:80".parse().unwrap())
        );
    }

    #[test]
    fn finds_this_process_listening_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let addrs = listening_addresses(&[nix::unistd::getpid()]);
        assert!(
            addrs.contains(&SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            "{addrs:?}"
        );
        assert!(loopback_only(&addrs, port));
    }
}
