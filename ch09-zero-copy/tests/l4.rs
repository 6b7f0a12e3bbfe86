//! `l4::run` on real sockets: an echo backend behind it, clients in front.
//! Bytes arrive exactly both ways for splice and copy, a half-close passes
//! through, a dead backend is skipped, no backend at all closes the
//! client, probes take a dead backend out before a client meets it, and
//! ten thousand randomised transfers (sizes, half-closes, slow readers,
//! resets) bring back every byte, checked by SHA-256, and leave no
//! descriptor open.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::io::{Read, Write};
use std::net::{Shutdown as Half, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ch01_fundamentals::server::Shutdown;
use ch04_advanced::algorithm::Kind as Algorithm;
use ch04_advanced::health::HealthChecker;
use ch04_advanced::node::{Backend, Pool};
mod common;
use common::{Sha256, pattern, sha256};

use ch05_event_loop::lb::backends::Current;
use ch09_zero_copy::l4::{L4Config, L4Stats, default_settings, run};
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
    pool: Arc<Pool>,
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
    let backends = backends.iter().map(|a| Backend::new(a.to_string(), 1)).collect();
    let current = Current::new(backends, Algorithm::Rr, &default_settings()).unwrap();
    let pool = Arc::clone(&current.load().pool);
    let (s2, st) = (shutdown.clone(), Arc::clone(&stats));
    let thread = thread::spawn(move || {
        let config = L4Config { kind, ..L4Config::default() };
        run(listener, &current, &config, &st, s2).unwrap();
    });
    Proxy { addr, pool, stats, shutdown, thread: Some(thread) }
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
    for kind in [Kind::Splice(64 * 1024), Kind::Copy(16 * 1024), Kind::Auto(64 * 1024)] {
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

#[test]
fn probes_take_a_dead_backend_out_before_a_client_meets_it() {
    let p = proxy(&[dead_address(), echo_backend()], Kind::Splice(65536));
    let config = default_settings().health;
    let checker = HealthChecker::new(Arc::clone(&p.pool), config.clone());
    for _ in 0..config.fall {
        checker.run_round();
    }
    assert!(!p.pool.nodes[0].is_healthy(), "{} probes failed: down", config.fall);
    assert!(p.pool.nodes[1].is_healthy());
    for _ in 0..6 {
        assert_eq!(round_trip(p.addr, b"hello"), b"hello");
    }
    assert_eq!(p.pool.nodes[0].backend.failures.load(Ordering::Relaxed), 0, "no client was sent to the dead one");
    assert_eq!(p.pool.nodes[1].backend.requests.load(Ordering::Relaxed), 6);
}

#[test]
fn failed_connects_take_a_backend_down_without_probes() {
    let p = proxy(&[dead_address(), echo_backend()], Kind::Splice(65536));
    let max_fails = default_settings().health.max_fails;
    for _ in 0..8 {
        assert_eq!(round_trip(p.addr, b"hello"), b"hello");
    }
    assert!(!p.pool.nodes[0].is_healthy(), "down after {max_fails} failed connects");
    assert_eq!(p.pool.nodes[0].backend.failures.load(Ordering::Relaxed), u64::from(max_fails));
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// How a client of the torture test behaves.
#[derive(Debug, Clone, Copy)]
enum Client {
    /// Sends everything, half-closes, reads the echo to the end.
    HalfClose,
    /// Sends and reads at once, reads exactly what it sent, then closes
    /// without ever half-closing.
    Exact,
    /// Like `HalfClose`, but reads 512 bytes at a time and lets other
    /// threads run between reads: the proxy meets a full socket, must
    /// hold back, and must not lose a byte. (A tiny receive buffer would
    /// be slower still, but then TCP's zero-window probes, hundreds of
    /// milliseconds apart, set the pace, not the reader.)
    SlowReader,
    /// Sends part and resets the connection.
    Reset,
}

/// Sends `size` pattern bytes as `how` says and checks by SHA-256 that
/// the same bytes come back; returns false for a reset client.
fn transfer(addr: SocketAddr, size: usize, seed: u64, how: Client) -> bool {
    let data = pattern(size, seed);
    let stream = TcpStream::connect(addr).unwrap();
    if let Client::Reset = how {
        let _ = (&stream).write_all(&data[..size / 2]);
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
        return false;
    }
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let expected = sha256(&data);
    let writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || {
        (&writer).write_all(&data).unwrap();
        if !matches!(how, Client::Exact) {
            writer.shutdown(Half::Write).unwrap();
        }
    });
    let mut digest = Sha256::new();
    let mut buf = vec![0u8; if matches!(how, Client::SlowReader) { 512 } else { 64 * 1024 }];
    let mut got = 0;
    loop {
        if matches!(how, Client::Exact) && got == size {
            break;
        }
        let n = (&stream).read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
        got += n;
        if matches!(how, Client::SlowReader) {
            thread::yield_now();
        }
    }
    sending.join().unwrap();
    assert_eq!(got, size, "{how:?}: {size} bytes sent, {got} back");
    assert_eq!(digest.hex(), expected, "{how:?}: {size} bytes came back different");
    true
}

#[test]
fn sha256_is_right() {
    assert_eq!(sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(sha256(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    let mut pieces = Sha256::new();
    for part in b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".chunks(7) {
        pieces.update(part);
    }
    assert_eq!(pieces.hex(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

#[test]
fn ten_thousand_random_transfers_are_exact_and_leave_no_descriptor() {
    let backend = echo_backend();
    for kind in [Kind::Auto(16 * 1024), Kind::Splice(16 * 1024), Kind::Copy(16 * 1024)] {
        let p = proxy(&[backend], kind);
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
        // Auto (the default) and splice get 4,000 transfers each, copy
        // 2,000: ten thousand in all.
        let batches = if matches!(kind, Kind::Copy(_)) { 40 } else { 80 };
        let mut checked = 0;
        for batch in 0..batches {
            let jobs: Vec<_> = (0..50u64)
                .map(|i| {
                    let r = next();
                    let size = match r % 4 {
                        0 => (r >> 8) as usize % 64,
                        1 | 2 => (r >> 8) as usize % 16_384,
                        _ => (r >> 8) as usize % 300_000,
                    };
                    let how = match (r >> 40) % 10 {
                        0 => Client::Reset,
                        1 | 2 => Client::SlowReader,
                        3..=5 => Client::Exact,
                        _ => Client::HalfClose,
                    };
                    let addr = p.addr;
                    thread::spawn(move || transfer(addr, size, batch * 50 + i + 1, how))
                })
                .collect();
            checked += jobs.into_iter().map(|j| j.join().unwrap()).filter(|&c| c).count();
        }
        // Every pair is closed once both sides are done; a reset pair as
        // soon as the proxy sees the reset. Bounded wait for the last ones.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while p.stats.open.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
            thread::yield_now();
        }
        let transfers = batches as usize * 50;
        assert_eq!(p.stats.open.load(Ordering::Relaxed), 0, "{kind:?}: pairs still open");
        assert_eq!(p.stats.accepted.load(Ordering::Relaxed), transfers as u64 + 1, "{kind:?}");
        assert!(checked > transfers * 8 / 10, "{kind:?}: only {checked} of {transfers} checked");
        // The loop keeps up to 64 empty pipes for reuse, on its thread: they
        // close when it ends. Anything else left open is a leak.
        drop(p);
        let after = open_descriptors();
        assert!(after <= before + 8, "{kind:?}: {before} descriptors before, {after} after {transfers} transfers");
    }
}
