//! What a connection sees of the worker that holds it: the readiness of its sockets, the
//! worker's borrowed parts while it runs ([`Ctx`]), and what it answers ([`Verdict`]).
//! `http`, `tunnel` and `upstream` use these, and `worker` makes them; keeping them here
//! rather than in `worker.rs` means the connection kinds import nothing of the epoll loop.
//! It holds no state and does no I/O.

use std::time::Instant;

use nix::sys::epoll::{Epoll, EpollFlags};

use super::head::Rewriter;
use super::routes::RouteCache;
use super::upstream::Pool;
use super::RouterConfig;

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
    pub(crate) now: Instant,
    pub(crate) client_event: Option<EpollFlags>,
    pub(crate) upstream_event: Option<EpollFlags>,
}

impl Ctx<'_> {
    pub(crate) fn upstream_token(&self) -> u64 {
        token(self.slot, Side::Upstream)
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
