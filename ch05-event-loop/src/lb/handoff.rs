//! Spreading client connections evenly over several loops (chapter 10's
//! `--workers`).
//!
//! The loops share one listening socket, and the kernel decides which loop
//! a new connection wakes: with `EPOLLEXCLUSIVE`, the first loop that is
//! waiting. When clients arrive in a burst (a load generator opening its 64
//! connections, a browser its six), the loop that wakes first accepts them
//! all before another is even scheduled, and keeps every one of them, with
//! all their later requests, while the other loops sleep. Measured with 64
//! keep-alive clients and two loops: 63 connections on one, 2 on the other.
//!
//! So the loop that accepts does not always keep. Each loop has an
//! [`Inbox`]: how many client connections it has, the connections handed
//! to it and not yet taken, and a way to wake it. After each accept the
//! loop asks [`Handoff::place`]: when another loop has fewer connections,
//! the new one goes to that loop's inbox, and that loop is woken to take
//! it. The cost is a lock and, for a connection handed over, a byte on a
//! socket: once per connection, never per request. Envoy's
//! `exact_balance` connection balancer does the same.
// This module reads no network bytes, but is held to the same rule.
#![deny(clippy::indexing_slicing)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::backends::lock;

// ANCHOR: inbox
/// One loop's place in the hand-off.
#[derive(Debug)]
pub struct Inbox {
    /// Client connections the loop has, or has been handed and not yet
    /// taken: what [`Handoff::place`] compares.
    load: AtomicUsize,
    /// Connections handed to the loop, oldest first; `None` once the loop
    /// has stopped and takes no more.
    handed: Mutex<Option<Vec<(TcpStream, SocketAddr)>>>,
    /// The writing end of the loop's wake-up socket.
    wake: Mutex<UnixStream>,
}

/// Every loop's inbox, by loop index.
#[derive(Debug, Default)]
pub struct Handoff {
    loops: Mutex<Vec<Arc<Inbox>>>,
    /// Signalled at each join.
    joined: Condvar,
}
// ANCHOR_END: inbox

impl Handoff {
    /// Files a loop's inbox; `wake` is the writing end of its wake-up
    /// socket.
    pub fn join(&self, wake: UnixStream) -> Arc<Inbox> {
        let inbox =
            Arc::new(Inbox { load: AtomicUsize::new(0), handed: Mutex::new(Some(Vec::new())), wake: Mutex::new(wake) });
        lock(&self.loops).push(Arc::clone(&inbox));
        self.joined.notify_all();
        inbox
    }

    /// Waits until `count` loops have joined, or `give_up()` says to stop
    /// waiting (asked every 50 ms): a loop that accepted before the others
    /// joined would keep every client of a first burst. For loops that
    /// join here themselves (chapter 10's layer 4 `--workers`; chapter 5's
    /// loops have their own gate).
    pub fn wait_joined(&self, count: usize, give_up: impl Fn() -> bool) {
        let mut loops = lock(&self.loops);
        while loops.len() < count && !give_up() {
            loops = self
                .joined
                .wait_timeout(loops, Duration::from_millis(50))
                .map_or_else(|e| e.into_inner().0, |(guard, _)| guard);
        }
    }

    // ANCHOR: place
    /// Where a connection that loop `own` just accepted goes: `None`, it
    /// keeps it; or the inbox of the loop with the fewest connections, when
    /// that is fewer than `own` has. Either way the connection is counted
    /// to the loop that gets it, at once, so that the next connection of a
    /// burst sees it.
    pub fn place(&self, own: &Arc<Inbox>) -> Option<Arc<Inbox>> {
        let loops = lock(&self.loops);
        let fewest = loops.iter().min_by_key(|inbox| inbox.load())?;
        if Arc::ptr_eq(fewest, own) || fewest.load() >= own.load() {
            own.load.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        fewest.load.fetch_add(1, Ordering::Relaxed);
        Some(Arc::clone(fewest))
    }
    // ANCHOR_END: place

    /// Each loop's count of connections, by loop index (in the order the
    /// loops joined).
    pub fn loads(&self) -> Vec<usize> {
        lock(&self.loops).iter().map(|inbox| inbox.load()).collect()
    }
}

impl Inbox {
    /// Client connections the loop has or has been handed.
    pub fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }

    /// Hands a connection to this loop, and wakes it; gives it back if
    /// the loop has stopped (and no longer counts it).
    pub fn hand(&self, stream: TcpStream, peer: SocketAddr) -> Result<(), (TcpStream, SocketAddr)> {
        match lock(&self.handed).as_mut() {
            Some(handed) => handed.push((stream, peer)),
            None => {
                self.left();
                return Err((stream, peer));
            }
        }
        // A full socket already holds a wake-up: nothing lost.
        let _ = lock(&self.wake).write(&[1]);
        Ok(())
    }

    /// The connections handed to this loop since it last looked.
    pub fn take(&self) -> Vec<(TcpStream, SocketAddr)> {
        lock(&self.handed).as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The loop is about to stop: closes the inbox if it is empty (from
    /// now on a connection handed over is given back) and returns nothing,
    /// or, when connections wait in it, leaves it open and returns them,
    /// to be served first. With `force`, closes it anyway and returns what
    /// waited.
    pub fn close(&self, force: bool) -> Vec<(TcpStream, SocketAddr)> {
        let mut handed = lock(&self.handed);
        let waiting = handed.as_mut().map(std::mem::take).unwrap_or_default();
        if waiting.is_empty() || force {
            *handed = None;
        }
        waiting
    }

    /// One connection more, placed here by its own loop.
    pub fn arrived(&self) {
        self.load.fetch_add(1, Ordering::Relaxed);
    }

    /// One connection fewer: closed, or refused when it arrived.
    pub fn left(&self) {
        // Never below zero, whatever the order of the calls.
        let _ = self.load.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn inbox(handoff: &Handoff) -> (Arc<Inbox>, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        (handoff.join(ours), theirs)
    }

    #[test]
    fn a_burst_accepted_by_one_loop_is_shared_evenly() {
        let handoff = Handoff::default();
        let loops: Vec<_> = (0..3).map(|_| inbox(&handoff)).collect();
        let first = &loops[0].0;
        // Loop 0 accepts 30 connections in a row, the others asleep.
        let mut kept = 0;
        for _ in 0..30 {
            match handoff.place(first) {
                None => kept += 1,
                Some(other) => assert!(!Arc::ptr_eq(&other, first)),
            }
        }
        assert_eq!(kept, 10);
        for (inbox, _) in &loops {
            assert_eq!(inbox.load(), 10);
        }
        // Connections closing on loop 1 make it the one to get the next.
        loops[1].0.left();
        loops[1].0.left();
        let next = handoff.place(first).unwrap();
        assert!(Arc::ptr_eq(&next, &loops[1].0));
        assert_eq!(loops[1].0.load(), 9);
    }

    #[test]
    fn waiting_for_the_loops_ends_when_all_joined_or_on_giving_up() {
        let handoff = Arc::new(Handoff::default());
        let (_first, _w1) = inbox(&handoff);
        let other = Arc::clone(&handoff);
        let joining = std::thread::spawn(move || inbox(&other));
        handoff.wait_joined(2, || false);
        assert_eq!(handoff.loads().len(), 2);
        let _second = joining.join().unwrap();
        // A third never comes: giving up ends the wait.
        handoff.wait_joined(3, || true);
        assert_eq!(handoff.loads(), [0, 0]);
    }

    #[test]
    fn one_loop_keeps_everything_and_a_count_never_goes_below_zero() {
        let handoff = Handoff::default();
        let (only, _wake) = inbox(&handoff);
        for _ in 0..5 {
            assert!(handoff.place(&only).is_none());
        }
        assert_eq!(only.load(), 5);
        for _ in 0..7 {
            only.left();
        }
        assert_eq!(only.load(), 0);
    }

    #[test]
    fn a_handed_connection_arrives_with_a_wake_up() {
        let handoff = Handoff::default();
        let (target, mut woken) = inbox(&handoff);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        target.hand(stream, peer).unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut woken, &mut byte).unwrap(), 1);
        let taken = target.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].1, client.local_addr().unwrap());
        assert!(target.take().is_empty(), "taken once");
    }

    #[test]
    fn a_stopped_loop_gives_a_connection_back_and_one_stopping_serves_what_waits() {
        let handoff = Handoff::default();
        let (target, _wake) = inbox(&handoff);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = || {
            let _client = TcpStream::connect(addr).unwrap();
            listener.accept().unwrap()
        };
        // Something waits: the inbox stays open and hands it back to serve.
        let (s, p) = accept();
        target.arrived();
        target.hand(s, p).unwrap();
        assert_eq!(target.close(false).len(), 1);
        // Nothing waits: closed; the next is given back, uncounted.
        assert!(target.close(false).is_empty());
        let (s, p) = accept();
        target.arrived();
        assert_eq!(target.load(), 2);
        assert!(target.hand(s, p).is_err());
        assert_eq!(target.load(), 1);
        assert!(target.take().is_empty());
    }
}
