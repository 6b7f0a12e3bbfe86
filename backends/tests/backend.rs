//! The test backend, exercised over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{BufReader, Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use backends::client::{self, HttpResponse};
use backends::{BackendConfig, StatsSnapshot, spawn};

fn backend(name: &str) -> backends::BackendHandle {
    spawn(BackendConfig::named(name)).unwrap()
}

#[test]
fn root_names_the_backend() {
    let b = backend("alpha");
    let r = client::get(b.addr(), "/").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Hello from alpha (GET /)\n");
    let r = client::get(b.addr(), "/api/users?id=3").unwrap();
    assert_eq!(r.text(), "Hello from alpha (GET /api/users)\n");
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let b = backend("ka");
    let mut stream = client::connect(b.addr()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..3 {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = client::read_response(&mut reader, false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
    }
    stream.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let r = client::read_response(&mut reader, false).unwrap();
    let stats: StatsSnapshot = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.requests_served, 3, "counted before this response");
    assert_eq!(r.header("connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap(), 0, "closed after Connection: close");
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let b = backend("old");
    let r = client::send(b.addr(), b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn health_can_be_switched_off_and_on() {
    let b = backend("h");
    assert_eq!(client::get(b.addr(), "/health").unwrap().status, 200);
    assert_eq!(client::get(b.addr(), "/admin/health/down").unwrap().status, 200);
    assert_eq!(client::get(b.addr(), "/health").unwrap().status, 503);
    b.set_healthy(true);
    assert_eq!(client::get(b.addr(), "/health").unwrap().status, 200);
    client::get(b.addr(), "/admin/health/down").unwrap();
    client::get(b.addr(), "/admin/health/up").unwrap();
    assert_eq!(client::get(b.addr(), "/health").unwrap().status, 200);
}

#[test]
fn echo_returns_the_head_as_received_and_the_body() {
    let b = backend("e");
    let req = b"POST /echo HTTP/1.1\r\nHost: e\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let r = client::send(b.addr(), req).unwrap();
    assert_eq!(r.body, req.to_vec());
}

#[test]
fn chunked_request_bodies_are_decoded() {
    let b = backend("c");
    let r = client::send(
        b.addr(),
        b"POST /echo HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    )
    .unwrap();
    assert!(r.text().ends_with("\r\n\r\nhello world"), "{:?}", r.text());
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn bytes_sends_n_bytes_plain_or_chunked() {
    let b = backend("b");
    let r = client::get(b.addr(), "/bytes/200000").unwrap();
    assert_eq!(r.header("content-length"), Some("200000"));
    assert_eq!(r.body, pattern(200_000));
    let r = client::get(b.addr(), "/bytes/200000?chunked=1").unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, pattern(200_000));
    assert_eq!(client::get(b.addr(), "/bytes/0").unwrap().body.len(), 0);
    assert_eq!(client::get(b.addr(), "/bytes/lots").unwrap().status, 400);
}

#[test]
fn head_gets_headers_without_a_body() {
    let b = backend("head");
    let mut s = client::connect(b.addr()).unwrap();
    s.write_all(b"HEAD /bytes/1000 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(s);
    let head = client::read_response(&mut reader, true).unwrap();
    assert_eq!(head.header("content-length"), Some("1000"));
    // The next response follows at once: no body bytes were sent for HEAD.
    let next = client::read_response(&mut reader, false).unwrap();
    assert_eq!(next.text(), "Hello from head (GET /)\n");
}

#[test]
fn slow_status_and_stats_endpoints() {
    let b = backend("s");
    assert_eq!(client::get(b.addr(), "/slow?ms=20").unwrap().text(), "s: slept 20 ms\n");
    assert_eq!(client::get(b.addr(), "/slow?ms=x").unwrap().status, 400);
    assert_eq!(client::get(b.addr(), "/status/418").unwrap().status, 418);
    assert_eq!(client::get(b.addr(), "/status/99").unwrap().status, 400);
    let r = client::get(b.addr(), "/stats").unwrap();
    assert_eq!(r.header("content-type"), Some("application/json"));
    let stats: StatsSnapshot = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(stats.name, "s");
    assert!(stats.healthy);
    assert_eq!(stats.connections_accepted, 5);
    assert_eq!(stats.requests_served, 4);
    assert_eq!(b.stats().requests_served.load(Ordering::Relaxed), 5);
}

#[test]
fn fail_rate_one_fails_every_ordinary_request_but_not_health() {
    let b = spawn(BackendConfig { fail_rate: 1.0, ..BackendConfig::named("f") }).unwrap();
    assert_eq!(client::get(b.addr(), "/").unwrap().status, 500);
    assert_eq!(client::get(b.addr(), "/health").unwrap().status, 200);
}

fn status_of(b: &backends::BackendHandle, raw: &[u8]) -> u16 {
    client::send(b.addr(), raw).map(|r: HttpResponse| r.status).unwrap()
}

#[test]
fn malformed_and_ambiguous_requests_are_refused() {
    let b = backend("m");
    assert_eq!(status_of(&b, b"GARBAGE\r\n\r\n"), 400);
    assert_eq!(
        status_of(&b, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
    assert_eq!(status_of(&b, b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
    assert_eq!(status_of(&b, b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
    assert_eq!(status_of(&b, b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
    assert_eq!(status_of(&b, b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400);
    assert_eq!(status_of(&b, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    assert_eq!(status_of(&b, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 400);
    let mut big = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    big.extend(vec![b'a'; 20_000]);
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_of(&b, &big), 431);
    let body_too_big = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", 9 * 1024 * 1024);
    assert_eq!(status_of(&b, body_too_big.as_bytes()), 413);
}

#[test]
fn clients_that_vanish_do_not_hurt_the_backend() {
    let b = backend("v");
    for partial in [&b"GET / HT"[..], b"", b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc", &[0xff; 64]] {
        let mut s = client::connect(b.addr()).unwrap();
        s.write_all(partial).unwrap();
        drop(s);
    }
    assert_eq!(client::get(b.addr(), "/").unwrap().status, 200);
}

#[test]
fn latency_is_applied_and_idle_connections_are_closed() {
    let b = spawn(BackendConfig {
        latency: Duration::from_millis(5),
        idle_timeout: Duration::from_millis(50),
        ..BackendConfig::named("l")
    })
    .unwrap();
    assert_eq!(client::get(b.addr(), "/").unwrap().status, 200);
    // An idle keep-alive connection is closed by the backend: read sees EOF.
    let mut s = client::connect(b.addr()).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).unwrap(), 0);
}

#[test]
fn shutdown_closes_the_listener() {
    let b = backend("gone");
    let addr = b.addr();
    b.shutdown().unwrap();
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn a_post_seen_twice_with_the_same_request_id_is_counted_as_a_duplicate() {
    let b = backends::spawn(backends::BackendConfig::named("dup")).unwrap();
    let post = |id: &str| {
        let raw = format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
        );
        assert_eq!(backends::client::send(b.addr(), raw.as_bytes()).unwrap().status, 200);
    };
    post("a");
    post("b");
    assert_eq!((b.snapshot().posts, b.snapshot().duplicate_posts), (2, 0));
    post("a");
    assert_eq!((b.snapshot().posts, b.snapshot().duplicate_posts), (3, 1));
    // /stats says the same, as JSON.
    let stats = backends::client::get(b.addr(), "/stats").unwrap().text();
    assert!(stats.contains("\"duplicate_posts\":1"), "{stats}");
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout() {
    use std::io::Read;
    let config = backends::BackendConfig {
        idle_timeout: std::time::Duration::from_millis(50),
        idle_jitter: std::time::Duration::from_millis(50),
        ..backends::BackendConfig::named("idle")
    };
    let b = backends::spawn(config).unwrap();
    let mut conn = backends::client::connect(b.addr()).unwrap();
    // Nothing sent: the backend closes within 50-100 ms; the client's read
    // timeout (seconds) is only the bound.
    assert_eq!(conn.read(&mut [0u8; 16]).unwrap(), 0, "the backend closed the idle connection");
}
