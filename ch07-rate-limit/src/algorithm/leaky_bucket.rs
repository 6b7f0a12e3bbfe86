//! nginx's `limit_req`: a leaky bucket in integer milliseconds.

use super::{Algorithm, Decision, Verdict};
use crate::clock::Nanos;
use crate::quota::Quota;

const MS: Nanos = 1_000_000;

// ANCHOR: leaky_bucket
/// The bucket fills by one request per request and leaks `rate` requests
/// a second; what is in it is the *excess*. Like nginx, the excess is kept
/// in thousandths of a request and time in whole milliseconds, and a
/// client's first request (or its first after the bucket ran dry) costs
/// nothing. nginx's `burst=N` is the excess allowed: N + 1 requests at
/// once. So a [`Quota`] of burst B is nginx's `burst=B-1`, and every
/// algorithm here allows B at once.
///
/// Over the burst: refused. Within it: passed at once with `nodelay`
/// (or up to `delay` excess requests), otherwise held until the bucket
/// has leaked enough.
#[derive(Debug, Clone, Copy)]
pub struct LeakyBucket {
    /// Requests per second × 1000 (nginx's `rate`).
    rate: u64,
    /// Excess allowed × 1000 (nginx's `burst`).
    burst: u64,
    /// Excess passed without waiting × 1000: `burst` for `nodelay`.
    delay: u64,
}

/// The excess (thousandths of a request) and when it was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Excess {
    /// Thousandths of a request in the bucket.
    pub excess: u64,
    /// The millisecond it was measured at; `None` for a new client.
    pub last_ms: Option<u64>,
}

impl LeakyBucket {
    /// nginx's `limit_req ... burst=B-1 nodelay`.
    pub fn nodelay(quota: Quota) -> Self {
        let rate = ((quota.rate * 1000.0).round() as u64).max(1);
        let burst = u64::from(quota.burst - 1) * 1000;
        Self { rate, burst, delay: burst }
    }

    /// nginx's `limit_req ... burst=B-1 delay=D` (D = 0: no `delay=`).
    pub fn delaying(quota: Quota, delay: u32) -> Self {
        let b = Self::nodelay(quota);
        Self { delay: (u64::from(delay) * 1000).min(b.burst), ..b }
    }

    /// The excess at `now_ms` if one more request came (before the check).
    fn excess_with_one_more(&self, state: &Excess, now_ms: u64) -> u64 {
        match state.last_ms {
            None => 0,
            Some(last) => {
                let elapsed = now_ms.saturating_sub(last);
                let leaked = self.rate.saturating_mul(elapsed) / 1000;
                (state.excess + 1000).saturating_sub(leaked)
            }
        }
    }
}

impl Algorithm for LeakyBucket {
    type State = Excess;

    fn name(&self) -> &'static str {
        "leaky bucket (nginx)"
    }

    fn fresh(&self) -> Excess {
        Excess { excess: 0, last_ms: None }
    }

    fn check(&self, state: &mut Excess, now: Nanos) -> Decision {
        let now_ms = now / MS;
        let excess = self.excess_with_one_more(state, now_ms);
        let per_request_ms = 1_000_000 / self.rate;
        if excess > self.burst {
            // Wait until enough has leaked for this request to fit.
            let over = excess - self.burst;
            let wait_ms = (over * 1000).div_ceil(self.rate).max(1);
            let reset = (state.excess * 1000).div_ceil(self.rate) * MS;
            return Decision { verdict: Verdict::Deny(wait_ms * MS), remaining: 0, reset };
        }
        *state = Excess { excess, last_ms: Some(now_ms.max(state.last_ms.unwrap_or(0))) };
        let verdict = if excess > self.delay {
            Verdict::Delay((excess - self.delay) * 1000 / self.rate * MS)
        } else {
            Verdict::Allow
        };
        let remaining = u32::try_from((self.burst - excess) / 1000).unwrap_or(u32::MAX);
        // Dry again once the excess has leaked and one more interval passed.
        let reset = ((excess * 1000).div_ceil(self.rate) + per_request_ms) * MS;
        Decision { verdict, remaining, reset }
    }

    fn is_fresh(&self, state: &Excess, now: Nanos) -> bool {
        // Fresh when the next request would again cost nothing.
        match state.last_ms {
            None => true,
            Some(last) => {
                let leaked = self.rate.saturating_mul((now / MS).saturating_sub(last)) / 1000;
                leaked >= state.excess + 1000
            }
        }
    }
}
// ANCHOR_END: leaky_bucket
