//! What a connection sees of the worker that holds it: the readiness of its sockets, the
//! worker's borrowed parts while it runs ([`Ctx`]), and what it answers ([`Verdict`]).
//! `http`, `tunnel` and `upstream` use these, and `worker` makes them; keeping them here
//! rather than in `worker.rs` means the connection kinds import nothing of the epoll loop.
//! It holds no state and does no I/O.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use nix::sys::epoll::{Epoll, EpollFlags};

use super::head::Rewriter;
use super::logs::AccessRecord;
use super::routes::RouteCache;
use super::upstream::Pool;
use super::{RouterConfig, Telemetry};

/// Whether a socket may have bytes to read, as last learned from epoll or from a read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    /// The peer's FIN (or an error) has been announced: reads must go on until they see it,
    /// since no further edge will come.
    pub(crate) eof_pending: bool,
    /// Reset or closed both ways.
    pub(crate) hup: bool,
}

impl Default for Readiness {
    fn default() -> Readiness {
        Readiness {
            readable: true,
            eof_pending: false,
            hup: false,
        }
    }
}

impl Readiness {
    pub(crate) fn update(&mut self, event: Option<EpollFlags>) {
        let Some(flags) = event else { return };
        if flags.intersects(
            EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR,
        ) {
            self.readable = true;
        }
        if flags.intersects(EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR) {
            self.eof_pending = true;
        }
        if flags.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR) {
            self.hup = true;
        }
    }
}

/// What a connection needs from its worker while it runs.
pub(crate) struct Ctx<'a> {
    pub(crate) epoll: &'a Epoll,
    pub(crate) slot: usize,
    pub(crate) routes: &'a mut RouteCache,
    pub(crate) pool: &'a mut Pool,
    pub(crate) rewriter: &'a mut Rewriter,
    pub(crate) scratch: &'a mut [u8],
    pub(crate) config: &'a RouterConfig,
    pub(crate) meter: &'a Meter,
    pub(crate) now: Instant,
    pub(crate) client_event: Option<EpollFlags>,
    pub(crate) upstream_event: Option<EpollFlags>,
}

impl Ctx<'_> {
    pub(crate) fn upstream_token(&self) -> u64 {
        token(self.slot, Side::Upstream)
    }
}

/// How one worker counts the responses it relays: into the app's metrics, and, when router
/// logs are on, as records for the log writer.
pub(crate) struct Meter {
    worker: usize,
    telemetry: Arc<Telemetry>,
    /// The wall clock read at the worker's last wake-up, in ms: every response ended in one
    /// wake-up ended at that instant, so the clock is read once for all of them.
    clock: Cell<(Option<Instant>, u64)>,
}

/// One response as the router relayed it.
pub(crate) struct Relayed {
    pub(crate) status: u16,
    /// When the request's head was read.
    pub(crate) received: Instant,
    /// Bytes sent to the client for this response, head included.
    pub(crate) sent: u64,
    /// The container that answered; None when the router answered itself.
    pub(crate) container: Option<SocketAddr>,
}

impl Meter {
    pub(crate) fn new(worker: usize, telemetry: Arc<Telemetry>) -> Meter {
        Meter {
            worker,
            telemetry,
            clock: Cell::new((None, 0)),
        }
    }

    /// Whether router logs are on.
    pub(crate) fn logging(&self) -> bool {
        self.telemetry.logs.enabled()
    }

    /// Counts a response ended `now`. Returns the request's head unless router logs took
    /// it, so the worker can reuse its buffer.
    pub(crate) fn record(&self, relayed: Relayed, head: Vec<u8>, now: Instant) -> Option<Vec<u8>> {
        let ms = match self.clock.get() {
            (Some(at), ms) if at == now => ms,
            _ => {
                let ms = crate::clock::now_ms();
                self.clock.set((Some(now), ms));
                ms
            }
        };
        let micros =
            u64::try_from(now.saturating_duration_since(relayed.received).as_micros()).unwrap_or(u64::MAX);
        self.telemetry
            .metrics
            .record(self.worker, ms / 60_000, relayed.status, micros);
        let logs = &self.telemetry.logs;
        if !logs.enabled() {
            return Some(head);
        }
        logs.send(AccessRecord {
            at_ms: ms,
            head,
            status: relayed.status,
            micros,
            bytes: relayed.sent,
            container: relayed.container,
        });
        None
    }
}

pub(crate) enum Verdict {
    Keep,
    Close,
    /// The HTTP connection switched protocols: it becomes a tunnel.
    Upgrade,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Upstream,
}

pub(crate) fn token(slot: usize, side: Side) -> u64 {
    ((slot as u64) << 1) | u64::from(side == Side::Upstream)
}
