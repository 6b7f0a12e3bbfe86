//! # Lab 8.3 — a `/lb-stats` JSON endpoint
//!
//! Let tools read the load balancer's state: `advanced_lb --stats-path
//! /lb-stats` answers that path itself with [`stats_json`]'s document.
//!
//! [`stats_json`] returns one JSON object (use `serde_json::json!`):
//!
//! ```text
//! {
//!   "uptime_secs": 12.5,          // f64
//!   "total_requests": 42,
//!   "backends": [                 // in pool order
//!     { "addr": "127.0.0.1:9001", "healthy": true, "weight": 1,
//!       "requests": 14, "failures": 0, "active": 0,
//!       "bytes_in": 3120, "bytes_out": 1450,
//!       "latency_mean_ms": 0.8, "latency_p99_ms": 2.048 }   // f64
//!   ]
//! }
//! ```
//!
//! The counters come from each node's `backend` (requests, failures,
//! active, bytes_in, bytes_out), `is_healthy()`, `weight()`, and
//! `latency.mean()` / `latency.quantile(0.99)` in milliseconds.
//!
//! Run it: `cargo test -p ch04-advanced --no-default-features lab_8_3`.

use std::time::Duration;

use crate::node::Pool;

/// The statistics document.
pub fn stats_json(pool: &Pool, uptime: Duration, total_requests: u64) -> String {
    // TODO: build it with serde_json::json! and to_string.
    let _ = (pool, uptime, total_requests);
    todo!("lab 8.3: the stats document")
}
