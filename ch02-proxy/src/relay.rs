//! A bidirectional relay: what a tunnel, an L4 proxy and an upgraded
//! connection all come down to.
//!
//! Two directions, each a loop of read-then-write, on two threads. When one
//! side finishes sending (read returns 0), that is passed on as a
//! *half-close*: the relay shuts down the write side of the other socket,
//! so the other peer sees end of stream too, while bytes keep flowing the
//! other way. The relay ends when both directions have ended, or when no
//! byte has moved either way for the idle timeout.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, ErrorKind};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ch01_fundamentals::io::{read_some, write_all};

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// Both sides closed their sending side: the normal end.
    Closed,
    /// Nothing moved either way for the idle timeout.
    IdleTimeout,
    /// A read or write failed (reset, broken pipe...).
    Error(ErrorKind),
}

/// What a relay moved, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    /// Bytes from the first socket to the second.
    pub a_to_b: u64,
    /// Bytes from the second socket to the first.
    pub b_to_a: u64,
    /// The end.
    pub end: RelayEnd,
}

/// Milliseconds since the relay started when a byte last moved.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

// ANCHOR: pump
/// One direction: copy `from` to `to` until end of stream, then pass the
/// half-close on. Returns the bytes copied and how it ended.
fn pump(mut from: TcpStream, mut to: TcpStream, idle: Option<Duration>, activity: &Activity) -> (u64, RelayEnd) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    // A read timeout lets this thread look up now and then and check
    // whether the *whole* relay has been idle, not just this direction.
    if from.set_read_timeout(idle).is_err() {
        return (0, RelayEnd::Error(ErrorKind::Other));
    }
    loop {
        match read_some(&mut from, &mut buf) {
            Ok(0) => {
                // Our peer will send nothing more: tell the other peer.
                let _ = to.shutdown(Shutdown::Write);
                return (total, RelayEnd::Closed);
            }
            Ok(n) => {
                if let Err(e) = write_all(&mut to, buf.get(..n).unwrap_or_default()) {
                    let _ = from.shutdown(Shutdown::Both);
                    return (total, RelayEnd::Error(e.kind()));
                }
                total += n as u64;
                activity.touch();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let limit = idle.unwrap_or(Duration::MAX);
                if activity.idle_for() >= limit {
                    // Wake the other direction too: its read returns 0.
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    return (total, RelayEnd::IdleTimeout);
                }
            }
            Err(e) => {
                let _ = to.shutdown(Shutdown::Both);
                return (total, RelayEnd::Error(e.kind()));
            }
        }
    }
}
// ANCHOR_END: pump

// ANCHOR: relay
/// Relays between `a` and `b` until both directions end or the relay is
/// idle for `idle` (no limit when `None`).
pub fn relay(a: TcpStream, b: TcpStream, idle: Option<Duration>) -> io::Result<RelayStats> {
    let activity = Arc::new(Activity { start: Instant::now(), last_ms: AtomicU64::new(0) });
    let (a2, b2) = (a.try_clone()?, b.try_clone()?);
    let act = Arc::clone(&activity);
    let back = thread::Builder::new().name("relay-b-to-a".into()).spawn(move || pump(b2, a2, idle, &act))?;
    let (a_to_b, end_ab) = pump(a, b, idle, &activity);
    let (b_to_a, end_ba) = back.join().unwrap_or((0, RelayEnd::Error(ErrorKind::Other)));
    // The first thing that went wrong is the relay's end.
    let end = match (end_ab, end_ba) {
        (RelayEnd::Closed, RelayEnd::Closed) => RelayEnd::Closed,
        (RelayEnd::IdleTimeout, _) | (_, RelayEnd::IdleTimeout) => RelayEnd::IdleTimeout,
        (RelayEnd::Error(k), _) | (_, RelayEnd::Error(k)) => RelayEnd::Error(k),
    };
    Ok(RelayStats { a_to_b, b_to_a, end })
}
// ANCHOR_END: relay

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Two connected sockets.
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    #[test]
    fn bytes_flow_both_ways_and_half_close_is_passed_on() {
        let (mut client, relay_a) = pair();
        let (relay_b, mut server) = pair();
        let t = thread::spawn(move || relay(relay_a, relay_b, Some(Duration::from_secs(10))).unwrap());
        client.write_all(b"request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        // The server sees the request and then end of stream...
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"request");
        // ...and can still answer: the other direction is open.
        server.write_all(b"a longer response").unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"a longer response");
        let stats = t.join().unwrap();
        assert_eq!(stats, RelayStats { a_to_b: 7, b_to_a: 17, end: RelayEnd::Closed });
    }

    #[test]
    fn an_idle_relay_ends_and_closes_both_sides() {
        let (mut client, relay_a) = pair();
        let (relay_b, mut server) = pair();
        let stats = thread::spawn(move || relay(relay_a, relay_b, Some(Duration::from_millis(50))).unwrap());
        let stats = stats.join().unwrap();
        assert_eq!(stats.end, RelayEnd::IdleTimeout);
        let mut buf = [0u8; 1];
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(client.read(&mut buf).unwrap_or(0), 0);
        assert_eq!(server.read(&mut buf).unwrap_or(0), 0);
    }
}
