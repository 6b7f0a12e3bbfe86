//! The pool over real sockets: the liveness check, and the pool plugged
//! into chapter 5's loop as its [`Reuse`].
// This module reads network bytes (a peek): every index is checked.
#![deny(clippy::indexing_slicing)]

use std::io;
use std::net::TcpStream;
use std::time::Instant;

use ch05_event_loop::lb::reuse::{Kept, Reuse, Socket};

use super::{Alive, Liveness, Pool, Pooled};

// ANCHOR: peek
/// Asks a non-blocking socket whether it is still good to send on, without
/// taking anything from it: `recv(MSG_PEEK)` of one byte. `WouldBlock`
/// (nothing to read, no error) is the only healthy answer; 0 means the
/// backend closed it; bytes mean it sent something nobody asked for.
pub fn peek_liveness(stream: &TcpStream) -> Alive {
    let mut one = [0u8; 1];
    match stream.peek(&mut one) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Alive::Yes,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Alive::Yes,
        Ok(0) | Err(_) => Alive::Closed,
        Ok(_) => Alive::Data,
    }
}
// ANCHOR_END: peek

impl Liveness for TcpStream {
    fn liveness(&self) -> Alive {
        peek_liveness(self)
    }
}

impl Liveness for Socket {
    fn liveness(&self) -> Alive {
        peek_liveness(&self.stream)
    }
}

// ANCHOR: reuse
/// The pool is what chapter 5's loop calls to keep backend connections.
impl Reuse for Pool<Socket> {
    fn get(&mut self, node: usize, now: Instant, closed: &mut Vec<Socket>) -> Option<Kept> {
        let p = Pool::get(self, node, now, closed)?;
        Some(Kept { socket: p.conn, served: p.served, promise: p.promise })
    }

    fn opened(&mut self, node: usize) {
        Pool::opened(self, node);
    }

    fn put(
        &mut self,
        node: usize,
        conn: Kept,
        reusable: Result<(), &'static str>,
        now: Instant,
        closed: &mut Vec<Socket>,
    ) -> Option<(usize, Instant)> {
        let pooled = Pooled { conn: conn.socket, served: conn.served, promise: conn.promise };
        Pool::put(self, node, pooled, reusable, now, closed)
    }

    fn readable(&mut self, id: usize, closed: &mut Vec<Socket>) {
        Pool::readable(self, id, closed);
    }

    fn expire(&mut self, now: Instant, closed: &mut Vec<Socket>) -> Option<Instant> {
        Pool::expire(self, now, closed)
    }

    fn node_down(&mut self, node: usize, closed: &mut Vec<Socket>) {
        self.close_backend(node, closed);
    }
}
// ANCHOR_END: reuse

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{Shutdown, TcpListener};

    use super::*;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (theirs, _) = l.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (ours, theirs)
    }

    /// Waits (at most 5 s) until the socket is readable, so a FIN or bytes
    /// sent by the other side have arrived, then checks.
    fn settled(s: &TcpStream) -> Alive {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let _ = s.peek(&mut [0u8; 1]);
        s.set_nonblocking(true).unwrap();
        peek_liveness(s)
    }

    #[test]
    fn an_open_quiet_connection_is_alive() {
        let (ours, _theirs) = pair();
        assert_eq!(peek_liveness(&ours), Alive::Yes);
    }

    #[test]
    fn a_closed_connection_is_seen_closed() {
        let (ours, theirs) = pair();
        theirs.shutdown(Shutdown::Both).unwrap();
        drop(theirs);
        assert_eq!(settled(&ours), Alive::Closed);
    }

    #[test]
    fn unexpected_bytes_are_seen_and_left_unread() {
        let (ours, mut theirs) = pair();
        theirs.write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n").unwrap();
        assert_eq!(settled(&ours), Alive::Data);
        assert_eq!(peek_liveness(&ours), Alive::Data, "peeking consumed nothing");
    }
}
