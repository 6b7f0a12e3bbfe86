//! # Lab 6.4 — connect and idle timeouts
//!
//! A proxy waits on two things it does not control: a server that may not
//! answer a connection attempt, and peers that may go quiet. Each wait
//! needs a bound.
//!
//! - [`connect_with_timeout`] tries each address in order, each with
//!   `timeout` (`TcpStream::connect_timeout`), and returns the first
//!   connection made. If none works: [`ConnectError::NoAddress`] for an
//!   empty list, [`ConnectError::TimedOut`] if any attempt timed out,
//!   else [`ConnectError::Refused`] if any was refused, else
//!   [`ConnectError::Other`] with the last error's kind.
//! - [`copy_with_idle_timeout`] copies `from` to `to` until `from` reaches
//!   end of stream ([`CopyEnd::Eof`]) or no byte arrives for `idle`
//!   ([`CopyEnd::Idle`]), returning the bytes copied either way. Use a read
//!   timeout on `from` (a timed-out read fails with `WouldBlock` or
//!   `TimedOut`, depending on the OS); an idle period restarts with every
//!   byte received. Other errors are returned as errors.
//!
//! Run it: `cargo test -p ch02-proxy --no-default-features lab_6_4`.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{ConnectError, CopyEnd};

/// Connects to the first address that answers within `timeout`.
pub fn connect_with_timeout(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, ConnectError> {
    // TODO: try each, remember what went wrong, classify.
    let _ = (addrs, timeout);
    todo!("lab 6.4: connect with a timeout")
}

/// Copies until end of stream or `idle` without a byte.
pub fn copy_with_idle_timeout(from: &mut TcpStream, to: &mut TcpStream, idle: Duration) -> io::Result<CopyEnd> {
    // TODO: set_read_timeout, then a read/write loop.
    let _ = (from, to, idle);
    todo!("lab 6.4: copy with an idle timeout")
}
