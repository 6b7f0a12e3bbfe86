//! # Lab 7.2 — response-time based selection
//!
//! Send each request to the backend that has been answering fastest, by a
//! moving average of its latency, so a backend that slows down (a noisy
//! neighbour, a GC pause) gets less traffic without being declared down.
//!
//! - [`FastestResponse`] implements the chapter's [`Algorithm`] trait, so
//!   `advanced_lb --algorithm fastest` uses it.
//! - `on_response(i, latency)` updates node `i`'s exponentially weighted
//!   moving average: the first sample is taken as it is; after that
//!   `avg = alpha * sample + (1 - alpha) * avg` (in seconds, as `f64`).
//! - `pick` chooses among eligible nodes (`pool.eligible(i, ctx.now)`):
//!   first any node with no sample yet (the lowest index), so every node
//!   gets measured; otherwise the lowest average, ties to the lowest
//!   index. `None` when no node is eligible.
//! - [`FastestResponse::average`] reports a node's average (`None` before
//!   its first sample).
//! - Connection threads call both methods at once: use a `Mutex`.
//!
//! Run it: `cargo test -p ch04-advanced --no-default-features lab_7_2`.

use std::time::Duration;

use crate::algorithm::{Algorithm, Context};
use crate::node::Pool;

/// Lowest moving-average latency first.
#[derive(Debug)]
pub struct FastestResponse {
    // TODO: your fields (alpha, and the averages behind a Mutex).
}

impl FastestResponse {
    /// For a pool of `n` nodes, smoothing factor `alpha` (0 < alpha <= 1).
    pub fn new(n: usize, alpha: f64) -> Self {
        let _ = (n, alpha);
        todo!("lab 7.2: create the algorithm")
    }

    /// Node `index`'s moving average, if measured.
    pub fn average(&self, index: usize) -> Option<Duration> {
        let _ = index;
        todo!("lab 7.2: report an average")
    }
}

impl Algorithm for FastestResponse {
    fn name(&self) -> &'static str {
        "fastest"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        // TODO: unmeasured eligible nodes first, then the lowest average.
        let _ = (pool, ctx);
        todo!("lab 7.2: pick the fastest")
    }

    fn on_response(&self, index: usize, latency: Duration) {
        // TODO: update the moving average.
        let _ = (index, latency);
        todo!("lab 7.2: learn from a response")
    }
}
