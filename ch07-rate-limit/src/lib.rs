//! # Chapter 7 — rate limiting
//!
//! A load balancer spreads load; it does not reduce it. This chapter adds
//! the balancer's way of saying "not so fast": it refuses (or delays) what
//! a client sends beyond its allowance, cheaply, before any backend sees
//! it, and tells the client when to come back.
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | time as a number; a clock tests can move | [`clock`] |
//! | a rate and a burst, as operators write them | [`quota`] |
//! | token bucket, GCRA, nginx's leaky bucket, sliding window, sliding log, behind one trait | [`algorithm`] |
//! | generated traffic, and each algorithm's error against the exact log | [`algorithm::trace`] |
//! | one state per client in memory fixed in advance; eviction that never loosens a limit | [`keyed`] |
//! | `rate_limited_lb`'s limiter: keys, global and per-route limits, 429, delay, dry run | [`limiter`] |
//! | the 429 response, `Retry-After` and the IETF `RateLimit` headers | `limiter/response.rs` |
//! | a log that says what was limited without flooding | `limiter/log.rs` |
//! | `rate_limited_lb`'s flags | [`cli`] |
//! | labs: Lab 5 a token bucket answering 429, 8.2 per-IP limiting with bounded memory | [`labs`] |
#![deny(missing_docs)]

pub mod algorithm;
#[cfg(unix)]
pub mod cli;
pub mod clock;
pub mod keyed;
pub mod labs;
#[cfg(unix)]
pub mod limiter;
pub mod quota;
