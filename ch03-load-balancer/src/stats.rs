//! The statistics report, printed on SIGUSR1 and at shutdown.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::balancer::LoadBalancer;

// ANCHOR: report
/// The report, as the C original prints it: uptime, total requests,
/// requests per second, then a line per backend.
pub fn report(lb: &LoadBalancer) -> String {
    let uptime = lb.started.elapsed().as_secs_f64();
    let total = lb.requests.load(Ordering::Relaxed);
    let rate = if uptime > 0.0 { total as f64 / uptime } else { 0.0 };
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "=== load balancer statistics ===");
    let _ = writeln!(out, "uptime:           {uptime:.1} s");
    let _ = writeln!(out, "total requests:   {total}");
    let _ = writeln!(out, "requests/second:  {rate:.2}");
    let _ = writeln!(out, "no backend (503): {}", lb.unavailable.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "{:<24} {:<5} {:>6} {:>9} {:>9} {:>7}",
        "backend", "state", "weight", "requests", "failures", "active"
    );
    for b in lb.backends.all() {
        let _ = writeln!(
            out,
            "{:<24} {:<5} {:>6} {:>9} {:>9} {:>7}",
            b.addr,
            if b.is_up() { "UP" } else { "DOWN" },
            b.weight,
            b.requests.load(Ordering::Relaxed),
            b.failures.load(Ordering::Relaxed),
            b.active.load(Ordering::Relaxed),
        );
    }
    out
}
// ANCHOR_END: report
