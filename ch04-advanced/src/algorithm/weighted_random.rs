//! Weighted random: a node's chance is its share of the total weight.

// ANCHOR: weighted_random
use std::sync::{Mutex, PoisonError};

use ch03_load_balancer::rng::Rng;

use super::{Algorithm, Context};
use crate::node::Pool;

/// Random choice in proportion to (effective) weight.
#[derive(Debug)]
pub struct WeightedRandom {
    rng: Mutex<Rng>,
}

impl WeightedRandom {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: Mutex::new(Rng::new(seed)) }
    }
}

impl Algorithm for WeightedRandom {
    fn name(&self) -> &'static str {
        "wrandom"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        // One pass to read eligibility and weights: another thread may change
        // them meanwhile, and the walk must see the same numbers as the sum.
        let weights: Vec<(usize, u64)> = pool.eligible_indices(ctx.now).map(|i| (i, pool.weight(i, ctx.now))).collect();
        let total: u64 = weights.iter().map(|&(_, w)| w).sum();
        if total == 0 {
            return None;
        }
        let mut r = self.rng.lock().unwrap_or_else(PoisonError::into_inner).below(total);
        for (i, w) in weights {
            if r < w {
                return Some(i);
            }
            r -= w;
        }
        None
    }
}
// ANCHOR_END: weighted_random

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{counts, pool};

    #[test]
    fn proportional_within_tolerance() {
        let p = pool(&[3, 2, 1]);
        let c = counts(&WeightedRandom::new(5), &p, 60_000);
        for (n, expected) in c.iter().zip([30_000, 20_000, 10_000]) {
            assert!(n.abs_diff(expected) <= 700, "{c:?}");
        }
    }
}
