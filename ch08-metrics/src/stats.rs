//! `/lb-stats`: the numbers of `/metrics` as one JSON document, for people
//! and scripts rather than Prometheus: per backend, its health, requests
//! by status and latency percentiles estimated from its histogram.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::balancer::{Metrics, NO_BACKEND};

/// Percentiles reported, as `(name, q)`.
const PERCENTILES: [(&str, f64); 3] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)];

// ANCHOR: lb_stats
/// The document `/lb-stats` serves.
pub fn lb_stats(metrics: &Metrics) -> Value {
    // Requests by backend, then by status, from the counters' labels.
    let mut by_backend: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (labels, counter) in metrics.requests.snapshot() {
        if let [backend, status] = labels.as_slice() {
            *by_backend.entry(backend.clone()).or_default().entry(status.clone()).or_default() += counter.get();
        }
    }
    let latency: BTreeMap<String, Value> = metrics
        .duration
        .snapshot()
        .into_iter()
        .filter_map(|(labels, h)| {
            let backend = labels.into_iter().next()?;
            let mut summary = serde_json::Map::new();
            summary.insert("count".into(), json!(h.count()));
            for (name, q) in PERCENTILES {
                summary.insert(name.into(), json!(h.quantile(q)));
            }
            Some((backend, Value::Object(summary)))
        })
        .collect();
    let uptime = metrics.started().elapsed().map_or(0.0, |d| d.as_secs_f64());
    let mut doc = json!({
        "uptime_seconds": uptime,
        "answered_without_backend": by_backend.get(NO_BACKEND).cloned().unwrap_or_default(),
    });
    if let Some(running) = metrics.running() {
        let backends: Vec<Value> = running
            .current
            .load()
            .pool
            .nodes
            .iter()
            .map(|n| {
                let addr = n.addr();
                json!({
                    "address": addr,
                    "healthy": n.is_healthy(),
                    "weight": n.weight(),
                    "active": n.active(),
                    "requests": by_backend.get(addr).map_or(0, |s| s.values().sum::<u64>()),
                    "by_status": by_backend.get(addr).cloned().unwrap_or_default(),
                    "failures": n.backend.failures.load(Ordering::Relaxed),
                    "bytes_sent": n.backend.bytes_out.load(Ordering::Relaxed),
                    "bytes_received": n.backend.bytes_in.load(Ordering::Relaxed),
                    "latency_seconds": latency.get(addr).cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        doc["listen"] = json!(running.addr.to_string());
        doc["connections"] = json!({
            "open": running.stats.open.load(Ordering::Relaxed),
            "accepted": running.stats.accepted.load(Ordering::Relaxed),
        });
        doc["groups"] = json!([{ "name": "default", "backends": backends }]);
    }
    if let Some(pool) = metrics.pool() {
        let s = pool.snapshot();
        doc["pool"] = json!({
            "created": s.created,
            "reused": s.reused,
            "hit_rate": s.hit_rate(),
            "idle": s.idle,
            "in_use": s.in_use,
        });
    }
    if let Some(limiter) = metrics.limiter() {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let by_limit: BTreeMap<String, u64> =
            limiter.policies().iter().map(|p| (p.name.clone(), get(&p.refused))).collect();
        doc["limiter"] = json!({
            "checked": get(&limiter.checked),
            "passed": get(&limiter.passed),
            "delayed": get(&limiter.delayed),
            "refused": get(&limiter.refused),
            "would_refuse": get(&limiter.would_refuse),
            "refused_by_limit": by_limit,
        });
    }
    doc
}
// ANCHOR_END: lb_stats
