//! # Chapter 3 — the load balancer
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | a backend, its weight, UP/DOWN, live counters; round robin | [`backend`] |
//! | choosing a backend, failover on connect failure, 503 | [`balancer`] |
//! | the statistics report (SIGUSR1, shutdown) | [`stats`] |
//! | signals in a threaded server: block them, `sigwait` in one thread | `signals` (Unix) |
//! | `--demo`, and demo backends when none is given or found (zero setup) | [`demo`] |
//! | the backend flags every balancer shares | [`cli`] |
//! | a seeded random generator (splitmix64) | [`rng`] |
//! | labs: random (4.1) and weighted (4.2) selection | [`labs`] |
//!
//! Binary: `load_balancer`.
#![deny(missing_docs)]

pub mod backend;
pub mod balancer;
pub mod cli;
pub mod demo;
pub mod labs;
pub mod rng;
#[cfg(unix)]
pub mod signals;
pub mod stats;
