//! Which container a request's connection goes to. `dial` walks the current upstream
//! list round-robin and gives up only after each upstream of the list in force has refused
//! once; when the list changes under it (a switch), it starts counting again on the new
//! list, because that is the list every new request must reach. A connection is taken from
//! the worker's pool when one is idle there, else opened, and registered in the worker's
//! epoll. It reads the worker's parts through [`Ctx`] and keeps no state of its own.

use nix::sys::epoll::EpollEvent;

use super::conn::Ctx;
use super::upstream::{interest, open, Upstream};

pub(crate) enum Dial {
    Open(Upstream),
    /// No `switch` yet.
    NotDeployed,
    /// Switched to an empty list.
    NoUpstreams,
    /// Every upstream of the current list refused.
    Refused {
        tried: usize,
    },
}

/// Which upstreams one request has already tried, within one routes generation.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Attempts {
    generation: u64,
    count: usize,
}

pub(crate) fn dial(ctx: &mut Ctx, attempts: &mut Attempts) -> Dial {
    loop {
        let routes = ctx.routes.current();
        let Some(list) = &routes.upstreams else {
            return Dial::NotDeployed;
        };
        if list.is_empty() {
            return Dial::NoUpstreams;
        }
        if attempts.generation != routes.generation {
            *attempts = Attempts {
                generation: routes.generation,
                count: 0,
            };
        }
        if attempts.count >= list.len() {
            return Dial::Refused {
                tried: attempts.count,
            };
        }
        attempts.count += 1;
        let generation = routes.generation;
        let Some(addr) = routes.next_upstream() else {
            return Dial::NoUpstreams;
        };
        let mut event = EpollEvent::new(interest(), ctx.upstream_token());
        if let Some(up) = ctx.pool.take(generation, addr, ctx.now) {
            // The pooled socket is still registered under its previous client's slot.
            if ctx.epoll.modify(&up.stream, &mut event).is_ok() {
                return Dial::Open(up);
            }
        }
        let Ok((stream, connected)) = open(addr) else {
            continue;
        };
        if ctx.epoll.add(&stream, event).is_err() {
            continue;
        }
        return Dial::Open(Upstream {
            stream,
            addr,
            generation,
            connected,
            started: ctx.now,
        });
    }
}
