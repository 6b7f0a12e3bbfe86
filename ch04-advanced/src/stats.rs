//! The per-backend statistics report: requests, failures, bytes both ways
//! and latency (mean and p99), printed on SIGUSR1 and at shutdown.

use std::fmt::Write as _;
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
