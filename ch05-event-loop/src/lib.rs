//! # Chapter 5 — the event loop (in progress)
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | readiness: one interface over epoll (Linux) and poll(2) (everywhere) | [`poller`] |
//! | level- vs edge-triggered, and the drain-until-WouldBlock rule | [`poller`] |
//! | timers for timeouts and periodic work, in the same loop | [`timers`] |
//! | the smallest complete event loop: a one-thread echo server | `echo` |
//! | labs: 8.1 idle tracking, Lab 4 chat server on the Poller | `labs` |
//!
//! Built so far: the `Poller` and the timers, each tested against real
//! sockets. Still to come in this chapter (see the book's outline): kqueue
//! for macOS and the BSDs, the non-blocking `high_perf_lb`, its tokio twin,
//! the labs and `cargo xtask bench`.
#![deny(missing_docs)]

#[cfg(unix)]
pub mod echo;
#[cfg(unix)]
pub mod labs;
#[cfg(unix)]
pub mod poller;
pub mod timers;
