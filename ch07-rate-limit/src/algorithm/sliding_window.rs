//! The sliding-window counter: two counts instead of a log.

use super::{Algorithm, Decision, Verdict, whole};
use crate::clock::Nanos;
use crate::quota::Quota;

// ANCHOR: sliding_window
/// Counts requests in fixed windows (of `burst / rate` seconds) and
/// estimates the count over the last window-length of time as
///
/// ```text
/// previous × (1 − elapsed / window) + current
/// ```
///
/// assuming the previous window's requests were spread evenly. A fixed
/// window alone would let a client send `burst` at the end of one window
/// and `burst` more at the start of the next; the weighting smooths that
/// edge. The estimate is not exact: compare with [`super::SlidingLog`].
#[derive(Debug, Clone, Copy)]
pub struct SlidingWindow {
    window: Nanos,
    limit: u32,
}

/// Which window is current, and the two counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowState {
    /// Start of the current window (a multiple of the window length).
    pub start: Nanos,
    /// Requests allowed in the window before it.
    pub previous: u32,
    /// Requests allowed in the current window.
    pub current: u32,
}

impl SlidingWindow {
    /// Windows of `quota.window()`, `quota.burst` requests in each.
    pub fn new(quota: Quota) -> Self {
        Self { window: quota.window().max(1), limit: quota.burst }
    }

    /// The state moved on to the window holding `now`.
    fn rolled(&self, s: &WindowState, now: Nanos) -> WindowState {
        let start = now - now % self.window;
        if start <= s.start {
            // Same window (or the clock went back: stay where we were).
            *s
        } else if start == s.start + self.window {
            WindowState { start, previous: s.current, current: 0 }
        } else {
            WindowState { start, previous: 0, current: 0 }
        }
    }

    /// The weighted count at `now` (in the window `s` is rolled to).
    fn estimate(&self, s: &WindowState, now: Nanos) -> f64 {
        let into = now.saturating_sub(s.start).min(self.window) as f64 / self.window as f64;
        f64::from(s.previous) * (1.0 - into) + f64::from(s.current)
    }

    /// How long from `now` until the estimate falls to `target` or below,
    /// counting no new requests.
    fn until_at_most(&self, s: &WindowState, now: Nanos, target: f64) -> Nanos {
        let w = self.window as f64;
        let current = f64::from(s.current);
        let previous = f64::from(s.previous);
        // Within this window the estimate is previous × (1 − x/w) + current.
        if current <= target && previous > 0.0 {
            let x = w * (1.0 - (target - current) / previous);
            let at = s.start as f64 + x.ceil();
            return (at as Nanos).saturating_sub(now).max(1);
        }
        // Otherwise in the next one, where `current` becomes the previous.
        let next = s.start + self.window;
        if current <= 0.0 {
            return next.saturating_sub(now).max(1);
        }
        let x = (w * (1.0 - target / current)).max(0.0);
        (next + x.ceil() as Nanos).saturating_sub(now).max(1)
    }
}

impl Algorithm for SlidingWindow {
    type State = WindowState;

    fn name(&self) -> &'static str {
        "sliding window"
    }

    fn fresh(&self) -> WindowState {
        WindowState::default()
    }

    fn check(&self, state: &mut WindowState, now: Nanos) -> Decision {
        let s = self.rolled(state, now);
        let limit = f64::from(self.limit);
        let estimate = self.estimate(&s, now);
        if estimate + 1.0 > limit {
            let wait = self.until_at_most(&s, now, limit - 1.0);
            let reset = self.until_at_most(&s, now, 0.0);
            return Decision { verdict: Verdict::Deny(wait), remaining: 0, reset };
        }
        *state = WindowState { current: s.current + 1, ..s };
        let reset = self.until_at_most(state, now, 0.0);
        Decision { verdict: Verdict::Allow, remaining: whole(limit - estimate - 1.0), reset }
    }

    fn is_fresh(&self, state: &WindowState, now: Nanos) -> bool {
        let s = self.rolled(state, now);
        s.previous == 0 && s.current == 0
    }
}
// ANCHOR_END: sliding_window
