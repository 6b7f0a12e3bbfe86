//! The per-backend statistics report: requests, failures, bytes both ways
//! and latency (mean and p99), printed on SIGUSR1 and at shutdown.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::balancer::AdvancedLb;

// ANCHOR: report
/// The statistics table.
pub fn report(lb: &AdvancedLb) -> String {
    let uptime = lb.started.elapsed().as_secs_f64();
    let total = lb.requests.load(Ordering::Relaxed);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "=== advanced load balancer statistics ===");
    let _ = writeln!(out, "uptime {uptime:.1} s, {total} requests, {:.2} requests/s", total as f64 / uptime.max(1e-9));
    let _ = writeln!(
        out,
        "{:<10} {:<22} {:<5} {:>6} {:>8} {:>8} {:>10} {:>10} {:>9} {:>9}",
        "group", "backend", "state", "weight", "requests", "failures", "bytes in", "bytes out", "mean ms", "p99 ms"
    );
    for group in &lb.router.groups {
        for n in &group.pool.nodes {
            let b = &n.backend;
            let _ = writeln!(
                out,
                "{:<10} {:<22} {:<5} {:>6} {:>8} {:>8} {:>10} {:>10} {:>9.2} {:>9.2}",
                group.name,
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
