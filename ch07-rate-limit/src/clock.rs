//! Time as a number, and where it comes from.
//!
//! Every limiter here takes the time as an argument, in nanoseconds since
//! an origin of the caller's choosing: [`Nanos`]. Nothing inside reads the
//! system clock. So a test can replay a day of traffic in a millisecond,
//! with exact times, and no test ever sleeps.
//!
//! The program needs real time: [`MonotonicClock`] turns the event loop's
//! `Instant`s into `Nanos` (monotonic, so a clock adjusted by NTP cannot
//! hand anyone a second burst). Tests that like to say "a second later"
//! use [`ManualClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Nanoseconds since an origin. A `u64` lasts 584 years.
pub type Nanos = u64;

/// One second in [`Nanos`].
pub const SECOND: Nanos = 1_000_000_000;

/// Where the time comes from.
pub trait Clock: std::fmt::Debug + Send + Sync {
    /// Now.
    fn now(&self) -> Nanos;
}

/// The real, monotonic clock, counted from when it was made.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }

    /// `at` as [`Nanos`] on this clock (0 for an instant before its origin).
    pub fn at(&self, at: Instant) -> Nanos {
        nanos(at.saturating_duration_since(self.origin))
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Nanos {
        self.at(Instant::now())
    }
}

/// A clock that moves only when told to: for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock that reads `start`.
    pub fn starting_at(start: Nanos) -> Self {
        Self { now: AtomicU64::new(start) }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(nanos(by), Ordering::Relaxed);
    }

    /// Sets the clock (backwards too: limiters must cope).
    pub fn set(&self, to: Nanos) {
        self.now.store(to, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        self.now.load(Ordering::Relaxed)
    }
}

/// A duration in [`Nanos`], saturating (a duration of 584 years is enough).
pub fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Whole seconds, rounded up: what `Retry-After` carries. A client told
/// "1" after 0.4 s of waiting would be early; told "1" after 1.4 s, it
/// would be refused again. So round up, never down.
pub fn whole_seconds_up(n: Nanos) -> u64 {
    n.div_ceil(SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::starting_at(5);
        assert_eq!(clock.now(), 5);
        clock.advance(Duration::from_millis(2));
        assert_eq!(clock.now(), 2_000_005);
        clock.set(1);
        assert_eq!(clock.now(), 1);
    }

    #[test]
    fn the_monotonic_clock_counts_from_its_origin() {
        let clock = MonotonicClock::new();
        let later = Instant::now() + Duration::from_secs(3);
        assert!(clock.at(later) >= 3 * SECOND);
        assert!(clock.now() < SECOND);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_seconds_up(0), 0);
        assert_eq!(whole_seconds_up(1), 1);
        assert_eq!(whole_seconds_up(SECOND), 1);
        assert_eq!(whole_seconds_up(SECOND + 1), 2);
    }
}
