//! The one piece of shared mutable state: which upstreams serve the app right now.
//!
//! `switch` builds a new immutable `Routes` snapshot and swaps it in whole under a mutex,
//! then bumps a generation counter. Workers keep their own `Arc` of the snapshot and only
//! look at the counter per request (one atomic load); they take the lock only after a
//! switch. An upstream connection remembers the generation it was opened under, which is how
//! a request knows that its held connection belongs to an older release.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One generation of the upstream list.
#[derive(Debug)]
pub(crate) struct Routes {
    pub(crate) generation: u64,
    /// `None` until the first `switch`: no release deployed yet (404).
    pub(crate) upstreams: Option<Vec<SocketAddr>>,
    next: AtomicUsize,
}

impl Routes {
    /// The next upstream in round-robin order, shared by every worker of the router.
    pub(crate) fn next_upstream(&self) -> Option<SocketAddr> {
        let list = self.upstreams.as_ref()?;
        if list.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(list[i % list.len()])
    }
}

#[derive(Debug)]
pub(crate) struct RouteTable {
    generation: AtomicU64,
    current: Mutex<Arc<Routes>>,
}

impl RouteTable {
    pub(crate) fn new() -> RouteTable {
        RouteTable {
            generation: AtomicU64::new(0),
            current: Mutex::new(Arc::new(Routes {
                generation: 0,
                upstreams: None,
                next: AtomicUsize::new(0),
            })),
        }
    }

    pub(crate) fn switch(&self, upstreams: Vec<SocketAddr>) {
        // A poisoned lock only means a panic elsewhere while holding it; the Arc inside is
        // always whole, so keep serving.
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        // The same list again (a deploy worker switched, then the supervisor follows with
        // the same containers) is no switch: held upstream connections stay valid.
        if current.upstreams.as_ref() == Some(&upstreams) {
            return;
        }
        let generation = current.generation + 1;
        *current = Arc::new(Routes {
            generation,
            upstreams: Some(upstreams),
            next: AtomicUsize::new(0),
        });
        // Published after the snapshot, so a worker that sees the new number finds the new
        // list behind the lock.
        self.generation.store(generation, Ordering::Release);
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn snapshot(&self) -> Arc<Routes> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A worker's view of the table: refreshed only when the generation moved.
pub(crate) struct RouteCache {
    table: Arc<RouteTable>,
    routes: Arc<Routes>,
}

impl RouteCache {
    pub(crate) fn new(table: Arc<RouteTable>) -> RouteCache {
        let routes = table.snapshot();
        RouteCache { table, routes }
    }

    /// The routes in force now; cheap unless a switch just happened.
    pub(crate) fn current(&mut self) -> &Routes {
        if self.table.generation() != self.routes.generation {
            self.routes = self.table.snapshot();
        }
        &self.routes
    }

    pub(crate) fn generation(&self) -> u64 {
        self.table.generation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_list_again_is_no_switch_and_another_is() {
        let table = RouteTable::new();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        table.switch(vec![a]);
        assert_eq!(table.generation(), 1);
        table.switch(vec![a]);
        assert_eq!(table.generation(), 1, "held connections must stay valid");
        table.switch(vec![a, b]);
        assert_eq!(table.generation(), 2);
        assert_eq!(table.snapshot().upstreams, Some(vec![a, b]));
        // An empty list is a switch too (web=0: 503), once.
        table.switch(Vec::new());
        table.switch(Vec::new());
        assert_eq!(table.generation(), 3);
    }
}
