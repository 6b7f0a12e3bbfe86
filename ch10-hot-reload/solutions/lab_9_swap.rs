//! # Lab 9 — hot reload: a value that changes whole, under readers that never wait (reference solution)
//!
//! The task is in `src/labs/lab_9_swap.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A value replaced whole, read without waiting for a replacement.
#[derive(Debug)]
pub struct Swap<T> {
    now: Mutex<(u64, Arc<T>)>,
    generation: AtomicU64,
}

impl<T> Swap<T> {
    /// A cell holding `value`, generation 1.
    pub fn new(value: T) -> Self {
        Self { now: Mutex::new((1, Arc::new(value))), generation: AtomicU64::new(1) }
    }

    fn lock(&self) -> MutexGuard<'_, (u64, Arc<T>)> {
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value in use now.
    pub fn load(&self) -> Arc<T> {
        Arc::clone(&self.lock().1)
    }

    /// The generation and the value in use now, as one pair.
    pub fn load_with_generation(&self) -> (u64, Arc<T>) {
        let now = self.lock();
        (now.0, Arc::clone(&now.1))
    }

    /// Replaces the value; returns its generation.
    pub fn publish(&self, value: T) -> u64 {
        let value = Arc::new(value);
        let mut now = self.lock();
        let generation = now.0 + 1;
        *now = (generation, value);
        self.generation.store(generation, Ordering::Release);
        generation
    }

    /// The generation in use now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}
