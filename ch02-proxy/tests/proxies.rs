//! The reverse and forward proxies over real sockets, with real backends
//! and with upstream servers that misbehave on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use backends::client::{self, read_response};
use backends::{BackendConfig, spawn};
use common::{TIMEOUT, blackhole, forward_proxy, raw_exchange, reverse_proxy, status_of, upstream};

// ------------------------------------------------------------- reverse proxy

#[test]
fn reverse_proxy_returns_the_backends_answer() {
    let backend = spawn(BackendConfig::named("b1")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    let r = client::get(proxy.addr, "/hello").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Hello from b1 (GET /hello)\n");
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn reverse_proxy_adds_forwarding_headers_and_removes_hop_by_hop_ones() {
    let backend = spawn(BackendConfig::named("b1")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    let r = client::send(
        proxy.addr,
        b"GET /echo HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\n\r\n",
    )
    .unwrap();
    let seen = r.text();
    assert!(seen.contains("X-Forwarded-For: 203.0.113.9, 127.0.0.1\r\n"), "{seen}");
    assert!(seen.contains("X-Real-IP: 127.0.0.1\r\n"), "{seen}");
    assert!(seen.contains("X-Forwarded-Proto: http\r\n"), "{seen}");
    assert!(seen.contains("X-Forwarded-Host: shop.example\r\n"), "{seen}");
    assert!(seen.contains("Connection: close\r\n"), "{seen}");
    for gone in ["X-Hop", "Keep-Alive", "Proxy-Authorization", "keep-alive"] {
        assert!(!seen.contains(gone), "{gone} was forwarded: {seen}");
    }
}

#[test]
fn reverse_proxy_forwards_request_bodies_by_length_and_chunked() {
    let backend = spawn(BackendConfig::named("b1")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    let r =
        client::send(proxy.addr, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world").unwrap();
    assert!(r.text().ends_with("\r\n\r\nhello world"), "{}", r.text());
    let r = client::send(
        proxy.addr,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .unwrap();
    assert!(r.text().contains("Transfer-Encoding: chunked\r\n"), "{}", r.text());
    assert!(r.text().ends_with("\r\n\r\nhello world"), "{}", r.text());
}

#[test]
fn reverse_proxy_answers_expect_100_continue_itself() {
    let backend = spawn(BackendConfig::named("b1")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    let mut s = client::connect(proxy.addr).unwrap();
    s.write_all(b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n").unwrap();
    let mut first = [0u8; 25];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"data").unwrap();
    let r = read_response(&mut BufReader::new(s), false).unwrap();
    assert!(r.text().ends_with("data") && !r.text().contains("Expect"), "{}", r.text());
}

#[test]
fn reverse_proxy_streams_large_and_chunked_responses() {
    let backend = spawn(BackendConfig::named("b1")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    let plain = client::get(proxy.addr, "/bytes/3000000").unwrap();
    assert_eq!(plain.body.len(), 3_000_000);
    let chunked = client::get(proxy.addr, "/bytes/3000000?chunked=1").unwrap();
    assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
    assert_eq!(chunked.body, plain.body);
    // HEAD: headers say 100 bytes, none follow, and the proxy does not wait for them.
    let mut s = client::connect(proxy.addr).unwrap();
    s.write_all(b"HEAD /bytes/100 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert!(all.contains("Content-Length: 100\r\n") && all.ends_with("\r\n\r\n"), "{all:?}");
}

#[test]
fn reverse_proxy_with_the_backend_down_answers_502_saying_why() {
    let addr = {
        let b = spawn(BackendConfig::named("gone")).unwrap();
        b.addr()
    }; // dropped: nothing listens there now
    let proxy = reverse_proxy(addr, |_| {});
    let r = client::get(proxy.addr, "/").unwrap();
    assert_eq!(r.status, 502);
    assert!(r.text().contains("cannot connect to 127.0.0.1"), "{}", r.text());
}

#[test]
fn reverse_proxy_with_a_slow_backend_answers_504() {
    let backend = spawn(BackendConfig::named("slow")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |c| c.timeouts.response = Duration::from_millis(100));
    let r = client::get(proxy.addr, "/slow?ms=5000").unwrap();
    assert_eq!(r.status, 504);
    assert!(r.text().contains("did not answer within"), "{}", r.text());
}

#[test]
fn reverse_proxy_with_an_unreachable_backend_answers_504() {
    let hole = blackhole();
    let proxy = reverse_proxy(hole.addr, |c| c.timeouts.connect = Duration::from_millis(100));
    let r = client::get(proxy.addr, "/").unwrap();
    assert_eq!(r.status, 504);
    assert!(r.text().contains("did not accept a connection"), "{}", r.text());
}

#[test]
fn reverse_proxy_answers_502_for_an_invalid_or_missing_response() {
    let garbage = upstream(|mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"SURPRISE\r\n\r\n");
    });
    let proxy = reverse_proxy(garbage.addr, |_| {});
    assert_eq!(client::get(proxy.addr, "/").unwrap().status, 502);

    let hangup = upstream(|mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
    });
    let proxy = reverse_proxy(hangup.addr, |_| {});
    let r = client::get(proxy.addr, "/").unwrap();
    assert_eq!(r.status, 502);
    assert!(r.text().contains("closed the connection without answering"), "{}", r.text());

    let smuggler = upstream(|mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok");
    });
    let proxy = reverse_proxy(smuggler.addr, |_| {});
    assert_eq!(client::get(proxy.addr, "/").unwrap().status, 502);
}

#[test]
fn reverse_proxy_refuses_connect() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    let r = raw_exchange(proxy.addr, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n");
    assert_eq!(status_of(&r), 405);
    assert_eq!(backend.stats().connections_accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn a_client_that_vanishes_does_not_hurt_the_proxy() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    for partial in [&b"GET / HT"[..], b"", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"] {
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        s.write_all(partial).unwrap();
        drop(s);
    }
    assert_eq!(client::get(proxy.addr, "/").unwrap().status, 200);
}

// ------------------------------------------------------------- forward proxy

#[test]
fn connect_opens_a_tunnel_to_an_allowed_port() {
    let backend = spawn(BackendConfig::named("target")).unwrap();
    let port = backend.addr().port();
    let proxy = forward_proxy(|c| c.allow_port(port));
    let mut s = client::connect(proxy.addr).unwrap();
    let target = backend.addr();
    // The first request rides along with the CONNECT head, as a TLS hello would.
    s.write_all(
        format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\nGET /tunnelled HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let established = read_response(&mut reader, true).unwrap();
    assert_eq!(established.status, 200);
    let r = read_response(&mut reader, false).unwrap();
    assert_eq!(r.text(), "Hello from target (GET /tunnelled)\n");
    s.shutdown(Shutdown::Write).unwrap();
}

#[test]
fn connect_to_a_port_not_allowed_is_403_and_nothing_is_contacted() {
    let backend = spawn(BackendConfig::named("target")).unwrap();
    let proxy = forward_proxy(|_| {});
    let target = backend.addr();
    let r = raw_exchange(proxy.addr, format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes());
    assert_eq!(status_of(&r), 403);
    assert!(r.contains("only to port(s) 443") && r.contains("--allow-port"), "{r}");
    assert_eq!(backend.stats().connections_accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn connect_to_a_closed_port_is_502_and_to_a_silent_one_504() {
    let closed = {
        let b = spawn(BackendConfig::named("x")).unwrap();
        b.addr()
    };
    let hole = blackhole();
    let proxy = forward_proxy(|c| {
        c.allow_port(closed.port());
        c.allow_port(hole.addr.port());
        c.timeouts.connect = Duration::from_millis(100);
    });
    let r = raw_exchange(proxy.addr, format!("CONNECT {closed} HTTP/1.1\r\nHost: {closed}\r\n\r\n").as_bytes());
    assert_eq!(status_of(&r), 502, "{r}");
    let h = hole.addr;
    let r = raw_exchange(proxy.addr, format!("CONNECT {h} HTTP/1.1\r\nHost: {h}\r\n\r\n").as_bytes());
    assert_eq!(status_of(&r), 504, "{r}");
}

#[test]
fn plain_absolute_form_requests_are_forwarded_in_origin_form() {
    let backend = spawn(BackendConfig::named("origin")).unwrap();
    let port = backend.addr().port();
    let proxy = forward_proxy(|c| c.allow_port(port));
    let r = client::send(
        proxy.addr,
        format!("GET http://127.0.0.1:{port}/echo?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nProxy-Connection: keep-alive\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let seen = r.text();
    assert!(seen.starts_with("GET /echo?x=1 HTTP/1.1\r\n"), "{seen}");
    assert!(seen.contains(&format!("Host: 127.0.0.1:{port}\r\n")), "{seen}");
    assert!(!seen.contains("Proxy-Connection"), "{seen}");
}

#[test]
fn plain_requests_to_ports_not_allowed_are_403() {
    let backend = spawn(BackendConfig::named("origin")).unwrap();
    let proxy = forward_proxy(|_| {});
    let port = backend.addr().port();
    let r = raw_exchange(proxy.addr, format!("GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    assert_eq!(status_of(&r), 403);
    assert!(r.contains("only to port(s) 80"), "{r}");
}

#[test]
fn a_forward_proxy_needs_an_absolute_url() {
    let proxy = forward_proxy(|_| {});
    let r = raw_exchange(proxy.addr, b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_of(&r), 400);
    let r = raw_exchange(proxy.addr, b"GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(status_of(&r), 400);
    assert!(r.contains("CONNECT"), "{r}");
}

#[test]
fn an_idle_tunnel_is_closed() {
    let backend = spawn(BackendConfig::named("t")).unwrap();
    let port = backend.addr().port();
    let proxy = forward_proxy(|c| {
        c.allow_port(port);
        c.timeouts.idle = Duration::from_millis(100);
    });
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let t = backend.addr();
    s.write_all(format!("CONNECT {t} HTTP/1.1\r\nHost: {t}\r\n\r\n").as_bytes()).unwrap();
    let mut all = String::new();
    // 200, then silence, then the proxy closes the idle tunnel: EOF.
    s.read_to_string(&mut all).unwrap();
    assert!(all.starts_with("HTTP/1.1 200 Connection Established\r\n\r\n"), "{all:?}");
}
