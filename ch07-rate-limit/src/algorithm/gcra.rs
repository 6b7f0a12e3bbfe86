//! GCRA, the generic cell rate algorithm: a token bucket in one number.

use super::{Algorithm, Decision, Verdict};
use crate::clock::Nanos;
use crate::quota::Quota;

// ANCHOR: gcra
/// Instead of counting tokens, remember one time: the *theoretical
/// arrival time* (TAT) at which this client's next request would be
/// exactly on schedule. Each allowed request pushes it one interval
/// (1 / rate) further. A request may arrive early by up to `tolerance`
/// (`(burst − 1)` intervals): that is the burst.
///
/// It decides exactly like a token bucket of the same quota, in 8 bytes
/// instead of 16 and with integers only. With a `delay` (nginx's `limit_req`
/// without `nodelay`), a request early by more than `delay` intervals is
/// not refused but held until it is on time: nginx's leaky bucket, in one
/// number too.
#[derive(Debug, Clone, Copy)]
pub struct Gcra {
    interval: Nanos,
    tolerance: Nanos,
    /// Early arrivals up to this pass at once; later ones wait.
    no_delay: Nanos,
}

impl Gcra {
    /// Refuse what is over the quota (nginx's `nodelay`).
    pub fn new(quota: Quota) -> Self {
        let interval = quota.interval();
        let tolerance = interval.saturating_mul(Nanos::from(quota.burst - 1));
        Self { interval, tolerance, no_delay: tolerance }
    }

    /// Hold requests over the rate instead of refusing them, up to the
    /// burst: the first `delay` extra requests of a burst pass at once,
    /// the others wait their turn (nginx's `delay=`; 0 delays every one).
    pub fn delaying(quota: Quota, delay: u32) -> Self {
        let g = Self::new(quota);
        Self { no_delay: g.interval.saturating_mul(Nanos::from(delay)).min(g.tolerance), ..g }
    }
}

impl Algorithm for Gcra {
    /// The theoretical arrival time: 0 for a client never seen.
    type State = Nanos;

    fn name(&self) -> &'static str {
        "GCRA"
    }

    fn fresh(&self) -> Nanos {
        0
    }

    fn check(&self, tat: &mut Nanos, now: Nanos) -> Decision {
        let scheduled = (*tat).max(now);
        // How early this request is: 0 when the client is on schedule.
        let early = scheduled - now;
        if early > self.tolerance {
            let wait = early - self.tolerance;
            return Decision { verdict: Verdict::Deny(wait), remaining: 0, reset: early };
        }
        *tat = scheduled + self.interval;
        let verdict = if early > self.no_delay { Verdict::Delay(early - self.no_delay) } else { Verdict::Allow };
        let remaining = u32::try_from((self.tolerance - early) / self.interval).unwrap_or(u32::MAX);
        Decision { verdict, remaining, reset: *tat - now }
    }

    fn is_fresh(&self, tat: &Nanos, now: Nanos) -> bool {
        *tat <= now
    }
}
// ANCHOR_END: gcra
