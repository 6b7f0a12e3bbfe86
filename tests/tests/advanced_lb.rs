//! The real `advanced_lb` binary: exact weighted shares, a backend stopped
//! mid-run and brought back (by chapter 4's checks, and by labs 4.3 and
//! 4.4), and draining on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use backends::client;
use backends::{BackendConfig, BackendHandle, spawn};
use tests::{binary, start};

fn advanced_lb(args: &[&str]) -> tests::Server {
    let bin = binary("ch04-advanced", "advanced_lb");
    let mut all = vec!["-p", "0", "--log-format", "json"];
    all.extend_from_slice(args);
    start(&bin, &all, "advanced load balancer listening")
}

fn name(addr: SocketAddr) -> String {
    let r = client::get(addr, "/").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.text().trim_start_matches("Hello from ").split(' ').next().unwrap_or("").to_string()
}

fn served(h: &BackendHandle) -> u64 {
    h.stats().requests_served.load(Ordering::SeqCst)
}

/// Backends a and b, and `advanced_lb` by round robin over them with `extra` flags.
fn rr_over_a_and_b(extra: &[&str]) -> (BackendHandle, BackendHandle, tests::Server) {
    let a = spawn(BackendConfig::named("a")).unwrap();
    let b = spawn(BackendConfig::named("b")).unwrap();
    let (sa, sb) = (a.addr().to_string(), b.addr().to_string());
    let mut args = vec!["--algorithm", "rr", "--backend", &sa, "--backend", &sb];
    args.extend_from_slice(extra);
    let lb = advanced_lb(&args);
    (a, b, lb)
}

/// Starts b again on `b_addr`, waits for the balancer's line saying
/// `up_message` about it, and checks b takes its turn again: 5 of 10.
fn b_comes_back(lb: &tests::Server, b_addr: SocketAddr, up_message: &str) -> BackendHandle {
    let b = spawn(BackendConfig { addr: b_addr, ..BackendConfig::named("b") }).unwrap();
    let sb = b_addr.to_string();
    let up = lb.wait_for_line(Duration::from_secs(20), |l| l.contains(up_message) && l.contains(&sb));
    assert!(up.is_some(), "b came back ({up_message})");
    let after: Vec<String> = (0..10).map(|_| name(lb.addr)).collect();
    assert_eq!(after.iter().filter(|n| *n == "b").count(), 5, "{after:?}");
    b
}

#[test]
fn wrr_with_weights_3_2_1_sends_exactly_300_200_100_of_600() {
    let hs: Vec<BackendHandle> = ["a", "b", "c"].iter().map(|n| spawn(BackendConfig::named(*n)).unwrap()).collect();
    let specs: Vec<String> = hs.iter().zip([3, 2, 1]).map(|(h, w)| format!("{}:{w}", h.addr())).collect();
    let lb = advanced_lb(&[
        "--algorithm",
        "wrr",
        "--health-check",
        "off",
        "--backend",
        &specs[0],
        "--backend",
        &specs[1],
        "--backend",
        &specs[2],
    ]);
    for _ in 0..600 {
        name(lb.addr);
    }
    assert_eq!([served(&hs[0]), served(&hs[1]), served(&hs[2])], [300, 200, 100]);
}

#[test]
fn a_backend_stopped_mid_run_loses_its_traffic_and_gets_it_back() {
    let (_a, b, lb) = rr_over_a_and_b(&[
        "--health-interval-ms",
        "20",
        "--unhealthy-threshold",
        "2",
        "--healthy-threshold",
        "2",
        // Passive checks would react to the first refused request; leave
        // this test to the probes.
        "--max-fails",
        "1000",
    ]);
    let (b_addr, sb) = (b.addr(), b.addr().to_string());
    let before: Vec<String> = (0..4).map(|_| name(lb.addr)).collect();
    assert!(before.contains(&"b".to_string()), "{before:?}");

    drop(b); // b stops
    let down = lb.wait_for_line(Duration::from_secs(20), |l| l.contains("backend is DOWN") && l.contains(&sb));
    assert!(down.is_some(), "b was marked down after the unhealthy threshold");
    let during: Vec<String> = (0..10).map(|_| name(lb.addr)).collect();
    assert!(during.iter().all(|n| n == "a"), "{during:?}");

    let _b = b_comes_back(&lb, b_addr, "backend is UP");
}

#[test]
fn labs_4_3_and_4_4_take_a_dead_backend_out_and_bring_it_back() {
    // Lab 4.3's counter decides when real requests take a backend down,
    // lab 4.4's schedule probes it until it is back: the C curriculum's
    // passive health check, in the real binary.
    let (a, b, lb) = rr_over_a_and_b(&[
        "--failure-counting",
        "--max-fails",
        "2",
        "--recovery-check",
        "--health-interval-ms",
        "20",
        "--healthy-threshold",
        "2",
    ]);
    let (b_addr, sb) = (b.addr(), b.addr().to_string());
    drop(b);
    // Every request still succeeds (a refused connection fails over to a),
    // and two refusals in a row take b down.
    let during: Vec<String> = (0..6).map(|_| name(lb.addr)).collect();
    assert!(during.iter().all(|n| n == "a"), "{during:?}");
    let down = lb.wait_for_line(Duration::from_secs(20), |l| l.contains("backend is DOWN (lab 4.3") && l.contains(&sb));
    assert!(down.is_some(), "lab 4.3 took b down");
    assert!(down.unwrap().contains(r#""failures":2"#), "at the second failure in a row");

    let _b = b_comes_back(&lb, b_addr, "backend is UP (lab 4.4");
    assert_eq!(served(&a), 6 + 5, "a, up all along, was never probed");
}

#[cfg(unix)]
#[test]
fn sigterm_drains_a_slow_request_in_progress_then_exits() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let backend = spawn(BackendConfig::named("slow")).unwrap();
    let spec = backend.addr().to_string();
    let mut lb = advanced_lb(&["--backend", &spec, "--health-check", "off", "--drain-timeout-secs", "30"]);
    let addr = lb.addr;
    let request = std::thread::spawn(move || client::get(addr, "/slow?ms=400").unwrap());
    // Wait (bounded) until the request has reached the backend.
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.stats().active_connections.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the request never reached the backend");
        std::thread::yield_now();
    }
    kill(Pid::from_raw(lb.pid() as i32), Signal::SIGTERM).unwrap();
    let response = request.join().unwrap();
    assert_eq!(response.status, 200, "the in-flight request finished: {}", response.text());
    assert_eq!(response.text(), "slow: slept 400 ms\n");
    let status = lb.wait_exit(Duration::from_secs(20)).expect("it exits after draining");
    assert!(status.success(), "{status:?}");
}
