//! # Lab 4.1 (and 7.1) — random selection
//!
//! Round robin needs shared state (the position); random selection needs
//! none, and over many requests it spreads load just as evenly.
//!
//! - [`RandomSelector::pick`] returns the index (into `backends`) of a
//!   backend chosen uniformly at random among those that are available
//!   (`Backend::is_available(now)`), or `None` when none is. Draw exactly
//!   one number per pick from the selector's [`Rng`] with
//!   `rng.below(number_of_available_backends)` and take that
//!   available backend, counting in list order; the tests replay the same
//!   seed to check this.
//! - The selector is shared by every connection thread, so `pick` takes
//!   `&self`: the generator sits behind a `Mutex`.
//!
//! Run it: `cargo test -p ch03-load-balancer --no-default-features lab_4_1`,
//! then `load_balancer --strategy random --demo`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Rng;
use crate::backend::Backend;

/// Picks a uniformly random available backend.
#[derive(Debug)]
pub struct RandomSelector {
    /// The generator, shared by every thread.
    pub rng: Mutex<Rng>,
}

impl RandomSelector {
    /// A selector whose choices follow `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: Mutex::new(Rng::new(seed)) }
    }

    /// The index of a random available backend, or `None`.
    pub fn pick(&self, backends: &[Arc<Backend>], now: Instant) -> Option<usize> {
        // TODO: collect the indices of available backends, draw one number.
        let _ = (backends, now);
        todo!("lab 4.1: pick a random backend")
    }
}
