//! Creating sockets by hand: the socket lifecycle with `socket2`.
//!
//! `std::net::TcpListener::bind` does four system calls in one go
//! (`socket`, `setsockopt(SO_REUSEADDR)`, `bind`, `listen`) and hides the
//! backlog. Here every step is spelled out so that each option can be seen
//! and changed.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The listen backlog used when the caller has no opinion.
///
/// The kernel caps it at `net.core.somaxconn` (4096 on current Linux).
/// A bigger queue absorbs bursts of connections arriving faster than the
/// server calls `accept`.
pub const DEFAULT_BACKLOG: i32 = 1024;

// ANCHOR: listen
/// Opens a listening TCP socket on `addr`, step by step.
///
/// 1. `socket()` creates an endpoint for the right address family;
/// 2. `SO_REUSEADDR` lets a restarted server bind the port again while old
///    connections from its previous life still sit in `TIME_WAIT`;
/// 3. `bind()` attaches the socket to the local address (port 0 asks the
///    kernel to choose a free port, which is what the tests do);
/// 4. `listen()` turns it into a passive socket with a queue of `backlog`
///    completed connections waiting for `accept()`.
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // Accept only IPv6 on an IPv6 socket, the same on every OS.
        socket.set_only_v6(true)?;
    }
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(backlog)?;
    Ok(socket.into())
}
// ANCHOR_END: listen

// ANCHOR: connect
/// Connects to `addr` with a bounded wait, and disables Nagle's algorithm.
///
/// `TCP_NODELAY` matters for request/response protocols: without it the
/// kernel may hold back a small write until the previous one is
/// acknowledged, and the peer's delayed ACK can then add tens of
/// milliseconds to every exchange.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    socket.connect_timeout(&SockAddr::from(addr), timeout)?;
    Ok(socket.into())
}
// ANCHOR_END: connect

/// Options applied to every accepted connection.
///
/// An accepted socket is a new file descriptor: it inherits some options
/// from the listener but not all, so the server sets the ones it relies on.
pub fn tune_accepted(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}

// ANCHOR: raise_fd_limit
/// Raises this process's open-files limit (RLIMIT_NOFILE) from its soft
/// value to its hard maximum, and returns the new limit.
///
/// Every connection is a file descriptor, and a common default soft limit
/// is 1024: a server that does not raise it fails with EMFILE ("too many
/// open files") long before memory or CPU run out. The soft limit may be
/// raised up to the hard one without privileges.
#[cfg(unix)]
pub fn raise_fd_limit() -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    // Some systems report "unlimited" as the hard limit; ask for a sane cap.
    let target = hard.min(1 << 20);
    if target > soft {
        setrlimit(Resource::RLIMIT_NOFILE, target, hard).map_err(io::Error::from)?;
    }
    // rlim_t is unsigned on Linux and macOS but signed on FreeBSD.
    #[allow(clippy::unnecessary_cast)]
    Ok(target.max(soft) as u64)
}
// ANCHOR_END: raise_fd_limit

/// EMFILE or ENFILE: no file descriptor left, in this process or in the
/// whole system. `accept` and `socket` fail this way under load.
pub fn is_out_of_descriptors(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use nix::errno::Errno;
        [Errno::EMFILE, Errno::ENFILE].iter().any(|&n| e.raw_os_error() == Some(n as i32))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Whether a failed connect is our own shortage (no file descriptor, no
/// local port, no memory) rather than the server's doing: such failures
/// must never mark a healthy backend down.
pub fn is_local_shortage(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use nix::errno::Errno;
        if is_out_of_descriptors(e)
            || [Errno::ENOBUFS, Errno::ENOMEM].iter().any(|&n| e.raw_os_error() == Some(n as i32))
        {
            return true;
        }
    }
    e.kind() == io::ErrorKind::AddrNotAvailable
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn listen_on_port_zero_gets_a_real_port_and_accepts() {
        let listener = listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let mut client = connect(addr, Duration::from_secs(5)).unwrap();
        assert!(client.nodelay().unwrap());
        let (mut server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[test]
    fn reuse_address_lets_a_port_be_bound_again_after_close() {
        let first = listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = first.local_addr().unwrap();
        // Leave a connection behind so the port has a TIME_WAIT/closing socket.
        let c = connect(addr, Duration::from_secs(5)).unwrap();
        let (s, _) = first.accept().unwrap();
        drop(s);
        drop(c);
        drop(first);
        let again = listen(addr, 16).unwrap();
        assert_eq!(again.local_addr().unwrap(), addr);
    }

    #[cfg(unix)]
    #[test]
    fn the_fd_limit_can_be_raised_to_the_hard_limit() {
        let limit = raise_fd_limit().unwrap();
        assert!(limit >= 256, "{limit}");
        assert_eq!(raise_fd_limit().unwrap(), limit, "raising twice changes nothing");
    }

    #[test]
    fn connect_to_a_closed_port_is_refused() {
        let listener = listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = connect(addr, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
