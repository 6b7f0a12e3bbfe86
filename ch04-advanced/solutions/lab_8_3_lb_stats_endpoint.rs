//! # Lab 8.3 — a `/lb-stats` JSON endpoint (reference solution)
//!
//! The task is in `src/labs/lab_8_3_lb_stats_endpoint.rs`.
//!
//! `serde_json::json!` builds the document from Rust values, so quoting
//! and escaping are serde's job, not ours: an address with a `"` in it
//! cannot break the document, as it could with `format!`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use crate::node::Pool;

/// The statistics document.
pub fn stats_json(pool: &Pool, uptime: Duration, total_requests: u64) -> String {
    let backends: Vec<serde_json::Value> = pool
        .nodes
        .iter()
        .map(|n| {
            let b = &n.backend;
            // Each counter is read on its own: a document is a snapshot
            // "at about this moment", not a consistent cut, and taking a
            // lock to make it one would slow every request down.
            json!({
                "addr": n.addr(),
                "healthy": n.is_healthy(),
                "weight": n.weight(),
                "requests": b.requests.load(Ordering::Relaxed),
                "failures": b.failures.load(Ordering::Relaxed),
                "active": b.active.load(Ordering::Relaxed),
                "bytes_in": b.bytes_in.load(Ordering::Relaxed),
                "bytes_out": b.bytes_out.load(Ordering::Relaxed),
                "latency_mean_ms": millis(n.latency.mean()),
                "latency_p99_ms": millis(n.latency.quantile(0.99)),
            })
        })
        .collect();
    json!({
        "uptime_secs": uptime.as_secs_f64(),
        "total_requests": total_requests,
        "backends": backends,
    })
    .to_string()
}

/// Milliseconds as a float. Dividing whole nanoseconds once gives the
/// closest float (2048 µs is exactly `2.048`); `as_secs_f64() * 1e3`
/// rounds twice and can print `2.0480000000000005`.
fn millis(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}
