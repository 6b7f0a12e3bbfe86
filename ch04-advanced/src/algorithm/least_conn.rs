//! Weighted least connections: the node with the fewest requests in
//! progress per unit of weight. Ties rotate, so idle nodes share equally.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Algorithm, Context};
use crate::node::Pool;

/// Fewest active requests relative to weight.
#[derive(Debug, Default)]
pub struct LeastConnections {
    tie: AtomicUsize,
}

// ANCHOR: least_conn
impl Algorithm for LeastConnections {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        let n = pool.nodes.len();
        let start = self.tie.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(usize, u64, u64)> = None; // (index, active, weight)
        for k in 0..n {
            let i = (start + k) % n;
            if !pool.eligible(i, ctx.now) {
                continue;
            }
            let (active, weight) = (pool.nodes[i].active(), pool.weight(i, ctx.now).max(1));
            // a/w < b/v  <=>  a*v < b*w: no division, no rounding.
            let better =
                best.is_none_or(|(_, ba, bw)| (active as u128) * (bw as u128) < (ba as u128) * (weight as u128));
            if better {
                best = Some((i, active, weight));
            }
        }
        best.map(|(i, _, _)| i)
    }
}
// ANCHOR_END: least_conn

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{counts, ctx, pool};
    use std::time::Instant;

    #[test]
    fn the_least_loaded_node_wins() {
        let p = pool(&[1, 1, 1]);
        p.nodes[0].backend.active.store(5, Ordering::SeqCst);
        p.nodes[1].backend.active.store(1, Ordering::SeqCst);
        p.nodes[2].backend.active.store(3, Ordering::SeqCst);
        assert_eq!(LeastConnections::default().pick(&p, &ctx(Instant::now())), Some(1));
    }

    #[test]
    fn weight_scales_the_load_a_node_can_take() {
        let p = pool(&[4, 1]);
        p.nodes[0].backend.active.store(3, Ordering::SeqCst); // 3/4 < 1/1
        p.nodes[1].backend.active.store(1, Ordering::SeqCst);
        assert_eq!(LeastConnections::default().pick(&p, &ctx(Instant::now())), Some(0));
    }

    #[test]
    fn idle_nodes_share_equally() {
        let p = pool(&[1, 1, 1]);
        assert_eq!(counts(&LeastConnections::default(), &p, 300), [100, 100, 100]);
    }
}
