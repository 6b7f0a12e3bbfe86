//! Round robin: each eligible node in turn.

// ANCHOR: round_robin
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Algorithm, Context};
use crate::node::Pool;

/// Each eligible node in turn.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Algorithm for RoundRobin {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        let n = pool.nodes.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| (start + i) % n.max(1)).find(|&i| pool.eligible(i, ctx.now))
    }
}

// ANCHOR_END: round_robin

// ANCHOR: round_robin_tests
#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{counts, pool};

    #[test]
    fn each_in_turn() {
        let p = pool(&[1, 5, 1]);
        assert_eq!(counts(&RoundRobin::default(), &p, 300), [100, 100, 100], "weights are ignored");
    }
}
// ANCHOR_END: round_robin_tests
