//! # Lab 4.3 — failure counting (reference solution)
//!
//! The task is in `src/labs/lab_4_3_failure_counting.rs`.
//!
//! The state is two numbers and a flag. The one subtle part is the return
//! value of [`FailureCounter::record_failure`]: it reports the *transition*,
//! not the state, so the caller logs "backend is DOWN" once however many
//! failures follow.

/// Consecutive failures and the up/down state they imply.
#[derive(Debug)]
pub struct FailureCounter {
    /// Failures in a row that take the backend down (at least 1).
    threshold: u32,
    /// The current streak.
    failures: u32,
    /// Set when the streak reached the threshold; only `reset` clears it.
    down: bool,
}

impl FailureCounter {
    /// Up, no failures; down after `threshold` in a row.
    pub fn new(threshold: u32) -> Self {
        // A threshold of 0 would mean "down before any failure", which no
        // request could ever observe; treat it as 1 (the first failure).
        Self { threshold: threshold.max(1), failures: 0, down: false }
    }

    /// One more failure; true when this one takes the backend down.
    pub fn record_failure(&mut self) -> bool {
        // Saturating: a backend dead for weeks must not overflow the streak
        // (and a wrapped streak would look like a fresh one).
        self.failures = self.failures.saturating_add(1);
        if !self.down && self.failures >= self.threshold {
            self.down = true;
            return true;
        }
        false
    }

    /// A success: the streak is over.
    pub fn record_success(&mut self) {
        // Only the streak ends. A down backend stays down: one lucky request
        // (a retry that happened to work) is not proof of recovery; the
        // recovery check decides that and calls `reset`.
        self.failures = 0;
    }

    /// Whether the backend is down.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Failures in the current streak.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Up again, streak zero (after a recovery).
    pub fn reset(&mut self) {
        self.failures = 0;
        self.down = false;
    }
}
