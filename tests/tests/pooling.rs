//! `pooled_lb` (chapter 6) with real clients and backends: backend
//! connections are reused across clients, a backend's `Connection: close`
//! and `Keep-Alive: timeout=` are obeyed, a connection the backend closed
//! is never used, a request that meets the race is resent only when that
//! is safe (a POST that left is never sent twice), pipelining and chunked
//! bodies pass both ways, and a backend killed mid-run costs no request.
//!
//! The scripted backend below counts what it sees (connections accepted,
//! requests by method) and reports when a connection ends and who ended
//! it, so the tests wait for events, never for fixed times.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use backends::client::{self, read_response};
use tests::{binary, start};

const WAIT: Duration = Duration::from_secs(10);

fn pooled_lb(backends: &[SocketAddr], extra: &[&str]) -> tests::Server {
    let specs: Vec<String> = backends.iter().map(SocketAddr::to_string).collect();
    let mut args = vec!["-p", "0", "--log-format", "json", "--health-check", "off"];
    for s in &specs {
        args.extend(["--backend", s.as_str()]);
    }
    args.extend_from_slice(extra);
    start(&binary("ch06-pooling", "pooled_lb"), &args, "pooled load balancer listening")
}

/// How a connection to the scripted backend ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The backend closed it after it was idle for `idle_close`.
    BackendClosedIdle,
    /// The balancer closed it (or reset it).
    BalancerClosed,
    /// The backend dropped it on purpose (the script's `drop_nth`).
    Dropped,
    /// The backend closed it after answering with `Connection: close`.
    ClosedAfterAnswer,
}

/// What the scripted backend does.
#[derive(Debug, Clone, Copy, Default)]
struct Script {
    /// Extra header lines on every response (each ending in CRLF).
    extra: &'static str,
    /// Close a connection idle this long.
    idle_close: Option<Duration>,
    /// On this request of a connection (1 = first), read it whole and
    /// close without answering: the backend closing just as we sent.
    drop_nth: Option<u32>,
}

struct Scripted {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    gets: Arc<AtomicU64>,
    posts: Arc<AtomicU64>,
    ends: Receiver<End>,
}

impl Scripted {
    fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted, gets, posts): (Arc<AtomicU64>, Arc<AtomicU64>, Arc<AtomicU64>) = Default::default();
        let (tx, ends) = channel();
        let counters = (Arc::clone(&accepted), Arc::clone(&gets), Arc::clone(&posts));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counters.0.fetch_add(1, Ordering::SeqCst);
                let (gets, posts, tx) = (Arc::clone(&counters.1), Arc::clone(&counters.2), tx.clone());
                std::thread::spawn(move || serve(stream, script, &gets, &posts, &tx));
            }
        });
        Self { addr, accepted, gets, posts, ends }
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    fn next_end(&self) -> End {
        self.ends.recv_timeout(WAIT).expect("a backend connection ends")
    }
}

/// Serves one connection as the script says; reports how it ended.
fn serve(mut stream: TcpStream, script: Script, gets: &AtomicU64, posts: &AtomicU64, ends: &Sender<End>) {
    stream.set_read_timeout(Some(script.idle_close.unwrap_or(WAIT))).unwrap();
    let mut buf = Vec::new();
    for n in 1u32.. {
        // A head, or the end of the connection.
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break Ok(at + 4);
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => break Err(End::BalancerClosed),
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) && buf.is_empty() => {
                    break Err(End::BackendClosedIdle);
                }
                Err(_) => break Err(End::BalancerClosed),
            }
        };
        let head_len = match end {
            Ok(len) => len,
            Err(how) => {
                let _ = stream.shutdown(Shutdown::Both);
                let _ = ends.send(how);
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_len]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
            .map_or(0, |v| v.parse().unwrap());
        while buf.len() < head_len + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        let method = head.split(' ').next().unwrap_or("").to_string();
        let counter = if method == "POST" { posts } else { gets };
        counter.fetch_add(1, Ordering::SeqCst);
        buf.drain(..head_len + length);
        if script.drop_nth == Some(n) {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = ends.send(End::Dropped);
            return;
        }
        let body = format!("{method} #{n} on this connection\n");
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n{body}", body.len(), script.extra);
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
        if script.extra.to_ascii_lowercase().contains("connection: close") {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = ends.send(End::ClosedAfterAnswer);
            return;
        }
    }
}

const POST: &[u8] = b"POST /order HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

#[test]
fn one_backend_connection_carries_the_requests_of_many_clients() {
    let backend = Scripted::start(Script::default());
    let lb = pooled_lb(&[backend.addr], &[]);
    for i in 1..=20 {
        // A new client connection each time: only the backend side is kept.
        let r = client::get(lb.addr, "/").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("GET #{i} on this connection\n"));
    }
    assert_eq!(backend.accepted(), 1, "twenty requests, one backend connection");

    // The statistics say the same.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(lb.pid() as i32), nix::sys::signal::Signal::SIGUSR1).unwrap();
    let line = lb.wait_for_line(WAIT, |l| l.starts_with("backend connection pool:")).expect("the pool's report");
    assert!(line.contains("1 opened, 19 reused: hit rate 95.00 %"), "{line}");
}

#[test]
fn without_the_pool_every_request_opens_a_backend_connection() {
    let backend = Scripted::start(Script::default());
    let lb = pooled_lb(&[backend.addr], &["--no-pool"]);
    for _ in 0..5 {
        let r = client::get(lb.addr, "/").unwrap();
        assert_eq!((r.status, r.text()), (200, "GET #1 on this connection\n".to_string()));
    }
    assert_eq!(backend.accepted(), 5);
}

#[test]
fn a_backend_that_says_connection_close_is_obeyed() {
    let backend = Scripted::start(Script { extra: "Connection: close\r\n", ..Script::default() });
    let lb = pooled_lb(&[backend.addr], &[]);
    for _ in 0..5 {
        let r = client::get(lb.addr, "/").unwrap();
        assert_eq!((r.status, r.text()), (200, "GET #1 on this connection\n".to_string()));
        assert_eq!(backend.next_end(), End::ClosedAfterAnswer);
    }
    assert_eq!(backend.accepted(), 5);
}

#[test]
fn a_connection_the_backend_closed_while_idle_is_never_used() {
    let backend = Scripted::start(Script { idle_close: Some(Duration::from_millis(100)), ..Script::default() });
    let lb = pooled_lb(&[backend.addr], &[]);
    for round in 1..=3 {
        let r = client::get(lb.addr, "/").unwrap();
        assert_eq!((r.status, r.text()), (200, "GET #1 on this connection\n".to_string()), "round {round}");
        // The backend closes the idle connection; the next request must
        // not be sent on it (and must not fail).
        assert_eq!(backend.next_end(), End::BackendClosedIdle);
    }
    assert_eq!(backend.accepted(), 3);
    assert_eq!(backend.gets.load(Ordering::SeqCst), 3, "no request was lost to a closed connection");
}

#[test]
fn a_get_that_meets_a_closing_connection_is_resent_on_a_fresh_one() {
    let backend = Scripted::start(Script { drop_nth: Some(2), ..Script::default() });
    let lb = pooled_lb(&[backend.addr], &[]);
    assert_eq!(client::get(lb.addr, "/").unwrap().status, 200);
    // The kept connection takes the second GET and closes without a word:
    // the balancer sends it again on a new connection.
    let r = client::get(lb.addr, "/").unwrap();
    assert_eq!((r.status, r.text()), (200, "GET #1 on this connection\n".to_string()));
    assert_eq!(backend.accepted(), 2);
    assert_eq!(backend.gets.load(Ordering::SeqCst), 3, "the dropped GET, then the resent one");
}

#[test]
fn a_post_whose_bytes_left_is_never_sent_twice() {
    let backend = Scripted::start(Script { drop_nth: Some(2), ..Script::default() });
    let lb = pooled_lb(&[backend.addr], &[]);
    assert_eq!(client::get(lb.addr, "/").unwrap().status, 200);
    // The POST goes out on the kept connection, which closes without an
    // answer: the backend may have acted on it, so it is not resent.
    let r = client::send(lb.addr, POST).unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(backend.next_end(), End::Dropped);
    assert_eq!(backend.posts.load(Ordering::SeqCst), 1, "the backend saw the POST exactly once");
    // And the balancer goes on.
    assert_eq!(client::get(lb.addr, "/").unwrap().status, 200);
    assert_eq!(backend.posts.load(Ordering::SeqCst), 1);
    // The backend only closed an idle connection, as HTTP allows: the 502
    // is not charged to it (its failures column in the report stays 0).
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(lb.pid() as i32), nix::sys::signal::Signal::SIGUSR1).unwrap();
    let spec = backend.addr.to_string();
    let row = lb.wait_for_line(WAIT, |l| l.split_whitespace().nth(1) == Some(spec.as_str())).expect("its report row");
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((columns[3], columns[4], columns[5]), ("1", "3", "0"), "weight, requests, failures: {row}");
}

#[test]
fn the_backends_keep_alive_timeout_is_honoured_before_it_runs_out() {
    // The backend promises two seconds and closes at two seconds; the
    // balancer must close first (at 1.5 s), so it never sends a request
    // into the backend's close.
    let backend = Scripted::start(Script {
        extra: "Keep-Alive: timeout=2\r\n",
        idle_close: Some(Duration::from_secs(2)),
        ..Script::default()
    });
    let lb = pooled_lb(&[backend.addr], &[]);
    assert_eq!(client::get(lb.addr, "/").unwrap().status, 200);
    assert_eq!(backend.next_end(), End::BalancerClosed);
    let r = client::get(lb.addr, "/").unwrap();
    assert_eq!((r.status, r.text()), (200, "GET #1 on this connection\n".to_string()));
}

#[test]
fn pipelined_requests_and_chunked_bodies_pass_both_ways_over_one_kept_connection() {
    let backend = backends::spawn(backends::BackendConfig::named("only")).unwrap();
    let lb = pooled_lb(&[backend.addr()], &[]);
    let mut conn = BufReader::new(client::connect(lb.addr).unwrap());
    // Three requests in one write: a chunked POST, a GET answered chunked,
    // and a GET with a fixed length.
    conn.get_mut()
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n\
              GET /bytes/70000?chunked=1 HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /bytes/10 HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let echo = read_response(&mut conn, false).unwrap();
    assert_eq!(echo.status, 200);
    assert!(echo.text().ends_with("hello world"), "{}", echo.text());
    let big = read_response(&mut conn, false).unwrap();
    assert_eq!((big.status, big.body.len()), (200, 70_000));
    let small = read_response(&mut conn, false).unwrap();
    assert_eq!((small.status, small.body.len()), (200, 10));
    assert_eq!(backend.snapshot().connections_accepted, 1, "all three on one backend connection");
}

#[test]
fn a_backend_killed_mid_run_costs_no_request() {
    let first = backends::spawn(backends::BackendConfig::named("first")).unwrap();
    let second = backends::spawn(backends::BackendConfig::named("second")).unwrap();
    let lb = pooled_lb(&[first.addr(), second.addr()], &[]);
    for _ in 0..6 {
        assert_eq!(client::get(lb.addr, "/").unwrap().status, 200);
    }
    // Both backends have connections kept in the pool; one dies.
    first.shutdown().unwrap();
    for i in 0..10 {
        let r = client::get(lb.addr, "/").unwrap();
        assert_eq!(r.status, 200, "request {i} after the kill: {}", r.text());
        assert!(r.text().contains("second"), "{}", r.text());
    }
}

#[test]
fn idle_connections_to_a_backend_marked_down_are_closed() {
    let backend = backends::spawn(backends::BackendConfig::named("only")).unwrap();
    let spec = backend.addr().to_string();
    let args = [
        "-p",
        "0",
        "--log-format",
        "json",
        "--backend",
        spec.as_str(),
        "--health-interval-ms",
        "50",
        "--unhealthy-threshold",
        "1",
    ];
    let lb = start(&binary("ch06-pooling", "pooled_lb"), &args, "pooled load balancer listening");
    assert_eq!(client::get(lb.addr, "/").unwrap().status, 200);
    backend.set_healthy(false);
    lb.wait_for_line(WAIT, |l| l.contains("backend is DOWN")).expect("the probe marks the backend down");
    // The loop closes its kept connections right after marking it down;
    // each report is a fresh look at the counters (bounded: ten reports).
    let pid = nix::unistd::Pid::from_raw(lb.pid() as i32);
    let mut seen = String::new();
    for _ in 0..10 {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
        seen = lb.wait_for_line(WAIT, |l| l.trim_start().starts_with("evicted:")).expect("the pool's report");
        if seen.contains("unhealthy 1") {
            break;
        }
    }
    assert!(seen.contains("unhealthy 1"), "{seen}");
    assert_eq!(client::get(lb.addr, "/").unwrap().status, 503, "no healthy backend is left");
}
