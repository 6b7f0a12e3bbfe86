//! # Lab 4.4 — recovery check
//!
//! A backend marked down must get a chance to come back. Probe it on a
//! schedule, and only believe it is back after several good probes in a
//! row (a backend that answers one probe in three is not healthy).
//!
//! - [`RecoveryCheck::new`] starts with the backend up (nothing to probe).
//! - [`RecoveryCheck::went_down`] starts probing: the first probe is due
//!   `interval` after `now`.
//! - [`RecoveryCheck::probe_due`] says whether a probe should run at `now`
//!   (never while up).
//! - [`RecoveryCheck::record_probe`] records a probe made at `now`: the
//!   next one is due `interval` later; `rise` successes in a row bring the
//!   backend up and return `true` (exactly once); a failure restarts the
//!   count. Recording while up does nothing and returns `false`.
//! - Time is passed in, so the tests need no clock.
//!
//! Run it: `cargo test -p ch04-advanced --no-default-features lab_4_4`.

use std::time::{Duration, Instant};

/// Probing schedule and success streak of a down backend.
#[derive(Debug)]
pub struct RecoveryCheck {
    // TODO: your fields.
}

impl RecoveryCheck {
    /// Probe every `interval`; back up after `rise` good probes in a row.
    pub fn new(interval: Duration, rise: u32) -> Self {
        let _ = (interval, rise);
        todo!("lab 4.4: create the check")
    }

    /// The backend went down at `now`.
    pub fn went_down(&mut self, now: Instant) {
        let _ = now;
        todo!("lab 4.4: start probing")
    }

    /// Whether a probe is due at `now`.
    pub fn probe_due(&self, now: Instant) -> bool {
        let _ = now;
        todo!("lab 4.4: is a probe due?")
    }

    /// Records a probe made at `now`; true when the backend is back up.
    pub fn record_probe(&mut self, ok: bool, now: Instant) -> bool {
        let _ = (ok, now);
        todo!("lab 4.4: record a probe")
    }

    /// Whether the backend is down.
    pub fn is_down(&self) -> bool {
        todo!("lab 4.4: report the state")
    }
}
