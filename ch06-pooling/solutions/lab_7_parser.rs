//! # Lab 7 — an HTTP/1.1 request parser, by hand (reference solution)
//!
//! The task is in `src/labs/lab_7_parser.rs`.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use ch02_proxy::body::{MAX_CHUNK_LINE, MAX_TRAILER_BYTES};
use ch02_proxy::http::{Framing, Limits, Version};

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
    // Empty lines before the request line are skipped (RFC 9112 section
    // 2.2), and counted in the head's length.
    let skipped = empty_lines(buf);
    let rest = buf.get(skipped..).unwrap_or_default();
    let Some(len) = head_end(rest)? else {
        return if buf.len() >= limits.max_head_bytes { Err(Refusal::HeadTooLarge) } else { Ok(None) };
    };
    let total = skipped + len;
    if total > limits.max_head_bytes {
        return Err(Refusal::HeadTooLarge);
    }
    let head = rest.get(..len).unwrap_or_default();
    // Every CR is followed by LF (`head_end` checked), so a line is what
    // lies between two LFs, without a CR at its end.
    let mut lines = head.split(|&b| b == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let (method, target, version) = request_line(lines.next().unwrap_or_default(), limits)?;
    let mut headers = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        if headers.len() >= limits.max_headers {
            return Err(Refusal::HeadTooLarge);
        }
        headers.push(header_line(line)?);
    }
    check_host(version, &headers)?;
    let framing = framing(version, &headers)?;
    Ok(Some((Request { method, target, version, headers, framing }, total)))
}

/// How many bytes of empty lines (CRLF or LF) start `buf`.
fn empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        if rest.starts_with(b"\r\n") {
            at += 2;
        } else if rest.starts_with(b"\n") {
            at += 1;
        } else {
            return at;
        }
    }
}

/// The length of the head at the start of `bytes` (which does not start
/// with an empty line): up to and including the first empty line. `None`
/// while that line has not arrived. A CR not followed by LF is refused as
/// soon as it is seen.
fn head_end(bytes: &[u8]) -> Result<Option<usize>, Refusal> {
    let mut line_len = 0usize;
    let mut iter = bytes.iter().enumerate().peekable();
    while let Some((i, &b)) = iter.next() {
        match b {
            b'\r' => match iter.peek().map(|&(_, &next)| next) {
                Some(b'\n') => {}
                Some(_) => return Err(Refusal::BadRequest("bare CR in the head")),
                None => return Ok(None),
            },
            b'\n' if line_len == 0 => return Ok(Some(i + 1)),
            b'\n' => line_len = 0,
            _ => line_len += 1,
        }
    }
    Ok(None)
}

/// A token character (RFC 9110 section 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes allowed in a request target: visible ASCII, and bytes >= 0x80
/// (which must form UTF-8, checked afterwards).
fn is_target_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xff)
}

/// Bytes allowed in a field value: HTAB, SP, visible ASCII, obs-text.
fn is_value_byte(b: u8) -> bool {
    matches!(b, b'\t' | 0x20..=0x7e | 0x80..=0xff)
}

/// `value` without the spaces and tabs around it.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_ows(b)).map_or(start, |last| last + 1);
    value.get(start..end).unwrap_or_default()
}

/// `method SP target SP version`.
fn request_line(line: &[u8], limits: &Limits) -> Result<(String, String, Version), Refusal> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::BadRequest("the request line is not method, target and version"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Refusal::BadRequest("invalid method"));
    }
    if target.len() > limits.max_target_bytes {
        return Err(Refusal::TargetTooLong);
    }
    if target.is_empty() || !target.iter().all(|&b| is_target_byte(b)) {
        return Err(Refusal::BadRequest("invalid character in the request target"));
    }
    let target = std::str::from_utf8(target).map_err(|_| Refusal::BadRequest("the request target is not UTF-8"))?;
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            return Err(Refusal::VersionNotSupported);
        }
        _ => return Err(Refusal::BadRequest("malformed HTTP version")),
    };
    // Token characters are ASCII: this cannot fail.
    let method = String::from_utf8(method.to_vec()).map_err(|_| Refusal::BadRequest("invalid method"))?;
    Ok((method, target.to_string(), version))
}

/// `name ":" OWS value OWS`.
fn header_line(line: &[u8]) -> Result<(String, Vec<u8>), Refusal> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(Refusal::BadRequest("obs-fold: a header line that starts with whitespace"));
    }
    let mut parts = line.splitn(2, |&b| b == b':');
    let name = parts.next().unwrap_or_default();
    let Some(value) = parts.next() else {
        return Err(Refusal::BadRequest("a header line without a colon"));
    };
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(Refusal::BadRequest("invalid header name (whitespace before the colon?)"));
    }
    if !value.iter().all(|&b| is_value_byte(b)) {
        return Err(Refusal::BadRequest("control character in a header value"));
    }
    // Token characters are ASCII: this cannot fail.
    let name = String::from_utf8(name.to_vec()).map_err(|_| Refusal::BadRequest("invalid header name"))?;
    Ok((name, trim_ows(value).to_vec()))
}

/// Every value of the header `name`, in order.
fn values<'a>(headers: &'a [(String, Vec<u8>)], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
}

/// Exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
fn check_host(version: Version, headers: &[(String, Vec<u8>)]) -> Result<(), Refusal> {
    match (values(headers, "host").count(), version) {
        (0, Version::Http11) => Err(Refusal::BadRequest("missing Host header")),
        (0 | 1, _) => Ok(()),
        _ => Err(Refusal::BadRequest("more than one Host header")),
    }
}

/// How the body is delimited; every ambiguous case is refused.
fn framing(version: Version, headers: &[(String, Vec<u8>)]) -> Result<Framing, Refusal> {
    let has_te = values(headers, "transfer-encoding").next().is_some();
    let has_cl = values(headers, "content-length").next().is_some();
    if has_te && has_cl {
        return Err(Refusal::BadRequest("both Content-Length and Transfer-Encoding"));
    }
    if has_te {
        if version == Version::Http10 {
            return Err(Refusal::BadRequest("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings: Vec<&[u8]> = values(headers, "transfer-encoding")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(trim_ows)
            .filter(|c| !c.is_empty())
            .collect();
        let chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
        return match codings.split_last() {
            Some((&last, others)) if chunked(last) && !others.iter().any(|&c| chunked(c)) => {
                if others.is_empty() {
                    Ok(Framing::Chunked)
                } else {
                    Err(Refusal::NotImplemented)
                }
            }
            _ => Err(Refusal::BadRequest("Transfer-Encoding must be exactly one final chunked")),
        };
    }
    let mut length = None;
    for value in values(headers, "content-length") {
        let n = content_length(value).ok_or(Refusal::BadRequest("malformed Content-Length"))?;
        if length.is_some_and(|previous| previous != n) {
            return Err(Refusal::BadRequest("differing Content-Length values"));
        }
        length = Some(n);
    }
    Ok(match length {
        None | Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
    })
}

/// One or more digits that fit in a `u64`.
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Where in a chunked body the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size.
    Size { seen_digit: bool },
    /// After `;`: an extension, skipped up to CR.
    Extension,
    /// The size line's CR arrived; its LF must follow.
    SizeLf,
    /// Inside a chunk's data.
    Data,
    /// After the data: CR, then LF.
    DataCr,
    /// After the data's CR.
    DataLf,
    /// In the trailer section, `at_start` of a line (an empty one ends the body).
    Trailer { at_start: bool },
    /// A trailer line's CR arrived (`last`: the empty line's); LF must follow.
    TrailerLf { last: bool },
    /// The whole body has gone past.
    Done,
}

/// Decodes a chunked body as its bytes arrive.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The size being read, then the data bytes left in the chunk.
    left: u64,
    /// Bytes of the current size line.
    line: usize,
    /// Bytes of trailer fields so far.
    trailers: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        Self { state: State::Size { seen_digit: false }, left: 0, line: 0, trailers: 0 }
    }

    /// Whether the whole body, trailers and final CRLF included, has gone past.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds the next bytes; appends the chunks' data to `body` and returns
    /// how many bytes of `input` belong to the chunked body (fewer than
    /// `input.len()` only when the body ends inside `input`).
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, Refusal> {
        let mut used = 0;
        while self.state != State::Done {
            let rest = input.get(used..).unwrap_or_default();
            if self.state == State::Data {
                // Data is taken in one step, as much as there is.
                let take = usize::try_from(self.left).unwrap_or(usize::MAX).min(rest.len());
                let data = rest.get(..take).unwrap_or_default();
                if data.is_empty() {
                    break;
                }
                body.extend_from_slice(data);
                self.left -= data.len() as u64;
                used += data.len();
                if self.left == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            // Everything else one byte at a time: any byte may be the last
            // one of this piece.
            let Some(&b) = rest.first() else { break };
            used += 1;
            self.state = self.step(b)?;
        }
        Ok(used)
    }

    /// The state after byte `b` (never in `Data`, which `feed` handles).
    fn step(&mut self, b: u8) -> Result<State, Refusal> {
        Ok(match self.state {
            State::Size { seen_digit } => {
                self.size_line_byte()?;
                if let Some(digit) = char::from(b).to_digit(16) {
                    self.left = self
                        .left
                        .checked_mul(16)
                        .and_then(|n| n.checked_add(u64::from(digit)))
                        .ok_or(Refusal::BadRequest("chunk size does not fit in 64 bits"))?;
                    State::Size { seen_digit: true }
                } else {
                    match b {
                        b';' if seen_digit => State::Extension,
                        b'\r' if seen_digit => State::SizeLf,
                        _ => return Err(Refusal::BadRequest("invalid chunk size")),
                    }
                }
            }
            State::Extension => {
                self.size_line_byte()?;
                match b {
                    b'\r' => State::SizeLf,
                    b'\n' => return Err(Refusal::BadRequest("chunk size line not ended by CRLF")),
                    _ => State::Extension,
                }
            }
            State::SizeLf => {
                if b != b'\n' {
                    return Err(Refusal::BadRequest("chunk size line not ended by CRLF"));
                }
                self.line = 0;
                if self.left == 0 { State::Trailer { at_start: true } } else { State::Data }
            }
            State::Data => State::Data,
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => State::Size { seen_digit: false },
            State::DataCr | State::DataLf => return Err(Refusal::BadRequest("chunk data not followed by CRLF")),
            State::Trailer { at_start } => match b {
                b'\r' => State::TrailerLf { last: at_start },
                b'\n' => return Err(Refusal::BadRequest("trailer line not ended by CRLF")),
                _ => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILER_BYTES {
                        return Err(Refusal::BadRequest("trailers too large"));
                    }
                    State::Trailer { at_start: false }
                }
            },
            State::TrailerLf { last } => match b {
                b'\n' if last => State::Done,
                b'\n' => State::Trailer { at_start: true },
                _ => return Err(Refusal::BadRequest("trailer line not ended by CRLF")),
            },
            State::Done => State::Done,
        })
    }

    /// Counts one byte of a size line, refusing a line over the limit.
    fn size_line_byte(&mut self) -> Result<(), Refusal> {
        self.line += 1;
        if self.line > MAX_CHUNK_LINE { Err(Refusal::BadRequest("chunk size line too long")) } else { Ok(()) }
    }
}
