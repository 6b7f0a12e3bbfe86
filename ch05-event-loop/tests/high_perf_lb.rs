//! `high_perf_lb`'s loop on real sockets, with real backends: answers,
//! keep-alive, a thousand concurrent clients, timeouts (504, 408),
//! backpressure, failover and in-loop health checks.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use backends::BackendHandle;
use backends::client::{HttpResponse, read_response};
use ch01_fundamentals::server::Shutdown;
use ch04_advanced::algorithm::Kind;
use ch04_advanced::health::Probe;
use ch04_advanced::node::{Backend as Node, Pool};
use ch05_event_loop::lb::{Config, Lb, Stats, run};
use ch05_event_loop::poller::Mechanism;

struct Running {
    addr: SocketAddr,
    stats: Arc<Stats>,
    pool: Arc<Pool>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn start(addrs: &[SocketAddr], config: Config) -> Running {
        let _ = ch01_fundamentals::net::raise_fd_limit();
        let nodes = addrs.iter().map(|a| Node::new(a.to_string(), 1)).collect();
        let lb = Lb::new(nodes, Kind::Rr, config).unwrap();
        let (stats, pool) = (Arc::clone(&lb.stats), Arc::clone(&lb.backends().pool));
        // A deep accept queue: a thousand clients connect faster than one
        // thread accepts, and a full queue drops SYNs (1 s retransmits).
        let listener = ch01_fundamentals::net::listen("127.0.0.1:0".parse().unwrap(), 4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let s2 = shutdown.clone();
        let thread = thread::spawn(move || run(listener, &lb, s2));
        Running { addr, stats, pool, shutdown, thread: Some(thread) }
    }

    fn stop(mut self) {
        self.shutdown.trigger();
        self.thread.take().unwrap().join().unwrap().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// No active probes unless a test wants them: they would add requests.
fn config(poller: Mechanism) -> Config {
    let mut c = Config { poller, ..Config::default() };
    c.health.probe = Probe::Off;
    c
}

fn backends(n: usize) -> Vec<BackendHandle> {
    backends::spawn_many(n).unwrap()
}

fn addrs(b: &[BackendHandle]) -> Vec<SocketAddr> {
    b.iter().map(BackendHandle::addr).collect()
}

fn client(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

fn exchange(reader: &mut BufReader<TcpStream>, raw: &str) -> HttpResponse {
    reader.get_mut().write_all(raw.as_bytes()).unwrap();
    read_response(reader, false).unwrap()
}

#[test]
fn answers_come_from_the_backends_in_turn_on_one_keep_alive_connection() {
    let b = backends(3);
    for poller in Mechanism::available().iter().copied() {
        let lb = Running::start(&addrs(&b), config(poller));
        let mut conn = BufReader::new(client(lb.addr));
        let mut names = Vec::new();
        for _ in 0..6 {
            let r = exchange(&mut conn, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
            assert_eq!(r.status, 200, "{poller}");
            assert_eq!(r.header("connection"), Some("keep-alive"));
            names.push(r.text().split_whitespace().nth(2).unwrap_or("").to_string());
        }
        assert_eq!(names, ["backend-1", "backend-2", "backend-3", "backend-1", "backend-2", "backend-3"], "{poller}");
        // A body goes up intact (chunked and by length), and a pipelined
        // request behind it is answered next, on the same connection.
        let body = "x".repeat(100_000);
        let raw = format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}GET /status/404 HTTP/1.1\r\nHost: t\r\n\r\n",
            body.len()
        );
        let r = exchange(&mut conn, &raw);
        // /echo answers with the head it received, then the body.
        assert_eq!(r.status, 200, "{poller}");
        assert!(r.body.ends_with(body.as_bytes()), "{poller}: the body arrived whole");
        assert!(r.text().contains("X-Forwarded-For: 127.0.0.1"), "{poller}: forwarding headers added");
        let r = read_response(&mut conn, false).unwrap();
        assert_eq!(r.status, 404, "the pipelined request");
        let r = exchange(
            &mut conn,
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        assert!(r.text().ends_with("\r\n\r\nhello"), "the chunked body arrived whole: {:?}", r.text());
        // Connection: close is honoured: the answer says so and the
        // connection ends.
        let r = exchange(&mut conn, "GET /bytes/70000?chunked=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!((r.status, r.body.len(), r.header("connection")), (200, 70_000, Some("close")));
        let mut rest = Vec::new();
        assert_eq!(conn.read_to_end(&mut rest).unwrap(), 0, "closed after the response");
        assert_eq!(lb.stats.requests.load(Ordering::Relaxed), 10);
        assert_eq!(lb.stats.errors.load(Ordering::Relaxed), 0);
        lb.stop();
    }
}

#[test]
fn the_head_rules_of_chapter_2_apply() {
    let b = backends(1);
    let lb = Running::start(&addrs(&b), config(Mechanism::best()));
    let cases = [
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ];
    for (raw, status) in cases {
        let mut conn = BufReader::new(client(lb.addr));
        assert_eq!(exchange(&mut conn, raw).status, status, "{raw:?}");
    }
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9_000));
    assert_eq!(exchange(&mut BufReader::new(client(lb.addr)), &long_target).status, 414);
    let big_head = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "b".repeat(17_000));
    assert_eq!(exchange(&mut BufReader::new(client(lb.addr)), &big_head).status, 431);
    assert_eq!(b[0].snapshot().requests_served, 0, "no refused request reached the backend");
}

#[test]
fn a_thousand_concurrent_clients_are_all_answered() {
    let b = backends(3);
    for poller in Mechanism::available().iter().copied() {
        let lb = Running::start(&addrs(&b), config(poller));
        let mut conns: Vec<TcpStream> = (0..1000).map(|_| client(lb.addr)).collect();
        for (i, c) in conns.iter_mut().enumerate() {
            c.write_all(format!("GET /c{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        }
        for (i, c) in conns.into_iter().enumerate() {
            let r = read_response(&mut BufReader::new(c), false).unwrap();
            assert_eq!(r.status, 200, "{poller} client {i}");
            assert!(r.text().contains(&format!("/c{i}")), "{poller}: client {i} got {:?}", r.text());
        }
        assert_eq!(lb.stats.requests.load(Ordering::Relaxed), 1000);
        lb.stop();
    }
}

#[test]
fn a_backend_that_never_answers_gets_the_client_a_504() {
    // Accepts (the kernel completes the handshake) and never reads or writes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = config(Mechanism::best());
    cfg.timeouts.response = Duration::from_millis(200);
    let lb = Running::start(&[silent.local_addr().unwrap()], cfg);
    let r = exchange(&mut BufReader::new(client(lb.addr)), "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 504);
    assert!(r.text().contains("did not answer"), "{}", r.text());
    assert_eq!(lb.pool.nodes[0].backend.failures.load(Ordering::Relaxed), 1, "counted against the backend");
}

#[test]
fn a_client_that_sends_half_a_head_and_stalls_gets_a_408() {
    let b = backends(1);
    let mut cfg = config(Mechanism::best());
    cfg.limits.header_timeout = Duration::from_millis(200);
    let lb = Running::start(&addrs(&b), cfg);
    let mut conn = BufReader::new(client(lb.addr));
    conn.get_mut().write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let r = read_response(&mut conn, false).unwrap();
    assert_eq!(r.status, 408);
    assert_eq!(b[0].snapshot().requests_served, 0);
    // Other clients are served meanwhile and after: nothing blocked.
    let r = exchange(&mut BufReader::new(client(lb.addr)), "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn refused_backends_are_skipped_and_an_unreachable_pool_is_a_503() {
    let b = backends(1);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // dropped: refuses
    let lb = Running::start(&[closed, b[0].addr()], config(Mechanism::best()));
    for _ in 0..4 {
        let r = exchange(&mut BufReader::new(client(lb.addr)), "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(r.status, 200, "failover to the live backend");
    }
    assert!(lb.pool.nodes[0].backend.failures.load(Ordering::Relaxed) >= 1);
    drop(lb);
    let lb = Running::start(&[closed], config(Mechanism::best()));
    let r = exchange(&mut BufReader::new(client(lb.addr)), "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    // Every backend refused: 503, as from every balancer (chapter 2's Fault).
    assert_eq!(r.status, 503);
}

/// A backend that sends a 64 MiB body as fast as it can, and reports how
/// much it had written when a write stalled for 300 ms: that is where the
/// whole path (our buffers and the kernel's) is full.
fn firehose(total: usize) -> (SocketAddr, mpsc::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = [0u8; 1024];
        let _ = s.read(&mut head).unwrap();
        s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n").as_bytes()).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
        let chunk = vec![b'z'; 64 * 1024];
        let (mut sent, mut reported) = (0, false);
        while sent < total {
            match s.write(&chunk[..chunk.len().min(total - sent)]) {
                Ok(n) => sent += n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if !reported {
                        tx.send(sent).unwrap();
                        reported = true;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        if !reported {
            tx.send(sent).unwrap();
        }
    });
    (addr, rx)
}

#[test]
fn a_slow_reader_is_held_back_by_backpressure_with_bounded_buffers() {
    const TOTAL: usize = 64 << 20;
    let (backend, stalled) = firehose(TOTAL);
    let lb = Running::start(&[backend], config(Mechanism::best()));
    let mut conn = client(lb.addr);
    conn.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    // The client reads nothing until the backend cannot write any more.
    let sent = stalled.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(sent < TOTAL, "the backend was stopped before the end ({sent} bytes)");
    let peak = lb.stats.peak_per_connection.load(Ordering::Relaxed) as usize;
    let buffer = Config::default().buffer_size;
    assert!(peak <= buffer + 1024, "one connection held {peak} bytes; the bound is one buffer (+ a head)");
    // Now read it all: nothing lost, nothing duplicated.
    let mut reader = BufReader::new(conn);
    let r = read_response(&mut reader, false).unwrap();
    assert_eq!((r.status, r.body.len()), (200, TOTAL));
    assert!(r.body.iter().all(|&b| b == b'z'));
}

#[test]
fn in_loop_health_checks_take_a_failing_backend_out_and_bring_it_back() {
    let b = backends(2);
    let mut cfg = config(Mechanism::best());
    cfg.health.probe = Probe::Http("/health".into());
    cfg.health.interval = Duration::from_millis(10);
    cfg.health.fall = 2;
    cfg.health.rise = 2;
    let lb = Running::start(&addrs(&b), cfg);
    b[1].set_healthy(false);
    // Each request below takes about 5 ms at the backend, so a bounded
    // number of them spans many probe intervals.
    let get =
        |path: &str| exchange(&mut BufReader::new(client(lb.addr)), &format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
    let mut rounds = 0;
    while lb.pool.nodes[1].is_healthy() {
        assert_eq!(get("/slow?ms=5").status, 200);
        rounds += 1;
        assert!(rounds < 2_000, "never marked down");
    }
    for _ in 0..4 {
        assert!(get("/").text().contains("backend-1"), "only the healthy backend gets traffic");
    }
    b[1].set_healthy(true);
    let mut rounds = 0;
    while !lb.pool.nodes[1].is_healthy() {
        assert_eq!(get("/slow?ms=5").status, 200);
        rounds += 1;
        assert!(rounds < 2_000, "never brought back");
    }
}

#[test]
fn shutdown_answers_next_requests_with_close_lets_one_in_flight_finish_and_closes_quiet_clients() {
    let b = backends(1);
    let lb = Running::start(&addrs(&b), config(Mechanism::best()));
    // Kept alive, just answered: its next request may be on the way.
    let mut kept = BufReader::new(client(lb.addr));
    assert_eq!(exchange(&mut kept, "GET / HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    // Connected, first request not sent yet: it may be on the way too.
    let mut fresh = BufReader::new(client(lb.addr));
    // Answered, then quiet: it will send nothing more.
    let mut quiet = BufReader::new(client(lb.addr));
    assert_eq!(exchange(&mut quiet, "GET / HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    let mut busy = BufReader::new(client(lb.addr));
    busy.get_mut().write_all(b"GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    // Make sure the loop has accepted the others before stopping.
    let mut probe = BufReader::new(client(lb.addr));
    assert_eq!(exchange(&mut probe, "GET / HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    let mut lb = lb;
    let thread = lb.thread.take().unwrap();
    lb.shutdown.trigger();
    let mut buf = [0u8; 1];
    // Within the grace, each is served once more, told the connection closes, and closed.
    for (conn, who) in [(&mut kept, "the kept-alive client"), (&mut fresh, "the new client")] {
        let r = exchange(conn, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!((r.status, r.header("connection")), (200, Some("close")), "{who}");
        assert_eq!(conn.read(&mut buf).unwrap(), 0, "{who}: then closed");
    }
    let r = read_response(&mut busy, false).unwrap();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")), "the request in flight finished");
    // The quiet one is closed once the grace is over, without an answer.
    assert_eq!(quiet.read(&mut buf).unwrap(), 0, "the quiet client was closed");
    thread.join().unwrap().unwrap();
}
