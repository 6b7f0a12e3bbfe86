//! What the forward and the reverse proxy share, by concern:
//!
//! | concern | file |
//! |---|---|
//! | timeouts, whose fault a failure is, error responses | `proxy/mod.rs` |
//! | connecting upstream, carrying one request and its response across | `proxy/exchange.rs` |
//! | the request as it goes upstream: its target, forwarding headers, TLS refused | `proxy/target.rs` |
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

mod exchange;
mod target;

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use ch01_fundamentals::io::write_all;

use crate::http::{Framing, HeadError, RequestHead};

pub use exchange::{
    Exchange, ExchangeHook, Forwarded, connect_upstream, finish, forward_exchange, forward_exchange_with, serve_one,
};
pub use target::{NO_TLS_TO_BACKENDS, host_and_port, is_tls_backend, prepare_upstream_request, split_absolute_http};

/// Timeouts for each phase of an exchange; every phase has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to the upstream server.
    pub connect: Duration,
    /// From the end of the request to the upstream's response head.
    pub response: Duration,
    /// No byte moving either way, during a body or a tunnel.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), response: Duration::from_secs(30), idle: Duration::from_secs(60) }
    }
}

// ANCHOR: proxy_error
/// Whose fault a failure is. One rule for every proxy and balancer in the
/// book: the fault, not the status code, decides whether the backend's
/// passive health suffers and whether the request may go elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client's: a request we refuse (4xx), or a client that left.
    Client,
    /// The backend's: refused or dropped the connection, sent an invalid
    /// response, or did not answer in time (502, 504). Counts against it.
    Backend,
    /// Ours: no backend to send to, or a local shortage such as file
    /// descriptors or ports (500, 503). Never counts against a backend.
    Local,
}

impl Fault {
    /// The fault a status means when nothing more is known: 4xx is the
    /// client's, 502 and 504 the backend's, anything else ours.
    pub fn of_status(status: u16) -> Self {
        match status {
            400..=499 => Fault::Client,
            502 | 504 => Fault::Backend,
            _ => Fault::Local,
        }
    }
}

/// A failure that the proxy reports to its client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ProxyError {
    /// The status to answer with; `None` when the client is gone.
    pub status: Option<u16>,
    /// What went wrong, in words; it becomes the response body.
    pub detail: String,
    /// Whose fault it is.
    pub fault: Fault,
    /// The backend failed before any byte of its response arrived (it
    /// closed, reset, or stayed silent): an idempotent request may be
    /// sent to another backend.
    pub nothing_received: bool,
}

impl ProxyError {
    /// An error answered with `status`, whose fault the status tells
    /// ([`Fault::of_status`]).
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self { status: Some(status), detail: detail.into(), fault: Fault::of_status(status), nothing_received: false }
    }

    /// The backend failed before sending a single byte of a response.
    pub fn backend_silent(status: u16, detail: impl Into<String>) -> Self {
        Self { fault: Fault::Backend, nothing_received: true, ..Self::new(status, detail) }
    }

    /// Nothing could be sent anywhere: no backend, or every one failed to
    /// connect. 503, and our fault: the backends were charged already,
    /// each for its own failed connect.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self { fault: Fault::Local, ..Self::new(503, detail) }
    }

    /// The backend broke off in the middle of a response whose head the
    /// client already has: nothing can be answered, and the backend is
    /// charged.
    pub fn backend_cut(detail: impl Into<String>) -> Self {
        Self { status: None, detail: detail.into(), fault: Fault::Backend, nothing_received: false }
    }

    /// The client went away: nothing to answer.
    pub fn client_gone(detail: impl Into<String>) -> Self {
        Self { status: None, detail: detail.into(), fault: Fault::Client, nothing_received: false }
    }

    /// Whether this failure counts against the backend (passive health).
    pub fn blames_backend(&self) -> bool {
        self.fault == Fault::Backend
    }

    /// The retry rule: a request may go to another backend when the
    /// backend failed before any byte of a response arrived, the method is
    /// idempotent (GET, HEAD, OPTIONS, PUT, DELETE), and the request has
    /// no body we have already spent. (A failed *connect* may always be
    /// retried: nothing was sent; the balancers' failover loops do that.)
    pub fn may_retry(&self, request: &RequestHead) -> bool {
        self.fault == Fault::Backend
            && self.nothing_received
            && request.is_idempotent()
            && request.framing == Framing::Empty
    }
}

impl From<HeadError> for ProxyError {
    fn from(e: HeadError) -> Self {
        let status = e.status();
        Self { status, detail: e.to_string(), fault: Fault::Client, nothing_received: false }
    }
}
// ANCHOR_END: proxy_error

/// The reason phrase of the statuses our servers send themselves.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// What a proxy tells a client it has no room for (connection limit, no
/// descriptor or thread left): chapter 1's `ServerConfig::busy_reply`. A
/// constant, because it is sent from the accept loop with nothing to spare.
pub const BUSY_REPLY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 57\r\nConnection: close\r\n\r\n503 Service Unavailable: too many connections; try again\n";

// ANCHOR: error_response
/// A complete error response whose body says what happened, in words a
/// person reading curl's output can act on.
pub fn error_response(status: u16, detail: &str) -> Vec<u8> {
    let body = format!("{status} {}: {detail}\n", reason(status));
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )
    .into_bytes()
}
// ANCHOR_END: error_response

/// Sends the error response for `error`, if the client can still hear it.
pub fn send_error(client: &mut TcpStream, error: &ProxyError) {
    if let Some(status) = error.status {
        let _ = write_all(client, &error_response(status, &error.detail));
    }
}

/// Turns an io error on the client side into "client gone".
pub fn client_io(e: io::Error) -> ProxyError {
    ProxyError::client_gone(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_urls_split_into_authority_and_origin_form() {
        assert_eq!(split_absolute_http("http://example.com/a?b#c").unwrap(), ("example.com", "/a?b".to_string()));
        assert_eq!(split_absolute_http("http://example.com").unwrap(), ("example.com", "/".to_string()));
        assert_eq!(split_absolute_http("HTTP://h:81?q").unwrap(), ("h:81", "/?q".to_string()));
        assert_eq!(split_absolute_http("https://h/").unwrap_err().status, Some(400));
        assert_eq!(split_absolute_http("/relative").unwrap_err().status, Some(400));
        assert_eq!(split_absolute_http("http://user@h/").unwrap_err().status, Some(400));
        // Regression: a target whose eighth byte is inside a character
        // (`a€€€`) once panicked on a `[..8]` slice.
        assert_eq!(split_absolute_http("a\u{20ac}\u{20ac}\u{20ac}").unwrap_err().status, Some(400));
        assert_eq!(split_absolute_http("http://\u{20ac}/\u{20ac}").unwrap(), ("\u{20ac}", "/\u{20ac}".to_string()));
    }

    #[test]
    fn tls_backends_are_recognised() {
        for tls in ["https://h", "HTTPS://h:8443", "h:443", "h:443:2", "[::1]:443", "[::1]:443:5", "http://h:443"] {
            assert!(is_tls_backend(tls), "{tls}");
        }
        for plain in ["h:80", "h:4430", "h:8443:443", "[::443]:80", "http://h:9001", "127.0.0.1:9001"] {
            assert!(!is_tls_backend(plain), "{plain}");
        }
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(host_and_port("h", 80).unwrap(), ("h".to_string(), 80));
        assert_eq!(host_and_port("h:8080", 80).unwrap(), ("h".to_string(), 8080));
        assert_eq!(host_and_port("[::1]", 80).unwrap(), ("::1".to_string(), 80));
        assert_eq!(host_and_port("[::1]:81", 80).unwrap(), ("::1".to_string(), 81));
        assert!(host_and_port("h:port", 80).is_err());
    }

    #[test]
    fn the_busy_reply_is_the_503_error_response() {
        assert_eq!(BUSY_REPLY, &error_response(503, "too many connections; try again")[..]);
    }

    #[test]
    fn error_responses_are_complete_http() {
        let r = String::from_utf8(error_response(502, "cannot connect to x")).unwrap();
        assert!(r.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
        assert!(r.ends_with("\r\n\r\n502 Bad Gateway: cannot connect to x\n"));
        assert!(r.contains("Content-Length: 37\r\n"));
    }
}
