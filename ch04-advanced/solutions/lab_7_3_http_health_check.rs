//! # Lab 7.3 — an HTTP health check with expectations (reference solution)
//!
//! The task is in `src/labs/lab_7_3_http_health_check.rs`.
//!
//! Three phases, each with its own way to fail: connecting (refused or
//! unreachable, or too slow), exchanging bytes (too slow, or cut off) and
//! judging the answer (not HTTP, wrong status, wrong body). Keeping them
//! apart is what lets [`CheckFailure`] say *why* a backend is unhealthy,
//! which is the first thing an operator asks.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ch01_fundamentals::io::{read_some, write_all};

use super::{CheckFailure, Expectation};

/// The most of a response we keep: a health answer is a few bytes, and a
/// backend that sends megabytes must not make the checker use megabytes.
const MAX_KEPT: usize = 64 * 1024;

/// Zero is refused by `connect_timeout` and `set_read_timeout`; the
/// shortest timeout we use instead.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Checks `GET path` on `addr` against `expect`.
pub fn http_check(addr: SocketAddr, path: &str, expect: &Expectation, timeout: Duration) -> Result<(), CheckFailure> {
    let timeout = timeout.max(MIN_TIMEOUT);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| if is_timeout(&e) { CheckFailure::Timeout } else { CheckFailure::Connect(e.to_string()) })?;
    let response = exchange(&mut stream, addr, path, timeout)?;
    judge(&response, expect)
}

/// Whether an I/O error is a timeout. A read timeout shows up as
/// `WouldBlock` on Unix (EAGAIN) and `TimedOut` on Windows.
fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

/// An I/O error after the connection was made: a timeout, or a broken
/// connection, which means there is no answer we could read.
fn io_failure(what: &str, e: &io::Error) -> CheckFailure {
    if is_timeout(e) { CheckFailure::Timeout } else { CheckFailure::BadResponse(format!("{what}: {e}")) }
}

/// Sends the request and returns the response as received, up to
/// [`MAX_KEPT`] bytes.
fn exchange(stream: &mut TcpStream, addr: SocketAddr, path: &str, timeout: Duration) -> Result<Vec<u8>, CheckFailure> {
    // A read timeout bounds one read; a server that sends one byte just
    // before each timeout would still hold us for 64 Ki timeouts. A deadline
    // for the whole answer bounds the check, and each read stays within
    // `timeout` as the task asks. (`None` only if the deadline overflows.)
    let deadline = Instant::now().checked_add(timeout);
    stream.set_write_timeout(Some(timeout)).map_err(|e| io_failure("setting a timeout", &e))?;
    // Connection: close asks the server to close after answering, which is
    // how we know the response is complete without parsing its framing.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: lbs-health\r\nConnection: close\r\n\r\n");
    write_all(stream, request.as_bytes()).map_err(|e| io_failure("send", &e))?;

    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    // Stop at the cap rather than read and discard forever: a backend
    // streaming an endless body would otherwise hold the checker.
    while kept.len() < MAX_KEPT {
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => timeout,
        };
        if left.is_zero() {
            return Err(CheckFailure::Timeout);
        }
        stream.set_read_timeout(Some(left.max(MIN_TIMEOUT))).map_err(|e| io_failure("setting a timeout", &e))?;
        let room = (MAX_KEPT - kept.len()).min(buf.len());
        match read_some(stream, &mut buf[..room]) {
            Ok(0) => break, // the server closed: the response is complete
            Ok(n) => kept.extend_from_slice(&buf[..n]),
            Err(e) => return Err(io_failure("read", &e)),
        }
    }
    Ok(kept)
}

/// Compares a response with the expectation.
fn judge(response: &[u8], expect: &Expectation) -> Result<(), CheckFailure> {
    let first_line = response.split(|&b| b == b'\n').next().unwrap_or_default();
    let status = parse_status_line(first_line).ok_or_else(|| {
        let shown = String::from_utf8_lossy(&first_line[..first_line.len().min(80)]).into_owned();
        CheckFailure::BadResponse(format!("not an HTTP/1.x status line: {shown:?}"))
    })?;
    let body_start = head_end(response).ok_or_else(|| {
        CheckFailure::BadResponse(format!("no end of head in {} bytes (cut off, or too long)", response.len()))
    })?;
    // The status first: a 503 whose body lacks "ok" is a status problem,
    // and saying so is more useful.
    if status != expect.status {
        return Err(CheckFailure::Status(status));
    }
    if let Some(text) = &expect.body_contains
        && !contains(&response[body_start..], text.as_bytes())
    {
        return Err(CheckFailure::Body);
    }
    Ok(())
}

/// `HTTP/1.x NNN` followed by a space or the end of the line.
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (minor, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ")?;
    if !minor.is_ascii_digit() || rest.len() < 3 || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    let digits = &rest[..3];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    (100..=999).contains(&status).then_some(status)
}

/// Where the body starts: after the first blank line (CRLF, or a bare LF
/// from a sloppy server).
fn head_end(response: &[u8]) -> Option<usize> {
    let crlf = find(response, b"\r\n\r\n").map(|i| i + 4);
    let lf = find(response, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    // `windows(0)` panics; an empty needle is found at the start.
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Byte search, so a body that is not UTF-8 can still be checked. (A
/// chunked body keeps its chunk sizes in between: fine for short texts.)
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}
