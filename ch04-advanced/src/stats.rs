//! The per-backend statistics report: requests, failures, bytes both ways
//! and latency (mean and p99), printed on SIGUSR1 and at shutdown; and the
//! two places where a binary can plug in more statistics: a
//! [`Reporter`] told of every request, and a [`StatsEndpoint`] that
//! answers a path with a document.

use std::fmt::{Debug, Write as _};
use std::sync::atomic::Ordering;

use std::time::Duration;

use crate::balancer::AdvancedLb;
use crate::node::Pool;

// ANCHOR: report
/// The statistics table.
pub fn report(lb: &AdvancedLb) -> String {
    let groups = lb.router.groups().map(|g| (g.name.as_str(), g.pool.as_ref()));
    report_pools("advanced load balancer", lb.started.elapsed(), lb.requests.load(Ordering::Relaxed), groups)
}

/// The statistics table for any load balancer over named pools (chapter 5
/// prints the same one).
pub fn report_pools<'a>(
    title: &str,
    uptime: Duration,
    total: u64,
    groups: impl Iterator<Item = (&'a str, &'a Pool)>,
) -> String {
    let uptime = uptime.as_secs_f64();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "=== {title} statistics ===");
    let _ = writeln!(out, "uptime {uptime:.1} s, {total} requests, {:.2} requests/s", total as f64 / uptime.max(1e-9));
    let _ = writeln!(
        out,
        "{:<10} {:<22} {:<5} {:>6} {:>8} {:>8} {:>10} {:>10} {:>9} {:>9}",
        "group", "backend", "state", "weight", "requests", "failures", "bytes in", "bytes out", "mean ms", "p99 ms"
    );
    for (name, pool) in groups {
        for n in &pool.nodes {
            let b = &n.backend;
            let _ = writeln!(
                out,
                "{:<10} {:<22} {:<5} {:>6} {:>8} {:>8} {:>10} {:>10} {:>9.2} {:>9.2}",
                name,
                n.addr(),
                if n.is_healthy() { "UP" } else { "DOWN" },
                n.weight(),
                b.requests.load(Ordering::Relaxed),
                b.failures.load(Ordering::Relaxed),
                b.bytes_in.load(Ordering::Relaxed),
                b.bytes_out.load(Ordering::Relaxed),
                n.latency.mean().as_secs_f64() * 1e3,
                n.latency.quantile(0.99).as_secs_f64() * 1e3,
            );
        }
    }
    out
}
// ANCHOR_END: report

// ANCHOR: hooks
/// One backend's line in a periodic report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendLine {
    /// host:port.
    pub addr: String,
    /// Whether it is up.
    pub up: bool,
    /// Requests sent to it.
    pub requests: u64,
    /// Failures.
    pub failures: u64,
    /// Mean response time of its successful requests, in microseconds
    /// (0 before the first).
    pub mean_us: u64,
}

/// Told of every request, with each backend's line; may answer with a
/// report for the balancer to print. Every connection thread calls it, so
/// it takes `&self`. Lab 4.5's `PeriodicReporter` is one (`--stats-every`).
pub trait Reporter: Send + Sync + Debug {
    /// Counts one request; the report to print, when one is due.
    fn on_request(&self, lines: &[BackendLine]) -> Option<String>;
}

/// Renders a statistics document from the default group's pool, the
/// uptime and the requests served. Lab 8.3's `stats_json` is one.
pub type RenderStats = fn(&Pool, Duration, u64) -> String;

/// A path the balancer answers itself, with statistics, instead of
/// forwarding it (`--stats-path`).
#[derive(Debug, Clone)]
pub struct StatsEndpoint {
    /// The exact request target answered, e.g. `/lb-stats`.
    pub path: String,
    /// The JSON document served there.
    pub render: RenderStats,
}
// ANCHOR_END: hooks
