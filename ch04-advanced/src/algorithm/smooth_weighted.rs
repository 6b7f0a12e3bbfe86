//! Smooth weighted round robin, as nginx does it.
//!
//! Plain weighted round robin with weights 5, 1, 1 sends `a a a a a b c`:
//! bursts. The smooth variant interleaves: `a a b a c a a`. Each pick, every
//! node's *current* weight grows by its weight; the node with the highest
//! current weight wins and has the total subtracted. Over a cycle each node
//! wins exactly its weight's share, spread as evenly as the weights allow.

use std::sync::{Mutex, PoisonError};

use super::{Algorithm, Context};
use crate::node::Pool;

/// nginx's smooth weighted round robin.
#[derive(Debug)]
pub struct SmoothWeighted {
    current: Mutex<Vec<i64>>,
}

impl SmoothWeighted {
    /// State for a pool of `n` nodes.
    pub fn new(n: usize) -> Self {
        Self { current: Mutex::new(vec![0; n]) }
    }
}

// ANCHOR: smooth_weighted
impl Algorithm for SmoothWeighted {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.resize(pool.nodes.len(), 0);
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for i in pool.eligible_indices(ctx.now) {
            let w = pool.weight(i, ctx.now) as i64;
            current[i] += w;
            total += w;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        current[chosen] -= total;
        Some(chosen)
    }
}
// ANCHOR_END: smooth_weighted

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{counts, ctx, pool};
    use std::time::{Duration, Instant};

    #[test]
    fn weights_5_1_1_give_the_nginx_sequence() {
        let p = pool(&[5, 1, 1]);
        let alg = SmoothWeighted::new(3);
        let now = Instant::now();
        let seq: String = (0..14).map(|_| ["a", "b", "c"][alg.pick(&p, &ctx(now)).unwrap()]).collect();
        assert_eq!(seq, "aabacaaaabacaa");
    }

    #[test]
    fn shares_are_exact() {
        let p = pool(&[3, 2, 1]);
        assert_eq!(counts(&SmoothWeighted::new(3), &p, 600), [300, 200, 100]);
    }

    #[test]
    fn a_down_node_gets_nothing() {
        let p = pool(&[3, 2, 1]);
        p.nodes[0].backend.mark_down(Duration::from_secs(60));
        assert_eq!(counts(&SmoothWeighted::new(3), &p, 300), [0, 200, 100]);
    }
}
