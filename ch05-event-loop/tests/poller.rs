//! The Poller against real sockets, for every backend this system has
//! (`Mechanism::available()`: epoll and poll on Linux, kqueue and poll on
//! macOS and the BSDs).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use ch05_event_loop::poller::{Event, Interest, Mechanism, Poller, Trigger};

fn backends() -> impl Iterator<Item = Mechanism> {
    Mechanism::available().iter().copied()
}

/// Watching for nothing: how a loop pauses a socket without forgetting it.
const NOTHING: Interest = Interest { readable: false, writable: false };

/// A connected pair of non-blocking sockets.
fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

const SHORT: Option<Duration> = Some(Duration::from_millis(50));
const LONG: Option<Duration> = Some(Duration::from_secs(10));

fn wait(p: &mut Poller, timeout: Option<Duration>) -> Vec<Event> {
    let mut events = Vec::new();
    p.wait(&mut events, timeout).unwrap();
    events
}

/// Reads until WouldBlock: the rule every handler follows.
fn drain(s: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return total,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_new_connection_makes_the_listener_readable() {
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        p.register(&l, 7, Interest::READABLE, Trigger::Level).unwrap();
        assert!(wait(&mut p, Some(Duration::ZERO)).is_empty(), "{backend:?}: nothing yet");
        let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let events = wait(&mut p, LONG);
        assert_eq!(events.len(), 1, "{backend:?}");
        assert_eq!((events[0].token, events[0].readable), (7, true));
        assert!(l.accept().is_ok());
        assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock, "accept until WouldBlock");
    }
}

#[test]
fn level_triggered_reports_again_until_drained() {
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let (mut a, mut b) = pair();
        p.register(&b, 1, Interest::READABLE, Trigger::Level).unwrap();
        a.write_all(b"hello").unwrap();
        assert!(wait(&mut p, LONG)[0].readable);
        assert!(wait(&mut p, SHORT).iter().any(|e| e.token == 1 && e.readable), "{backend:?}: still ready");
        assert_eq!(drain(&mut b), 5);
        assert!(wait(&mut p, Some(Duration::ZERO)).is_empty(), "{backend:?}: drained, quiet");
    }
}

#[test]
fn edge_triggered_reports_once_per_arrival() {
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let (mut a, mut b) = pair();
        p.register(&b, 1, Interest::READABLE, Trigger::Edge).unwrap();
        a.write_all(b"first").unwrap();
        assert_eq!(wait(&mut p, LONG).len(), 1, "{backend}");
        if backend != Mechanism::Poll {
            // Not read, but no new edge: epoll (EPOLLET) and kqueue
            // (EV_CLEAR) stay quiet. A handler that read only part would
            // never hear about the rest: drain until WouldBlock. poll(2)
            // has no edge mode and reports again.
            assert!(wait(&mut p, SHORT).is_empty(), "{backend}");
        }
        a.write_all(b"second").unwrap();
        assert_eq!(wait(&mut p, LONG).len(), 1, "{backend}: new data is a new edge");
        assert_eq!(drain(&mut b), 11);
    }
}

#[test]
fn writable_backpressure_and_reregister() {
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let (mut a, b) = pair();
        p.register(&b, 3, Interest::WRITABLE, Trigger::Level).unwrap();
        let events = wait(&mut p, LONG);
        assert!(events[0].writable && !events[0].readable, "{backend:?}: {events:?}");
        // Data waits, but we only asked for writability: no readable event
        // (this is how a loop stops reading a side that cannot forward more).
        a.write_all(b"pending").unwrap();
        let events = wait(&mut p, LONG);
        assert!(events.iter().all(|e| !e.readable), "{backend:?}: {events:?}");
        p.reregister(&b, 4, Interest::READABLE, Trigger::Level).unwrap();
        let events = wait(&mut p, LONG);
        assert_eq!((events[0].token, events[0].readable, events[0].writable), (4, true, false), "{backend:?}");
    }
}

#[test]
fn filling_the_send_buffer_ends_writability_until_the_peer_reads() {
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let (mut a, mut b) = pair();
        p.register(&a, 1, Interest::WRITABLE, Trigger::Level).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut written = 0usize;
        // Write until WouldBlock (bounded: loopback buffers are a few MiB).
        for _ in 0..10_000 {
            match a.write(&chunk) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(wait(&mut p, SHORT).is_empty(), "{backend:?}: full, not writable");
        let mut read = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while read < written {
            match b.read(&mut buf) {
                Ok(n) => read += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if wait(&mut p, Some(Duration::ZERO)).iter().any(|e| e.writable) {
                        break;
                    }
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(wait(&mut p, LONG).iter().any(|e| e.token == 1 && e.writable), "{backend:?}: room again");
    }
}

#[test]
fn a_closed_peer_is_reported_and_deregister_silences() {
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let (a, mut b) = pair();
        p.register(&b, 9, Interest::READABLE, Trigger::Level).unwrap();
        drop(a);
        let events = wait(&mut p, LONG);
        assert!(events[0].readable, "{backend:?}: end of stream is readable");
        assert_eq!(drain(&mut b), 0, "and reads as 0");
        p.deregister(&b).unwrap();
        assert!(wait(&mut p, Some(Duration::ZERO)).is_empty(), "{backend:?}: deregistered");
        assert!(p.deregister(&b).is_err(), "{backend:?}: twice is an error");
    }
}

#[test]
fn reregister_to_no_interest_pauses_readable_reports() {
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let (mut a, mut b) = pair();
        p.register(&b, 5, Interest::READABLE, Trigger::Level).unwrap();
        a.write_all(b"pending").unwrap();
        assert!(wait(&mut p, LONG).iter().any(|e| e.token == 5 && e.readable), "{backend}");
        // Backpressure: stop reading, though data waits.
        p.reregister(&b, 5, NOTHING, Trigger::Level).unwrap();
        let events = wait(&mut p, SHORT);
        assert!(events.is_empty(), "{backend}: paused, yet reported: {events:?}");
        // Resume: the data that waited is reported again.
        p.reregister(&b, 5, Interest::READABLE, Trigger::Level).unwrap();
        assert!(wait(&mut p, LONG).iter().any(|e| e.token == 5 && e.readable), "{backend}: resumed");
        assert_eq!(drain(&mut b), 7);
    }
}

#[test]
fn a_paused_socket_stays_quiet_when_the_peer_half_closes() {
    // A peer's half-close is a lasting condition; were it reported for a
    // socket watched for nothing, a level-triggered loop would wake on
    // every wait and spin (epoll asks for EPOLLRDHUP only with readable).
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let (a, mut b) = pair();
        p.register(&b, 6, NOTHING, Trigger::Level).unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        let events = wait(&mut p, SHORT);
        assert!(events.is_empty(), "{backend}: paused, yet reported: {events:?}");
        // Watching again, the end of stream shows.
        p.reregister(&b, 6, Interest::READABLE, Trigger::Level).unwrap();
        let events = wait(&mut p, LONG);
        assert!(events.iter().any(|e| e.token == 6 && e.readable), "{backend}: {events:?}");
        assert_eq!(drain(&mut b), 0, "{backend}: end of stream");
    }
}

#[test]
fn readable_and_writable_at_once_are_one_event() {
    // kqueue reports the two as separate filters; the Poller merges them.
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let (mut a, b) = pair();
        p.register(&b, 8, Interest::BOTH, Trigger::Level).unwrap();
        a.write_all(b"x").unwrap();
        // Wait until both show (the byte may land a moment after the write).
        let mut events = wait(&mut p, LONG);
        for _ in 0..100 {
            if events.iter().any(|e| e.readable) {
                break;
            }
            events = wait(&mut p, LONG);
        }
        assert_eq!(events.len(), 1, "{backend}: {events:?}");
        assert_eq!((events[0].token, events[0].readable, events[0].writable), (8, true, true), "{backend}");
    }
}

#[test]
fn registering_twice_and_unknown_fds_are_errors() {
    for backend in backends() {
        let mut p = Poller::new(backend).unwrap();
        let (_a, b) = pair();
        let err = p.reregister(&b, 1, Interest::READABLE, Trigger::Level).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{backend}");
        p.register(&b, 1, Interest::READABLE, Trigger::Level).unwrap();
        let err = p.register(&b, 1, Interest::READABLE, Trigger::Level).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{backend}");
    }
}

#[test]
fn every_available_backend_works_and_others_are_unsupported() {
    for backend in [Mechanism::Epoll, Mechanism::Poll, Mechanism::Kqueue] {
        match Poller::new(backend) {
            Ok(p) => {
                assert!(Mechanism::available().contains(&backend), "{backend}");
                assert_eq!(p.backend(), backend);
            }
            Err(e) => {
                assert!(!Mechanism::available().contains(&backend), "{backend}: {e}");
                assert_eq!(e.kind(), ErrorKind::Unsupported, "{backend}");
            }
        }
    }
    assert_eq!(Mechanism::best(), Mechanism::available()[0]);
}
