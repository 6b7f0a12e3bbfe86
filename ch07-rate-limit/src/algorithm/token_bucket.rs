//! The token bucket: the C curriculum's limiter.

use super::{Algorithm, Decision, Verdict, whole};
use crate::clock::Nanos;
use crate::quota::Quota;

// ANCHOR: token_bucket
/// A bucket holds up to `burst` tokens and gains `rate` a second; a
/// request takes one or is refused. The refill is computed when a request
/// comes, from the time since the last one: an idle bucket costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    capacity: f64,
    per_nano: f64,
}

/// A bucket's contents and when they were counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tokens {
    /// Tokens in the bucket at `at` (fractions count: 0.5 is half-way to one).
    pub tokens: f64,
    /// When they were counted.
    pub at: Nanos,
}

impl TokenBucket {
    /// A bucket for `quota`.
    pub fn new(quota: Quota) -> Self {
        Self { capacity: f64::from(quota.burst), per_nano: quota.rate / 1e9 }
    }

    /// The tokens `state` holds at `now`, refilled and capped. Time going
    /// backwards (a caller's clock; never ours) adds nothing.
    fn refilled(&self, state: &Tokens, now: Nanos) -> f64 {
        let elapsed = now.saturating_sub(state.at) as f64;
        (state.tokens + elapsed * self.per_nano).min(self.capacity)
    }
}

impl Algorithm for TokenBucket {
    type State = Tokens;

    fn name(&self) -> &'static str {
        "token bucket"
    }

    fn fresh(&self) -> Tokens {
        Tokens { tokens: self.capacity, at: 0 }
    }

    fn check(&self, state: &mut Tokens, now: Nanos) -> Decision {
        let tokens = self.refilled(state, now);
        if tokens >= 1.0 {
            *state = Tokens { tokens: tokens - 1.0, at: now.max(state.at) };
            let reset = ((self.capacity - state.tokens) / self.per_nano).ceil() as Nanos;
            return Decision { verdict: Verdict::Allow, remaining: whole(state.tokens), reset };
        }
        // Refused: nothing taken. The wait is until one whole token is in.
        let wait = (((1.0 - tokens) / self.per_nano).ceil() as Nanos).max(1);
        let reset = ((self.capacity - tokens) / self.per_nano).ceil() as Nanos;
        Decision { verdict: Verdict::Deny(wait), remaining: 0, reset }
    }

    fn is_fresh(&self, state: &Tokens, now: Nanos) -> bool {
        self.refilled(state, now) >= self.capacity
    }
}
// ANCHOR_END: token_bucket
