//! The hook that decides whether a request may go on to a backend at all:
//! chapter 7's rate limiter plugs in here.
//!
//! The loop asks once per request, as soon as its head has been parsed and
//! before a backend is picked: a request that is turned away never costs a
//! backend anything, not even a connection. Chapter 5 plugs in nothing,
//! and every request passes.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ch02_proxy::http::RequestHead;

// ANCHOR: admission
/// What the loop knows about a request when it asks.
#[derive(Debug)]
pub struct Arrival<'a> {
    /// The address the connection comes from.
    pub peer: IpAddr,
    /// The client behind our trusted proxies (`--trusted-proxy`): the
    /// peer itself unless the peer is one of them.
    pub client: IpAddr,
    /// The request head, as the client sent it (before we add our
    /// forwarding headers).
    pub head: &'a RequestHead,
}

/// What becomes of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to a backend now.
    Pass,
    /// Go on to a backend after this long (nginx's `limit_req` without
    /// `nodelay`: the request waits its turn instead of being refused).
    Hold(Duration),
    /// Answer it ourselves with this status (429), these headers and this
    /// body; no backend sees it.
    Answer {
        /// The status code.
        status: u16,
        /// Extra header fields (`Retry-After`, `RateLimit`, ...).
        headers: Vec<(&'static str, String)>,
        /// The body, one line of text for a person reading curl's output.
        body: String,
    },
}

/// Decides, per request, whether it may reach a backend.
pub trait Admission: std::fmt::Debug {
    /// Called once for every request whose head is complete. `now` is the
    /// loop's clock for this turn.
    fn admit(&mut self, arrival: &Arrival<'_>, now: Instant) -> Verdict;

    /// Called when a connection waiting for a request head from `peer` is
    /// readable, before its bytes are read: a request from `peer` may be
    /// about to arrive. The place to start loading what [`admit`] will
    /// need (chapter 7 prefetches the client's entry in a big table), so
    /// the memory's latency is spent during the `read` call instead.
    ///
    /// [`admit`]: Admission::admit
    fn expect(&mut self, _peer: IpAddr) {}

    /// Called once when the loop stops, before the final report: the
    /// place to say what is still to be said (a log summary).
    fn stopped(&mut self) {}
}
// ANCHOR_END: admission

// ANCHOR: shared
/// One [`Admission`] for several loops (chapter 10's workers), behind a
/// lock: a client's limit must be one limit whichever loop serves it.
/// The lock is held for one decision, a few hundred nanoseconds; with a
/// loop per core, two loops rarely ask at the same instant.
#[derive(Debug)]
pub struct Shared<A>(Arc<Mutex<A>>);

impl<A> Shared<A> {
    /// `admission`, to share.
    pub fn new(admission: A) -> Self {
        Self(Arc::new(Mutex::new(admission)))
    }
}

impl<A> Clone for Shared<A> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<A: Admission> Admission for Shared<A> {
    fn admit(&mut self, arrival: &Arrival<'_>, now: Instant) -> Verdict {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).admit(arrival, now)
    }

    fn expect(&mut self, peer: IpAddr) {
        // A prefetch is worth no wait: only when no other loop holds the
        // lock (always, with one loop).
        if let Ok(mut admission) = self.0.try_lock() {
            admission.expect(peer);
        }
    }

    fn stopped(&mut self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).stopped();
    }
}
// ANCHOR_END: shared

/// The bytes of a [`Verdict::Answer`]: a complete response that keeps the
/// connection open when `keep_alive` says it may.
pub fn answer_bytes(status: u16, headers: &[(&'static str, String)], body: &str, keep_alive: bool) -> Vec<u8> {
    let reason = ch02_proxy::proxy::reason(status);
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    out.push_str(if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    out.push_str(body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_complete_http() {
        let bytes = answer_bytes(429, &[("Retry-After", "2".into())], "slow down\n", true);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\n"), "{text}");
        assert!(text.contains("Content-Length: 10\r\nConnection: keep-alive\r\n\r\nslow down\n"), "{text}");
    }
}
