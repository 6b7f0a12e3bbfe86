//! `l4::run` on real sockets: an echo backend behind it, clients in front.
//! Bytes arrive exactly both ways for splice and copy, a half-close passes
//! through, a dead backend is skipped, no backend at all closes the
//! client, and two thousand randomised connections (sizes, half-closes,
//! resets) leave every byte right and no descriptor open.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::io::{Read, Write};
use std::net::{Shutdown as Half, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ch01_fundamentals::server::Shutdown;
use ch04_advanced::algorithm::{self, Kind as Algorithm};
use ch04_advanced::node::{Backend, Pool};
mod common;
use common::pattern;

use ch09_zero_copy::l4::{L4Config, L4Stats, run};
use ch09_zero_copy::relay::Kind;

/// A backend that sends back every byte it gets, then ends its side.
fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = conn.shutdown(Half::Write);
            });
        }
    });
    addr
}

/// An address where nothing listens.
fn dead_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

struct Proxy {
    addr: SocketAddr,
    stats: Arc<L4Stats>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn proxy(backends: &[SocketAddr], kind: Kind) -> Proxy {
    let listener = ch01_fundamentals::net::listen("127.0.0.1:0".parse().unwrap(), 4096).unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(L4Stats::default());
    let shutdown = Shutdown::new();
    let (backends, s2, st) = (backends.to_vec(), shutdown.clone(), Arc::clone(&stats));
    let thread = thread::spawn(move || {
        let pool = Pool::new(backends.iter().map(|a| Backend::new(a.to_string(), 1)).collect());
        let alg = algorithm::build(Algorithm::Rr, &pool, &algorithm::Options::default());
        let config = L4Config { kind, connect_timeout: Duration::from_secs(2), ..L4Config::default() };
        run(listener, &pool, &backends, alg.as_ref(), &config, &st, s2).unwrap();
    });
    Proxy { addr, stats, shutdown, thread: Some(thread) }
}

/// Sends `data` through `addr` to the echo backend and reads it back.
fn round_trip(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let writer = stream.try_clone().unwrap();
    let data = data.to_vec();
    let sending = thread::spawn(move || {
        (&writer).write_all(&data).unwrap();
        writer.shutdown(Half::Write).unwrap();
    });
    let mut back = Vec::new();
    (&stream).read_to_end(&mut back).unwrap();
    sending.join().unwrap();
    back
}

#[test]
fn bytes_arrive_exactly_through_splice_and_copy() {
    let backend = echo_backend();
    for kind in [Kind::Splice(64 * 1024), Kind::Copy(16 * 1024)] {
        let p = proxy(&[backend], kind);
        let data = pattern(6 << 20, 7);
        assert!(round_trip(p.addr, &data) == data, "{kind:?}");
        assert!(round_trip(p.addr, b"") == b"", "{kind:?}: an empty connection");
    }
}

#[test]
fn a_dead_backend_is_skipped_and_no_backend_at_all_closes_the_client() {
    let p = proxy(&[dead_address(), echo_backend()], Kind::Splice(65536));
    for _ in 0..4 {
        assert_eq!(round_trip(p.addr, b"hello"), b"hello", "the dead one is skipped");
    }
    let p = proxy(&[dead_address()], Kind::Splice(65536));
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let closed = s.read_to_end(&mut buf);
    assert!(closed.is_ok_and(|n| n == 0) || buf.is_empty(), "the client is closed, not left waiting");
    assert_eq!(p.stats.refused.load(Ordering::Relaxed), 1);
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn two_thousand_random_connections_are_exact_and_leave_no_descriptor() {
    let backend = echo_backend();
    let p = proxy(&[backend], Kind::Splice(16 * 1024));
    // Warm up the threads the echo backend and the test keep.
    assert_eq!(round_trip(p.addr, b"warm"), b"warm");
    let before = open_descriptors();
    let mut seed = 12345u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for batch in 0..40 {
        let jobs: Vec<_> = (0..50)
            .map(|i| {
                let r = next();
                let size = match r % 4 {
                    0 => (r >> 8) as usize % 64,
                    1 | 2 => (r >> 8) as usize % 16_384,
                    _ => (r >> 8) as usize % 300_000,
                };
                let reset = r % 10 == 0;
                let addr = p.addr;
                thread::spawn(move || {
                    let data = pattern(size, (batch * 50 + i) as u64 + 1);
                    if reset {
                        // Sends some and resets: nothing to check but the proxy's cleanup.
                        let s = TcpStream::connect(addr).unwrap();
                        let _ = (&s).write_all(&data[..size / 2]);
                        socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
                        drop(s);
                        return;
                    }
                    let back = round_trip(addr, &data);
                    assert!(back == data, "connection {batch}/{i}: {} bytes sent, {} back", data.len(), back.len());
                })
            })
            .collect();
        for j in jobs {
            j.join().unwrap();
        }
    }
    // Every pair is closed once both sides are done; a reset pair as soon
    // as the proxy sees the reset. Bounded wait for the last ones.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while p.stats.open.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
        thread::yield_now();
    }
    assert_eq!(p.stats.open.load(Ordering::Relaxed), 0, "pairs still open");
    assert!(p.stats.accepted.load(Ordering::Relaxed) >= 2_001);
    let after = open_descriptors();
    assert!(after <= before + 8, "{before} descriptors before, {after} after 2,000 connections");
}
