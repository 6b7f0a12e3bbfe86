//! # Lab 4.2 — weighted selection (reference solution)
//!
//! The task is in `src/labs/lab_4_2_weighted_selection.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
        let total: u64 = backends.iter().filter(|b| b.is_available(now)).map(|b| u64::from(b.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut slot = self.counter.fetch_add(1, Ordering::Relaxed) % total;
        for (i, b) in backends.iter().enumerate() {
            if !b.is_available(now) {
                continue;
            }
            let w = u64::from(b.weight);
            if slot < w {
                return Some(i);
            }
            slot -= w;
        }
        None
    }
}
