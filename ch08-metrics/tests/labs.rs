//! Graded tests for the chapter 8 labs. Every test name starts with its
//! lab's id: `cargo test -p ch08-metrics --no-default-features lab_12_1`
//! grades your lab 12.1, `... lab_12_2` your lab 12.2 (plain `cargo test`
//! here grades the reference).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use ch05_event_loop::lb::observe::{Finished, Observe, Outcome, Timings};
use ch08_metrics::labs::lab_12_1_metric_types::{Counter, Gauge, Histogram, Kind, expose};
use ch08_metrics::labs::lab_12_2_status_classes::{StatusClasses, class_of};

#[test]
fn lab_12_1_a_counter_counts_every_increment_from_many_threads() {
    let c = Arc::new(Counter::new());
    assert_eq!(c.get(), 0);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    c.inc();
                }
                c.add(5);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.get(), 40_020);
}

#[test]
fn lab_12_1_a_gauge_goes_up_and_down() {
    let g = Gauge::new();
    assert_eq!(g.get(), 0);
    g.inc();
    g.inc();
    g.dec();
    assert_eq!(g.get(), 1);
    g.set(-7);
    g.dec();
    assert_eq!(g.get(), -8);
}

#[test]
fn lab_12_1_bounds_are_kept_sorted_once_and_finite() {
    let h = Histogram::new(&[1.0, 0.1, f64::NAN, 1.0, f64::INFINITY, 0.5, f64::NEG_INFINITY]);
    assert_eq!(h.bounds(), [0.1, 0.5, 1.0]);
    assert_eq!(h.cumulative(), [0, 0, 0, 0], "three bounds and +Inf, all empty");
    assert_eq!((h.count(), h.sum()), (0, 0.0));
}

#[test]
fn lab_12_1_a_value_on_a_bound_belongs_to_that_bucket_and_counts_are_cumulative() {
    let h = Histogram::new(&[0.1, 1.0]);
    h.observe(0.1);
    assert_eq!(h.cumulative(), [1, 1, 1]);
    h.observe(1.0);
    assert_eq!(h.cumulative(), [1, 2, 2]);
    h.observe(5.0);
    h.observe(f64::NAN);
    assert_eq!(h.cumulative(), [1, 2, 3], "NaN is ignored");
    assert_eq!(h.count(), 3);
    assert!((h.sum() - 6.1).abs() < 1e-12, "{}", h.sum());
    h.observe(-2.0);
    assert_eq!(h.cumulative(), [2, 3, 4], "below every bound: the first bucket");
}

#[test]
fn lab_12_1_observations_from_many_threads_all_count() {
    let h = Arc::new(Histogram::new(&[10.0, 100.0]));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = Arc::clone(&h);
            std::thread::spawn(move || {
                for i in 0..5_000u32 {
                    h.observe(f64::from((i + t) % 200));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(h.count(), 20_000);
    // Whole numbers add up exactly in an f64 at this size.
    let want: u32 = (0..4u32).map(|t| (0..5_000u32).map(|i| (i + t) % 200).sum::<u32>()).sum();
    assert_eq!(h.sum(), f64::from(want));
    assert_eq!(h.cumulative()[0], 4 * 25 * 11, "0 to 10 in each run of 200");
}

/// The families of the exposition tests, in a known state.
fn exposition() -> String {
    let ok = Counter::new();
    ok.add(41);
    let quoted = Counter::new();
    quoted.add(2);
    let counters: [(&[(&str, &str)], &Counter); 2] = [
        (&[("backend", "a:1"), ("status", "200")], &ok),
        (&[("backend", "say \"hi\"\\\nbye"), ("status", "200")], &quoted),
    ];
    let open = Gauge::new();
    open.set(3);
    let gauges: [(&[(&str, &str)], &Gauge); 1] = [(&[], &open)];
    let h = Histogram::new(&[0.1, 1.0]);
    for v in [0.05, 0.5, 5.0] {
        h.observe(v);
    }
    let histograms: [(&[(&str, &str)], &Histogram); 1] = [(&[("backend", "a:1")], &h)];
    let mut out = expose("lb_requests_total", "Requests answered.", Kind::Counter(&counters));
    out.push_str(&expose("lb_active_connections", "Open now.\nA back\\slash.", Kind::Gauge(&gauges)));
    out.push_str(&expose("lb_request_duration_seconds", "Latency.", Kind::Histogram(&histograms)));
    out
}

#[test]
fn lab_12_1_the_exposition_follows_the_format_to_the_byte() {
    let want = "# HELP lb_requests_total Requests answered.\n\
                # TYPE lb_requests_total counter\n\
                lb_requests_total{backend=\"a:1\",status=\"200\"} 41\n\
                lb_requests_total{backend=\"say \\\"hi\\\"\\\\\\nbye\",status=\"200\"} 2\n\
                # HELP lb_active_connections Open now.\\nA back\\\\slash.\n\
                # TYPE lb_active_connections gauge\n\
                lb_active_connections 3\n\
                # HELP lb_request_duration_seconds Latency.\n\
                # TYPE lb_request_duration_seconds histogram\n\
                lb_request_duration_seconds_bucket{backend=\"a:1\",le=\"0.1\"} 1\n\
                lb_request_duration_seconds_bucket{backend=\"a:1\",le=\"1\"} 2\n\
                lb_request_duration_seconds_bucket{backend=\"a:1\",le=\"+Inf\"} 3\n\
                lb_request_duration_seconds_sum{backend=\"a:1\"} 5.55\n\
                lb_request_duration_seconds_count{backend=\"a:1\"} 3\n";
    assert_eq!(exposition(), want);
}

#[test]
fn lab_12_1_an_empty_family_and_an_infinite_sum_are_written_as_prometheus_reads_them() {
    let none: [(&[(&str, &str)], &Counter); 0] = [];
    assert_eq!(expose("x_total", "X.", Kind::Counter(&none)), "# HELP x_total X.\n# TYPE x_total counter\n");
    let h = Histogram::new(&[1.0]);
    h.observe(f64::INFINITY);
    let series: [(&[(&str, &str)], &Histogram); 1] = [(&[], &h)];
    let text = expose("y_seconds", "Y.", Kind::Histogram(&series));
    assert!(
        text.contains("y_seconds_bucket{le=\"1\"} 0\ny_seconds_bucket{le=\"+Inf\"} 1\ny_seconds_sum +Inf\n"),
        "{text}"
    );
}

#[test]
fn lab_12_1_promtool_accepts_the_exposition() {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(std::env::var_os("CI").is_none(), "promtool is not installed, and CI installs it (.ci/run)");
        eprintln!("promtool not installed (apt-get install prometheus): skipped");
        return;
    };
    child.stdin.take().unwrap().write_all(exposition().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool says:\n{said}");
}

#[test]
fn lab_12_2_a_status_has_one_of_seven_classes() {
    let got: Vec<&str> = [0, 42, 100, 204, 301, 404, 429, 502, 599, 600, 999].into_iter().map(class_of).collect();
    assert_eq!(got, ["none", "other", "1xx", "2xx", "3xx", "4xx", "4xx", "5xx", "5xx", "other", "other"]);
}

fn finished(backend: Option<&str>, status: u16) -> Finished<'_> {
    Finished {
        peer: "127.0.0.1:4000".parse().unwrap(),
        method: "GET",
        target: "/",
        backend: backend.map(|b| (0, b)),
        status,
        outcome: if backend.is_some() { Outcome::Served } else { Outcome::Answered },
        bytes_up: 0,
        bytes_down: 0,
        timings: Timings::default(),
    }
}

#[test]
fn lab_12_2_requests_are_counted_by_backend_and_class() {
    let mut s = StatusClasses::new(10);
    for (b, status) in [(Some("a:1"), 200), (Some("a:1"), 204), (Some("a:1"), 503), (None, 429), (Some("b:2"), 0)] {
        s.finished(&finished(b, status));
    }
    assert_eq!(s.count("a:1", "2xx"), 2);
    assert_eq!(s.count("a:1", "5xx"), 1);
    assert_eq!(s.count("none", "4xx"), 1);
    assert_eq!(s.count("b:2", "none"), 1);
    assert_eq!(s.count("b:2", "2xx"), 0);
}

#[test]
fn lab_12_2_backends_past_the_budget_share_one_series() {
    let mut s = StatusClasses::new(2);
    for b in ["a:1", "b:2", "c:3", "d:4", "a:1", "c:3"] {
        s.finished(&finished(Some(b), 200));
    }
    s.finished(&finished(None, 503));
    assert_eq!(s.count("a:1", "2xx"), 2);
    assert_eq!(s.count("b:2", "2xx"), 1);
    assert_eq!(s.count("__other__", "2xx"), 3, "c twice and d once");
    assert_eq!(s.count("c:3", "2xx"), 0);
    assert_eq!(s.count("none", "5xx"), 1, "`none` is not a backend of the budget");
    assert_eq!(StatusClasses::new(0).render(), StatusClasses::new(1).render());
}

#[test]
fn lab_12_2_the_family_is_rendered_sorted_and_escaped() {
    let mut s = StatusClasses::new(10);
    assert_eq!(
        s.render(),
        "# HELP lb_responses_total Responses by backend and status class.\n# TYPE lb_responses_total counter\n"
    );
    for (b, status) in [(Some("b:2"), 500), (None, 404), (Some("a \"q\""), 200), (Some("b:2"), 200), (None, 404)] {
        s.finished(&finished(b, status));
    }
    let want = "# HELP lb_responses_total Responses by backend and status class.\n\
                # TYPE lb_responses_total counter\n\
                lb_responses_total{backend=\"a \\\"q\\\"\",class=\"2xx\"} 1\n\
                lb_responses_total{backend=\"b:2\",class=\"2xx\"} 1\n\
                lb_responses_total{backend=\"b:2\",class=\"5xx\"} 1\n\
                lb_responses_total{backend=\"none\",class=\"4xx\"} 2\n";
    assert_eq!(s.render(), want);
}

#[test]
fn lab_12_2_real_requests_through_the_real_loop_are_counted() {
    use ch01_fundamentals::server::Shutdown;
    use ch04_advanced::algorithm::Kind as Algorithm;
    use ch04_advanced::health::Probe;
    use ch04_advanced::node::Backend;
    use ch05_event_loop::lb::{Config, Hooks, Lb, run_with};

    let backend = backends::spawn(backends::BackendConfig::named("b")).unwrap();
    let addr = backend.addr().to_string();
    let mut config = Config::default();
    config.health.probe = Probe::Off;
    let lb = Lb::new(vec![Backend::new(addr.clone(), 1)], Algorithm::Rr, config).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at: SocketAddr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let mut classes = StatusClasses::new(4);
    // The loop runs here; a client thread sends the requests, then stops it.
    let stop = shutdown.clone();
    let client = std::thread::spawn(move || {
        let mut got = Vec::new();
        for path in ["/", "/", "/status/404", "/status/503"] {
            got.push(backends::client::get(at, path).map(|r| r.status));
        }
        // A head the balancer refuses itself: no backend sees it.
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n";
        got.push(backends::client::send(at, raw).map(|r| r.status));
        stop.trigger();
        got
    });
    let hooks = Hooks { observe: Some(&mut classes as &mut dyn Observe), ..Hooks::default() };
    run_with(listener, &lb, shutdown, hooks).unwrap();
    let statuses: Vec<u16> = client.join().unwrap().into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses, [200, 200, 404, 503, 400]);
    assert_eq!(classes.count(&addr, "2xx"), 2);
    assert_eq!(classes.count(&addr, "4xx"), 1);
    assert_eq!(classes.count(&addr, "5xx"), 1);
    assert_eq!(classes.count("none", "4xx"), 1);
    let text = classes.render();
    assert!(text.contains(&format!("lb_responses_total{{backend=\"{addr}\",class=\"2xx\"}} 2\n")), "{text}");
}
