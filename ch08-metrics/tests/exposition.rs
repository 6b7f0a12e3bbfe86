//! What a scrape of the registry looks like, checked two ways: against a
//! golden file written by hand from the format's rules, and by
//! Prometheus' own `promtool check metrics` (which also lints names and
//! units) when it is installed (`.ci/run` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use ch08_metrics::family::Family;
use ch08_metrics::metric::{Counter, Gauge, Histogram, latency_buckets};
use ch08_metrics::registry::Registry;

/// A registry with a little of everything, in a known state.
fn sample() -> Registry {
    let r = Registry::new();
    let requests = r.register(
        Family::new(
            "lb_requests_total",
            "Requests answered, by backend and status.",
            &["backend", "status"],
            3,
            Counter::new,
        )
        .unwrap(),
    );
    requests.with(&["127.0.0.1:9001", "200"]).add(41);
    requests.with(&["127.0.0.1:9001", "502"]).inc();
    requests.with(&["a \"quoted\\\" name", "200"]).add(2);
    // Past the budget of 3: folded.
    requests.with(&["127.0.0.1:9009", "200"]).inc();
    let up =
        r.register(Family::new("lb_backend_up", "1 if the backend is healthy.", &["backend"], 10, Gauge::new).unwrap());
    up.with(&["127.0.0.1:9001"]).set(1);
    let open =
        r.register(Family::new("lb_active_connections", "Client connections open now.", &[], 1, Gauge::new).unwrap());
    open.with(&[]).set(3);
    let latency = r.register(
        Family::new(
            "lb_request_duration_seconds",
            "Time from a request's head to the end of its response.\nIn seconds.",
            &["backend"],
            10,
            || Histogram::new(&[0.005, 0.05, 0.5]),
        )
        .unwrap(),
    );
    let h = latency.with(&["127.0.0.1:9001"]);
    for ms in [1, 4, 20, 300, 2000] {
        h.observe_duration(Duration::from_millis(ms));
    }
    r
}

#[test]
fn the_scrape_matches_the_golden_file() {
    let got = sample().render();
    let want = include_str!("golden/basic.prom");
    assert_eq!(got, want, "got:\n{got}");
}

#[test]
fn promtool_accepts_the_scrape_without_a_warning() {
    let Ok(status) = Command::new("promtool").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status()
    else {
        assert!(std::env::var_os("CI").is_none(), "promtool is not installed, and CI installs it (.ci/run)");
        eprintln!("promtool not installed (apt-get install prometheus): skipped");
        return;
    };
    assert!(status.success());
    let r = sample();
    // Real buckets too, and an empty family's HELP/TYPE.
    let hist = r.register(
        Family::new("lb_backend_latency_seconds", "Backend latency.", &["backend"], 4, || {
            Histogram::new(&latency_buckets())
        })
        .unwrap(),
    );
    hist.with(&["b"]).observe(0.0123);
    r.register(Family::new("lb_bytes_sent_total", "Bytes sent to clients.", &["backend"], 4, Counter::new).unwrap());
    let text = r.render();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool says:\n{said}\nof:\n{text}");
}

#[test]
fn the_openmetrics_scrape_matches_its_golden_file() {
    use ch08_metrics::registry::Format;
    let got = sample().render_as(Format::OpenMetrics);
    let want = include_str!("golden/basic.om.txt");
    assert_eq!(got, want, "got:\n{got}");
}

#[test]
fn the_accept_header_chooses_the_format() {
    use ch08_metrics::registry::Format;
    // What Prometheus sends.
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
    assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
    assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
    assert_eq!(Format::from_accept(None), Format::Prometheus);
    assert_eq!(Format::from_accept(Some("application/openmetrics-text; q=0, text/plain")), Format::Prometheus);
    assert_eq!(Format::OpenMetrics.content_type(), "application/openmetrics-text; version=1.0.0; charset=utf-8");
}
