//! # Lab 7.4 — warm-up
//!
//! A backend that just started has cold caches, unfilled connection pools
//! and, on a JIT runtime, unoptimised code. Before it takes real traffic,
//! send it a few requests of our own.
//!
//! - [`warm_up`] sends `requests` sequential `GET <path>` requests to
//!   `addr`, each on a new connection with `Connection: close`, each
//!   connect and read bounded by `timeout`, and returns how many it sent.
//! - Every answer must be 2xx. At the first request that cannot be sent or
//!   read, return [`WarmUpError::Io`] with its number (from 1); at the
//!   first non-2xx answer, [`WarmUpError::Status`] with its number and
//!   status. No request is sent after a failure.
//!
//! Run it: `cargo test -p ch04-advanced --no-default-features lab_7_4`.

use std::net::SocketAddr;
use std::time::Duration;

use super::WarmUpError;

/// Sends `requests` warm-up GETs of `path` to `addr`.
pub fn warm_up(addr: SocketAddr, path: &str, requests: u32, timeout: Duration) -> Result<u32, WarmUpError> {
    // TODO: a loop of connect, send, read the status line.
    let _ = (addr, path, requests, timeout);
    todo!("lab 7.4: warm a backend up")
}
