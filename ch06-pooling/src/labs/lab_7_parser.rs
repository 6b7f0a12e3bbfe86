//! # Lab 7 — an HTTP/1.1 request parser, by hand
//!
//! Chapter 2 parses request heads with `httparse` and applies the
//! project's rules on top (ARCHITECTURE.md section 3). Here you write all
//! of it yourself, byte by byte, without `httparse`, and the tests hold
//! your parser to chapter 2's verdicts: for every request in their tables,
//! and for thousands of mutated ones, yours must accept what
//! `ch02_proxy::http::parse_request` accepts (reading the same method,
//! target, headers, framing and head length) and refuse what it refuses,
//! with the same status.
//!
//! Nothing here may panic, whatever the bytes: no `buf[i]`, no `&buf[a..b]`,
//! no `&text[a..b]` on a string (it panics inside a multi-byte character),
//! no `unwrap`. Use `get`, `first`, `split`, `splitn`, `strip_suffix`,
//! iterators. The `deny` below makes the compiler hold you to it.
//!
//! ## The head: [`parse_request`]
//!
//! `parse_request(buf, limits)` is called with all the bytes received so
//! far. It answers `Ok(None)` when the head is not complete yet (it will be
//! called again with more bytes), `Ok(Some((request, n)))` when the head is
//! the first `n` bytes of `buf` (what follows is the body, or the next
//! request), or `Err(refusal)`.
//!
//! 1. **Lines.** A line ends with CRLF, or with a bare LF (RFC 9112 section
//!    2.2 lets a server accept a lone LF; chapter 2 does). A CR that is not
//!    followed by LF (a *bare CR*) is refused: 400. Empty lines before the
//!    request line are skipped, and counted in `n`. The head ends with the
//!    first empty line after the request line.
//! 2. **Size.** No complete head yet and `buf.len() >= limits.max_head_bytes`:
//!    431. A complete head (skipped empty lines included) longer than
//!    `max_head_bytes`: 431. More than `limits.max_headers` header lines: 431.
//! 3. **The request line** is `method SP target SP version`, one space each.
//!    - method: one or more token characters (`tchar`: ASCII letters and
//!      digits and ``!#$%&'*+-.^_`|~``);
//!    - target: longer than `limits.max_target_bytes` bytes: 414. Otherwise
//!      one or more bytes, each visible ASCII (`0x21..=0x7E`) or
//!      `0x80..=0xFF`, that together are valid UTF-8 (`/café` is fine, a lone
//!      `0xFF` is not): 400 otherwise;
//!    - version: exactly `HTTP/1.1` or `HTTP/1.0`. Any other `HTTP/` digit
//!      `.` digit (`HTTP/2.0`, `HTTP/1.2`): 505. Anything else (`http/1.1`,
//!      `HTTP/1.10`, a trailing space): 400. Chapter 2 answers 400 to both,
//!      because `httparse` has one error for every version it cannot read;
//!      505 is the precise answer (RFC 9110 section 15.6.6), and the tests
//!      expect it.
//! 4. **Header lines** are `name ":" OWS value OWS`.
//!    - name: one or more `tchar`, followed at once by the colon.
//!      Whitespace before the colon: 400. A line that starts with a space or
//!      a tab (obs-fold, a continuation of the line before): 400. No colon: 400.
//!    - value: the spaces and tabs around it are removed; its bytes must be
//!      HTAB, SP, visible ASCII or `0x80..=0xFF` (obs-text). Any other
//!      control character (NUL, DEL, ...): 400.
//!    - keep the names as sent, in order; compare them ignoring case.
//! 5. **Host:** exactly one in HTTP/1.1, at most one in HTTP/1.0: 400 otherwise.
//! 6. **Framing** (RFC 9112 section 6), returned as chapter 2's [`Framing`]:
//!    - both `Content-Length` and `Transfer-Encoding`: 400;
//!    - `Transfer-Encoding` in HTTP/1.0: 400. Its codings are the
//!      comma-separated elements of every `Transfer-Encoding` line, trimmed,
//!      empty ones skipped, compared ignoring case. Exactly one coding,
//!      `chunked`: `Framing::Chunked`. `chunked` last and only once, after
//!      other codings (`gzip, chunked`): 501. Anything else (`gzip`,
//!      `chunked, gzip`, `chunked, chunked`, an empty value): 400;
//!    - `Content-Length`: every value must be one or more ASCII digits that
//!      fit in a `u64` (`abc`, `-1`, `+5`, `5, 5`, an empty value: 400), and
//!      all values must be equal (400 otherwise). `0` or no `Content-Length`:
//!      `Framing::Empty`; `n`: `Framing::Length(n)`.
//!
//! Chapter 2 also refuses a `CONNECT` whose target has no port; leave that
//! out here.
//!
//! A plan that works: skip the empty lines; scan for the end of the head
//! (refusing a bare CR as you meet it); if it is not there, decide between
//! `Ok(None)` and 431; then split the head into lines and check them in
//! order. Judging the head only once it is complete is fine. You may also
//! refuse an incomplete head that is already broken (chapter 2 does), but
//! never one that could still turn out valid: every prefix of a valid
//! request is `Ok(None)`.
//!
//! ## The body: [`ChunkedDecoder`]
//!
//! A body with `Framing::Chunked` is a series of chunks, each
//! `size [";" extension] CRLF data CRLF`, the last of size 0, then trailer
//! lines and an empty line. [`ChunkedDecoder::feed`] gets the bytes after
//! the head as they arrive, in pieces of any size, appends the chunks'
//! *data* to `body`, and returns how many bytes of its input belong to the
//! chunked body: all of them, unless the body ends inside the input (what
//! follows is the next request). Once [`ChunkedDecoder::is_done`], `feed`
//! returns `Ok(0)`.
//!
//! - The size is one or more hex digits, either case; a size that does not
//!   fit in a `u64` is refused. After the digits only `;` (an extension,
//!   skipped up to its CR) or CR may come: `5 `, ` 5`, `0x5`, `-1`, an empty
//!   size line are refused. A size line longer than
//!   [`MAX_CHUNK_LINE`](ch02_proxy::body::MAX_CHUNK_LINE) bytes is refused.
//! - Every line in a chunked body ends with CRLF: a bare LF is refused here
//!   (unlike in the head). The data must be followed by exactly CRLF.
//! - After the last chunk, trailer lines (skipped) and the final CRLF. More
//!   than [`MAX_TRAILER_BYTES`](ch02_proxy::body::MAX_TRAILER_BYTES) bytes
//!   of trailers are refused.
//! - Refusals are [`Refusal::BadRequest`]: 400.
//! - A piece may end anywhere, between CR and LF or in the middle of a size:
//!   keep the state between calls, and never look at a byte twice. Fed one
//!   byte at a time, the decoder must give exactly what it gives fed all
//!   at once.
//!
//! Run it: `cargo test -p ch06-pooling --no-default-features lab_7`.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use ch02_proxy::http::{Framing, Limits, Version};

// ANCHOR: head
/// Why a request was refused. Each kind has the status to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400 Bad Request: the bytes break a rule (the text says which).
    BadRequest(&'static str),
    /// 414 URI Too Long: the target is longer than `max_target_bytes`.
    TargetTooLong,
    /// 431 Request Header Fields Too Large: the head is longer than
    /// `max_head_bytes`, or has more than `max_headers` header lines.
    HeadTooLarge,
    /// 501 Not Implemented: a transfer coding we do not implement comes
    /// before `chunked` (`gzip, chunked`).
    NotImplemented,
    /// 505 HTTP Version Not Supported: a well-formed `HTTP/x.y` other than
    /// 1.0 and 1.1.
    VersionNotSupported,
}

impl Refusal {
    /// The status code to answer with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::TargetTooLong => 414,
            Refusal::HeadTooLarge => 431,
            Refusal::NotImplemented => 501,
            Refusal::VersionNotSupported => 505,
        }
    }
}

/// A parsed and checked request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The request target, as sent (`/path?q`, `http://host/path`, `*`).
    pub target: String,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header lines in order: the name as sent, the value without the
    /// spaces and tabs around it.
    pub headers: Vec<(String, Vec<u8>)>,
    /// How the body is delimited.
    pub framing: Framing,
}

/// Parses the request head at the start of `buf`.
///
/// `Ok(None)`: more bytes are needed. `Ok(Some((request, n)))`: the head is
/// the first `n` bytes of `buf`. `Err`: refused.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, Refusal> {
    // TODO: skip empty lines, find the end of the head, then the request
    // line, the header lines, Host and the framing.
    let _ = (buf, limits);
    todo!("lab 7: parse a request head")
}
// ANCHOR_END: head

// ANCHOR: chunked
/// Decodes a chunked body as its bytes arrive.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    // TODO: your fields (where in the body you are, the size being read or
    // the data left in the chunk, the bytes counted against the limits).
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        todo!("lab 7: create the decoder")
    }

    /// Whether the whole body, trailers and final CRLF included, has gone past.
    pub fn is_done(&self) -> bool {
        todo!("lab 7: is the body over?")
    }

    /// Feeds the next bytes; appends the chunks' data to `body` and returns
    /// how many bytes of `input` belong to the chunked body (fewer than
    /// `input.len()` only when the body ends inside `input`).
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, Refusal> {
        let _ = (input, body);
        todo!("lab 7: decode the next bytes")
    }
}
// ANCHOR_END: chunked
