//! # Lab 6.4 — connect and idle timeouts (reference solution)
//!
//! The task is in `src/labs/lab_6_4_timeouts.rs`.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{ConnectError, CopyEnd};

/// Connects to the first address that answers within `timeout`.
pub fn connect_with_timeout(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, ConnectError> {
    let (mut timed_out, mut refused, mut last) = (false, false, None);
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => match e.kind() {
                ErrorKind::TimedOut | ErrorKind::WouldBlock => timed_out = true,
                ErrorKind::ConnectionRefused => refused = true,
                kind => last = Some(kind),
            },
        }
    }
    Err(match (addrs.is_empty(), timed_out, refused, last) {
        (true, ..) => ConnectError::NoAddress,
        (_, true, ..) => ConnectError::TimedOut,
        (_, _, true, _) => ConnectError::Refused,
        (_, _, _, Some(kind)) => ConnectError::Other(kind),
        (_, _, _, None) => ConnectError::Other(ErrorKind::Other),
    })
}

/// Copies until end of stream or `idle` without a byte.
pub fn copy_with_idle_timeout(from: &mut TcpStream, to: &mut TcpStream, idle: Duration) -> io::Result<CopyEnd> {
    from.set_read_timeout(Some(idle))?;
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(CopyEnd::Eof(total)),
            Ok(n) => {
                to.write_all(&buf[..n])?;
                total += n as u64;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(CopyEnd::Idle(total));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
