//! # Lab 4.4 — recovery check (reference solution)
//!
//! The task is in `src/labs/lab_4_4_recovery_check.rs`.
//!
//! Time is a parameter, never read from the clock here: the caller owns the
//! clock, so the schedule can be tested in microseconds and the same code
//! runs in the health-check thread with `Instant::now()`.

use std::time::{Duration, Instant};

/// Probing schedule and success streak of a down backend.
#[derive(Debug)]
pub struct RecoveryCheck {
    /// Time between probes.
    interval: Duration,
    /// Good probes in a row that bring the backend back (at least 1).
    rise: u32,
    /// While down: when the next probe is due. `None` while up, or when
    /// `now + interval` does not fit in an `Instant` (then never due).
    next_probe: Option<Instant>,
    /// Whether the backend is down.
    down: bool,
    /// Good probes in a row so far.
    successes: u32,
}

impl RecoveryCheck {
    /// Probe every `interval`; back up after `rise` good probes in a row.
    pub fn new(interval: Duration, rise: u32) -> Self {
        // rise 0 would bring a backend up without any evidence: one good
        // probe is the least we ask for.
        Self { interval, rise: rise.max(1), next_probe: None, down: false, successes: 0 }
    }

    /// The backend went down at `now`.
    pub fn went_down(&mut self, now: Instant) {
        self.down = true;
        self.successes = 0;
        // Not at once: the backend just failed, so give it one interval to
        // restart before bothering it.
        self.next_probe = now.checked_add(self.interval);
    }

    /// Whether a probe is due at `now`.
    pub fn probe_due(&self, now: Instant) -> bool {
        self.down && self.next_probe.is_some_and(|due| now >= due)
    }

    /// Records a probe made at `now`; true when the backend is back up.
    pub fn record_probe(&mut self, ok: bool, now: Instant) -> bool {
        if !self.down {
            // Nothing is being checked; a stray probe result changes nothing.
            return false;
        }
        // The schedule counts from the probe actually made, so a late probe
        // (a busy checker thread) does not cause a burst of catch-up probes.
        self.next_probe = now.checked_add(self.interval);
        if !ok {
            // "Several good probes in a row": any failure starts over.
            self.successes = 0;
            return false;
        }
        self.successes = self.successes.saturating_add(1);
        if self.successes < self.rise {
            return false;
        }
        // Back up: stop probing, and report the transition this once.
        self.down = false;
        self.successes = 0;
        self.next_probe = None;
        true
    }

    /// Whether the backend is down.
    pub fn is_down(&self) -> bool {
        self.down
    }
}
