//! HTTP/1 message heads: parsing with strict validation, and writing back.
//!
//! `httparse` tokenizes (it finds the method, target, version and header
//! lines, and rejects bytes that cannot be tokens). On top of it, this
//! module applies the rules a proxy must follow so that it never forwards
//! a message that two servers could read two different ways (RFC 9112,
//! and `ARCHITECTURE.md` section 3). Every refusal is a [`HeadError`] that knows
//! its status code.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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
    String::from_utf8_lossy(value).split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
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

// ANCHOR: parse_request
/// Parses a request head from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed (and the limits allow
/// them), `Ok(Some((head, n)))` with the head's length `n` when complete,
/// and an error for anything that must be refused.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(RequestHead, usize)>, HeadError> {
    check_target_length(buf, limits)?;
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut slots);
    let Some(len) = head_length(req.parse(buf), buf, limits)? else { return Ok(None) };
    // httparse fills every field of a Complete parse.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    let version = if minor == 0 { Version::Http10 } else { Version::Http11 };
    let headers = collect_headers(req.headers)?;

    // Host: exactly one in HTTP/1.1 (RFC 9112 3.2), at most one in 1.0.
    let hosts = headers.get_all("host").count();
    if version == Version::Http11 && hosts == 0 {
        return Err(HeadError::Malformed("missing Host header"));
    }
    if hosts > 1 {
        return Err(HeadError::Malformed("more than one Host header"));
    }
    if method == "CONNECT" {
        split_authority(target).ok_or(HeadError::Malformed("CONNECT target must be host:port"))?;
    }
    let framing = request_framing(version, &headers)?;
    let head = RequestHead { method: method.to_string(), target: target.to_string(), version, headers, framing };
    Ok(Some((head, len)))
}
// ANCHOR_END: parse_request

/// What the tokenizer's answer means for a head in `buf`: its length when
/// complete (within the size limit, line endings checked), `None` when more
/// bytes may come, or the refusal.
fn head_length(parsed: httparse::Result<usize>, buf: &[u8], limits: &Limits) -> Result<Option<usize>, HeadError> {
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head_bytes => {
            return Err(HeadError::HeadTooLarge(limits.max_head_bytes));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(tokenizer_error(e, limits)),
    };
    if len > limits.max_head_bytes {
        return Err(HeadError::HeadTooLarge(limits.max_head_bytes));
    }
    // httparse's length is within what it was given; `get` says so too.
    check_line_endings(buf.get(..len).ok_or(HeadError::Malformed("head length past the buffer"))?)?;
    Ok(Some(len))
}

/// 414 as soon as the request line is known to be too long, even before the
/// rest of the head has arrived.
fn check_target_length(buf: &[u8], limits: &Limits) -> Result<(), HeadError> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    let line = line_end.and_then(|end| buf.get(..end)).unwrap_or(buf);
    let mut parts = line.split(|&b| b == b' ');
    let _method = parts.next();
    let target_len = parts.next().map_or(0, <[u8]>::len);
    // Without a line end yet, a line longer than any method, target and
    // version could be is a target over the limit.
    if target_len > limits.max_target_bytes || (line_end.is_none() && line.len() > limits.max_target_bytes + 64) {
        return Err(HeadError::TargetTooLong(limits.max_target_bytes));
    }
    Ok(())
}

// ANCHOR: tokenizer_error
/// Maps a tokenizer error to the reason we give.
fn tokenizer_error(e: httparse::Error, limits: &Limits) -> HeadError {
    HeadError::Malformed(match e {
        httparse::Error::HeaderName => {
            "invalid header line (a folded continuation line, whitespace before the colon, or a non-token character)"
        }
        httparse::Error::HeaderValue => "invalid character in a header value",
        httparse::Error::NewLine => "malformed line ending (a bare CR?)",
        httparse::Error::Token => "invalid method or token",
        httparse::Error::Version => "unsupported protocol version",
        httparse::Error::Status => "invalid status",
        httparse::Error::TooManyHeaders => return HeadError::TooManyHeaders(limits.max_headers),
    })
}
// ANCHOR_END: tokenizer_error

/// A CR must always be followed by LF. httparse tolerates some bare CRs;
/// another server might treat one as a line end, so we refuse them.
fn check_line_endings(head: &[u8]) -> Result<(), HeadError> {
    let bare_cr = head.windows(2).any(|w| matches!(w, [b'\r', next] if *next != b'\n')) || head.last() == Some(&b'\r');
    if bare_cr { Err(HeadError::Malformed("bare CR in the head")) } else { Ok(()) }
}

/// Copies httparse's headers out, refusing control characters in values.
fn collect_headers(raw: &[httparse::Header<'_>]) -> Result<Headers, HeadError> {
    let mut headers = Headers(Vec::with_capacity(raw.len()));
    for h in raw {
        // Field values may hold visible ASCII, spaces, tabs and obs-text
        // (bytes >= 0x80); any other control character is refused.
        if h.value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(HeadError::Malformed("control character in a header value"));
        }
        headers.push(h.name, h.value);
    }
    Ok(headers)
}

// ANCHOR: request_framing
/// Decides how a request body is delimited, refusing every ambiguous case
/// (RFC 9112 section 6): a request that two servers could split into
/// messages differently is how request smuggling works.
pub fn request_framing(version: Version, headers: &Headers) -> Result<Framing, HeadError> {
    let has_te = headers.get("transfer-encoding").is_some();
    let has_cl = headers.get("content-length").is_some();
    if has_te && has_cl {
        return Err(HeadError::Malformed("both Content-Length and Transfer-Encoding"));
    }
    if has_te {
        if version == Version::Http10 {
            return Err(HeadError::Malformed("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings: Vec<String> = headers.tokens("transfer-encoding").map(|t| t.to_ascii_lowercase()).collect();
        let chunked = codings.iter().filter(|c| *c == "chunked").count();
        return match (codings.last().map(String::as_str), chunked, codings.len()) {
            (Some("chunked"), 1, 1) => Ok(Framing::Chunked),
            // chunked last and once, after codings we do not implement.
            (Some("chunked"), 1, _) => Err(HeadError::NotImplemented(codings.join(", "))),
            _ => Err(HeadError::Malformed("Transfer-Encoding must be exactly one final chunked")),
        };
    }
    match content_length(headers)? {
        Some(0) | None => Ok(Framing::Empty),
        Some(n) => Ok(Framing::Length(n)),
    }
}
// ANCHOR_END: request_framing

/// The Content-Length, if any: every value must be digits only, and all
/// values must agree.
pub fn content_length(headers: &Headers) -> Result<Option<u64>, HeadError> {
    let mut length = None;
    for value in headers.get_all("content-length") {
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(HeadError::Malformed("malformed Content-Length"));
        }
        // Digits only, so only overflow can fail here.
        let n = std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(HeadError::Malformed("Content-Length too large"))?;
        match length {
            Some(previous) if previous != n => return Err(HeadError::Malformed("differing Content-Length values")),
            _ => length = Some(n),
        }
    }
    Ok(length)
}

/// Splits `host:port` (or `[v6]:port`) into host and port.
pub fn split_authority(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = authority.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return None;
    }
    Some((host, port))
}

/// Parses a response head from the start of `buf`; `request_method` decides
/// whether a body follows (never after HEAD). Errors here mean the backend
/// misbehaved: the proxy answers its client 502.
pub fn parse_response(
    buf: &[u8],
    limits: &Limits,
    request_method: &str,
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut res = httparse::Response::new(&mut slots);
    let Some(len) = head_length(res.parse(buf), buf, limits)? else { return Ok(None) };
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(HeadError::Malformed("incomplete status line"));
    };
    // Three digits, 100 to 599 (RFC 9110 section 15). httparse reads `000`
    // as 0, which `to_bytes` would write back as `HTTP/1.1 0`: no status line.
    if !(100..=599).contains(&status) {
        return Err(HeadError::Malformed("invalid status"));
    }
    let version = if minor == 0 { Version::Http10 } else { Version::Http11 };
    let reason = res.reason.unwrap_or("").to_string();
    let headers = collect_headers(res.headers)?;
    let framing = if request_method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if headers.get("transfer-encoding").is_some() {
        if headers.get("content-length").is_some() {
            return Err(HeadError::Malformed("response with both Content-Length and Transfer-Encoding"));
        }
        // A response whose final coding is not chunked runs until close.
        match headers.tokens("transfer-encoding").last() {
            Some(last) if last.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        }
    } else {
        match content_length(&headers)? {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    Ok(Some((ResponseHead { version, status, reason, headers, framing }, len)))
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

// ANCHOR: head_scan
/// Decides when a head that arrives in pieces is worth parsing: when its
/// end has arrived, or a limit is crossed (or on the first bytes, so a
/// garbage request line is refused at once). Re-parsing after every small
/// read would cost time in the square of the head's size, which a client
/// sending one byte per packet could exploit; this looks at each new byte
/// once. Used by the blocking proxies here and by chapter 5's event loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadScan {
    scanned: usize,
    first_line_done: bool,
}

impl HeadScan {
    /// Whether `buf` (the head so far; it only grows) should be parsed now.
    pub fn worth_parsing(&mut self, buf: &[u8], limits: &Limits) -> bool {
        let from = self.scanned.saturating_sub(3).min(buf.len());
        let fresh = buf.get(from..).unwrap_or_default();
        let ended = fresh.windows(2).any(|w| w == b"\n\n") || fresh.windows(3).any(|w| w == b"\n\r\n");
        self.first_line_done |= fresh.contains(&b'\n');
        let over =
            buf.len() >= limits.max_head_bytes || (!self.first_line_done && buf.len() > limits.max_target_bytes + 64);
        let first = self.scanned == 0 && !buf.is_empty();
        self.scanned = buf.len();
        ended || over || first
    }
}
// ANCHOR_END: head_scan

/// A stream and the bytes read from it but not used yet. Reading a head
/// usually reads a little past it (the start of a body, or a pipelined
/// request); those bytes stay here for whoever reads next.
///
/// The stream is a `TcpStream` in the servers; the body copier works over
/// any reader, so tests and the fuzz targets feed it from memory.
#[derive(Debug)]
pub struct Buffered<S = TcpStream> {
    /// The connection.
    pub stream: S,
    /// Bytes received and not yet consumed.
    pub buf: Vec<u8>,
}

impl<S: Read> Buffered<S> {
    /// Wraps a stream with an empty buffer.
    pub fn new(stream: S) -> Self {
        Self { stream, buf: Vec::with_capacity(8 * 1024) }
    }

    /// Reads once more into the buffer; `Ok(0)` is end of stream.
    pub fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8 * 1024];
        let n = ch01_fundamentals::io::read_some(&mut self.stream, &mut chunk)?;
        self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Drops the first `n` buffered bytes.
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }
}

impl Buffered {
    // ANCHOR: read_request_head
    /// Reads a request head, within `limits.header_timeout` in total: a
    /// client sending one byte a second cannot hold the connection longer.
    pub fn read_request_head(&mut self, limits: &Limits) -> Result<RequestHead, HeadError> {
        let deadline = Instant::now() + limits.header_timeout;
        let mut scan = HeadScan::default();
        loop {
            if scan.worth_parsing(&self.buf, limits)
                && let Some((head, len)) = parse_request(&self.buf, limits)?
            {
                self.consume(len);
                return Ok(head);
            }
            self.fill_before(deadline, limits.header_timeout)?;
        }
    }
    // ANCHOR_END: read_request_head

    /// Reads a response head to a `method` request, within `timeout`.
    pub fn read_response_head(
        &mut self,
        limits: &Limits,
        method: &str,
        timeout: Duration,
    ) -> Result<ResponseHead, HeadError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((head, len)) = parse_response(&self.buf, limits, method)? {
                self.consume(len);
                if (100..200).contains(&head.status) && head.status != 101 {
                    continue; // 100 Continue and friends: the real response follows.
                }
                return Ok(head);
            }
            self.fill_before(deadline, timeout)?;
        }
    }

    fn fill_before(&mut self, deadline: Instant, budget: Duration) -> Result<(), HeadError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout(budget));
        }
        self.stream.set_read_timeout(Some(left)).map_err(|e| HeadError::Io(e.kind()))?;
        let result = self.fill();
        let _ = self.stream.set_read_timeout(None);
        match result {
            Ok(0) if self.buf.is_empty() => Err(HeadError::Closed),
            Ok(0) => Err(HeadError::Malformed("connection closed in the middle of a head")),
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                Err(HeadError::Timeout(budget))
            }
            Err(e) => Err(HeadError::Io(e.kind())),
        }
    }
}

impl<S: Read> Read for Buffered<S> {
    /// Buffered bytes first, then the socket.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.buf.is_empty() {
            let n = out.len().min(self.buf.len());
            // `n` fits both by construction; `get` proves it without a panic.
            if let (Some(to), Some(from)) = (out.get_mut(..n), self.buf.get(..n)) {
                to.copy_from_slice(from);
            }
            self.consume(n);
            return Ok(n);
        }
        self.stream.read(out)
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
