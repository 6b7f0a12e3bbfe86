//! What a limit allows: a rate and a burst, as the operator writes them.

use std::fmt;
use std::str::FromStr;

use crate::clock::{Nanos, SECOND};

/// A sustained rate and a burst: on average `rate` requests a second,
/// and up to `burst` at once after a quiet spell. Every algorithm in this
/// chapter is configured by one, so they can be compared on equal terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Requests per second, on average (may be below 1: 0.5 is one every
    /// two seconds).
    pub rate: f64,
    /// Requests allowed at once (at least 1).
    pub burst: u32,
}

impl Quota {
    /// A quota, checked: the rate must be a positive finite number.
    pub fn new(rate: f64, burst: u32) -> Result<Self, QuotaError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(QuotaError(format!("the rate must be a positive number, not {rate}")));
        }
        // One request every ~584 years is the slowest a u64 of nanoseconds holds.
        if rate < 1e-9 {
            return Err(QuotaError(format!("a rate of {rate} per second is too slow to measure")));
        }
        Ok(Self { rate, burst: burst.max(1) })
    }

    /// The time one request "costs": 1 / rate, in nanoseconds (at least 1).
    pub fn interval(&self) -> Nanos {
        ((SECOND as f64 / self.rate).round() as Nanos).max(1)
    }

    /// How long an emptied allowance takes to fill up again:
    /// `burst × interval`. Also the window the windowed algorithms count
    /// in, so that all of them allow `burst` at once and `rate` on average.
    pub fn window(&self) -> Nanos {
        self.interval().saturating_mul(Nanos::from(self.burst))
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s burst {}", self.rate, self.burst)
    }
}

/// A rate or quota that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaError(pub String);

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QuotaError {}

/// A rate as an operator writes it: `10` or `10/s` (per second), `600/m`
/// or nginx's `600r/m` (per minute), `3600/h` (per hour), or a decimal
/// (`0.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(pub f64);

impl FromStr for Rate {
    type Err = QuotaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (number, per) = match t.split_once('/') {
            Some((n, unit)) => {
                let per = match unit {
                    "s" | "sec" | "second" => 1.0,
                    "m" | "min" | "minute" => 60.0,
                    "h" | "hour" => 3600.0,
                    other => {
                        return Err(QuotaError(format!("unknown unit {other:?} in rate {s:?}: use /s, /m or /h")));
                    }
                };
                (n.strip_suffix('r').unwrap_or(n), per)
            }
            None => (t, 1.0),
        };
        let n: f64 =
            number.parse().map_err(|_| QuotaError(format!("{s:?} is not a rate: write 10, 10/s, 600/m or 0.5")))?;
        Quota::new(n / per, 1)?;
        Ok(Rate(n / per))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_the_forms_operators_write() {
        assert_eq!("10".parse::<Rate>().unwrap(), Rate(10.0));
        assert_eq!("10/s".parse::<Rate>().unwrap(), Rate(10.0));
        assert_eq!("600r/m".parse::<Rate>().unwrap(), Rate(10.0));
        assert_eq!("3600/h".parse::<Rate>().unwrap(), Rate(1.0));
        assert_eq!("0.5".parse::<Rate>().unwrap(), Rate(0.5));
        for bad in ["", "fast", "0", "-1", "10/d", "inf", "NaN", "1e-12"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_quota_has_an_interval_and_a_window() {
        let q = Quota::new(2.0, 5).unwrap();
        assert_eq!(q.interval(), SECOND / 2);
        assert_eq!(q.window(), 5 * SECOND / 2);
        assert_eq!(Quota::new(1.0, 0).unwrap().burst, 1);
    }
}
