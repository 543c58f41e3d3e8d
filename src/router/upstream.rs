//! A connection to one of the app's web containers, and opening it. Connects are
//! nonblocking, so a container that is slow to accept never stalls the other connections
//! of that worker; which container a request dials, and when it gives up, is `dial.rs`.
//!
//! Each worker keeps a small pool of idle upstream connections left by clients that closed
//! theirs, so a client that opens a connection per request does not cost the app a connect,
//! an accept and a close each time. A pooled connection is only reused within the routes
//! generation it was opened under, so a switch empties the pool in effect.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::EpollFlags;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage};

/// Every socket is watched edge-triggered for everything at once, so the router never pays
/// an `epoll_ctl` per state change.
pub(crate) fn interest() -> EpollFlags {
    EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET
}

#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) stream: TcpStream,
    pub(super) addr: SocketAddr,
    /// The routes generation this connection was chosen under.
    pub(crate) generation: u64,
    pub(super) connected: bool,
    pub(crate) started: Instant,
}

pub(super) fn open(addr: SocketAddr) -> io::Result<(TcpStream, bool)> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let connected = match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => true,
        Err(Errno::EINPROGRESS) => false,
        Err(e) => return Err(e.into()),
    };
    let stream = TcpStream::from(fd);
    // Small requests and responses must leave at once, not wait for Nagle's 40 ms.
    stream.set_nodelay(true)?;
    Ok((stream, connected))
}

impl Upstream {
    /// The container's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the connect has completed; an error means it failed (refused, unreachable).
    pub(crate) fn poll_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connected = true;
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected
    }
}

/// Idle upstream connections of one worker, most recently used last.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Vec<(Instant, Upstream)>,
    generation: u64,
}

/// Enough for the connections one worker has in flight under load; nginx's documented
/// `keepalive` example is 32 per upstream group.
const POOL_MAX: usize = 64;
/// Older idle connections are closed rather than reused: the app may be closing them
/// itself (nginx's upstream `keepalive_timeout` is 60 s; Node.js closes after 5 s).
const POOL_IDLE: Duration = Duration::from_secs(4);

impl Pool {
    pub(crate) fn put(&mut self, up: Upstream, now: Instant) {
        if up.generation != self.generation {
            // An older release's connection: the next take would drop it anyway.
            if up.generation < self.generation {
                return;
            }
            self.idle.clear();
            self.generation = up.generation;
        }
        if self.idle.len() >= POOL_MAX {
            self.idle.remove(0);
        }
        self.idle.push((now, up));
    }

    pub(super) fn take(&mut self, generation: u64, addr: SocketAddr, now: Instant) -> Option<Upstream> {
        if generation != self.generation {
            self.idle.clear();
            self.generation = generation;
            return None;
        }
        while let Some(i) = self.idle.iter().rposition(|(_, up)| up.addr == addr) {
            let (since, up) = self.idle.remove(i);
            if now.saturating_duration_since(since) > POOL_IDLE {
                continue;
            }
            // EOF or stray bytes mean the app closed or broke it while it sat here.
            let mut probe = [0u8; 1];
            match up.stream.peek(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(up),
                _ => continue,
            }
        }
        None
    }
}
