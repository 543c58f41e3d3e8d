//! The router: shipway's own reverse proxy in front of an app's web (or tcp) containers.
//!
//! It owns the listening socket of one app, a small fixed pool of worker threads and the
//! upstream list. The supervisor, the one writer of every router's list (see
//! `platform::routing`), hands it a new list with `switch` once the new containers accept
//! connections; from the moment `switch` returns, every new request goes to the new list,
//! and no request in flight or kept-alive client connection is lost (PLATFORM.md §4 step 4,
//! §5). It does not start, probe or stop containers: that is the rollout's job.
//!
//! How it is built, and why:
//! - `worker`: one epoll loop per core over nonblocking sockets, all watching the listener
//!   with `EPOLLEXCLUSIVE`; a worker holding more connections than the others passes new
//!   ones to the least loaded. A connection is a slot in a `Vec`, never a thread, so
//!   thousands of idle keep-alive clients cost about a kilobyte each.
//! - `conn`: what a connection sees of its worker (`Ctx`, `Readiness`) and what it answers
//!   (`Verdict`), so the connection kinds below depend on it, not on the epoll loop.
//! - `routes`: the upstream list is an immutable snapshot swapped whole under a mutex; a
//!   request only loads a generation counter (one atomic load) and compares it with the one
//!   its upstream connection was opened under.
//! - `http` (with `head` and `body`): HTTP/1.1 proxied request by request, so a switch
//!   changes the upstream connection under a kept-alive client, never the client's own.
//!   Bodies are forwarded byte for byte; only heads are rewritten, to add the platform's
//!   `X-Forwarded-*` and `X-Request-*` headers.
//! - `upstream` and `dial`: nonblocking connects, the retry rules (a refused connect, or a
//!   kept-alive connection found closed, never costs the client its request) and a
//!   per-worker pool of idle upstream connections for clients that open a connection per
//!   request.
//! - `tunnel`: raw bytes both ways with half-close, for the `tcp` process type and for
//!   websockets after `101 Switching Protocols`.
//! - `metrics` and `logs`: what the app's Metrics tab and router logs show, counted per
//!   worker as each response ends ([`Telemetry`]), without a lock or a write on the
//!   request's path.

mod body;
mod buf;
mod conn;
mod dial;
mod head;
pub(crate) use head::reason;
mod http;
pub mod logs;
pub mod metrics;
mod routes;
mod tunnel;
mod upstream;
mod worker;

#[cfg(test)]
mod tests;

/// For `fuzz/` only: checks what the router promises of its rewrite of a request head and
/// of the response that follows it in `data`; panics when a promise is broken.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn check_head_rewrite(data: &[u8]) {
    head::check_rewrite(data);
}

/// For `fuzz/` only: checks that a chunk size of any length made of `data` is read exactly
/// or refused, never wrapped; panics when it is not.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn check_chunk_size(data: &[u8]) {
    body::check_chunk_size(data);
}

/// For `fuzz/` only: a request whose Transfer-Encoding lines are the lines of `data` (its
/// first byte odd: HTTP/1.0) is refused unless it has one, a lone `chunked`, and the rewrite
/// of an accepted one keeps every promise of `check_head_rewrite`; panics otherwise.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn check_transfer_encoding(data: &[u8]) {
    head::check_transfer_encoding(data);
}

/// For `fuzz/` only: checks that a chunked body in `data` ends at the same byte however it is
/// fed and as the rules say; panics when it does not.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn check_chunked_body(data: &[u8]) {
    body::check_chunked(data);
}

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::sys::eventfd::{EfdFlags, EventFd};

use logs::RouterLogs;
use metrics::Metrics;
use routes::RouteTable;
use worker::{Seat, Shared, Worker};

/// What an app's router measures and logs, shared by its workers and read by the platform.
pub struct Telemetry {
    pub metrics: Metrics,
    pub logs: RouterLogs,
}

/// What the router speaks to clients and upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 reverse proxy, for the `web` process type.
    Http,
    /// Raw TCP, for the `tcp` process type (the platform's TCP gateway).
    Tcp,
}

#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// 504 when the app sends no byte of its response within this time after the request
    /// was fully forwarded; 30 s on the platform.
    pub first_byte_timeout: Duration,
    /// A connect that takes longer counts as a refusal: the next upstream is tried.
    pub connect_timeout: Duration,
    /// Worker threads, each an epoll loop; default: one per available core.
    pub workers: usize,
    /// A client connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
}

impl Default for RouterConfig {
    fn default() -> RouterConfig {
        RouterConfig {
            first_byte_timeout: Duration::from_secs(30),
            // Upstreams are local processes: a connect that has not completed within 5 s
            // is a stuck container, better skipped than waited for.
            connect_timeout: Duration::from_secs(5),
            workers: thread::available_parallelism().map_or(2, |n| n.get()),
            // nginx's keepalive_timeout default. Longer than the 60 s idle limit of common
            // client pools and load balancers, so the client is the one that closes an idle
            // connection, and never sends a request just as we close it under its feet.
            idle_timeout: Duration::from_secs(75),
        }
    }
}

pub struct Router {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
}

impl Router {
    /// Serves `listener` until `shutdown`. Until the first `switch` every HTTP request gets
    /// a 404 (and every TCP connection is closed).
    pub fn start(listener: TcpListener, protocol: Protocol, config: RouterConfig) -> io::Result<Router> {
        // Workers share the socket through epoll; a blocking accept would stall a worker
        // that lost the race for a connection.
        listener.set_nonblocking(true)?;
        // Small responses must leave at once, not wait for Nagle's 40 ms. Accepted sockets
        // inherit the option on Linux, which saves a system call per connection.
        nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::TcpNoDelay, &true)?;
        let local_addr = listener.local_addr()?;
        let workers = config.workers.max(1);
        let shared = Arc::new(Shared {
            table: Arc::new(RouteTable::new()),
            telemetry: Arc::new(Telemetry {
                metrics: Metrics::new(workers),
                logs: RouterLogs::default(),
            }),
            config,
            protocol,
            listener,
            router_port: local_addr.port().to_string(),
            stop: AtomicBool::new(false),
            wake: EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
            seats: (0..workers).map(|_| Seat::new()).collect::<io::Result<_>>()?,
        });
        let mut router = Router {
            shared,
            workers: Vec::with_capacity(workers),
            local_addr,
        };
        for index in 0..workers {
            // On failure `router` is dropped, which stops the workers already started.
            let worker = Worker::new(index, router.shared.clone())?;
            let handle = thread::Builder::new()
                .name(format!("router-{index}"))
                .spawn(move || worker.run())?;
            router.workers.push(handle);
        }
        Ok(router)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Atomically replaces the upstream list (round-robin among them). From the instant it
    /// returns, every new request goes to the new list; requests in flight finish on the
    /// upstream they started on. The first call marks the app as deployed.
    pub fn switch(&self, upstreams: Vec<SocketAddr>) {
        self.shared.table.switch(upstreams);
    }

    /// The router's metrics and router logs (an HTTP router's: a TCP one counts nothing).
    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.shared.telemetry.clone()
    }

    pub fn upstreams(&self) -> Vec<SocketAddr> {
        self.shared.table.snapshot().upstreams.clone().unwrap_or_default()
    }

    /// Stops accepting, closes every connection and joins every worker thread.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // The eventfd stays readable, so every worker sees it, even one busy right now.
        let _ = self.shared.wake.write(1);
        for handle in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up; its panic was printed.
            let _ = handle.join();
        }
    }
}
