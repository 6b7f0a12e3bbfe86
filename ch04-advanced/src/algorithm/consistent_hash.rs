//! Consistent hashing on a ring, ketama style.
//!
//! Every node is placed on a ring of 2^64 positions at many points
//! (*virtual nodes*) by hashing `address#i`. A key goes to the first point
//! at or after its own hash, going round. Adding a node takes over only the
//! arcs just before its points, about 1/n of the keys; removing one hands
//! only its keys to the neighbours. With `hash(key) % n` instead, changing
//! n moves almost every key: a disaster for caches behind the balancer.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use super::{Algorithm, Context};
use crate::node::{Pool, fnv1a};

/// A ring of virtual nodes.
#[derive(Debug)]
pub struct ConsistentHash {
    /// (position, node index), sorted by position.
    ring: Vec<(u64, usize)>,
}

// ANCHOR: ring
impl ConsistentHash {
    /// Places each node of `pool` at `virtual_nodes` points, more for
    /// heavier nodes (in proportion to weight).
    pub fn new(pool: &Pool, virtual_nodes: usize) -> Self {
        let mut ring = Vec::new();
        for (i, node) in pool.nodes.iter().enumerate() {
            let points = virtual_nodes * node.weight().max(1) as usize;
            for v in 0..points {
                ring.push((fnv1a(format!("{}#{v}", node.addr()).as_bytes()), i));
            }
        }
        ring.sort_unstable();
        Self { ring }
    }

    /// The node for `key` when every node is eligible.
    pub fn owner(&self, key: &str) -> Option<usize> {
        let h = fnv1a(key.as_bytes());
        let at = self.ring.partition_point(|&(p, _)| p < h);
        self.ring.get(at).or(self.ring.first()).map(|&(_, i)| i)
    }
}

impl Algorithm for ConsistentHash {
    fn name(&self) -> &'static str {
        "hash"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        if self.ring.is_empty() {
            return None;
        }
        let h = fnv1a(ctx.key.as_bytes());
        let start = self.ring.partition_point(|&(p, _)| p < h);
        // Walk clockwise past points of ineligible nodes.
        self.ring
            .iter()
            .cycle()
            .skip(start)
            .take(self.ring.len())
            .map(|&(_, i)| i)
            .find(|&i| i < pool.nodes.len() && pool.eligible(i, ctx.now))
    }
}
// ANCHOR_END: ring

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::pool;
    use std::time::{Duration, Instant};

    fn keys() -> Vec<String> {
        (0..10_000).map(|i| format!("/objects/{i}")).collect()
    }

    #[test]
    fn keys_spread_over_the_nodes() {
        let p = pool(&[1, 1, 1]);
        let ring = ConsistentHash::new(&p, 160);
        let mut c = [0; 3];
        for k in keys() {
            c[ring.owner(&k).unwrap()] += 1;
        }
        assert!(c.iter().all(|&n| (2_600..=4_100).contains(&n)), "{c:?}");
    }

    #[test]
    fn adding_a_fourth_node_moves_about_a_quarter_of_the_keys() {
        let three = pool(&[1, 1, 1]);
        let four = pool(&[1, 1, 1, 1]); // same first three addresses
        let (r3, r4) = (ConsistentHash::new(&three, 160), ConsistentHash::new(&four, 160));
        let moved = keys().iter().filter(|k| r3.owner(k) != r4.owner(k)).count();
        assert!((1_700..=3_300).contains(&moved), "{moved} of 10000 moved");
        // Every key that moved went to the new node.
        assert!(keys().iter().all(|k| r3.owner(k) == r4.owner(k) || r4.owner(k) == Some(3)));
    }

    #[test]
    fn a_down_node_hands_its_keys_to_its_neighbours_only() {
        let p = pool(&[1, 1, 1]);
        let ring = ConsistentHash::new(&p, 160);
        p.nodes[2].backend.mark_down(Duration::from_secs(60));
        let now = Instant::now();
        for k in keys().iter().take(2_000) {
            let ctx = Context { client_ip: [127, 0, 0, 1].into(), key: k, cookie: None, now };
            let picked = ring.pick(&p, &ctx).unwrap();
            assert_ne!(picked, 2);
            if ring.owner(k) != Some(2) {
                assert_eq!(Some(picked), ring.owner(k));
            }
        }
    }
}
