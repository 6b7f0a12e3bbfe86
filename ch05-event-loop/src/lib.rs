//! # Chapter 5 — the event loop
//!
//! Why does one thread per connection stop scaling, and what do nginx and
//! tokio do instead? This crate answers by building it: a readiness
//! `Poller`, timers, and on them a single-threaded, non-blocking load
//! balancer; then the same load balancer on tokio, in a page.
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | readiness: one interface over epoll (Linux), kqueue (BSD, macOS) and poll(2) | [`poller`] |
//! | level- vs edge-triggered, and the drain-until-WouldBlock rule | [`poller`] |
//! | timers for timeouts and periodic work, in the same loop | [`timers`] |
//! | the smallest complete event loop: a one-thread echo server | [`echo`] |
//! | where a body ends, found as its bytes stream past | [`framing`] |
//! | `high_perf_lb`: the loop, accept, shutdown | [`lb`] |
//! | one connection as a state machine; backpressure; non-blocking connect | [`lb::conn`] (a folder: one file per concern) |
//! | health checks without blocking | [`lb::probe`] |
//! | keeping backend connections between requests: the hook chapter 6's pool fills | [`lb::reuse`] |
//! | `high_perf_lb`'s program: flags, signals, start-up, report | [`app`] |
//! | the same load balancer on tokio (`tokio_lb`) | [`twin`] |
//! | labs: 8.1 idle tracking, Lab 4 chat server on the Poller | [`labs`] |
#![deny(missing_docs)]

#[cfg(unix)]
pub mod app;
pub mod cli;
#[cfg(unix)]
pub mod echo;
pub mod framing;
#[cfg(unix)]
pub mod labs;
#[cfg(unix)]
pub mod lb;
#[cfg(unix)]
pub mod poller;
pub mod timers;
pub mod twin;
