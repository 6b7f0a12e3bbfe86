//! # Lab 7.3 — an HTTP health check with expectations
//!
//! A TCP connect proves a process is listening, not that it works. Ask it:
//! `GET /health` and check both the status and the body.
//!
//! - [`http_check`] connects to `addr` within `timeout`, sends
//!   `GET <path> HTTP/1.1` with a `Host` header and `Connection: close`,
//!   reads the whole response until the server closes (every read bounded
//!   by `timeout`, and never more than 64 KiB kept), and checks it:
//!   - no connection: [`CheckFailure::Connect`] (with the reason);
//!   - connect or read timed out: [`CheckFailure::Timeout`];
//!   - not `HTTP/1.x NNN ...` at the start, or no end of head, or the
//!     connection broke while sending or reading (a reset):
//!     [`CheckFailure::BadResponse`];
//!   - a status other than `expect.status`: [`CheckFailure::Status`];
//!   - `expect.body_contains` set and not found in the body (after the
//!     blank line): [`CheckFailure::Body`].
//!
//! Run it: `cargo test -p ch04-advanced --no-default-features lab_7_3`.

use std::net::SocketAddr;
use std::time::Duration;

use super::{CheckFailure, Expectation};

/// Checks `GET path` on `addr` against `expect`.
pub fn http_check(addr: SocketAddr, path: &str, expect: &Expectation, timeout: Duration) -> Result<(), CheckFailure> {
    // TODO: connect_timeout, set timeouts, send, read to end (bounded), parse, compare.
    let _ = (addr, path, expect, timeout);
    todo!("lab 7.3: an HTTP health check")
}
