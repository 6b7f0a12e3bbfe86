//! HTTP/1 message heads: parsing with strict validation, and writing back.
//!
//! `httparse` tokenizes (it finds the method, target, version and header
//! lines, and rejects bytes that cannot be tokens). On top of it, this
//! module applies the rules a proxy must follow so that it never forwards
//! a message that two servers could read two different ways (RFC 9112,
//! and `ARCHITECTURE.md` section 3). Every refusal is a [`HeadError`] that knows
//! its status code.
//!
//! | concern | file |
//! |---|---|
//! | limits, errors, headers, framing, the head types and writing them | `http/mod.rs` |
//! | parsing request and response heads, and the framing rules | `http/parse.rs` |
//! | reading a head that arrives in pieces: `HeadScan`, `Buffered` | `http/scan.rs` |
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

mod parse;
mod scan;

use std::io;
use std::time::Duration;

pub use parse::{content_length, parse_request, parse_response, request_framing, split_authority};
pub use scan::{Buffered, HeadScan};

/// Largest request or response head accepted by default (431 above it).
pub const DEFAULT_MAX_HEAD_BYTES: usize = 16 * 1024;
/// Longest request target accepted by default (414 above it).
pub const DEFAULT_MAX_TARGET_BYTES: usize = 8 * 1024;
/// Most header lines accepted (431 above it).
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Bounds on what a peer may send us as a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the whole head, request line and headers.
    pub max_head_bytes: usize,
    /// Bytes of the request target.
    pub max_target_bytes: usize,
    /// Number of header lines.
    pub max_headers: usize,
    /// Time allowed for a complete head to arrive (slowloris defence).
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_target_bytes: DEFAULT_MAX_TARGET_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            header_timeout: Duration::from_secs(10),
        }
    }
}

// ANCHOR: head_error
/// Why a head was refused. Each kind has the status a server answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The bytes break a rule: a request is answered 400 and its connection
    /// closed; a response from upstream becomes a 502 for the client.
    #[error("{0}")]
    Malformed(&'static str),
    /// A transfer coding we do not implement (`gzip, chunked`): 501.
    #[error("transfer coding not implemented: {0}")]
    NotImplemented(String),
    /// The header section is over the limit: 431.
    #[error("header section larger than {0} bytes")]
    HeadTooLarge(usize),
    /// More header lines than allowed: 431.
    #[error("more than {0} header lines")]
    TooManyHeaders(usize),
    /// The request target is over the limit: 414.
    #[error("request target longer than {0} bytes")]
    TargetTooLong(usize),
    /// The head did not arrive within the header timeout: 408.
    #[error("no complete head within {0:?}")]
    Timeout(Duration),
    /// The peer closed the connection before a complete head: nobody to answer.
    #[error("connection closed before a complete head")]
    Closed,
    /// Reading failed (reset and the like): nobody to answer.
    #[error("read failed: {0}")]
    Io(io::ErrorKind),
}

impl HeadError {
    /// The status code to answer a client with, or `None` when the client
    /// is gone and nothing can be sent.
    pub fn status(&self) -> Option<u16> {
        match self {
            HeadError::Malformed(_) => Some(400),
            HeadError::NotImplemented(_) => Some(501),
            HeadError::HeadTooLarge(_) | HeadError::TooManyHeaders(_) => Some(431),
            HeadError::TargetTooLong(_) => Some(414),
            HeadError::Timeout(_) => Some(408),
            HeadError::Closed | HeadError::Io(_) => None,
        }
    }
}
// ANCHOR_END: head_error

/// HTTP/1.0 or HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: connections close by default, no chunked encoding.
    Http10,
    /// HTTP/1.1: keep-alive by default, Host required.
    Http11,
}

impl Version {
    /// As written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One header line. Names keep the sender's spelling; comparisons ignore case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name.
    pub name: String,
    /// The field value, without surrounding whitespace. Bytes, not text:
    /// HTTP allows (obsolete) non-ASCII bytes in values.
    pub value: Vec<u8>,
}

/// The header lines of a head, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_slice())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_slice())
    }

    /// The first value of `name` as text, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether a comma-separated header (like `Connection`) lists `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The comma-separated elements of every `name` header, trimmed.
    pub fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> + 'a {
        self.get_all(name).flat_map(split_list)
    }

    /// Removes every `name` header; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(name));
        before - self.0.len()
    }

    /// Adds a header line at the end.
    pub fn push(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.0.push(Header { name: name.to_string(), value: value.into() });
    }

    /// Replaces every `name` header by one with `value`, where the first
    /// one was (at the end if there was none).
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        match self.0.iter().position(|h| h.name.eq_ignore_ascii_case(name)) {
            Some(first) => {
                if let Some(h) = self.0.get_mut(first) {
                    h.value = value.into();
                }
                let mut i = 0;
                self.0.retain(|h| {
                    i += 1;
                    i - 1 == first || !h.name.eq_ignore_ascii_case(name)
                });
            }
            None => self.push(name, value),
        }
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        for h in &self.0 {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&h.value);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// The non-empty, trimmed elements of a comma-separated header value.
fn split_list(value: &[u8]) -> Vec<String> {
    // Only SP and HTAB are whitespace around list elements (RFC 9110's
    // OWS). `str::trim` would also strip Unicode spaces, and then
    // `chunked\u{a0}` would read as `chunked` here but as an unknown coding
    // to a backend: two views of one message's framing, which is how
    // request smuggling starts.
    String::from_utf8_lossy(value)
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding, ending with a zero-size chunk.
    Chunked,
    /// Everything until the sender closes (responses only).
    UntilClose,
}

/// A parsed and validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, `CONNECT`, ...
    pub method: String,
    /// The request target as sent: `/path?q`, `http://host/path`, `host:443` or `*`.
    pub target: String,
    /// The protocol version.
    pub version: Version,
    /// The header lines.
    pub headers: Headers,
    /// How the body is delimited (already checked for ambiguity).
    pub framing: Framing,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The protocol version.
    pub version: Version,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header lines.
    pub headers: Headers,
    /// How the body is delimited, given the request's method.
    pub framing: Framing,
}

/// Headers that describe one connection, not the message: a proxy removes
/// them (and any header the `Connection` header names) before forwarding.
/// `Transfer-Encoding` is not in the list because our proxies pass a
/// chunked body on unchanged, so its framing stays true.
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, including those listed in `Connection`.
pub fn remove_hop_by_hop(headers: &mut Headers) {
    let named: Vec<String> = headers.tokens("connection").collect();
    for name in named.iter().map(String::as_str).chain(HOP_BY_HOP) {
        if !name.eq_ignore_ascii_case("transfer-encoding") && !name.eq_ignore_ascii_case("content-length") {
            headers.remove(name);
        }
    }
}

impl RequestHead {
    /// The head as bytes, HTTP/1.1, with the target and headers as they are now.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", self.method, self.target).as_bytes());
        self.headers.write_to(&mut out);
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Whether the method is safe to retry (RFC 9110 9.2.2).
    pub fn is_idempotent(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
    }
}

impl ResponseHead {
    /// The head as bytes, with the status line and headers as they are now.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", self.status, self.reason).as_bytes());
        self.headers.write_to(&mut out);
        out.extend_from_slice(b"\r\n");
        out
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
        parse_request(raw, &Limits::default())
    }

    #[test]
    fn a_simple_request_parses() {
        let (head, len) = parse(b"GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nBODY").unwrap().unwrap();
        assert_eq!(len, 43);
        assert_eq!((head.method.as_str(), head.target.as_str(), head.version), ("GET", "/a?b", Version::Http11));
        assert_eq!(head.headers.get_str("accept"), Some("*/*"));
        assert_eq!(head.framing, Framing::Empty);
    }

    #[test]
    fn list_elements_are_trimmed_of_sp_and_htab_only() {
        let (head, _) = parse(b"GET / HTTP/1.1\r\nHost: x\r\nX-List: a ,\tb,, c\xc2\xa0\r\n\r\n").unwrap().unwrap();
        let got: Vec<String> = head.headers.tokens("x-list").collect();
        assert_eq!(got, ["a", "b", "c\u{a0}"]);
        // A no-break space after `chunked` is not `chunked`: the request is
        // refused, never framed one way here and another way upstream.
        let smuggled = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\xc2\xa0\r\n\r\n0\r\n\r\n";
        assert!(parse(smuggled).is_err(), "{:?}", parse(smuggled));
    }

    #[test]
    fn partial_heads_ask_for_more() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(), None);
        assert_eq!(parse(b"").unwrap(), None);
    }

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_are_removed() {
        let (mut head, _) =
            parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Kept: y\r\n\r\n")
                .unwrap()
                .unwrap();
        remove_hop_by_hop(&mut head.headers);
        let names: Vec<&str> = head.headers.0.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["Host", "X-Kept"]);
    }

    #[test]
    fn authority_forms() {
        assert_eq!(split_authority("example.com:443"), Some(("example.com", 443)));
        assert_eq!(split_authority("[::1]:8080"), Some(("::1", 8080)));
        assert_eq!(split_authority("example.com"), None);
        assert_eq!(split_authority("example.com:"), None);
        assert_eq!(split_authority(":80"), None);
        assert_eq!(split_authority("host:99999"), None);
    }

    #[test]
    fn responses_and_their_framing() {
        let l = Limits::default();
        let (r, _) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &l, "GET").unwrap().unwrap();
        assert_eq!(r.framing, Framing::Length(5));
        let (r, _) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &l, "HEAD").unwrap().unwrap();
        assert_eq!(r.framing, Framing::Empty);
        let (r, _) = parse_response(b"HTTP/1.1 200 OK\r\n\r\n", &l, "GET").unwrap().unwrap();
        assert_eq!(r.framing, Framing::UntilClose);
        let (r, _) =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &l, "GET").unwrap().unwrap();
        assert_eq!(r.framing, Framing::Chunked);
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", &l, "GET")
                .is_err()
        );
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n", &l, "GET").is_err());
    }

    #[test]
    fn a_written_head_parses_back_the_same() {
        let (head, _) = parse(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n").unwrap().unwrap();
        let (again, _) = parse(&head.to_bytes()).unwrap().unwrap();
        assert_eq!(again, head);
    }

    // Found by fuzzing (fuzz/fuzz_targets/response_head.rs): a backend's
    // `000` status was passed on as `HTTP/1.1 0 `, a status line no client
    // can read. Now it is refused, and the proxies answer 502.
    #[test]
    fn a_status_outside_100_to_599_is_refused() {
        let l = Limits::default();
        let found =
            b"HTTP/1.1 000 OK\xf8\xf5Transfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\x0f\n0\r\nT: 1\r\n\r\nJUNK";
        assert_eq!(parse_response(found, &l, "POST"), Err(HeadError::Malformed("invalid status")));
        for status in ["000", "099", "600", "999"] {
            let raw = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            assert!(parse_response(raw.as_bytes(), &l, "GET").is_err(), "{status}");
        }
        for status in [100, 101, 200, 599] {
            let raw = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            let (head, _) = parse_response(raw.as_bytes(), &l, "GET").unwrap().unwrap();
            let (again, _) = parse_response(&head.to_bytes(), &l, "GET").unwrap().unwrap();
            assert_eq!(again.status, status);
        }
    }
}
