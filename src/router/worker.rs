//! One router worker: an epoll loop over nonblocking sockets.
//!
//! A router runs a small fixed pool of these (one per core by default), so a long-lived
//! keep-alive connection costs a slot in a `Vec`, never a thread. Every worker watches the
//! one listening socket with `EPOLLEXCLUSIVE`, so the kernel wakes one worker per incoming
//! connection instead of all of them. The kernel always tries the same worker first, so a
//! burst of connections can land on one worker while another idles: a worker that already
//! holds `HANDOFF_SLACK` connections more than the least loaded one passes each new
//! connection to it (see `place`). The worker that takes a connection in owns it (and its
//! upstream connection) until it closes. Timeouts live in a per-worker heap with at most a
//! couple of entries per connection: see `arm`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::conn::{token, Ctx, Meter, Side, Verdict};
use super::head::Rewriter;
use super::http::HttpConn;
use super::routes::{RouteCache, RouteTable};
use super::tunnel::Tunnel;
use super::upstream::{self, Pool};
use super::{Protocol, RouterConfig, Telemetry};

const LISTENER: u64 = u64::MAX;
const WAKE: u64 = u64::MAX - 1;
const HANDOFF: u64 = u64::MAX - 2;
/// How many connections more than the least loaded worker a worker holds before it passes
/// new ones on: enough that the connections of a steady stream of short requests, whose
/// counts jitter by a few, are seldom moved, few enough that a burst of long-lived
/// keep-alive connections ends up spread within a handful.
pub(crate) const HANDOFF_SLACK: usize = 4;
/// Accepting a few connections per wake-up, rather than draining the backlog, leaves the
/// rest to the other workers that `EPOLLEXCLUSIVE` wakes: it spreads connect storms.
const ACCEPT_BATCH: usize = 8;
const SCRATCH: usize = 64 * 1024;
const ACCEPT_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

fn is_resource_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// `accept4` with `SOCK_NONBLOCK`: std's `accept` leaves the socket blocking, and making it
/// nonblocking afterwards costs an `ioctl`, one system call in ten of a request that comes on
/// its own connection.
fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, IpAddr)> {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage` (plain integers and arrays).
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` and `len` describe a writable buffer of the size announced, which is
    // large enough for any address family.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::addr_of_mut!(addr).cast::<libc::sockaddr>(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `accept4` just returned this descriptor, which nothing else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let ip = match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a `sockaddr_in` for this family; storage is aligned
            // for every sockaddr type.
            let v4 = unsafe { &*std::ptr::addr_of!(addr).cast::<libc::sockaddr_in>() };
            IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for `sockaddr_in6`.
            let v6 = unsafe { &*std::ptr::addr_of!(addr).cast::<libc::sockaddr_in6>() };
            IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr))
        }
        // A TCP listener only accepts IPv4 and IPv6 peers; stay total all the same.
        _ => stream.peer_addr()?.ip(),
    };
    Ok((stream, ip))
}

/// What the router's workers share.
pub(crate) struct Shared {
    pub(crate) table: Arc<RouteTable>,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) config: RouterConfig,
    pub(crate) protocol: Protocol,
    pub(crate) listener: TcpListener,
    /// Rendered once for the `X-Forwarded-Port` of every request.
    pub(crate) router_port: String,
    pub(crate) stop: AtomicBool,
    /// Readable once shutdown begins; watched level-triggered by every worker.
    pub(crate) wake: EventFd,
    /// One per worker, by index.
    pub(crate) seats: Vec<Seat>,
}

/// What the other workers need to pass a connection to one worker.
pub(crate) struct Seat {
    /// Client connections this worker holds, counting those passed to it and not yet taken
    /// in: what `place` balances.
    open: AtomicUsize,
    sender: Sender<(TcpStream, IpAddr)>,
    receiver: Receiver<(TcpStream, IpAddr)>,
    /// Readable while connections wait in the channel.
    bell: EventFd,
}

impl Seat {
    pub(crate) fn new() -> io::Result<Seat> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        Ok(Seat {
            open: AtomicUsize::new(0),
            sender,
            receiver,
            bell: EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
        })
    }
}

// Nearly every connection is `Http`: boxing it to shrink the rarer `Tunnel` case would cost
// an allocation per connection for nothing.
#[allow(clippy::large_enum_variant)]
enum Conn {
    Http(HttpConn),
    Tunnel(Tunnel),
}

struct Entry {
    conn: Conn,
    /// Tells a reused slot's timers apart from those of the connection that held it before.
    serial: u64,
    /// The earliest deadline this connection has in the heap.
    armed: Option<Instant>,
}

impl Conn {
    fn deadline(&self, config: &RouterConfig) -> Option<Instant> {
        match self {
            Conn::Http(http) => http.deadline(config),
            Conn::Tunnel(tunnel) => tunnel.deadline(config),
        }
    }
}

/// Everything of a worker but its connections, so a connection can borrow it while the
/// worker holds the connection.
struct Env {
    shared: Arc<Shared>,
    epoll: Epoll,
    routes: RouteCache,
    pool: Pool,
    rewriter: Rewriter,
    meter: Meter,
    scratch: Box<[u8]>,
}

impl Env {
    fn ctx(&mut self, slot: usize, now: Instant, event: Option<(Side, EpollFlags)>) -> Ctx<'_> {
        let on = |wanted: Side| event.and_then(|(side, f)| (side == wanted).then_some(f));
        Ctx {
            epoll: &self.epoll,
            slot,
            routes: &mut self.routes,
            pool: &mut self.pool,
            rewriter: &mut self.rewriter,
            scratch: &mut self.scratch,
            config: &self.shared.config,
            meter: &self.meter,
            now,
            client_event: on(Side::Client),
            upstream_event: on(Side::Upstream),
        }
    }
}

pub(crate) struct Worker {
    index: usize,
    env: Env,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    serial: u64,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Set while the listener is out of this worker's epoll after EMFILE and the like.
    accept_paused: Option<Instant>,
}

impl Worker {
    pub(crate) fn new(index: usize, shared: Arc<Shared>) -> io::Result<Worker> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(
            &shared.listener,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, LISTENER),
        )?;
        epoll.add(&shared.wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        epoll.add(
            &shared.seats[index].bell,
            EpollEvent::new(EpollFlags::EPOLLIN, HANDOFF),
        )?;
        Ok(Worker {
            index,
            env: Env {
                routes: RouteCache::new(shared.table.clone()),
                pool: Pool::default(),
                rewriter: Rewriter::new(index, &shared.router_port),
                meter: Meter::new(index, shared.telemetry.clone()),
                shared,
                epoll,
                scratch: vec![0; SCRATCH].into_boxed_slice(),
            },
            slots: Vec::new(),
            free: Vec::new(),
            serial: 0,
            timers: BinaryHeap::new(),
            accept_paused: None,
        })
    }

    /// Runs until shutdown; returning drops (closes) every connection of this worker.
    pub(crate) fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            let timeout = self.next_timeout();
            let n = match self.env.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                // Only a bad epoll fd fails here, which would be a bug; stop rather than spin.
                Err(_) => return,
            };
            let now = Instant::now();
            for event in &events[..n] {
                match event.data() {
                    WAKE => {
                        if self.env.shared.stop.load(Ordering::Acquire) {
                            return;
                        }
                    }
                    LISTENER => self.accept(now),
                    HANDOFF => self.take_handed(now),
                    token => {
                        let slot = (token >> 1) as usize;
                        let side = if token & 1 == 1 {
                            Side::Upstream
                        } else {
                            Side::Client
                        };
                        self.drive(slot, now, Some((side, event.events())));
                    }
                }
            }
            if !self.timers.is_empty() {
                self.expire(Instant::now());
            }
            if self.accept_paused.is_some_and(|until| until <= Instant::now()) {
                self.resume_accepting();
            }
        }
    }

    fn next_timeout(&self) -> EpollTimeout {
        let next = self.timers.peek().map(|Reverse((deadline, _, _))| *deadline);
        let Some(deadline) = next.into_iter().chain(self.accept_paused).min() else {
            return EpollTimeout::NONE;
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        // Round up: waking a millisecond early would just spin until the deadline.
        let ms = wait.as_nanos().div_ceil(1_000_000).min(60_000) as u16;
        EpollTimeout::from(ms)
    }

    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            let (stream, ip) = match accept_nonblocking(&self.env.shared.listener) {
                Ok(accepted) => accepted,
                Err(e) if is_resource_shortage(&e) => {
                    // Out of descriptors or memory: the connection stays in the backlog and
                    // the level-triggered listener would wake us again at once, spinning a
                    // core. Stop watching it for a moment; connections closing meanwhile
                    // free what the next accept needs.
                    if self.env.epoll.delete(&self.env.shared.listener).is_ok() {
                        self.accept_paused = Some(now + ACCEPT_PAUSE);
                    }
                    return;
                }
                // WouldBlock: another worker took it; other errors concern that connection
                // only (it was reset while queued, for instance).
                Err(_) => return,
            };
            // TCP_NODELAY is inherited from the listener (set in `Router::start`).
            self.place(stream, ip, now);
        }
    }

    /// Keeps a connection just accepted, or passes it to the least loaded worker when this
    /// one holds `HANDOFF_SLACK` more. Counting it at once, before the other worker takes
    /// it in, keeps a burst from all going the same way.
    fn place(&mut self, stream: TcpStream, ip: IpAddr, now: Instant) {
        let seats = &self.env.shared.seats;
        let load = |i: usize| seats[i].open.load(Ordering::Relaxed);
        let mine = load(self.index);
        let least = (0..seats.len())
            .filter(|&i| i != self.index)
            .map(|i| (load(i), i))
            .min();
        if let Some((_, other)) = least.filter(|&(theirs, _)| mine >= theirs + HANDOFF_SLACK) {
            let seat = &seats[other];
            seat.open.fetch_add(1, Ordering::Relaxed);
            // The receiver lives as long as `shared`. A worker that has stopped never takes
            // the connection in; it is closed with the channel, as shutdown closes the rest.
            let _ = seat.sender.send((stream, ip));
            let _ = seat.bell.write(1);
            return;
        }
        seats[self.index].open.fetch_add(1, Ordering::Relaxed);
        self.insert(stream, ip, now);
    }

    /// Takes in the connections other workers passed to this one.
    fn take_handed(&mut self, now: Instant) {
        let shared = self.env.shared.clone();
        let seat = &shared.seats[self.index];
        // Reset the bell before draining: a connection sent after the drain rings it again.
        let _ = seat.bell.read();
        for (stream, ip) in seat.receiver.try_iter() {
            self.insert(stream, ip, now);
        }
    }

    /// Frees a slot whose connection is gone (or never got in).
    fn vacate(&mut self, slot: usize) {
        self.free.push(slot);
        self.env.shared.seats[self.index]
            .open
            .fetch_sub(1, Ordering::Relaxed);
    }

    fn resume_accepting(&mut self) {
        let event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, LISTENER);
        if self.env.epoll.add(&self.env.shared.listener, event).is_ok() {
            self.accept_paused = None;
        } else {
            self.accept_paused = Some(Instant::now() + ACCEPT_PAUSE);
        }
    }

    fn insert(&mut self, stream: TcpStream, ip: IpAddr, now: Instant) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let event = EpollEvent::new(upstream::interest(), token(slot, Side::Client));
        if self.env.epoll.add(&stream, event).is_err() {
            self.vacate(slot);
            return;
        }
        let conn = match self.env.shared.protocol {
            Protocol::Http => Conn::Http(HttpConn::new(stream, ip, now)),
            Protocol::Tcp => match Tunnel::dial(stream, &mut self.env.ctx(slot, now, None)) {
                Some(tunnel) => Conn::Tunnel(tunnel),
                // Not deployed, or nothing accepts: the platform's TCP gateway closes.
                None => {
                    self.vacate(slot);
                    return;
                }
            },
        };
        self.serial += 1;
        self.slots[slot] = Some(Entry {
            conn,
            serial: self.serial,
            armed: None,
        });
        self.drive(slot, now, None);
    }

    fn drive(&mut self, slot: usize, now: Instant, event: Option<(Side, EpollFlags)>) {
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            // A stale event for a connection closed earlier in this batch.
            return;
        };
        let mut ctx = self.env.ctx(slot, now, event);
        let verdict = match &mut entry.conn {
            Conn::Http(http) => http.drive(&mut ctx),
            Conn::Tunnel(tunnel) => tunnel.drive(&mut ctx),
        };
        self.settle(slot, verdict, now);
    }

    /// Applies what a connection decided: keep it (and re-arm its timer), close it, or turn
    /// it into a tunnel.
    fn settle(&mut self, slot: usize, verdict: Verdict, now: Instant) {
        match verdict {
            Verdict::Keep => self.arm(slot),
            Verdict::Close => self.remove(slot, now),
            Verdict::Upgrade => {
                let Some(entry) = self.slots.get_mut(slot).and_then(Option::take) else {
                    return;
                };
                let tunnel = match entry.conn {
                    Conn::Http(http) => http.into_tunnel(),
                    Conn::Tunnel(tunnel) => Some(tunnel),
                };
                let Some(tunnel) = tunnel else {
                    self.vacate(slot);
                    return;
                };
                self.slots[slot] = Some(Entry {
                    conn: Conn::Tunnel(tunnel),
                    ..entry
                });
                // A tunnel never upgrades again, so this recursion is one level deep.
                self.drive(slot, now, None);
            }
        }
    }

    fn remove(&mut self, slot: usize, now: Instant) {
        // Dropping the sockets closes them, which also removes them from epoll.
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.vacate(slot);
        if let Conn::Http(http) = entry.conn {
            if let Some(up) = http.into_idle_upstream() {
                self.env.pool.put(up, now);
            }
        }
    }

    /// Makes sure the heap holds an entry no later than the connection's deadline. Deadlines
    /// mostly move later (each request pushes the idle deadline), so an entry is pushed only
    /// when the deadline moves earlier; a later one is re-armed when the early entry fires.
    fn arm(&mut self, slot: usize) {
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(deadline) = entry.conn.deadline(&self.env.shared.config) else {
            return;
        };
        if entry.armed.is_some_and(|armed| armed <= deadline) {
            return;
        }
        entry.armed = Some(deadline);
        self.timers.push(Reverse((deadline, slot, entry.serial)));
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((at, slot, serial))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if entry.serial != serial || entry.armed != Some(at) {
                continue;
            }
            entry.armed = None;
            match entry.conn.deadline(&self.env.shared.config) {
                Some(deadline) if deadline <= now => {
                    let mut ctx = self.env.ctx(slot, now, None);
                    let verdict = match &mut entry.conn {
                        Conn::Http(http) => http.on_deadline(&mut ctx),
                        Conn::Tunnel(tunnel) => tunnel.on_deadline(&mut ctx),
                    };
                    self.settle(slot, verdict, now);
                }
                _ => self.arm(slot),
            }
        }
    }
}
