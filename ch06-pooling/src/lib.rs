//! # Chapter 6 — connection pooling
//!
//! Chapter 5's loop opens a connection to a backend for every request: a
//! TCP handshake each time, and a closed socket left behind. This chapter
//! keeps backend connections open between requests and reuses them, as
//! nginx's `keepalive`, HAProxy's `http-reuse` and Pingora's pool do, and
//! deals with what makes that hard: a kept connection can die while
//! nobody is looking.
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | the pool: per-backend LIFO stacks, a global LRU cap, expiry, eviction reasons | [`pool`] |
//! | a liveness check that consumes nothing (`MSG_PEEK`) | `pool/tcp.rs` |
//! | the pool's counters: hit rate, in use, evictions by reason | `pool/stats.rs` |
//! | when a backend connection may carry another request (`Connection`, `Keep-Alive`) | `ch05_event_loop::lb::reuse` |
//! | the loop's side: checkout, release, idle sockets watched, the stale retry | `ch05_event_loop::lb::conn` (`keep.rs`, `failover.rs`) |
//! | `pooled_lb`'s flags | [`cli`] |
//! | labs: Lab 7 a request parser by hand (graded against chapter 2's), Lab 8 a small pool of your own | [`labs`] |
#![deny(missing_docs)]

#[cfg(unix)]
pub mod cli;
pub mod labs;
#[cfg(unix)]
pub mod pool;
