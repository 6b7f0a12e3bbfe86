//! The sliding log: exact, and too big to use. The reference.

use std::collections::VecDeque;

use super::{Algorithm, Decision, Verdict};
use crate::clock::Nanos;
use crate::quota::Quota;

// ANCHOR: sliding_log
/// Remembers the time of every allowed request in the last window and
/// allows a request only if fewer than `burst` are there: exactly "at most
/// `burst` in any window of `burst / rate` seconds". Its state grows with
/// the limit (up to `burst` timestamps per client), which is why nobody
/// runs it for a million clients; here it is the yardstick the other
/// algorithms are measured against.
#[derive(Debug, Clone, Copy)]
pub struct SlidingLog {
    window: Nanos,
    limit: usize,
}

impl SlidingLog {
    /// At most `quota.burst` in any `quota.window()`.
    pub fn new(quota: Quota) -> Self {
        Self { window: quota.window().max(1), limit: quota.burst as usize }
    }

    fn forget_old(&self, log: &mut VecDeque<Nanos>, now: Nanos) {
        while log.front().is_some_and(|&t| t + self.window <= now) {
            log.pop_front();
        }
    }
}

impl Algorithm for SlidingLog {
    type State = VecDeque<Nanos>;

    fn name(&self) -> &'static str {
        "sliding log"
    }

    fn fresh(&self) -> VecDeque<Nanos> {
        VecDeque::new()
    }

    fn check(&self, log: &mut VecDeque<Nanos>, now: Nanos) -> Decision {
        self.forget_old(log, now);
        let reset_after = |log: &VecDeque<Nanos>| log.back().map_or(0, |&t| (t + self.window).saturating_sub(now));
        if log.len() >= self.limit {
            // Allowed again when the oldest one leaves the window.
            let wait = log.front().map_or(1, |&t| (t + self.window).saturating_sub(now).max(1));
            return Decision { verdict: Verdict::Deny(wait), remaining: 0, reset: reset_after(log) };
        }
        log.push_back(now.max(log.back().copied().unwrap_or(0)));
        let remaining = u32::try_from(self.limit - log.len()).unwrap_or(u32::MAX);
        Decision { verdict: Verdict::Allow, remaining, reset: reset_after(log) }
    }

    fn is_fresh(&self, log: &VecDeque<Nanos>, now: Nanos) -> bool {
        log.back().is_none_or(|&t| t + self.window <= now)
    }
}
// ANCHOR_END: sliding_log
