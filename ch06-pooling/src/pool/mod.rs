//! The connection pool: idle backend connections kept between requests.
//!
//! Per backend, a stack of idle connections: the one put back last is
//! taken first (LIFO), because it is the warmest: its congestion window
//! is open, the backend's worker for it is still in cache, and the ones at
//! the bottom can age out instead of all being kept barely alive. Across
//! backends, a global cap evicts the least recently used. Every kept
//! connection has an expiry: the pool's idle timeout, or earlier when the
//! backend promised less (`Keep-Alive: timeout=N`), so we close it just
//! before the backend would.
//!
//! The pool never hands out a connection it knows to be dead: at checkout
//! it asks the socket ([`Liveness`], a non-blocking `MSG_PEEK`), and the
//! loop watches every idle socket and calls [`Pool::readable`] the moment
//! the backend closes one.
//!
//! The pool is generic over the connection type so the tests can drive it
//! with fakes and an injected clock (every method takes `now`).
// This module handles connections whose liveness comes from network
// bytes: every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

mod stats;
mod tcp;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ch05_event_loop::lb::mailbox::{Mailbox, Reader};
use ch05_event_loop::lb::reuse::Promise;
pub use stats::{Evicted, PoolStats, Snapshot};
pub use tcp::peek_liveness;

// ANCHOR: config
/// How much the pool keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle connections kept per backend (nginx's `keepalive N`).
    pub max_idle: usize,
    /// Idle connections kept across all backends; beyond it the least
    /// recently used is closed.
    pub max_idle_total: usize,
    /// How long a connection may stay idle (nginx's `keepalive_timeout`).
    pub idle_timeout: Duration,
    /// Requests one connection carries before it is retired (nginx's
    /// `keepalive_requests`); 0: no limit.
    pub max_requests: u32,
}

/// The defaults keep enough idle connections for a thousand requests in
/// flight per backend: a pool smaller than the peak number of requests in
/// flight closes connections after every burst and opens them again for
/// the next (the bench shows nginx's `keepalive 64` doing this at 1,000
/// clients). An idle connection costs the balancer a socket and a few
/// dozen bytes; what it costs the backend depends on the backend, which is
/// why the limits are flags.
impl Default for PoolConfig {
    fn default() -> Self {
        Self { max_idle: 1024, max_idle_total: 4096, idle_timeout: Duration::from_secs(60), max_requests: 10_000 }
    }
}
// ANCHOR_END: config

/// What a liveness check of an idle connection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alive {
    /// Nothing to read, no error: it can carry a request.
    Yes,
    /// The backend closed it (FIN) or reset it (RST).
    Closed,
    /// The backend sent bytes nobody asked for (a late error, a 408):
    /// whatever they are, they would be read as the next response.
    Data,
}

/// Connections whose liveness can be checked without blocking.
pub trait Liveness {
    /// Checks, without blocking and without consuming anything.
    fn liveness(&self) -> Alive;
}

/// A connection with what is known about it, going in or out of the pool.
#[derive(Debug)]
pub struct Pooled<C> {
    /// The connection.
    pub conn: C,
    /// Requests it has carried to their end.
    pub served: u32,
    /// What the backend last promised about it.
    pub promise: Promise,
}

// ANCHOR: entry
/// One idle connection in the pool.
#[derive(Debug)]
struct Entry<C> {
    backend: usize,
    kept: Pooled<C>,
    /// When it was put back: the least recently used is the oldest.
    idle_since: Instant,
    /// When it must be closed: the idle timeout, or just before the
    /// backend's promised timeout, whichever is first.
    expires: Instant,
}

/// The pool.
#[derive(Debug)]
pub struct Pool<C> {
    config: PoolConfig,
    /// Every idle connection, by id; a freed id is reused.
    entries: Vec<Option<Entry<C>>>,
    free: Vec<usize>,
    /// Per backend, the ids of its idle connections, oldest first: the
    /// top (last) is the warmest.
    stacks: Vec<Vec<usize>>,
    idle: usize,
    stats: Arc<PoolStats>,
    /// New settings posted by a reload (chapter 10), taken by the loop.
    retune: Option<Reader<PoolConfig>>,
    /// The mailbox itself, for [`retuner`](Self::retuner) to hand out.
    mailbox: Option<Arc<Mailbox<PoolConfig>>>,
}
// ANCHOR_END: entry

impl<C: Liveness> Pool<C> {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Self {
            config,
            entries: Vec::new(),
            free: Vec::new(),
            stacks: Vec::new(),
            idle: 0,
            stats: Arc::new(PoolStats::default()),
            retune: None,
            mailbox: None,
        }
    }

    /// Another loop's pool beside `first` (chapter 10's workers): its own
    /// connections, the same settings, counters shared with `first`'s, and
    /// retuned by the same mailbox.
    pub fn beside(first: &mut Self) -> Self {
        let mailbox = first.retuner();
        Self {
            stats: Arc::clone(&first.stats),
            retune: Some(mailbox.reader()),
            mailbox: Some(mailbox),
            ..Self::new(first.config)
        }
    }

    // ANCHOR: retune
    /// Where another thread posts new settings (chapter 10's reload). The
    /// pool takes them the next time the loop calls `get`, `put` or
    /// `expire`: limits lowered close the oldest idle connections at once;
    /// a new idle timeout applies to connections put back from then on
    /// (those already idle keep the deadline they were given).
    pub fn retuner(&mut self) -> Arc<Mailbox<PoolConfig>> {
        let mailbox = Arc::clone(self.mailbox.get_or_insert_with(Mailbox::shared));
        self.retune.get_or_insert_with(|| mailbox.reader());
        mailbox
    }

    /// Applies settings posted to the [`retuner`](Self::retuner), if any.
    fn retuned(&mut self, closed: &mut Vec<C>) {
        let Some(config) = self.retune.as_mut().and_then(Reader::take) else { return };
        self.config = config;
        for backend in 0..self.stacks.len() {
            while self.idle_for(backend) > config.max_idle && self.evict_oldest(backend, closed) {}
        }
        while self.idle > config.max_idle_total && self.evict_lru(closed) {}
    }
    // ANCHOR_END: retune

    /// The settings.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The counters, shared (to print them from the signal thread).
    pub fn shared_stats(&self) -> Arc<PoolStats> {
        Arc::clone(&self.stats)
    }

    /// The counters now.
    pub fn stats(&self) -> Snapshot {
        self.stats.snapshot()
    }

    /// Idle connections kept for `backend` now.
    pub fn idle_for(&self, backend: usize) -> usize {
        self.stacks.get(backend).map_or(0, Vec::len)
    }

    /// The idle connection `id`, to watch its socket.
    pub fn conn(&self, id: usize) -> Option<&C> {
        self.entries.get(id).and_then(Option::as_ref).map(|e| &e.kept.conn)
    }

    // ANCHOR: get
    /// The warmest live connection to `backend`, if one is kept. Expired
    /// and dead ones met on the way are evicted into `closed`.
    pub fn get(&mut self, backend: usize, now: Instant, closed: &mut Vec<C>) -> Option<Pooled<C>> {
        self.retuned(closed);
        loop {
            let id = self.stacks.get_mut(backend)?.pop()?;
            let entry = self.take(id)?;
            if entry.expires <= now {
                self.evicted(entry, Evicted::Ttl, closed);
                continue;
            }
            // The loop would have been told of a close, but the event may
            // still be in its queue: ask the socket itself.
            if entry.kept.conn.liveness() != Alive::Yes {
                self.evicted(entry, Evicted::StaleAtCheckout, closed);
                continue;
            }
            self.stats.checked_out(true);
            return Some(entry.kept);
        }
    }
    // ANCHOR_END: get

    /// A connection to `backend` was opened because none was kept.
    pub fn opened(&mut self, _backend: usize) {
        self.stats.checked_out(false);
    }

    // ANCHOR: put
    /// An exchange on `kept` ended; `reusable` says whether the connection
    /// may carry another request (`Err`: why not). Returns the id it is
    /// kept under and when it expires, or `None` when it went to `closed`.
    pub fn put(
        &mut self,
        backend: usize,
        kept: Pooled<C>,
        reusable: Result<(), &'static str>,
        now: Instant,
        closed: &mut Vec<C>,
    ) -> Option<(usize, Instant)> {
        self.retuned(closed);
        self.stats.returned();
        if reusable.is_err() {
            self.stats.not_reusable();
            closed.push(kept.conn);
            return None;
        }
        if self.config.max_requests > 0 && kept.served >= self.config.max_requests {
            self.stats.evict(Evicted::MaxRequests);
            closed.push(kept.conn);
            return None;
        }
        let expires = expiry(now, self.config.idle_timeout, kept.promise.timeout);
        if expires <= now || self.config.max_idle == 0 || self.config.max_idle_total == 0 {
            // The backend's promise is too short to be worth keeping.
            self.stats.evict(Evicted::Ttl);
            closed.push(kept.conn);
            return None;
        }
        // Room in this backend's stack: its oldest goes first.
        if self.idle_for(backend) >= self.config.max_idle {
            self.evict_oldest(backend, closed);
        }
        // Room across backends: the least recently used anywhere goes.
        if self.idle >= self.config.max_idle_total {
            self.evict_lru(closed);
        }
        let entry = Entry { backend, kept, idle_since: now, expires };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.entries.push(None);
                self.entries.len() - 1
            }
        };
        if let Some(slot) = self.entries.get_mut(id) {
            *slot = Some(entry);
        }
        if self.stacks.len() <= backend {
            self.stacks.resize_with(backend + 1, Vec::new);
        }
        if let Some(stack) = self.stacks.get_mut(backend) {
            stack.push(id);
        }
        self.idle += 1;
        self.stats.idle_changed(1);
        Some((id, expires))
    }
    // ANCHOR_END: put

    // ANCHOR: readable
    /// The loop saw idle connection `id` become readable: the backend
    /// closed it or sent something. Checked, because a readiness report
    /// can be late (the id may already name a newer connection).
    pub fn readable(&mut self, id: usize, closed: &mut Vec<C>) {
        let Some(alive) = self.conn(id).map(Liveness::liveness) else { return };
        let reason = match alive {
            Alive::Yes => return,
            Alive::Closed => Evicted::ClosedByPeer,
            Alive::Data => Evicted::UnexpectedData,
        };
        self.remove(id, reason, closed);
    }
    // ANCHOR_END: readable

    // ANCHOR: evict
    /// Evicts every connection that expired by `now`; returns the next
    /// expiry, if anything is kept.
    pub fn expire(&mut self, now: Instant, closed: &mut Vec<C>) -> Option<Instant> {
        self.retuned(closed);
        let expired: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(id, e)| e.as_ref().filter(|e| e.expires <= now).map(|_| id))
            .collect();
        for id in expired {
            self.remove(id, Evicted::Ttl, closed);
        }
        self.entries.iter().flatten().map(|e| e.expires).min()
    }

    /// `backend` was marked down: its idle connections are closed.
    pub fn close_backend(&mut self, backend: usize, closed: &mut Vec<C>) {
        let ids = self.stacks.get_mut(backend).map(std::mem::take).unwrap_or_default();
        for id in ids {
            if let Some(entry) = self.take(id) {
                self.evicted(entry, Evicted::Unhealthy, closed);
            }
        }
    }

    /// Closes the oldest idle connection of `backend`; false if it had none.
    fn evict_oldest(&mut self, backend: usize, closed: &mut Vec<C>) -> bool {
        let oldest = self.stacks.get_mut(backend).and_then(|s| (!s.is_empty()).then(|| s.remove(0)));
        match oldest.and_then(|id| self.take(id)) {
            Some(entry) => {
                self.evicted(entry, Evicted::Lru, closed);
                true
            }
            None => false,
        }
    }

    /// Closes the least recently used idle connection of any backend;
    /// false if none is kept.
    fn evict_lru(&mut self, closed: &mut Vec<C>) -> bool {
        let oldest = self
            .stacks
            .iter()
            .filter_map(|s| s.first())
            .filter_map(|&id| self.entries.get(id).and_then(Option::as_ref).map(|e| (e.idle_since, id)))
            .min();
        let Some((_, id)) = oldest else { return false };
        let before = self.idle;
        self.remove(id, Evicted::Lru, closed);
        self.idle < before
    }
    // ANCHOR_END: evict

    /// Removes idle connection `id` wherever it is, for `reason`.
    fn remove(&mut self, id: usize, reason: Evicted, closed: &mut Vec<C>) {
        let Some(backend) = self.entries.get(id).and_then(Option::as_ref).map(|e| e.backend) else { return };
        if let Some(stack) = self.stacks.get_mut(backend) {
            stack.retain(|&x| x != id);
        }
        if let Some(entry) = self.take(id) {
            self.evicted(entry, reason, closed);
        }
    }

    /// Takes entry `id` out (its stack already forgot it).
    fn take(&mut self, id: usize) -> Option<Entry<C>> {
        let entry = self.entries.get_mut(id)?.take()?;
        self.free.push(id);
        self.idle -= 1;
        self.stats.idle_changed(-1);
        Some(entry)
    }

    fn evicted(&mut self, entry: Entry<C>, reason: Evicted, closed: &mut Vec<C>) {
        self.stats.evict(reason);
        closed.push(entry.kept.conn);
    }
}

// ANCHOR: expiry
/// When a connection put back at `now` must be closed: after our idle
/// timeout, or before the backend closes it, whichever is first. A server
/// that promises `timeout=N` may close at N seconds sharp; a request sent
/// at that moment would meet a closed connection. So we stop using it a
/// little earlier: a quarter of N, at most one second.
pub fn expiry(now: Instant, idle_timeout: Duration, promised: Option<Duration>) -> Instant {
    let ours = now + idle_timeout;
    match promised {
        Some(t) => {
            let margin = (t / 4).min(Duration::from_secs(1));
            ours.min(now + t.saturating_sub(margin))
        }
        None => ours,
    }
}
// ANCHOR_END: expiry

#[cfg(test)]
mod tests;
