//! Graded tests for the chapter 4 labs. Every test name starts with its
//! lab's id, so `cargo test -p ch04-advanced --no-default-features
//! lab_4_3` grades your lab 4.3 (without `--no-default-features`, this
//! repository tests the reference solution instead).
//!
//! Time is passed in wherever a lab takes `now`, so no test sleeps. The
//! network tests use real servers on 127.0.0.1: test backends, or a tiny
//! scripted server for the misbehaving ones (silent, garbage, cut off).
//! Every socket read has a timeout, so an unfinished lab fails instead of
//! hanging.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use backends::client::{self, HttpResponse};
use backends::{BackendConfig, BackendHandle, spawn};
use ch01_fundamentals::server::{RunningServer, spawn_server};
use ch04_advanced::algorithm::{self, Algorithm, Context, Kind};
use ch04_advanced::balancer::{AdvancedLb, Options, handle_client};
use ch04_advanced::health::{CheckHooks, HealthChecker, HealthConfig, Probe};
use ch04_advanced::labs::lab_4_3_failure_counting::FailureCounter;
use ch04_advanced::labs::lab_4_4_recovery_check::RecoveryCheck;
use ch04_advanced::labs::lab_4_5_statistics::{PeriodicReporter, format_report};
use ch04_advanced::labs::lab_7_2_response_time::FastestResponse;
use ch04_advanced::labs::lab_7_3_http_health_check::http_check;
use ch04_advanced::labs::lab_7_4_warm_up::warm_up;
use ch04_advanced::labs::lab_8_3_lb_stats_endpoint::stats_json;
use ch04_advanced::labs::lab_8_4_weight_reload::{apply_weights, parse_weights, reload_weights_file};
use ch04_advanced::labs::{BackendLine, CheckFailure, Expectation, WarmUpError};
use ch04_advanced::node::{Backend, Pool};
use ch04_advanced::routing::{Group, Router};

/// How long a test socket may wait for anything.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A short timeout, for the tests that expect one to expire.
const SHORT: Duration = Duration::from_millis(300);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn backend(name: &str) -> BackendHandle {
    spawn(BackendConfig::named(name)).unwrap()
}

fn served(h: &BackendHandle) -> u64 {
    h.stats().requests_served.load(Ordering::SeqCst)
}

/// An address where nothing listens: bound by us, then released.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A load balancer over `addrs` (weights) with `kind`, passive health
/// checks only, served on a port of its own.
fn start_lb(
    addrs: &[(String, u32)],
    kind: Kind,
    configure: impl FnOnce(&mut Options),
) -> (Arc<AdvancedLb>, RunningServer) {
    let pool = Pool::new(addrs.iter().map(|(a, w)| Backend::new(a.clone(), *w)).collect());
    // As advanced_lb does: `fastest` is lab 7.2's.
    let options = algorithm::Options { fastest: Some(ch04_advanced::labs::fastest), ..Default::default() };
    let algorithm = algorithm::build(kind, &pool, &options);
    let group = Group { name: "default".into(), pool: Arc::new(pool), algorithm };
    let mut options = Options::default();
    options.health.probe = Probe::Off;
    configure(&mut options);
    let lb = AdvancedLb::new(Router::new(group), options);
    let server = serve(&lb);
    (lb, server)
}

/// Serves `lb` on a new port.
fn serve(lb: &Arc<AdvancedLb>) -> RunningServer {
    let lb = Arc::clone(lb);
    spawn_server("127.0.0.1:0".parse().unwrap(), move |s| handle_client(s, &lb)).unwrap()
}

fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    client::get(addr, path).unwrap()
}

// ------------------------------------------------ a scripted test server

/// What the scripted server does with one connection, after reading the
/// request head.
enum Reply {
    /// Send these bytes, then close.
    Send(Vec<u8>),
    /// Close without answering.
    Close,
    /// Answer nothing; keep the connection until the client closes it.
    Silent,
}

fn send(text: &str) -> Reply {
    Reply::Send(text.as_bytes().to_vec())
}

/// A server that plays `replies` to successive connections (closing any
/// further ones) and records every request head it receives. It serves
/// one connection at a time, so the order is the order of connections.
struct Scripted {
    addr: SocketAddr,
    thread: JoinHandle<Vec<String>>,
}

impl Scripted {
    fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = thread::spawn(move || {
            let mut replies = replies.into_iter();
            let mut seen = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(TIMEOUT));
                let _ = stream.set_write_timeout(Some(TIMEOUT));
                let head = read_head(&mut stream);
                if head.starts_with("STOP") {
                    break;
                }
                seen.push(head);
                match replies.next().unwrap_or(Reply::Close) {
                    // The client may stop reading early: errors are fine.
                    Reply::Send(bytes) => {
                        let _ = stream.write_all(&bytes);
                    }
                    Reply::Close => {}
                    Reply::Silent => {
                        let mut sink = [0u8; 1024];
                        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                    }
                }
            }
            seen
        });
        Self { addr, thread }
    }

    /// Stops the server; the request heads it received, in order.
    fn finish(self) -> Vec<String> {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.write_all(b"STOP\r\n\r\n").unwrap();
        self.thread.join().unwrap()
    }
}

/// Reads up to the blank line (or the end, or 64 KiB).
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Checks the request a health check or warm-up sends.
fn assert_get_request(head: &str, path: &str) {
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with(&format!("GET {path} HTTP/1.1\r\n")), "request line: {head:?}");
    assert!(lower.contains("\r\nhost:"), "no Host header: {head:?}");
    assert!(lower.contains("\r\nconnection: close\r\n"), "no Connection: close: {head:?}");
    assert!(head.ends_with("\r\n\r\n"), "the head must end with a blank line: {head:?}");
}

// ---------------------------------------------------------------- lab 4.3

#[test]
fn lab_4_3_starts_up_and_goes_down_exactly_at_the_threshold() {
    let mut c = FailureCounter::new(3);
    assert!(!c.is_down());
    assert_eq!(c.consecutive_failures(), 0);
    assert!(!c.record_failure());
    assert!(!c.record_failure());
    assert!(!c.is_down(), "two failures are not three");
    assert_eq!(c.consecutive_failures(), 2);
    assert!(c.record_failure(), "the third failure takes it down");
    assert!(c.is_down());
    assert_eq!(c.consecutive_failures(), 3);

    let mut one = FailureCounter::new(1);
    assert!(one.record_failure(), "threshold 1: the first failure takes it down");
    assert!(one.is_down());
}

#[test]
fn lab_4_3_a_success_ends_the_streak() {
    let mut c = FailureCounter::new(3);
    assert!(!c.record_failure());
    assert!(!c.record_failure());
    c.record_success();
    assert_eq!(c.consecutive_failures(), 0);
    assert!(!c.record_failure());
    assert!(!c.record_failure());
    assert!(!c.is_down(), "failures with a success between are not in a row");
    assert_eq!(c.consecutive_failures(), 2);
    assert!(c.record_failure());
    assert!(c.is_down());
}

#[test]
fn lab_4_3_the_transition_is_reported_once_and_only_reset_brings_it_up() {
    let mut c = FailureCounter::new(2);
    assert!(!c.record_failure());
    assert!(c.record_failure());
    for expected in 3..=5 {
        assert!(!c.record_failure(), "already down: no second transition");
        assert_eq!(c.consecutive_failures(), expected, "failures while down still count");
    }
    c.record_success();
    assert_eq!(c.consecutive_failures(), 0);
    assert!(c.is_down(), "a success does not bring a down backend up");
    c.reset();
    assert!(!c.is_down());
    assert_eq!(c.consecutive_failures(), 0);
    assert!(!c.record_failure());
    assert!(c.record_failure(), "after a reset, going down is reported again");
}

#[test]
fn lab_4_3_counts_real_responses_from_a_backend() {
    let b = backend("web");
    let addr = b.addr();
    // A 5xx or no answer at all is a failure; anything else a success.
    let ok = |path: &str| client::get(addr, path).is_ok_and(|r| r.status < 500);
    let mut c = FailureCounter::new(3);
    let mut transitions = Vec::new();
    for path in ["/", "/status/503", "/status/502", "/", "/status/500", "/status/503", "/status/504", "/status/503"] {
        if ok(path) {
            c.record_success();
        } else {
            transitions.push(c.record_failure());
        }
    }
    assert_eq!(transitions, [false, false, false, false, true, false]);
    assert!(c.is_down());
    assert_eq!(c.consecutive_failures(), 4);
    assert_eq!(served(&b), 8);
}

#[test]
fn lab_4_3_takes_a_backend_down_in_the_running_load_balancer() {
    // What `advanced_lb --failure-counting` plugs in: lab 4.3's counter as
    // the passive check, with --max-fails (here 2) as its threshold.
    let (web, dead) = (backend("web"), closed_port());
    let addrs = [(web.addr().to_string(), 1), (dead.to_string(), 1)];
    let (lb, server) = start_lb(&addrs, Kind::Rr, |o| {
        o.health.max_fails = 2;
        o.passive = Some(Arc::new(ch04_advanced::labs::CountedFailures::default()));
    });
    let dead_node = &lb.router.default_group().pool.nodes[1];
    // Round robin sends some requests to the dead backend; each fails
    // over to web, so the client never sees the failure.
    for _ in 0..10 {
        assert_eq!(get(server.addr, "/").status, 200);
    }
    assert!(!dead_node.is_healthy(), "down after two refusals in a row");
    assert_eq!(dead_node.backend.failures.load(Ordering::SeqCst), 2, "and tried no more once down");
    assert_eq!(served(&web), 10);
    drop(server);
}

// ---------------------------------------------------------------- lab 4.4

#[test]
fn lab_4_4_an_up_backend_is_never_probed() {
    let t0 = Instant::now();
    let mut r = RecoveryCheck::new(Duration::from_secs(5), 2);
    assert!(!r.is_down());
    assert!(!r.probe_due(t0));
    assert!(!r.probe_due(t0 + Duration::from_secs(3600)));
    assert!(!r.record_probe(true, t0), "recording while up does nothing");
    assert!(!r.record_probe(true, t0));
    assert!(!r.record_probe(false, t0));
    assert!(!r.is_down());
    assert!(!r.probe_due(t0 + Duration::from_secs(3600)));
}

#[test]
fn lab_4_4_probes_follow_the_interval() {
    let t0 = Instant::now();
    let interval = Duration::from_secs(5);
    let mut r = RecoveryCheck::new(interval, 3);
    r.went_down(t0);
    assert!(r.is_down());
    assert!(!r.probe_due(t0), "the first probe waits one interval");
    assert!(!r.probe_due(t0 + interval - ms(1)));
    assert!(r.probe_due(t0 + interval));
    assert!(r.probe_due(t0 + 10 * interval), "a missed probe stays due");
    // A probe made late: the next is due one interval after it.
    let t1 = t0 + interval + ms(700);
    assert!(!r.record_probe(false, t1));
    assert!(!r.probe_due(t1));
    assert!(!r.probe_due(t1 + interval - ms(1)));
    assert!(r.probe_due(t1 + interval));
}

#[test]
fn lab_4_4_rise_good_probes_in_a_row_bring_it_up_exactly_once() {
    let t0 = Instant::now();
    let i = Duration::from_secs(1);
    let mut r = RecoveryCheck::new(i, 3);
    r.went_down(t0);
    assert!(!r.record_probe(true, t0 + i));
    assert!(!r.record_probe(true, t0 + 2 * i));
    assert!(r.is_down(), "two good probes are not three");
    assert!(r.record_probe(true, t0 + 3 * i), "the third good probe brings it up");
    assert!(!r.is_down());
    assert!(!r.probe_due(t0 + 100 * i), "up: nothing to probe");
    assert!(!r.record_probe(true, t0 + 4 * i), "the transition is reported once");
    assert!(!r.is_down());
    // Down again: the count starts from zero.
    r.went_down(t0 + 10 * i);
    assert!(r.is_down());
    assert!(!r.record_probe(true, t0 + 11 * i));
    assert!(!r.record_probe(true, t0 + 12 * i));
    assert!(r.record_probe(true, t0 + 13 * i));
}

#[test]
fn lab_4_4_a_failed_probe_restarts_the_count() {
    let t0 = Instant::now();
    let i = Duration::from_secs(2);
    let mut r = RecoveryCheck::new(i, 3);
    r.went_down(t0);
    let mut t = t0;
    let mut results = Vec::new();
    for ok in [true, true, false, true, true, false, true, true, true] {
        t += i;
        assert!(r.probe_due(t));
        results.push(r.record_probe(ok, t));
    }
    assert_eq!(results, [false, false, false, false, false, false, false, false, true]);
    assert!(!r.is_down());
}

#[test]
fn lab_4_4_probes_a_real_backend_until_it_recovers() {
    let b = backend("web");
    b.set_healthy(false);
    let t0 = Instant::now();
    let interval = Duration::from_secs(2);
    let mut r = RecoveryCheck::new(interval, 2);
    r.went_down(t0);
    // A simulated clock ticking every half second for 20 seconds; each
    // due probe is a real GET /health.
    let mut probes = Vec::new();
    let mut back_at = None;
    for tick in 1..=40u32 {
        let now = t0 + ms(500) * tick;
        if !r.probe_due(now) {
            continue;
        }
        let ok = client::get(b.addr(), "/health").is_ok_and(|resp| resp.status == 200);
        probes.push((now - t0, ok));
        if r.record_probe(ok, now) {
            back_at = Some(now - t0);
        }
        if probes.len() == 2 {
            b.set_healthy(true); // the backend is fixed after two probes
        }
    }
    let expected: Vec<(Duration, bool)> =
        vec![(interval, false), (2 * interval, false), (3 * interval, true), (4 * interval, true)];
    assert_eq!(probes, expected, "probed every interval while down, then never");
    assert_eq!(back_at, Some(4 * interval));
    assert!(!r.is_down());
}

#[test]
fn lab_4_4_the_health_checker_probes_only_down_backends_on_its_schedule() {
    // What `advanced_lb --recovery-check` plugs in: each round of the
    // health checker asks lab 4.4 which down backend is due. Interval zero
    // makes every round a due one, so no test clock is needed.
    let (up, down) = (backend("up"), backend("down"));
    let pool =
        Arc::new(Pool::new(vec![Backend::new(up.addr().to_string(), 1), Backend::new(down.addr().to_string(), 1)]));
    let config = HealthConfig { rise: 2, interval: Duration::ZERO, timeout: TIMEOUT, ..HealthConfig::default() };
    let hooks = CheckHooks {
        recovery: Some(Arc::new(ch04_advanced::labs::ScheduledRecovery::default())),
        ..CheckHooks::default()
    };
    let checker = HealthChecker::new(Arc::clone(&pool), config).with_hooks(hooks);
    pool.nodes[1].backend.mark_down(Duration::from_secs(3600));
    checker.run_round(); // it went down: the schedule starts
    assert_eq!(served(&down), 0, "the first probe waits one interval");
    checker.run_round(); // one good probe of two
    assert!(!pool.nodes[1].is_healthy());
    checker.run_round(); // the second: up
    assert!(pool.nodes[1].is_healthy());
    assert_eq!(served(&down), 2, "two probes brought it back");
    checker.run_round();
    assert_eq!(served(&down), 2, "up again: no more probes");
    assert_eq!(served(&up), 0, "a backend that is up is never probed");
}

// ---------------------------------------------------------------- lab 4.5

fn line(addr: &str, up: bool, requests: u64, failures: u64) -> BackendLine {
    BackendLine { addr: addr.into(), up, requests, failures, mean_us: 0 }
}

#[test]
fn lab_4_5_reports_the_average_response_time_in_milliseconds() {
    let timed = |mean_us| BackendLine { mean_us, ..line("127.0.0.1:9001", true, 4, 0) };
    for (us, shown) in [(0, "0.00"), (1_254, "1.25"), (1_255, "1.26"), (999_995, "1000.00"), (7, "0.01"), (4, "0.00")] {
        let report = format_report(4, &[timed(us)]);
        assert_eq!(
            report,
            format!("--- after 4 requests ---\n127.0.0.1:9001 UP requests=4 failures=0 avg_ms={shown}\n"),
            "{us} µs"
        );
    }
}

#[test]
fn lab_4_5_formats_the_report_exactly() {
    let lines = [line("127.0.0.1:9001", true, 50, 0), line("127.0.0.1:9002", false, 50, 3)];
    assert_eq!(
        format_report(100, &lines),
        "--- after 100 requests ---\n\
         127.0.0.1:9001 UP requests=50 failures=0 avg_ms=0.00\n\
         127.0.0.1:9002 DOWN requests=50 failures=3 avg_ms=0.00\n"
    );
    assert_eq!(format_report(7, &[]), "--- after 7 requests ---\n");
}

#[test]
fn lab_4_5_reports_on_every_nth_request() {
    let lines = [line("10.0.0.1:80", true, 1, 0)];
    let r = PeriodicReporter::new(3);
    let got: Vec<Option<String>> = (0..9).map(|_| r.on_request(&lines)).collect();
    for (i, report) in got.iter().enumerate() {
        let call = i as u64 + 1;
        if call % 3 == 0 {
            assert_eq!(report.as_deref(), Some(format_report(call, &lines).as_str()), "call {call}");
        } else {
            assert_eq!(*report, None, "call {call}");
        }
    }
    let each = PeriodicReporter::new(1);
    assert_eq!(each.on_request(&lines), Some(format_report(1, &lines)));
    assert_eq!(each.on_request(&lines), Some(format_report(2, &lines)));
}

#[test]
fn lab_4_5_every_zero_never_reports() {
    let r = PeriodicReporter::new(0);
    let lines = [line("10.0.0.1:80", true, 0, 0)];
    assert!((0..1_000).all(|_| r.on_request(&lines).is_none()));
}

#[test]
fn lab_4_5_concurrent_requests_get_each_report_exactly_once() {
    let r = PeriodicReporter::new(100);
    let lines = [line("10.0.0.1:80", true, 5, 1), line("10.0.0.2:80", false, 0, 3)];
    let reports: Vec<String> = thread::scope(|s| {
        let workers: Vec<_> =
            (0..8).map(|_| s.spawn(|| (0..1_000).filter_map(|_| r.on_request(&lines)).collect::<Vec<_>>())).collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(reports.len(), 80, "8000 requests, a report every 100");
    let mut totals = BTreeSet::new();
    for report in &reports {
        let total: u64 = report
            .strip_prefix("--- after ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a report header: {report:?}"));
        assert_eq!(*report, format_report(total, &lines));
        assert!(totals.insert(total), "the report after {total} requests came twice");
    }
    assert_eq!(totals, (1..=80).map(|i| i * 100).collect::<BTreeSet<u64>>());
}

#[test]
fn lab_4_5_reports_from_the_running_load_balancer() {
    let (a, b) = (backend("a"), backend("b"));
    let dead = closed_port().to_string();
    let addrs = [(a.addr().to_string(), 1), (dead.clone(), 1), (b.addr().to_string(), 1)];
    // --stats-every 2; one refused connection takes a backend down.
    let (lb, server) = start_lb(&addrs, Kind::Rr, |o| {
        o.reporter = Some(Arc::new(PeriodicReporter::new(2)));
        o.health.max_fails = 1;
    });
    for _ in 0..6 {
        assert_eq!(get(server.addr, "/").status, 200);
    }
    drop(server); // waits for every connection thread: counters are final
    assert_eq!(lb.requests.load(Ordering::SeqCst), 6);
    // Round robin a, dead (refused, so b), a, b (dead skipped), b, a.
    let report = format_report(6, &lb.backend_lines());
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 4, "{report}");
    assert_eq!(lines[0], "--- after 6 requests ---");
    let expect = [
        (a.addr().to_string(), "UP requests=3 failures=0"),
        (dead, "DOWN requests=0 failures=1"),
        (b.addr().to_string(), "UP requests=3 failures=0"),
    ];
    for (line, (addr, state)) in lines[1..].iter().zip(&expect) {
        let prefix = format!("{addr} {state} avg_ms=");
        let avg = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
        let ms: f64 = avg.parse().unwrap_or_else(|_| panic!("avg_ms {avg:?} is not a number"));
        // The served backends answered, in measurable time; the dead one never did.
        assert_eq!(ms > 0.0, state.starts_with("UP"), "{line}");
    }
}

// ---------------------------------------------------------------- lab 7.2

fn pool_of(n: usize) -> Pool {
    Pool::new((1..=n).map(|i| Backend::new(format!("10.0.0.{i}:80"), 1)).collect())
}

fn ctx() -> Context<'static> {
    Context { client_ip: IpAddr::from([192, 0, 2, 1]), key: "/", cookie: None, now: Instant::now() }
}

fn assert_close(got: Option<Duration>, want: Duration) {
    let got = got.unwrap_or_else(|| panic!("no average, expected {want:?}"));
    let diff = got.abs_diff(want);
    assert!(diff <= Duration::from_micros(1), "average {got:?}, expected {want:?}");
}

#[test]
fn lab_7_2_measures_every_node_first_then_picks_the_fastest() {
    let pool = pool_of(3);
    let f = FastestResponse::new(3, 0.3);
    assert_eq!(f.name(), "fastest");
    assert_eq!(f.pick(&pool, &ctx()), Some(0));
    assert_eq!(f.pick(&pool, &ctx()), Some(0), "still unmeasured: still first");
    f.on_response(0, ms(1));
    assert_eq!(f.pick(&pool, &ctx()), Some(1), "node 1 has no sample yet, however fast node 0 is");
    f.on_response(1, ms(5));
    assert_eq!(f.pick(&pool, &ctx()), Some(2));
    f.on_response(2, ms(3));
    assert_eq!(f.pick(&pool, &ctx()), Some(0), "all measured: the lowest average");
    assert_eq!(f.average(0), Some(ms(1)), "the first sample is taken as it is");
    assert_eq!(f.average(1), Some(ms(5)));
    assert_eq!(f.average(2), Some(ms(3)));
}

#[test]
fn lab_7_2_the_moving_average_is_exponentially_weighted() {
    let f = FastestResponse::new(2, 0.5);
    assert_eq!(f.average(0), None);
    f.on_response(0, ms(100));
    assert_close(f.average(0), ms(100));
    f.on_response(0, ms(200));
    assert_close(f.average(0), ms(150));
    f.on_response(0, ms(50));
    assert_close(f.average(0), ms(100));
    assert_eq!(f.average(1), None, "other nodes are untouched");

    let g = FastestResponse::new(1, 0.3);
    g.on_response(0, ms(10));
    g.on_response(0, ms(20));
    assert_close(g.average(0), ms(13)); // 0.3 * 20 + 0.7 * 10
}

#[test]
fn lab_7_2_ties_go_to_the_lowest_index_and_slow_nodes_lose_traffic() {
    let pool = pool_of(3);
    let f = FastestResponse::new(3, 0.5);
    f.on_response(0, ms(20));
    f.on_response(1, ms(10));
    f.on_response(2, ms(10));
    assert_eq!(f.pick(&pool, &ctx()), Some(1), "tie between 1 and 2: the lower index");
    f.on_response(1, ms(40)); // node 1 slows down: 25 ms
    assert_eq!(f.pick(&pool, &ctx()), Some(2));
    f.on_response(2, ms(50)); // 30 ms
    f.on_response(2, ms(50)); // 40 ms
    assert_eq!(f.pick(&pool, &ctx()), Some(0), "20 ms is now the lowest");
}

#[test]
fn lab_7_2_only_eligible_nodes_are_picked() {
    let pool = pool_of(3);
    let f = FastestResponse::new(3, 0.3);
    pool.nodes[0].backend.mark_down(Duration::from_secs(60));
    assert_eq!(f.pick(&pool, &ctx()), Some(1), "a down node is not measured either");
    f.on_response(1, ms(30));
    f.on_response(2, ms(20));
    f.on_response(0, ms(1));
    assert_eq!(f.pick(&pool, &ctx()), Some(2), "node 0 is fastest but down");
    for n in &pool.nodes {
        n.backend.mark_down(Duration::from_secs(60));
    }
    assert_eq!(f.pick(&pool, &ctx()), None);
}

#[test]
fn lab_7_2_is_safe_to_share_between_threads() {
    let pool = pool_of(4);
    let f = FastestResponse::new(4, 0.3);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..1_000 {
                    let i = f.pick(&pool, &ctx()).expect("every node is up");
                    f.on_response(i, ms(5));
                }
            });
        }
    });
    for i in 0..4 {
        assert_close(f.average(i), ms(5));
    }
}

#[test]
fn lab_7_2_the_load_balancer_sends_most_traffic_to_the_fast_backend() {
    let slow = spawn(BackendConfig { latency: ms(30), ..BackendConfig::named("slow") }).unwrap();
    let fast = backend("fast");
    let addrs = [(slow.addr().to_string(), 1), (fast.addr().to_string(), 1)];
    let (_lb, server) = start_lb(&addrs, Kind::Fastest, |_| {});
    for _ in 0..40 {
        assert_eq!(get(server.addr, "/").status, 200);
    }
    assert!(served(&slow) >= 1, "the slow backend must be measured once");
    assert!(served(&fast) >= 30, "fast got {} of 40, slow {}", served(&fast), served(&slow));
}

// ---------------------------------------------------------------- lab 7.3

fn expect(status: u16, body: Option<&str>) -> Expectation {
    Expectation { status, body_contains: body.map(str::to_string) }
}

#[test]
fn lab_7_3_a_healthy_backend_passes() {
    let b = backend("web");
    assert_eq!(http_check(b.addr(), "/health", &expect(200, None), TIMEOUT), Ok(()));
    assert_eq!(http_check(b.addr(), "/health", &expect(200, Some("ok")), TIMEOUT), Ok(()));
    assert_eq!(http_check(b.addr(), "/", &expect(200, Some("Hello from web")), TIMEOUT), Ok(()));
    assert_eq!(served(&b), 3);
}

#[test]
fn lab_7_3_the_status_must_be_exactly_the_expected_one() {
    let b = backend("web");
    assert_eq!(http_check(b.addr(), "/status/404", &expect(200, None), TIMEOUT), Err(CheckFailure::Status(404)));
    assert_eq!(http_check(b.addr(), "/status/204", &expect(200, None), TIMEOUT), Err(CheckFailure::Status(204)));
    b.set_healthy(false);
    assert_eq!(http_check(b.addr(), "/health", &expect(200, Some("ok")), TIMEOUT), Err(CheckFailure::Status(503)));
    assert_eq!(http_check(b.addr(), "/health", &expect(503, Some("unhealthy")), TIMEOUT), Ok(()));
}

#[test]
fn lab_7_3_the_body_is_searched_after_the_blank_line() {
    let b = backend("web");
    assert_eq!(http_check(b.addr(), "/", &expect(200, Some("nope")), TIMEOUT), Err(CheckFailure::Body));
    // In the status line, not in the body ("Hello from web (GET /)").
    assert_eq!(http_check(b.addr(), "/", &expect(200, Some("HTTP/1.1")), TIMEOUT), Err(CheckFailure::Body));
    assert_eq!(http_check(b.addr(), "/", &expect(200, Some("(GET /)")), TIMEOUT), Ok(()));
}

#[test]
fn lab_7_3_sends_a_get_with_host_and_connection_close() {
    let server = Scripted::start(vec![send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall good\n")]);
    // No Content-Length: the body ends when the server closes.
    assert_eq!(http_check(server.addr, "/healthz", &expect(200, Some("all good")), TIMEOUT), Ok(()));
    let requests = server.finish();
    assert_eq!(requests.len(), 1);
    assert_get_request(&requests[0], "/healthz");
}

#[test]
fn lab_7_3_refused_and_silent_servers() {
    match http_check(closed_port(), "/health", &expect(200, None), TIMEOUT) {
        Err(CheckFailure::Connect(reason)) => assert!(!reason.is_empty(), "say why"),
        other => panic!("expected Connect, got {other:?}"),
    }
    let server = Scripted::start(vec![Reply::Silent]);
    let started = Instant::now();
    assert_eq!(http_check(server.addr, "/health", &expect(200, None), SHORT), Err(CheckFailure::Timeout));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?} with a 300 ms timeout", started.elapsed());
    assert_eq!(server.finish().len(), 1);
}

#[test]
fn lab_7_3_garbage_and_cut_off_answers_are_bad_responses() {
    let answers = [
        "SSH-2.0-OpenSSH_9.6\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", // no end of head
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "",
    ];
    let server = Scripted::start(answers.iter().map(|a| send(a)).collect());
    for answer in answers {
        let result = http_check(server.addr, "/health", &expect(200, None), TIMEOUT);
        assert!(matches!(result, Err(CheckFailure::BadResponse(_))), "{answer:?} gave {result:?}");
    }
    assert_eq!(server.finish().len(), answers.len());
}

#[test]
fn lab_7_3_a_huge_answer_is_read_within_bounds() {
    let mut big = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nSTART".to_vec();
    big.resize(big.len() + 4 * 1024 * 1024, b'x');
    let server = Scripted::start(vec![Reply::Send(big)]);
    let started = Instant::now();
    assert_eq!(http_check(server.addr, "/health", &expect(200, Some("START")), TIMEOUT), Ok(()));
    assert!(started.elapsed() < Duration::from_secs(5));
    server.finish();
}

/// A pool of `backends`, checked with `hooks` (rise 2, fall 1).
fn checked(backends: &[SocketAddr], hooks: CheckHooks) -> (Arc<Pool>, HealthChecker) {
    let pool = Arc::new(Pool::new(backends.iter().map(|a| Backend::new(a.to_string(), 1)).collect()));
    let config = HealthConfig { rise: 2, fall: 1, timeout: TIMEOUT, ..HealthConfig::default() };
    let checker = HealthChecker::new(Arc::clone(&pool), config).with_hooks(hooks);
    (pool, checker)
}

#[test]
fn lab_7_3_the_health_checker_probes_with_it_when_the_balancer_asks() {
    // What `advanced_lb --health-expect-body` plugs in: lab 7.3's check as
    // the probe of chapter 4's health checker, on real backends.
    let (web, other) = (backend("web"), backend("other"));
    let expect = expect(200, Some("Hello from web"));
    let probe: ch04_advanced::health::CheckFn = Arc::new(move |addr: &str| {
        http_check(addr.parse().map_err(|e| format!("{e}"))?, "/", &expect, TIMEOUT).map_err(|e| e.to_string())
    });
    let (pool, checker) =
        checked(&[web.addr(), other.addr()], CheckHooks { probe: Some(probe), ..CheckHooks::default() });
    checker.run_round();
    assert!(pool.nodes[0].is_healthy(), "web's body has the text");
    assert!(!pool.nodes[1].is_healthy(), "other answers 200, but not with the text: down");
}

// ---------------------------------------------------------------- lab 7.4

#[test]
fn lab_7_4_a_recovering_backend_is_warmed_up_before_it_is_marked_up() {
    // What `advanced_lb --warm-up 3` plugs in: lab 7.4 between the probe
    // that would bring a backend back and the backend taking traffic.
    let web = backend("web");
    let warm: ch04_advanced::health::CheckFn = Arc::new(|addr: &str| {
        warm_up(addr.parse().map_err(|e| format!("{e}"))?, "/", 3, TIMEOUT).map(|_| ()).map_err(|e| e.to_string())
    });
    let (pool, checker) = checked(&[web.addr()], CheckHooks { warm_up: Some(warm), ..CheckHooks::default() });
    pool.nodes[0].backend.mark_down(Duration::from_secs(60));
    checker.run_round(); // the first success of two: no warm-up yet
    assert_eq!(served(&web), 1, "one probe");
    assert!(!pool.nodes[0].is_healthy());
    checker.run_round(); // the second would bring it back: warmed up first
    assert!(pool.nodes[0].is_healthy());
    assert_eq!(served(&web), 5, "a probe, then three warm-up requests before it took traffic");
    checker.run_round(); // up already: a probe, no more warm-up
    assert_eq!(served(&web), 6);
}

#[test]
fn lab_7_4_a_failed_warm_up_keeps_the_backend_down() {
    let web = backend("web");
    let warm: ch04_advanced::health::CheckFn = Arc::new(|addr: &str| {
        warm_up(addr.parse().map_err(|e| format!("{e}"))?, "/status/500", 3, TIMEOUT)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let (pool, checker) = checked(&[web.addr()], CheckHooks { warm_up: Some(warm), ..CheckHooks::default() });
    pool.nodes[0].backend.mark_down(Duration::from_secs(60));
    for _ in 0..3 {
        checker.run_round();
    }
    assert!(!pool.nodes[0].is_healthy(), "every warm-up met a 500: still down");
}

#[test]
fn lab_7_4_sends_each_request_on_a_new_connection() {
    let b = backend("web");
    assert_eq!(warm_up(b.addr(), "/", 5, TIMEOUT), Ok(5));
    assert_eq!(served(&b), 5);
    assert_eq!(b.stats().connections_accepted.load(Ordering::SeqCst), 5);
    // Zero requests: nothing is sent, so even a dead address is fine.
    assert_eq!(warm_up(closed_port(), "/", 0, TIMEOUT), Ok(0));
}

#[test]
fn lab_7_4_requests_are_gets_with_connection_close() {
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let server = Scripted::start(vec![send(ok), send(ok), send(ok)]);
    assert_eq!(warm_up(server.addr, "/warm?n=1", 3, TIMEOUT), Ok(3));
    let requests = server.finish();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_get_request(r, "/warm?n=1");
    }
}

#[test]
fn lab_7_4_stops_at_the_first_non_2xx_answer() {
    let server = Scripted::start(vec![
        send("HTTP/1.1 200 OK\r\n\r\n"),
        send("HTTP/1.1 204 No Content\r\n\r\n"),
        send("HTTP/1.1 299 Fine\r\n\r\n"),
        send("HTTP/1.1 503 Service Unavailable\r\n\r\n"),
        send("HTTP/1.1 200 OK\r\n\r\n"),
    ]);
    assert_eq!(warm_up(server.addr, "/", 10, TIMEOUT), Err(WarmUpError::Status { request: 4, status: 503 }));
    assert_eq!(server.finish().len(), 4, "no request after the failure");

    let b = backend("web");
    b.set_healthy(false);
    assert_eq!(warm_up(b.addr(), "/health", 3, TIMEOUT), Err(WarmUpError::Status { request: 1, status: 503 }));
    assert_eq!(served(&b), 1);
}

#[test]
fn lab_7_4_io_failures_carry_the_request_number() {
    match warm_up(closed_port(), "/", 3, TIMEOUT) {
        Err(WarmUpError::Io { request: 1, error }) => assert!(!error.is_empty(), "say why"),
        other => panic!("expected Io for request 1, got {other:?}"),
    }
    let ok = "HTTP/1.1 200 OK\r\n\r\n";
    let server = Scripted::start(vec![send(ok), Reply::Close, send(ok)]);
    assert!(matches!(warm_up(server.addr, "/", 5, TIMEOUT), Err(WarmUpError::Io { request: 2, .. })));
    assert_eq!(server.finish().len(), 2, "no request after the failure");

    let server = Scripted::start(vec![send(ok), send(ok), Reply::Silent]);
    let started = Instant::now();
    assert!(matches!(warm_up(server.addr, "/", 5, SHORT), Err(WarmUpError::Io { request: 3, .. })));
    assert!(started.elapsed() < Duration::from_secs(5), "a silent backend must time out");
    assert_eq!(server.finish().len(), 3);

    let server = Scripted::start(vec![send("garbage\r\n\r\n")]);
    assert!(matches!(warm_up(server.addr, "/", 2, TIMEOUT), Err(WarmUpError::Io { request: 1, .. })));
    assert_eq!(server.finish().len(), 1);
}

// ---------------------------------------------------------------- lab 8.3

fn parse(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
}

fn keys(v: &serde_json::Value) -> BTreeSet<&str> {
    v.as_object().expect("an object").keys().map(String::as_str).collect()
}

fn assert_float(v: &serde_json::Value, want: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((got - want).abs() < 1e-9, "{got} != {want}");
}

const BACKEND_KEYS: [&str; 10] = [
    "active",
    "addr",
    "bytes_in",
    "bytes_out",
    "failures",
    "healthy",
    "latency_mean_ms",
    "latency_p99_ms",
    "requests",
    "weight",
];

#[test]
fn lab_8_3_the_document_has_every_field() {
    let pool = Pool::new(vec![Backend::new("127.0.0.1:9001", 1), Backend::new("127.0.0.1:9002", 3)]);
    let a = &pool.nodes[0];
    a.backend.requests.store(14, Ordering::SeqCst);
    a.backend.active.store(2, Ordering::SeqCst);
    a.backend.bytes_in.store(3120, Ordering::SeqCst);
    a.backend.bytes_out.store(1450, Ordering::SeqCst);
    for _ in 0..99 {
        a.latency.record(Duration::from_micros(100));
    }
    a.latency.record(ms(50)); // mean 599 µs, p99 in the 128 µs bucket
    let b = &pool.nodes[1];
    b.backend.requests.store(7, Ordering::SeqCst);
    b.backend.failures.store(3, Ordering::SeqCst);
    b.backend.mark_down(Duration::from_secs(60));

    let v = parse(&stats_json(&pool, ms(12_500), 42));
    assert_eq!(keys(&v), BTreeSet::from(["uptime_secs", "total_requests", "backends"]));
    assert_float(&v["uptime_secs"], 12.5);
    assert_eq!(v["total_requests"].as_u64(), Some(42));
    let list = v["backends"].as_array().expect("backends is an array");
    assert_eq!(list.len(), 2);

    let a = &list[0];
    assert_eq!(keys(a), BTreeSet::from(BACKEND_KEYS));
    assert_eq!(a["addr"], "127.0.0.1:9001");
    assert_eq!(a["healthy"], true);
    assert_eq!(a["weight"].as_u64(), Some(1));
    assert_eq!(a["requests"].as_u64(), Some(14));
    assert_eq!(a["failures"].as_u64(), Some(0));
    assert_eq!(a["active"].as_u64(), Some(2));
    assert_eq!(a["bytes_in"].as_u64(), Some(3120));
    assert_eq!(a["bytes_out"].as_u64(), Some(1450));
    assert_float(&a["latency_mean_ms"], 0.599);
    assert_float(&a["latency_p99_ms"], 0.128);

    let b = &list[1];
    assert_eq!(keys(b), BTreeSet::from(BACKEND_KEYS));
    assert_eq!(b["addr"], "127.0.0.1:9002");
    assert_eq!(b["healthy"], false);
    assert_eq!(b["weight"].as_u64(), Some(3));
    assert_eq!(b["requests"].as_u64(), Some(7));
    assert_eq!(b["failures"].as_u64(), Some(3));
    assert_eq!(b["active"].as_u64(), Some(0));
    assert_eq!(b["bytes_in"].as_u64(), Some(0));
    assert_eq!(b["bytes_out"].as_u64(), Some(0));
    assert_float(&b["latency_mean_ms"], 0.0);
    assert_float(&b["latency_p99_ms"], 0.0);
}

#[test]
fn lab_8_3_numbers_have_the_right_types() {
    let pool = Pool::new(vec![Backend::new("10.0.0.1:80", 1)]);
    pool.nodes[0].latency.record(Duration::from_micros(2_000)); // the 2048 µs bucket
    let v = parse(&stats_json(&pool, Duration::from_secs(3), u64::MAX));
    assert!(v["uptime_secs"].is_f64(), "uptime_secs is a float: {}", v["uptime_secs"]);
    assert_float(&v["uptime_secs"], 3.0);
    assert_eq!(v["total_requests"].as_u64(), Some(u64::MAX), "a u64, not a float");
    let n = &v["backends"][0];
    assert!(n["latency_mean_ms"].is_f64() && n["latency_p99_ms"].is_f64());
    assert_float(&n["latency_mean_ms"], 2.0);
    assert_float(&n["latency_p99_ms"], 2.048);
    for k in ["weight", "requests", "failures", "active", "bytes_in", "bytes_out"] {
        assert!(n[k].is_u64(), "{k} is an integer: {}", n[k]);
    }
}

#[test]
fn lab_8_3_follows_pool_order_and_live_weights() {
    let pool = Pool::new((1..=5).map(|i| Backend::new(format!("10.0.0.{i}:80"), i)).collect());
    pool.nodes[2].set_weight(700);
    let v = parse(&stats_json(&pool, Duration::ZERO, 0));
    let list = v["backends"].as_array().expect("an array");
    let addrs: Vec<&str> = list.iter().map(|n| n["addr"].as_str().unwrap_or("?")).collect();
    assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"]);
    let weights: Vec<u64> = list.iter().map(|n| n["weight"].as_u64().unwrap_or(0)).collect();
    assert_eq!(weights, [1, 2, 700, 4, 5]);
    assert_float(&v["uptime_secs"], 0.0);

    let empty = parse(&stats_json(&Pool::new(Vec::new()), ms(1), 0));
    assert_eq!(empty["backends"], serde_json::json!([]));
}

#[test]
fn lab_8_3_the_load_balancer_serves_lb_stats() {
    let (a, b) = (backend("a"), backend("b"));
    let addrs = [(a.addr().to_string(), 1), (b.addr().to_string(), 2)];
    let (lb, server) = start_lb(&addrs, Kind::Rr, |o| {
        o.stats_endpoint = Some(ch04_advanced::labs::stats_endpoint("/lb-stats"));
    });
    for _ in 0..4 {
        assert_eq!(get(server.addr, "/").status, 200);
    }
    drop(server); // waits for every connection thread: counters are final
    let server = serve(&lb);
    let r = get(server.addr, "/lb-stats");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("application/json")), "{:?}", r.headers);
    let v = parse(&r.text());
    assert_eq!(v["total_requests"].as_u64(), Some(4), "four requests; the /lb-stats request is not traffic");
    let up = v["uptime_secs"].as_f64().expect("a number");
    assert!(up > 0.0 && up < 60.0, "uptime {up}");
    let list = v["backends"].as_array().expect("an array");
    assert_eq!(list.len(), 2);
    for (n, (addr, weight)) in list.iter().zip(&addrs) {
        assert_eq!(keys(n), BTreeSet::from(BACKEND_KEYS));
        assert_eq!(n["addr"].as_str(), Some(addr.as_str()));
        assert_eq!(n["weight"].as_u64(), Some(u64::from(*weight)));
        assert_eq!(n["healthy"], true);
        assert_eq!(n["requests"].as_u64(), Some(2), "round robin: two each");
        assert_eq!(n["failures"].as_u64(), Some(0));
        assert_eq!(n["active"].as_u64(), Some(0));
        assert!(n["bytes_in"].as_u64().is_some_and(|x| x > 0), "{n}");
        assert!(n["bytes_out"].as_u64().is_some_and(|x| x > 0), "{n}");
        let (mean, p99) = (n["latency_mean_ms"].as_f64().unwrap_or(-1.0), n["latency_p99_ms"].as_f64().unwrap_or(-1.0));
        assert!(mean > 0.0 && mean <= p99 && p99 >= 0.064, "mean {mean}, p99 {p99}");
    }
}

// ---------------------------------------------------------------- lab 8.4

fn pairs(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(a, w)| (a.to_string(), *w)).collect()
}

fn weights(pool: &Pool) -> Vec<u32> {
    pool.nodes.iter().map(|n| n.weight()).collect()
}

/// A file of our own in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("lbs-ch04-{}-{name}.txt", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn rewrite(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn lab_8_4_parses_pairs_in_file_order() {
    let text = concat!(
        "# weights for the default group\n",
        "127.0.0.1:9001 3\n",
        "\n",
        "\t  127.0.0.1:9002\t 1000  \r\n",
        "   # indented comment\n",
        "   \n",
        "backend.local:80   1", // no newline at the end
    );
    assert_eq!(
        parse_weights(text),
        Ok(pairs(&[("127.0.0.1:9001", 3), ("127.0.0.1:9002", 1000), ("backend.local:80", 1)]))
    );
    assert_eq!(parse_weights(""), Ok(Vec::new()));
    assert_eq!(parse_weights("# nothing\n\n   \n"), Ok(Vec::new()));
}

#[test]
fn lab_8_4_the_first_error_names_its_line() {
    let cases = [
        ("a:1 2\n# c\na:2 3 extra\n", 3),
        ("\n\na:1\n", 3),
        ("a:1 0\n", 1),
        ("a:1 2\na:2 1001\n", 2),
        ("a:1 two\n", 1),
        ("a:1 -1\n", 1),
        ("a:1 2.5\n", 1),
        ("a:1 99999999999\n", 1),
        ("a:1 2\n\na:2 3\na:1 4\n", 4), // given twice
        ("a:1 2\nbad\na:1 3\n", 2),     // the first error wins
    ];
    for (text, line) in cases {
        match parse_weights(text) {
            Err(e) => {
                assert_eq!(e.line, line, "{text:?}: {e}");
                assert!(!e.message.is_empty(), "{text:?}: say what is wrong");
                assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
            }
            Ok(p) => panic!("{text:?} was accepted as {p:?}"),
        }
    }
}

#[test]
fn lab_8_4_apply_sets_listed_weights_and_counts_changes() {
    let pool = Pool::new(vec![Backend::new("a:1", 1), Backend::new("b:1", 2), Backend::new("c:1", 3)]);
    assert_eq!(apply_weights(&pool, &pairs(&[("a:1", 1), ("b:1", 5)])), Ok(1), "a:1 kept its value");
    assert_eq!(weights(&pool), [1, 5, 3], "c:1 is not listed: unchanged");
    assert_eq!(apply_weights(&pool, &pairs(&[("c:1", 7), ("a:1", 9), ("b:1", 4)])), Ok(3));
    assert_eq!(weights(&pool), [9, 4, 7]);
    assert_eq!(apply_weights(&pool, &[]), Ok(0));
}

#[test]
fn lab_8_4_apply_is_all_or_nothing() {
    let pool = Pool::new(vec![Backend::new("a:1", 1), Backend::new("b:1", 2)]);
    let e = apply_weights(&pool, &pairs(&[("a:1", 9), ("nowhere:80", 4), ("b:1", 8)])).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.message.contains("nowhere:80"), "name the unknown address: {e}");
    assert_eq!(weights(&pool), [1, 2], "nothing changed");

    let file = TempFile::new("all-or-nothing", "a:1 5\nb:1 0\n");
    assert_eq!(reload_weights_file(&pool, &file.0).map_err(|e| e.line), Err(2));
    assert_eq!(weights(&pool), [1, 2], "a bad line changes nothing");
    let missing = std::env::temp_dir().join(format!("lbs-ch04-{}-no-such-file.txt", std::process::id()));
    assert_eq!(reload_weights_file(&pool, &missing).map_err(|e| e.line), Err(0));
    file.rewrite("# ok\nb:1 6\n");
    assert_eq!(reload_weights_file(&pool, &file.0), Ok(1));
    assert_eq!(weights(&pool), [1, 6]);
}

#[test]
fn lab_8_4_a_reload_changes_the_running_load_balancers_traffic() {
    let (a, b) = (backend("a"), backend("b"));
    let addrs = [(a.addr().to_string(), 1), (b.addr().to_string(), 1)];
    let (lb, server) = start_lb(&addrs, Kind::Wrr, |_| {});
    for _ in 0..20 {
        assert_eq!(get(server.addr, "/").status, 200);
    }
    assert_eq!([served(&a), served(&b)], [10, 10]);

    // What SIGHUP does in advanced_lb.
    let file = TempFile::new("reload", &format!("# new shares\n{} 3\n\n  {}   1\n", addrs[0].0, addrs[1].0));
    assert_eq!(reload_weights_file(lb.default_pool(), &file.0), Ok(1));
    for _ in 0..40 {
        assert_eq!(get(server.addr, "/").status, 200);
    }
    assert_eq!([served(&a), served(&b)], [40, 20], "3:1 after the reload");

    // A file naming a backend the balancer does not have changes nothing.
    file.rewrite(&format!("{} 1\n127.0.0.1:1 5\n", addrs[1].0));
    assert!(reload_weights_file(lb.default_pool(), &file.0).is_err());
    assert_eq!(weights(lb.default_pool()), [3, 1]);
    for _ in 0..40 {
        assert_eq!(get(server.addr, "/").status, 200);
    }
    assert_eq!([served(&a), served(&b)], [70, 30], "still 3:1");
}
