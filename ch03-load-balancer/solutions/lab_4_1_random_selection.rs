//! # Lab 4.1 (and 7.1) — random selection (reference solution)
//!
//! The task is in `src/labs/lab_4_1_random_selection.rs`.

use std::sync::{Arc, Mutex, PoisonError};
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
        let available: Vec<usize> = (0..backends.len()).filter(|&i| backends[i].is_available(now)).collect();
        if available.is_empty() {
            return None;
        }
        let r = self.rng.lock().unwrap_or_else(PoisonError::into_inner).below(available.len() as u64);
        Some(available[r as usize])
    }
}
