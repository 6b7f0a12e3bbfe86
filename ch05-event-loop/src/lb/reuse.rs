//! Where backend connections come from, and where they go when an
//! exchange ends.
//!
//! `high_perf_lb` opens a connection to a backend for every request and
//! closes it after the response: simple, and every request pays a TCP
//! handshake (and leaves a closed socket behind). A balancer that *reuses*
//! backend connections needs three things from the loop, and this module
//! is the loop's half of them:
//!
//! 1. the request goes up as persistent HTTP/1.1 (no `Connection: close`),
//! 2. when the response ends, the loop decides whether the connection can
//!    carry another request ([`persistence`]: the backend's `Connection`
//!    and `Keep-Alive` headers, the framing, how the exchange ended), and
//! 3. something keeps the connections between requests: a [`Reuse`].
//!
//! The loop keeps an idle connection *registered* for readability under
//! its own token, so a backend that closes it (FIN or RST) or sends
//! anything while it is idle is noticed at once and the connection thrown
//! away, never handed to a request. Chapter 6's pool implements [`Reuse`];
//! with none, the loop behaves exactly as chapter 5 teaches.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::fmt;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ch02_proxy::http::{Framing, ResponseHead, Version};

// ANCHOR: kept
/// A backend socket as the loop knows it: the connected, non-blocking
/// stream, registered with the loop's poller under `slot` for its whole
/// life.
#[derive(Debug)]
pub struct Socket {
    /// The stream.
    pub stream: TcpStream,
    /// The loop's name for it (opaque to a [`Reuse`]).
    pub slot: usize,
}

/// A backend connection between requests, and what is known about it.
#[derive(Debug)]
pub struct Kept {
    /// The socket.
    pub socket: Socket,
    /// Requests this connection has carried to their end.
    pub served: u32,
    /// What the backend promised in its last response: how much longer
    /// it keeps the connection open, and how many more requests it takes.
    pub promise: Promise,
}

/// What a backend's `Keep-Alive: timeout=N, max=M` header promises
/// (absent: nothing; the pool's own limits apply).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Promise {
    /// The backend closes the connection after this long idle.
    pub timeout: Option<Duration>,
    /// The backend takes this many more requests on the connection.
    pub max: Option<u32>,
}
// ANCHOR_END: kept

// ANCHOR: reuse
/// Keeps backend connections between requests. The loop calls it; every
/// connection it refuses or evicts is handed back through `closed`, so the
/// loop can stop watching the socket before it is closed.
///
/// A kept socket stays registered with the poller, for readability, so
/// the loop hears at once when the backend closes it; the loop then calls
/// [`readable`](Reuse::readable) with the id [`put`](Reuse::put) gave.
pub trait Reuse: fmt::Debug {
    /// A kept connection to backend `node`, checked alive, if there is
    /// one. Dead ones found on the way go to `closed`.
    fn get(&mut self, node: usize, now: Instant, closed: &mut Vec<Socket>) -> Option<Kept>;

    /// A connection the loop opened because nothing was kept (a miss).
    fn opened(&mut self, node: usize);

    /// An exchange on `conn` ended. With `reusable` Ok the pool may keep
    /// it, and returns the id it is kept under (the loop watches its
    /// socket with that id) and when it expires; otherwise (`Err` says
    /// why) it goes to `closed`, as does anything evicted to make room.
    fn put(
        &mut self,
        node: usize,
        conn: Kept,
        reusable: Result<(), &'static str>,
        now: Instant,
        closed: &mut Vec<Socket>,
    ) -> Option<(usize, Instant)>;

    /// Kept connection `id` became readable while idle: the backend closed
    /// it or sent something no request asked for. Check and evict.
    fn readable(&mut self, id: usize, closed: &mut Vec<Socket>);

    /// Evicts what has outstayed its welcome by `now`; returns when next
    /// to call (the earliest expiry), if anything is kept.
    fn expire(&mut self, now: Instant, closed: &mut Vec<Socket>) -> Option<Instant>;

    /// Backend `node` was marked down: close its kept connections.
    fn node_down(&mut self, node: usize, closed: &mut Vec<Socket>);
}
// ANCHOR_END: reuse

// ANCHOR: persistence
/// Whether the backend's connection may carry another request after this
/// response, read from the response head: `Err` says why not.
///
/// HTTP/1.1 connections persist unless a side says `Connection: close`;
/// HTTP/1.0 ones only with `Connection: keep-alive`. A body that ends when
/// the connection closes uses the connection up.
pub fn persistence(head: &ResponseHead) -> Result<Promise, &'static str> {
    let says = |token| head.headers.has_token("connection", token);
    if says("close") {
        return Err("the backend said Connection: close");
    }
    if head.version == Version::Http10 && !says("keep-alive") {
        return Err("an HTTP/1.0 backend without keep-alive");
    }
    if head.framing == Framing::UntilClose {
        return Err("the body ended with the connection");
    }
    let promise = keep_alive_promise(head.headers.get("keep-alive").unwrap_or_default());
    if promise.max == Some(0) {
        return Err("the backend takes no more requests (Keep-Alive max=0)");
    }
    Ok(promise)
}

/// Reads `timeout=N, max=M` (either, both, any order, other parameters
/// ignored). A value that is not a number is ignored, not an error: the
/// header is advice.
pub fn keep_alive_promise(value: &[u8]) -> Promise {
    let mut promise = Promise::default();
    let value = std::str::from_utf8(value).unwrap_or_default();
    for param in value.split(',') {
        let Some((name, number)) = param.split_once('=') else { continue };
        let Ok(n) = number.trim().trim_matches('"').parse::<u32>() else { continue };
        match name.trim().to_ascii_lowercase().as_str() {
            "timeout" => promise.timeout = Some(Duration::from_secs(u64::from(n))),
            "max" => promise.max = Some(n),
            _ => {}
        }
    }
    promise
}
// ANCHOR_END: persistence

#[cfg(test)]
mod tests {
    use super::*;
    use ch02_proxy::http::{Limits, parse_response};

    fn head(raw: &str) -> ResponseHead {
        parse_response(raw.as_bytes(), &Limits::default(), "GET").unwrap().unwrap().0
    }

    #[test]
    fn http11_persists_unless_closed() {
        assert_eq!(persistence(&head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")), Ok(Promise::default()));
        assert!(persistence(&head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")).is_err());
        assert!(persistence(&head("HTTP/1.1 200 OK\r\nConnection: x, Close\r\nContent-Length: 0\r\n\r\n")).is_err());
    }

    #[test]
    fn http10_persists_only_when_asked() {
        assert!(persistence(&head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")).is_err());
        let kept = head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert!(persistence(&kept).is_ok());
    }

    #[test]
    fn a_body_until_close_uses_the_connection_up() {
        assert!(persistence(&head("HTTP/1.1 200 OK\r\n\r\n")).is_err());
    }

    #[test]
    fn keep_alive_parameters_are_read_and_nonsense_ignored() {
        let p = keep_alive_promise(b"timeout=5, max=100");
        assert_eq!(p, Promise { timeout: Some(Duration::from_secs(5)), max: Some(100) });
        assert_eq!(keep_alive_promise(b"MAX=3,timeout=\"2\"").max, Some(3));
        assert_eq!(keep_alive_promise(b"timeout=-1, max=lots, =, ,x").timeout, None);
        assert_eq!(keep_alive_promise(b"timeout=99999999999"), Promise::default());
        let last = head("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=0\r\nContent-Length: 0\r\n\r\n");
        assert!(persistence(&last).is_err());
    }
}
