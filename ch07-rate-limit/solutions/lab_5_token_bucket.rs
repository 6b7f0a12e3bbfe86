//! # Lab 5 — a token-bucket rate limiter that answers 429 (reference solution)
//!
//! The task is in `src/labs/lab_5_token_bucket.rs`.

use crate::clock::Nanos;

/// Nanoseconds in a second.
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A token bucket: at most `capacity` requests at once, `refill_per_sec`
/// per second on average.
//
// The tokens are counted in *nanoseconds of waiting*, an integer: one
// token is worth `per_token` units, every nanosecond that passes adds one
// unit, and the bucket is full at `capacity × per_token` units. Nothing is
// ever rounded after `new`, so the bucket cannot drift: a thousand small
// refills add up to exactly what one large one would, which an `f64`
// running total does not promise. The units are `u128` because
// `capacity × per_token` can reach u32::MAX × u64::MAX, far past a `u64`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Units that make one token: ns for one token to come back, or 1 if
    /// the bucket never refills (its units are then whole tokens).
    per_token: u64,
    /// The units of a full bucket: `capacity × per_token`.
    full: u128,
    /// The units in the bucket at `last`.
    units: u128,
    /// The latest `now` the bucket has seen: the refill is counted from it.
    last: Nanos,
    /// False when the rate was not a finite number above 0.
    refills: bool,
}

impl TokenBucket {
    /// A full bucket at `now`: `capacity` tokens (0 counts as 1), refilled
    /// at `refill_per_sec` tokens per second (never, if that is not a
    /// finite number above 0).
    pub fn new(capacity: u32, refill_per_sec: f64, now: Nanos) -> TokenBucket {
        let capacity = u128::from(capacity.max(1));
        let (per_token, refills) = match nanos_per_token(refill_per_sec) {
            Some(ns) => (ns, true),
            None => (1, false),
        };
        let full = capacity * u128::from(per_token);
        TokenBucket { per_token, full, units: full, last: now, refills }
    }

    /// Takes one token at `now`: `Ok(())`, or `Err(wait)` with the
    /// nanoseconds until a whole token is there (at least 1; `Nanos::MAX`
    /// if the bucket never refills).
    pub fn try_take(&mut self, now: Nanos) -> Result<(), Nanos> {
        // Bring the bucket up to date first, and remember the time, so the
        // next call counts only the time after this one.
        self.units = self.units_at(now);
        self.last = self.last.max(now);
        let cost = u128::from(self.per_token);
        if self.units >= cost {
            self.units -= cost;
            return Ok(());
        }
        if !self.refills {
            return Err(Nanos::MAX);
        }
        // One unit comes back per nanosecond, so the wait is the units
        // missing. It is at least 1 (units < cost) and fits a u64
        // (cost is a u64), so the fallback is never used.
        Err(Nanos::try_from(cost - self.units).unwrap_or(Nanos::MAX))
    }

    /// The tokens in the bucket at `now`, fractions included; takes none.
    pub fn tokens(&self, now: Nanos) -> f64 {
        // Converting to f64 only here, for the reader, costs no exactness
        // in the bucket itself.
        self.units_at(now) as f64 / self.per_token as f64
    }

    /// The units the bucket holds at `now`: those at `last`, plus one per
    /// nanosecond since, capped at full. A `now` before `last` (the clock
    /// stepped back) adds nothing: `saturating_sub` gives 0 instead of
    /// underflowing.
    fn units_at(&self, now: Nanos) -> u128 {
        if !self.refills {
            return self.units;
        }
        let elapsed = u128::from(now.saturating_sub(self.last));
        (self.units + elapsed).min(self.full)
    }
}

/// The nanoseconds one token takes to come back at `per_sec` tokens per
/// second, rounded up and at least 1; `None` if `per_sec` is not a finite
/// number above 0 (the bucket then never refills).
fn nanos_per_token(per_sec: f64) -> Option<u64> {
    // Written so that NaN, which fails every comparison, lands in `None`.
    if !(per_sec.is_finite() && per_sec > 0.0) {
        return None;
    }
    // A very slow rate can make this larger than u64::MAX, or infinite:
    // `as` saturates to u64::MAX then (about 584 years per token).
    let ns = (NANOS_PER_SEC as f64 / per_sec).ceil() as u64;
    Some(ns.max(1))
}

/// The `Retry-After` value for a wait of `wait` ns: whole seconds, rounded
/// up, at least 1.
pub fn retry_after_secs(wait: Nanos) -> u64 {
    wait.div_ceil(NANOS_PER_SEC).max(1)
}

/// A complete `429 Too Many Requests` response telling the client to retry
/// after `wait` ns (rounded up to whole seconds).
pub fn too_many_requests(wait: Nanos) -> Vec<u8> {
    let secs = retry_after_secs(wait);
    let unit = if secs == 1 { "second" } else { "seconds" };
    let body = format!("429 Too Many Requests: retry after {secs} {unit}.\n");
    // Content-Length counts bytes, and `len()` on a String is bytes. No
    // `Connection: close`: the client's connection is fine, and its next
    // request, once allowed, can reuse it.
    format!(
        "HTTP/1.1 429 Too Many Requests\r\n\
         Retry-After: {secs}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         \r\n\
         {body}",
        body.len()
    )
    .into_bytes()
}
