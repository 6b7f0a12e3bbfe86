//! # Lab 8 — a connection pool: sizing, recycling and eviction
//!
//! A load balancer that opens a backend connection for every request pays a
//! TCP handshake each time. A pool keeps the connections between requests
//! and hands them out again. Write a small one, with the rules every real
//! pool has (nginx's `keepalive`, HAProxy's `http-reuse`, Pingora's pool):
//! how many connections to keep, how long, how many requests one connection
//! may carry, and what to close when a backend goes down.
//!
//! The connections are of any type `C` (the tests use numbers, and objects
//! that record when they are dropped): *dropping a connection closes it*,
//! so a connection the pool lets go of is simply dropped. Backends are
//! numbered (`usize`). Time is never read from the clock: every method
//! that needs it takes `now`, so the tests are exact.
//!
//! - **Checkout, LIFO.** Each backend has a stack of idle connections.
//!   [`MiniPool::checkout`] takes the one checked in *last*: it is the
//!   warmest (its congestion window is open, the backend's worker for it is
//!   still in cache), and the ones at the bottom are left to age out.
//!   It returns the connection with the number of requests it has carried,
//!   so the caller can add the one it is about to send.
//! - **Expiry.** A connection checked in at `t` expires at `t + idle_ttl`:
//!   at `now >= t + idle_ttl` it must not be handed out (the backend may
//!   have closed it by then). `checkout` drops every expired connection it
//!   finds on top of the stack, counting each in [`MiniStats::expired`],
//!   and returns the first one that is not expired. Finding none at all is a
//!   miss ([`MiniStats::misses`]); returning one is a hit ([`MiniStats::hits`]).
//! - **Check-in.** [`MiniPool::checkin`] is given a connection that has
//!   just finished a request, with `served`, the requests it has carried in
//!   all (the one just finished included). It decides, in this order:
//!   1. `max_requests > 0` and `served >= max_requests`: the connection is
//!      retired (dropped), [`Checkin::ClosedMaxRequests`], counted in
//!      [`MiniStats::retired`]. `max_requests == 0` means no limit.
//!   2. `max_idle_per_backend == 0`: the pool keeps nothing, the connection
//!      is dropped, [`Checkin::ClosedNoRoom`], counted in [`MiniStats::full`].
//!   3. The backend already holds `max_idle_per_backend` idle connections:
//!      its *oldest* (the bottom of the stack) is dropped to make room, the
//!      new one is kept, [`Checkin::KeptClosedOldest`], counted in
//!      [`MiniStats::full`].
//!   4. Otherwise it is kept: [`Checkin::Kept`].
//!
//!   The limit is per backend: a busy backend never takes the room of a
//!   quiet one.
//! - **Health.** [`MiniPool::mark_down`] is called when a backend is marked
//!   down: every idle connection to it is dropped (counted in
//!   [`MiniStats::down`]) and their number returned. The pool does not
//!   remember the backend as down; checking in to it afterwards works as
//!   before (deciding health is the balancer's job, not the pool's).
//! - [`MiniPool::idle`] says how many idle connections a backend has, and
//!   [`MiniPool::stats`] returns the counters.
//!
//! Hint: a `HashMap<usize, VecDeque<...>>` of idle connections, each kept
//! with its `served` count and the instant it was checked in. `push_back`
//! and `pop_back` make the stack; `pop_front` is the oldest.
//!
//! When your pool passes, read the chapter's own, `crate::pool::Pool`
//! (`src/pool/mod.rs`): the same rules, plus a cap across all backends
//! (least recently used first), a liveness check at checkout (`MSG_PEEK`),
//! the backend's own `Keep-Alive: timeout=N` promise, and counters another
//! thread can read. The last test runs your pool and that one side by side
//! on the same random sequence and expects the same choices.
//!
//! Run it: `cargo test -p ch06-pooling --no-default-features lab_8`.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

// ANCHOR: api
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

/// Idle connections to numbered backends.
#[derive(Debug)]
pub struct MiniPool<C> {
    // TODO: your fields. (The PhantomData only lets this stub compile
    // without them; remove it when you add a field that holds `C`.)
    _conns: PhantomData<C>,
}

impl<C> MiniPool<C> {
    /// An empty pool that keeps at most `max_idle_per_backend` idle
    /// connections per backend, each for less than `idle_ttl`, and retires a
    /// connection after `max_requests` requests (0: never).
    pub fn new(max_idle_per_backend: usize, idle_ttl: Duration, max_requests: u32) -> Self {
        let _ = (max_idle_per_backend, idle_ttl, max_requests);
        todo!("lab 8: create the pool")
    }

    /// The idle connection to `backend` checked in last that has not
    /// expired at `now`, with the requests it has carried; expired ones met
    /// on the way are closed.
    pub fn checkout(&mut self, backend: usize, now: Instant) -> Option<(C, u32)> {
        let _ = (backend, now);
        todo!("lab 8: take the warmest live connection")
    }

    /// `conn` finished a request at `now`, its `served`-th in all: keep it
    /// or close it.
    pub fn checkin(&mut self, backend: usize, conn: C, served: u32, now: Instant) -> Checkin {
        let _ = (backend, conn, served, now);
        todo!("lab 8: keep it, or close it (or the oldest)")
    }

    /// `backend` was marked down: closes its idle connections; returns how many.
    pub fn mark_down(&mut self, backend: usize) -> usize {
        let _ = backend;
        todo!("lab 8: close a backend's idle connections")
    }

    /// Idle connections kept for `backend` now.
    pub fn idle(&self, backend: usize) -> usize {
        let _ = backend;
        todo!("lab 8: count idle connections")
    }

    /// The counters.
    pub fn stats(&self) -> MiniStats {
        todo!("lab 8: the counters")
    }
}
// ANCHOR_END: api
