//! Five ways to say "not so fast", behind one trait.
//!
//! Each algorithm is a small value holding its parameters, and a separate
//! per-client `State`: the algorithm decides, the state remembers. So one
//! algorithm serves a million clients, each with a state of a few bytes in
//! the keyed table ([`crate::keyed`]), and the same trait serves a global
//! limit (one state) and the tests (a state in a local variable).
//!
//! | algorithm | state | what it promises |
//! |---|---|---|
//! | [`TokenBucket`] | tokens + last refill (16 B) | `burst` at once, `rate` on average |
//! | [`Gcra`] | one timestamp (8 B) | the same, with one number; also nginx's delay |
//! | [`LeakyBucket`] | excess + last (16 B) | nginx's `limit_req`, in its integer milliseconds |
//! | [`SlidingWindow`] | window start + two counts (16 B) | about `burst` per window, smoothed |
//! | [`SlidingLog`] | every allowed time (grows) | exactly `burst` in any window: the reference |

mod gcra;
mod leaky_bucket;
mod sliding_log;
mod sliding_window;
mod token_bucket;
pub mod trace;

pub use gcra::Gcra;
pub use leaky_bucket::{Excess, LeakyBucket};
pub use sliding_log::SlidingLog;
pub use sliding_window::{SlidingWindow, WindowState};
pub use token_bucket::{TokenBucket, Tokens};

use crate::clock::Nanos;

// ANCHOR: decision
/// What an algorithm says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through now.
    Allow,
    /// Let it through after this long (delay mode: nginx without `nodelay`).
    Delay(Nanos),
    /// Refuse it; a request after this long would be allowed.
    Deny(Nanos),
}

/// The verdict and what a client may be told about its allowance
/// (the `RateLimit` header's `r` and `t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allowed, delayed or denied.
    pub verdict: Verdict,
    /// Requests that would still be allowed at once after this one.
    pub remaining: u32,
    /// How long until the allowance is whole again.
    pub reset: Nanos,
}

impl Decision {
    /// The request may go (now or later).
    pub fn allowed(&self) -> bool {
        !matches!(self.verdict, Verdict::Deny(_))
    }
}
// ANCHOR_END: decision

// ANCHOR: algorithm
/// A rate-limiting algorithm: the rule, apart from anyone's state.
pub trait Algorithm: std::fmt::Debug + Send + Sync {
    /// What it remembers per client.
    type State: Clone + std::fmt::Debug + Send;

    /// Its name, for tables and logs.
    fn name(&self) -> &'static str;

    /// The state of a client never seen before.
    fn fresh(&self) -> Self::State;

    /// Decides about one request at `now`, and charges `state` for it when
    /// it is allowed (or delayed). A denied request charges nothing: a
    /// client that keeps knocking is not pushed further back.
    fn check(&self, state: &mut Self::State, now: Nanos) -> Decision;

    /// Whether `state` has fully recovered at `now`: it would decide
    /// every future request exactly as [`fresh`](Self::fresh) would, so
    /// forgetting it changes nothing. The keyed table reuses only such
    /// slots, which is why eviction never lets a limited client start over.
    fn is_fresh(&self, state: &Self::State, now: Nanos) -> bool;
}
// ANCHOR_END: algorithm

/// Nanoseconds to a count of whole requests, for `remaining`.
fn whole(n: f64) -> u32 {
    if n <= 0.0 { 0 } else { n.floor().min(f64::from(u32::MAX)) as u32 }
}

#[cfg(test)]
mod tests;
