//! The real chapter 5 binaries, `high_perf_lb` (with each poller) and
//! `tokio_lb`: answers in turn, keep-alive, a silent backend's 504, and
//! draining on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use backends::client::{self, read_response};
use backends::{BackendHandle, spawn_many};
use tests::{binary, start};

fn lb(bin: &str, args: &[&str]) -> tests::Server {
    let path = binary("ch05-event-loop", bin);
    let mut all = vec!["-p", "0", "--log-format", "json", "--health-check", "off"];
    all.extend_from_slice(args);
    let message =
        if bin == "tokio_lb" { "tokio load balancer listening" } else { "high-performance load balancer listening" };
    start(&path, &all, message)
}

fn backend_args(b: &[BackendHandle]) -> Vec<String> {
    b.iter().flat_map(|h| ["--backend".to_string(), h.addr().to_string()]).collect()
}

/// Six requests on one keep-alive connection: backend-1, 2, 3, 1, 2, 3.
fn names_on_one_connection(addr: SocketAddr) -> Vec<String> {
    let mut conn = BufReader::new(client::connect(addr).unwrap());
    (0..6)
        .map(|_| {
            conn.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            let r = read_response(&mut conn, false).unwrap();
            assert_eq!((r.status, r.header("connection")), (200, Some("keep-alive")), "{}", r.text());
            r.text().trim_start_matches("Hello from ").split(' ').next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn every_poller_and_the_tokio_twin_answer_in_turn_with_keep_alive() {
    let b = spawn_many(3).unwrap();
    let args = backend_args(&b);
    let mut runs: Vec<(&str, Vec<&str>)> = vec![("high_perf_lb", vec!["--poller", "poll"]), ("tokio_lb", vec![])];
    if cfg!(target_os = "linux") {
        runs.push(("high_perf_lb", vec!["--poller", "epoll"]));
    }
    for (bin, extra) in runs {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(extra.iter().copied());
        let server = lb(bin, &all);
        assert_eq!(
            names_on_one_connection(server.addr),
            ["backend-1", "backend-2", "backend-3", "backend-1", "backend-2", "backend-3"],
            "{bin} {extra:?}"
        );
    }
}

#[test]
fn an_unknown_poller_is_refused_with_the_valid_names() {
    let out = tests::run(&binary("ch05-event-loop", "high_perf_lb"), &["--poller", "select"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("epoll") && err.contains("poll") && err.contains("kqueue"), "{err}");
}

#[test]
fn a_silent_backend_is_a_504_from_both_binaries() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = silent.local_addr().unwrap().to_string();
    for bin in ["high_perf_lb", "tokio_lb"] {
        let server = lb(bin, &["--backend", &spec, "--response-timeout-ms", "200"]);
        let r = client::get(server.addr, "/").unwrap();
        assert_eq!(r.status, 504, "{bin}: {}", r.text());
    }
}

#[cfg(unix)]
#[test]
fn sigterm_drains_a_slow_request_in_progress_then_exits() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    for (bin, title) in
        [("high_perf_lb", "high-performance load balancer statistics"), ("tokio_lb", "tokio load balancer statistics")]
    {
        let b = spawn_many(1).unwrap();
        let spec = b[0].addr().to_string();
        let mut server = lb(bin, &["--backend", &spec]);
        let addr = server.addr;
        // An idle keep-alive client must not hold the shutdown up.
        let _idle = client::connect(addr).unwrap();
        let request = std::thread::spawn(move || client::get(addr, "/slow?ms=400").unwrap());
        // Wait (bounded) until the request has reached the backend.
        let deadline = Instant::now() + Duration::from_secs(10);
        while b[0].stats().active_connections.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "{bin}: the request never reached the backend");
            std::thread::yield_now();
        }
        kill(Pid::from_raw(server.pid() as i32), Signal::SIGTERM).unwrap();
        let response = request.join().unwrap();
        assert_eq!(response.status, 200, "{bin}: the in-flight request finished: {}", response.text());
        // The statistics table comes at exit, after the drain.
        let table = server.wait_for_line(Duration::from_secs(20), |l| l.contains(title));
        assert!(table.is_some(), "{bin}: the statistics table is printed at exit");
        // Its row counts the bytes both ways (the twin once counted none).
        let row = server.wait_for_line(Duration::from_secs(20), |l| l.contains(&spec)).expect("the backend's row");
        let columns: Vec<&str> = row.split_whitespace().collect();
        let (bytes_in, bytes_out): (u64, u64) = (columns[6].parse().unwrap(), columns[7].parse().unwrap());
        assert!(bytes_in > 0 && bytes_out > 0, "{bin}: {row}");
        let status = server.wait_exit(Duration::from_secs(20)).expect("it exits after draining");
        assert!(status.success(), "{bin}: {status:?}");
    }
}

/// Under a tiny open-files limit (64, set by the shell before `exec`), 40
/// slow requests at once need more sockets than there are: requests wait
/// in line for a descriptor instead of failing.
#[cfg(target_os = "linux")]
#[test]
fn with_few_descriptors_requests_wait_in_line_instead_of_failing() {
    let b = spawn_many(1).unwrap();
    let spec = b[0].addr().to_string();
    let bin = binary("ch05-event-loop", "high_perf_lb");
    let script = "ulimit -n 64 && RUST_LOG=info,ch05_event_loop::lb::conn=debug exec \"$0\" \"$@\"";
    let args = [
        "-c",
        script,
        bin.to_str().unwrap(),
        "-p",
        "0",
        "--log-format",
        "json",
        "--health-check",
        "off",
        "--backend",
        &spec,
    ];
    let server = start(&std::path::PathBuf::from("/bin/sh"), &args, "high-performance load balancer listening");
    let mut conns: Vec<_> = (0..40).map(|_| client::connect(server.addr).unwrap()).collect();
    for c in &mut conns {
        c.write_all(b"GET /slow?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    }
    for (i, c) in conns.into_iter().enumerate() {
        let r = read_response(&mut BufReader::new(c), false).unwrap();
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    let queued = server.wait_for_line(Duration::from_secs(5), |l| l.contains("waits in line"));
    assert!(queued.is_some(), "the limit was reached, and requests waited");
}
