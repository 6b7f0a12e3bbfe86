//! Random: uniform over the eligible nodes.

use std::sync::{Mutex, PoisonError};

use ch03_load_balancer::rng::Rng;

use super::{Algorithm, Context};
use crate::node::Pool;

/// Uniform random choice.
#[derive(Debug)]
pub struct Random {
    rng: Mutex<Rng>,
}

impl Random {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: Mutex::new(Rng::new(seed)) }
    }
}

impl Algorithm for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        let eligible: Vec<usize> = pool.eligible_indices(ctx.now).collect();
        if eligible.is_empty() {
            return None;
        }
        let r = self.rng.lock().unwrap_or_else(PoisonError::into_inner).below(eligible.len() as u64);
        Some(eligible[r as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{counts, pool};

    #[test]
    fn uniform_within_tolerance() {
        let p = pool(&[1, 9, 1]);
        for n in counts(&Random::new(11), &p, 30_000) {
            assert!((9_400..=10_600).contains(&n), "{n}");
        }
    }
}
