//! The comparison behind chapter 10's upgrade: what happens to the
//! connections waiting in a listening socket's accept queue when the old
//! process lets go of it.
//!
//! Handed over (the way `hot_reload_lb` upgrades): the new process holds
//! a second descriptor for the *same* socket, so the old one closing its
//! descriptor changes nothing; every waiting connection is accepted by
//! the new one. Started beside it with `SO_REUSEPORT` instead: the new
//! process gets a socket of its own, the kernel spreads new connections
//! over both queues, and closing the old socket resets every connection
//! still waiting in its queue.
//!
//! Both are measured here with plain sockets, no balancer: `CLIENTS`
//! connections are made while two listeners exist, then the old one is
//! closed without accepting, and the new one accepts what it can. Each
//! client then sends a byte and waits for one back: a reset connection
//! fails.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result};
use socket2::{Domain, Socket, Type};

/// Connections waiting when the old listener goes.
pub const CLIENTS: usize = 1000;

/// What became of the waiting connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Accepted by the new listener and answered.
    pub served: usize,
    /// Reset, or never answered.
    pub lost: usize,
}

/// A listening socket on `addr` (backlog 4096), with `SO_REUSEPORT` if asked.
pub fn listener(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse_port)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// `clients` connections queued while `old` and `new` listen; then `old`
/// is closed and `new` accepts and answers what it can.
fn run(old: TcpListener, new: TcpListener, addr: SocketAddr, clients: usize) -> Result<Outcome> {
    let count = clients;
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let c = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).context("connect")?;
        c.set_read_timeout(Some(Duration::from_secs(2)))?;
        clients.push(c);
    }
    drop(old);
    new.set_nonblocking(true)?;
    let mut accepted = Vec::new();
    loop {
        match new.accept() {
            Ok((s, _)) => accepted.push(s),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Echo one byte on every accepted connection.
    for s in &mut accepted {
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
    }
    let mut served = 0;
    for c in &mut clients {
        let _ = c.write_all(b"x");
    }
    for s in &mut accepted {
        let mut b = [0u8; 1];
        if s.read_exact(&mut b).is_ok() {
            let _ = s.write_all(&b);
        }
    }
    for c in &mut clients {
        let mut b = [0u8; 1];
        if c.read_exact(&mut b).is_ok() {
            served += 1;
        }
    }
    Ok(Outcome { served, lost: count - served })
}

/// With `clients` connections waiting: the same socket handed over (a
/// second descriptor, as `SCM_RIGHTS` gives the new process), then
/// `SO_REUSEPORT`. Each client and each accepted connection is a
/// descriptor: the open-file limit must allow twice `clients`.
pub fn compare(clients: usize) -> Result<(Outcome, Outcome)> {
    let old = listener("127.0.0.1:0".parse()?, false)?;
    let addr = old.local_addr()?;
    let handed = old.try_clone()?;
    let same = run(old, handed, addr, clients)?;
    let old = listener("127.0.0.1:0".parse()?, true)?;
    let addr = old.local_addr()?;
    let beside = listener(addr, true)?;
    let reuse = run(old, beside, addr, clients)?;
    Ok((same, reuse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handed_over_socket_loses_nothing_and_a_reuseport_one_loses_its_queue() {
        // 200 clients: 400 descriptors, within the usual limit of 1,024.
        let (same, reuse) = compare(200).unwrap();
        assert_eq!(same, Outcome { served: 200, lost: 0 });
        // The kernel hashes each connection to one of the two queues: about
        // half were in the closed one (that none were is 2^-200 unlikely).
        assert!(reuse.lost > 0 && reuse.served > 0, "{reuse:?}");
    }
}
