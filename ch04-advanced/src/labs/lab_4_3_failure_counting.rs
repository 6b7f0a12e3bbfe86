//! # Lab 4.3 — failure counting
//!
//! The heart of passive health checking: count failures *in a row* and
//! declare a backend down after a threshold (3 in the C original), so one
//! unlucky request does not take a backend out but a dead one is dropped
//! quickly.
//!
//! - [`FailureCounter::new`] starts up, with no failures.
//! - [`FailureCounter::record_failure`] adds one to the streak and returns
//!   `true` exactly when this failure takes the backend down (the streak
//!   reaches the threshold while it was up). Failures while down return
//!   `false` (the transition happened already) but still count.
//! - [`FailureCounter::record_success`] ends the streak (back to zero). It
//!   does not bring a down backend up: that is the recovery check's job
//!   (lab 4.4), which calls [`FailureCounter::reset`].
//!
//! Run it: `cargo test -p ch04-advanced --no-default-features lab_4_3`.

/// Consecutive failures and the up/down state they imply.
#[derive(Debug)]
pub struct FailureCounter {
    // TODO: your fields.
}

impl FailureCounter {
    /// Up, no failures; down after `threshold` in a row.
    pub fn new(threshold: u32) -> Self {
        let _ = threshold;
        todo!("lab 4.3: create the counter")
    }

    /// One more failure; true when this one takes the backend down.
    pub fn record_failure(&mut self) -> bool {
        todo!("lab 4.3: count a failure")
    }

    /// A success: the streak is over.
    pub fn record_success(&mut self) {
        todo!("lab 4.3: count a success")
    }

    /// Whether the backend is down.
    pub fn is_down(&self) -> bool {
        todo!("lab 4.3: report the state")
    }

    /// Failures in the current streak.
    pub fn consecutive_failures(&self) -> u32 {
        todo!("lab 4.3: report the streak")
    }

    /// Up again, streak zero (after a recovery).
    pub fn reset(&mut self) {
        todo!("lab 4.3: reset")
    }
}
