//! `rate_limited_lb` (chapter 7) with real clients from several loopback
//! addresses (127.0.0.2, 127.0.0.3, ...: different clients to the
//! limiter): the burst passes, the rest get 429 with `Retry-After` and
//! `RateLimit` fields and never reach a backend, other clients are not
//! affected, a refused request keeps its connection usable, delay mode
//! holds instead of refusing, a dry run lets everything through and
//! counts, and a bad flag is explained.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::Duration;

use backends::client::{HttpResponse, IO_TIMEOUT, read_response};
use backends::{BackendConfig, BackendHandle};
use socket2::{Domain, Socket, Type};
use tests::{binary, run, start};

const WAIT: Duration = Duration::from_secs(10);

fn rate_limited_lb(backend: &BackendHandle, extra: &[&str]) -> tests::Server {
    let addr = backend.addr().to_string();
    let mut args = vec!["-p", "0", "--log-format", "json", "--health-check", "off", "--backend", addr.as_str()];
    args.extend_from_slice(extra);
    start(&binary("ch07-rate-limit", "rate_limited_lb"), &args, "rate-limited load balancer listening")
}

/// A connection from `127.0.0.<last>`: to the limiter, a different client.
fn connect_from(last: u8, to: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let from = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, last), 0);
    socket.bind(&from.into()).unwrap();
    socket.connect_timeout(&to.into(), IO_TIMEOUT).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// One GET from `127.0.0.<last>` on its own connection.
fn get_from(last: u8, to: SocketAddr, path: &str) -> HttpResponse {
    let mut stream = connect_from(last, to);
    write!(stream, "GET {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n").unwrap();
    read_response(&mut BufReader::new(stream), false).unwrap()
}

fn statuses(responses: &[HttpResponse]) -> Vec<u16> {
    responses.iter().map(|r| r.status).collect()
}

#[test]
fn ten_at_once_give_five_200s_and_five_429s_and_another_client_is_unaffected() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let lb = rate_limited_lb(&backend, &["--rate", "1", "--burst", "5"]);
    let got: Vec<HttpResponse> = (0..10).map(|_| get_from(2, lb.addr, "/")).collect();
    assert_eq!(statuses(&got), [200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
    for refused in got.iter().filter(|r| r.status == 429) {
        // 1 a second: the next one is due within a second.
        assert_eq!(refused.header("retry-after"), Some("1"), "{refused:?}");
        assert_eq!(refused.header("ratelimit-policy"), Some("\"client\";q=5;w=5"));
        assert_eq!(refused.header("ratelimit"), Some("\"client\";r=0;t=1"));
        assert!(refused.text().contains("client limit"), "{}", refused.text());
    }
    // A refused request never reached the backend.
    assert_eq!(backend.snapshot().requests_served, 5);
    // Another address is another client.
    assert_eq!(get_from(3, lb.addr, "/").status, 200);
    assert_eq!(backend.snapshot().requests_served, 6);
}

#[test]
fn a_refused_request_leaves_its_connection_usable() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let lb = rate_limited_lb(&backend, &["--rate", "1", "--burst", "2"]);
    let mut stream = connect_from(4, lb.addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut seen = Vec::new();
    for _ in 0..4 {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: lb\r\n\r\n").unwrap();
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!(r.header("connection"), Some("keep-alive"), "{r:?}");
        seen.push(r.status);
    }
    assert_eq!(seen, [200, 200, 429, 429]);
}

#[test]
fn route_and_global_limits_apply_beside_the_client_limit() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let lb = rate_limited_lb(
        &backend,
        &["--rate", "100", "--burst", "100", "--rate-route", "/login=1:2", "--rate-global", "1:6"],
    );
    // /login: 2 per client.
    let login: Vec<u16> = (0..3).map(|_| get_from(5, lb.addr, "/login").status).collect();
    assert_eq!(login, [200, 200, 429]);
    // The global allowance (6) is shared: 4 more from anyone, then 429.
    let rest: Vec<u16> = (0..5).map(|i| get_from(6 + i, lb.addr, "/").status).collect();
    assert_eq!(rest, [200, 200, 200, 200, 429]);
    let refused = get_from(20, lb.addr, "/");
    assert_eq!(refused.header("ratelimit").map(|v| v.starts_with("\"global\";r=0;t=")), Some(true), "{refused:?}");
}

#[test]
fn delay_mode_serves_the_burst_late_instead_of_refusing_it() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    // 20 a second: the third request waits ~100 ms, the fourth is refused.
    let lb = rate_limited_lb(&backend, &["--rate", "20", "--burst", "3", "--rate-mode", "delay"]);
    let mut streams: Vec<TcpStream> = (0..4).map(|_| connect_from(30, lb.addr)).collect();
    for s in &mut streams {
        s.write_all(b"GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n").unwrap();
    }
    let mut got: Vec<u16> =
        streams.into_iter().map(|s| read_response(&mut BufReader::new(s), false).unwrap().status).collect();
    got.sort_unstable();
    assert_eq!(got, [200, 200, 200, 429]);
    assert_eq!(backend.snapshot().requests_served, 3);
}

#[test]
fn a_dry_run_limits_nothing_and_reports_what_it_would_have_refused() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let mut lb = rate_limited_lb(&backend, &["--rate", "1", "--burst", "1", "--dry-run"]);
    let got: Vec<u16> = (0..4).map(|_| get_from(40, lb.addr, "/").status).collect();
    assert_eq!(got, [200, 200, 200, 200]);
    let warned = lb.wait_for_line(WAIT, |l| l.contains("would rate limit 127.0.0.40 by the client limit"));
    assert!(warned.is_some());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(lb.pid() as i32), nix::sys::signal::Signal::SIGUSR1).unwrap();
    let line = lb.wait_for_line(WAIT, |l| l.contains("let through by the dry run"));
    assert!(line.is_some_and(|l| l.contains("3 let through by the dry run")));
    assert!(lb.is_running());
}

#[test]
fn the_log_names_a_refused_client_once_then_counts() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let mut lb = rate_limited_lb(&backend, &["--rate", "1", "--burst", "1"]);
    for _ in 0..6 {
        get_from(50, lb.addr, "/");
    }
    assert!(lb.wait_for_line(WAIT, |l| l.contains("rate limited 127.0.0.50 by the client limit")).is_some());
    // Stopping sums up what was counted since.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(lb.pid() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let summary =
        lb.wait_for_line(WAIT, |l| l.contains("rate limited 127.0.0.50 by the client limit: 4 more refused since"));
    assert!(summary.is_some());
    let report = lb.wait_for_line(WAIT, |l| l.contains("requests checked"));
    assert!(report.is_some_and(|l| l.contains("6 requests checked: 1 passed at once, 0 delayed, 5 refused")));
    assert!(lb.wait_exit(WAIT).is_some_and(|s| s.success()));
}

#[test]
fn bad_limits_are_explained() {
    let bin = binary("ch07-rate-limit", "rate_limited_lb");
    for (args, says) in [
        (&["--rate-key", "xff"][..], "--rate-key xff needs --trusted-proxy"),
        (&["--rate", "fast"][..], "is not a rate"),
        (&["--rate-route", "api=10"][..], "a route prefix starts with /"),
        (&["--rate-mode", "slow"][..], "use reject or delay"),
        (&["--rate-key", "cookie"][..], "use ip, xff, route or header:NAME"),
    ] {
        let out = run(&bin, args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
