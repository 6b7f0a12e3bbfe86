//! # Lab 8.2 — per-IP rate limiting, in bounded memory (reference solution)
//!
//! The task is in `src/labs/lab_8_2_per_ip.rs`.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::clock::Nanos;

/// What [`PerIpLimiter::check`] decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through: the client had a token.
    Allowed,
    /// Refuse it (with a 429).
    Limited {
        /// Nanoseconds until asking again can succeed: until the client's
        /// next token, or, for a client turned away, until there is room.
        retry_after: Nanos,
    },
}

/// The limiter's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerIpStats {
    /// Requests allowed.
    pub allowed: u64,
    /// Requests limited, the turned-away ones included.
    pub limited: u64,
    /// Entries forgotten because their bucket was full again.
    pub forgotten: u64,
    /// New clients refused because the map was full of refilling buckets.
    pub turned_away: u64,
}

/// The settings every bucket shares. They live once in the limiter, so an
/// entry is only the two numbers that differ between clients: with
/// 100,000 clients, that is what the memory is spent on.
///
/// Units are lab 5's: a bucket holds *nanoseconds of waiting*, one added
/// per nanosecond that passes, `per_token` of them making one token. All
/// integer, so nothing drifts.
#[derive(Debug, Clone, Copy)]
struct Rate {
    /// Units that make one token: the ns one token takes to come back, or
    /// 1 if buckets never refill (units are then whole tokens).
    per_token: u64,
    /// The units of a full bucket: `capacity × per_token`.
    full: u128,
    /// False when the rate was not a finite number above 0.
    refills: bool,
}

/// One client's bucket: its units at `last`, the latest `now` it has seen.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u128,
    last: Nanos,
}

impl Rate {
    fn new(capacity: u32, per_sec: f64) -> Self {
        let capacity = u128::from(capacity.max(1));
        // NaN fails every comparison, so it lands in the `else` branch.
        let (per_token, refills) = if per_sec.is_finite() && per_sec > 0.0 {
            // `as` saturates a huge (or infinite) quotient to u64::MAX.
            (((1_000_000_000_f64 / per_sec).ceil() as u64).max(1), true)
        } else {
            (1, false)
        };
        Rate { per_token, full: capacity * u128::from(per_token), refills }
    }

    /// A new client's bucket at `now`: full.
    fn fresh(self, now: Nanos) -> Bucket {
        Bucket { units: self.full, last: now }
    }

    /// The units `bucket` holds at `now`: refilled one per nanosecond since
    /// `last`, capped at full. A `now` before `last` adds nothing.
    fn units_at(self, bucket: &Bucket, now: Nanos) -> u128 {
        if !self.refills {
            return bucket.units;
        }
        (bucket.units + u128::from(now.saturating_sub(bucket.last))).min(self.full)
    }

    /// Takes one token from `bucket` at `now`, or says how long until one.
    fn take(self, bucket: &mut Bucket, now: Nanos) -> Decision {
        bucket.units = self.units_at(bucket, now);
        bucket.last = bucket.last.max(now);
        let cost = u128::from(self.per_token);
        if bucket.units >= cost {
            bucket.units -= cost;
            return Decision::Allowed;
        }
        let retry_after = if self.refills { saturate(cost - bucket.units) } else { Nanos::MAX };
        Decision::Limited { retry_after }
    }

    /// Nanoseconds until `bucket` is full again, seen from `now`: 0 if it
    /// is full already; `Nanos::MAX` if it never will be.
    fn until_full(self, bucket: &Bucket, now: Nanos) -> Nanos {
        let missing = self.full - self.units_at(bucket, now);
        if missing == 0 {
            0
        } else if self.refills {
            // One unit per nanosecond: the wait is the units missing.
            saturate(missing)
        } else {
            Nanos::MAX
        }
    }
}

/// `n` as a `Nanos`, or `Nanos::MAX` if it does not fit.
fn saturate(n: u128) -> Nanos {
    Nanos::try_from(n).unwrap_or(Nanos::MAX)
}

/// A token bucket per client IP, for at most `max_clients` clients at once.
#[derive(Debug)]
pub struct PerIpLimiter {
    rate: Rate,
    max_clients: usize,
    buckets: HashMap<IpAddr, Bucket>,
    stats: PerIpStats,
}

impl PerIpLimiter {
    /// A limiter giving each IP `capacity` tokens (0 counts as 1), refilled
    /// at `refill_per_sec` per second, and holding at most `max_clients`
    /// entries (0 counts as 1).
    pub fn new(capacity: u32, refill_per_sec: f64, max_clients: usize) -> Self {
        Self {
            rate: Rate::new(capacity, refill_per_sec),
            max_clients: max_clients.max(1),
            buckets: HashMap::new(),
            stats: PerIpStats::default(),
        }
    }

    /// One request from `ip` at `now`: allowed, or limited.
    pub fn check(&mut self, ip: IpAddr, now: Nanos) -> Decision {
        // `Rate` is Copy: a copy here leaves `self.buckets` free to borrow
        // mutably below.
        let rate = self.rate;
        let decision = match self.buckets.get_mut(&ip) {
            // The common case: a client we know. No scan, whatever the size.
            Some(bucket) => rate.take(bucket, now),
            None => self.admit(ip, now),
        };
        match decision {
            Decision::Allowed => self.stats.allowed += 1,
            Decision::Limited { .. } => self.stats.limited += 1,
        }
        decision
    }

    /// A client with no entry: make room if the map is full, then give it
    /// a full bucket and take its first token; or turn it away.
    fn admit(&mut self, ip: IpAddr, now: Nanos) -> Decision {
        let rate = self.rate;
        if self.buckets.len() >= self.max_clients {
            // Only full-again buckets go: they carry no history worth
            // keeping. A bucket still refilling belongs to a client that
            // used its tokens recently; dropping it would reset that
            // client to a full bucket.
            let before = self.buckets.len();
            self.buckets.retain(|_, bucket| rate.until_full(bucket, now) > 0);
            self.stats.forgotten += (before - self.buckets.len()) as u64;
        }
        if self.buckets.len() >= self.max_clients {
            // Still full: room appears when the first bucket is full again.
            // Every bucket left is refilling, so this is at least 1. The map
            // is not empty (max_clients >= 1), so the fallback is not used.
            let retry_after = self.buckets.values().map(|bucket| rate.until_full(bucket, now)).min();
            self.stats.turned_away += 1;
            return Decision::Limited { retry_after: retry_after.unwrap_or(Nanos::MAX) };
        }
        let bucket = self.buckets.entry(ip).or_insert_with(|| rate.fresh(now));
        rate.take(bucket, now)
    }

    /// The entries held now.
    pub fn clients(&self) -> usize {
        self.buckets.len()
    }

    /// The counters.
    pub fn stats(&self) -> PerIpStats {
        self.stats
    }
}
