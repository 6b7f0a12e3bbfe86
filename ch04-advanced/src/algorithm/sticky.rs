//! Cookie sticky sessions: a client that carries our cookie goes back to
//! the node it names; a new client, or one whose node is gone or down,
//! is placed by round robin and (by the balancer) given a fresh cookie.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use super::round_robin::RoundRobin;
use super::{Algorithm, Context};
use crate::node::Pool;

/// Sticky sessions over round robin.
#[derive(Debug)]
pub struct Sticky {
    cookie_name: String,
    fallback: RoundRobin,
}

impl Sticky {
    /// Sessions kept in cookie `cookie_name`.
    pub fn new(cookie_name: &str) -> Self {
        Self { cookie_name: cookie_name.to_string(), fallback: RoundRobin::default() }
    }
}

// ANCHOR: sticky
impl Algorithm for Sticky {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        if let Some(id) = ctx.cookie
            && let Some(i) = pool.nodes.iter().position(|n| n.id == id)
            && pool.eligible(i, ctx.now)
        {
            return Some(i);
        }
        // Unknown, stale or down: choose again.
        self.fallback.pick(pool, ctx)
    }

    fn cookie_name(&self) -> Option<&str> {
        Some(&self.cookie_name)
    }
}
// ANCHOR_END: sticky

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{ctx, pool};
    use std::time::{Duration, Instant};

    #[test]
    fn a_known_cookie_wins_an_unknown_one_is_ignored() {
        let p = pool(&[1, 1, 1]);
        let s = Sticky::new("lb");
        let now = Instant::now();
        let id = p.nodes[2].id.clone();
        for _ in 0..5 {
            assert_eq!(s.pick(&p, &Context { cookie: Some(&id), ..ctx(now) }), Some(2));
        }
        assert!(s.pick(&p, &Context { cookie: Some("nonsense"), ..ctx(now) }).is_some());
        p.nodes[2].backend.mark_down(Duration::from_secs(60));
        assert_ne!(s.pick(&p, &Context { cookie: Some(&id), ..ctx(now) }), Some(2));
    }
}
