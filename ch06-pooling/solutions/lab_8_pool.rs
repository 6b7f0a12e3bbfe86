//! # Lab 8 — a connection pool: sizing, recycling and eviction (reference solution)
//!
//! The task is in `src/labs/lab_8_pool.rs`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What [`MiniPool::checkin`] did with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkin {
    /// It is idle in the pool now.
    Kept,
    /// It is idle in the pool now; the backend was full, so its oldest idle
    /// connection was closed to make room.
    KeptClosedOldest,
    /// It was closed: it has carried `max_requests` requests.
    ClosedMaxRequests,
    /// It was closed: the pool keeps no idle connection (`max_idle_per_backend` is 0).
    ClosedNoRoom,
}

/// The pool's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MiniStats {
    /// Checkouts that returned a connection.
    pub hits: u64,
    /// Checkouts that found none.
    pub misses: u64,
    /// Connections closed at checkout because they were idle for `idle_ttl` or longer.
    pub expired: u64,
    /// Connections closed for lack of room.
    pub full: u64,
    /// Connections closed at check-in because they carried `max_requests` requests.
    pub retired: u64,
    /// Connections closed because their backend was marked down.
    pub down: u64,
}

/// One idle connection and what the pool knows about it.
#[derive(Debug)]
struct Idle<C> {
    conn: C,
    served: u32,
    since: Instant,
}

/// Idle connections to numbered backends.
#[derive(Debug)]
pub struct MiniPool<C> {
    max_idle: usize,
    idle_ttl: Duration,
    max_requests: u32,
    /// Per backend, its idle connections, oldest at the front: the back is
    /// the top of the stack.
    idle: HashMap<usize, VecDeque<Idle<C>>>,
    stats: MiniStats,
}

impl<C> MiniPool<C> {
    /// An empty pool that keeps at most `max_idle_per_backend` idle
    /// connections per backend, each for less than `idle_ttl`, and retires a
    /// connection after `max_requests` requests (0: never).
    pub fn new(max_idle_per_backend: usize, idle_ttl: Duration, max_requests: u32) -> Self {
        Self {
            max_idle: max_idle_per_backend,
            idle_ttl,
            max_requests,
            idle: HashMap::new(),
            stats: MiniStats::default(),
        }
    }

    /// The idle connection to `backend` checked in last that has not
    /// expired at `now`, with the requests it has carried; expired ones met
    /// on the way are closed.
    pub fn checkout(&mut self, backend: usize, now: Instant) -> Option<(C, u32)> {
        if let Some(stack) = self.idle.get_mut(&backend) {
            while let Some(top) = stack.pop_back() {
                if now.saturating_duration_since(top.since) >= self.idle_ttl {
                    // `top` goes out of scope here: the connection is closed.
                    self.stats.expired += 1;
                    continue;
                }
                self.stats.hits += 1;
                return Some((top.conn, top.served));
            }
        }
        self.stats.misses += 1;
        None
    }

    /// `conn` finished a request at `now`, its `served`-th in all: keep it
    /// or close it.
    pub fn checkin(&mut self, backend: usize, conn: C, served: u32, now: Instant) -> Checkin {
        // Returning early drops `conn`: that is closing it.
        if self.max_requests > 0 && served >= self.max_requests {
            self.stats.retired += 1;
            return Checkin::ClosedMaxRequests;
        }
        if self.max_idle == 0 {
            self.stats.full += 1;
            return Checkin::ClosedNoRoom;
        }
        let stack = self.idle.entry(backend).or_default();
        let mut outcome = Checkin::Kept;
        while stack.len() >= self.max_idle {
            let _oldest = stack.pop_front();
            self.stats.full += 1;
            outcome = Checkin::KeptClosedOldest;
        }
        stack.push_back(Idle { conn, served, since: now });
        outcome
    }

    /// `backend` was marked down: closes its idle connections; returns how many.
    pub fn mark_down(&mut self, backend: usize) -> usize {
        let closed = self.idle.remove(&backend).map_or(0, |stack| stack.len());
        self.stats.down += closed as u64;
        closed
    }

    /// Idle connections kept for `backend` now.
    pub fn idle(&self, backend: usize) -> usize {
        self.idle.get(&backend).map_or(0, VecDeque::len)
    }

    /// The counters.
    pub fn stats(&self) -> MiniStats {
        self.stats
    }
}
