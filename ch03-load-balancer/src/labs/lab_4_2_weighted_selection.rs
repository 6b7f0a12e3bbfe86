//! # Lab 4.2 — weighted selection
//!
//! Give a backend with weight 3 three times the traffic of one with weight 1.
//!
//! - [`WeightedSelector::pick`] returns the index of the backend for the
//!   next request, or `None` when no backend is available.
//! - Shares must match weights *exactly* over each cycle: with the
//!   available backends' weights summing to `W`, any `W` consecutive picks
//!   (starting from a fresh selector, backends not changing) choose each
//!   available backend exactly `weight` times. With weights 3, 2, 1, 600
//!   picks give 300, 200 and 100.
//! - Unavailable backends (`!Backend::is_available(now)`) get no share:
//!   their traffic spreads over the others in proportion to weight.
//! - A simple way: a shared counter `c` (an atomic); take `c % W` and walk
//!   the available backends subtracting weights until it falls inside one.
//!
//! Run it: `cargo test -p ch03-load-balancer --no-default-features lab_4_2`,
//! then `load_balancer --strategy weighted --backend 127.0.0.1:9001:3 ...`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use crate::backend::Backend;

/// Picks backends in proportion to their weights.
#[derive(Debug, Default)]
pub struct WeightedSelector {
    /// Picks made so far.
    pub counter: AtomicU64,
}

impl WeightedSelector {
    /// A fresh selector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of the next backend, or `None`.
    pub fn pick(&self, backends: &[Arc<Backend>], now: Instant) -> Option<usize> {
        // TODO: total weight of available backends, counter modulo total, walk.
        let _ = (backends, now);
        todo!("lab 4.2: pick by weight")
    }
}
