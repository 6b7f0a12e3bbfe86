//! # Lab 7.4 — warm-up (reference solution)
//!
//! The task is in `src/labs/lab_7_4_warm_up.rs`.
//!
//! Sequential, one connection each: a warm-up should look like the
//! traffic to come (new connections, full request handling) and must not
//! itself overload the backend it is trying to help.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ch01_fundamentals::io::{read_some, write_all};

use super::WarmUpError;

/// The longest status line we wait for; a real one is about 20 bytes.
const MAX_STATUS_LINE: usize = 8 * 1024;

/// Zero is refused by `connect_timeout` and `set_read_timeout`; the
/// shortest timeout we use instead.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Sends `requests` warm-up GETs of `path` to `addr`.
pub fn warm_up(addr: SocketAddr, path: &str, requests: u32, timeout: Duration) -> Result<u32, WarmUpError> {
    let timeout = timeout.max(MIN_TIMEOUT);
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: lbs-warm-up\r\nConnection: close\r\n\r\n");
    for n in 1..=requests {
        // Stop at the first failure: a backend that cannot answer its
        // warm-up is not ready, and hammering it would not help.
        let status =
            one_request(addr, request.as_bytes(), timeout).map_err(|error| WarmUpError::Io { request: n, error })?;
        if !(200..300).contains(&status) {
            return Err(WarmUpError::Status { request: n, status });
        }
    }
    Ok(requests)
}

/// One request on a new connection; the answer's status.
fn one_request(addr: SocketAddr, request: &[u8], timeout: Duration) -> Result<u16, String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| format!("setting a timeout: {e}"))?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| format!("setting a timeout: {e}"))?;
    write_all(&mut stream, request).map_err(|e| format!("send: {e}"))?;

    // Only the status line matters. The backend has done its work by the
    // time it answers; the rest of the response is dropped with the
    // connection (we asked for Connection: close).
    let mut line = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(i) = line.iter().position(|&b| b == b'\n') {
            break i;
        }
        if line.len() >= MAX_STATUS_LINE {
            return Err(format!("no status line in the first {MAX_STATUS_LINE} bytes"));
        }
        match read_some(&mut stream, &mut buf) {
            Ok(0) => return Err("the connection closed before a status line".to_string()),
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    };
    parse_status_line(&line[..end]).ok_or_else(|| {
        let shown = String::from_utf8_lossy(&line[..end.min(80)]).into_owned();
        format!("not an HTTP/1.x status line: {shown:?}")
    })
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
