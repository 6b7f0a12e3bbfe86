//! Timers for an event loop: connect, header and idle timeouts, periodic
//! health checks, all in the same thread as the I/O.
//!
//! The loop asks [`Timers::timeout`] how long it may sleep in
//! `Poller::wait`, and after waking takes every expired timer with
//! [`Timers::pop_expired`]. A binary heap keeps the earliest deadline on
//! top (O(log n) to add); cancelling only forgets the timer's value, and
//! the stale heap entry is skipped when it surfaces (lazy deletion), so
//! cancelling is O(1) too — and connections cancel far more timers than
//! ever fire.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

/// Names a timer, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

// ANCHOR: timers
/// Deadlines, each carrying a value (what to do when it fires).
#[derive(Debug)]
pub struct Timers<T> {
    heap: BinaryHeap<Reverse<(Instant, TimerId)>>,
    live: HashMap<TimerId, T>,
    next: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Self { heap: BinaryHeap::new(), live: HashMap::new(), next: 0 }
    }
}

impl<T> Timers<T> {
    /// No timers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires `value` at `at`.
    pub fn insert(&mut self, at: Instant, value: T) -> TimerId {
        let id = TimerId(self.next);
        self.next += 1;
        self.heap.push(Reverse((at, id)));
        self.live.insert(id, value);
        id
    }

    /// Cancels a timer that has not fired; returns its value.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        self.live.remove(&id)
    }

    /// Number of timers waiting.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no timer is waiting.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The earliest deadline of a live timer.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        // Drop cancelled entries from the top until a live one is there.
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if self.live.contains_key(&id) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// How long the loop may sleep at `now`: until the next deadline (zero
    /// if one has passed), or `None` (no limit) without timers.
    pub fn timeout(&mut self, now: Instant) -> Option<Duration> {
        self.next_deadline().map(|at| at.saturating_duration_since(now))
    }

    /// Takes the next timer due at `now`, if any; call until `None`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, T)> {
        let at = self.next_deadline()?;
        if at > now {
            return None;
        }
        let Reverse((_, id)) = self.heap.pop()?;
        self.live.remove(&id).map(|v| (id, v))
    }
}
// ANCHOR_END: timers

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.insert(t0 + Duration::from_millis(30), "c");
        timers.insert(t0 + Duration::from_millis(10), "a");
        timers.insert(t0 + Duration::from_millis(20), "b");
        assert_eq!(timers.timeout(t0), Some(Duration::from_millis(10)));
        assert!(timers.pop_expired(t0).is_none(), "nothing is due yet");
        let now = t0 + Duration::from_millis(25);
        let fired: Vec<&str> = std::iter::from_fn(|| timers.pop_expired(now)).map(|(_, v)| v).collect();
        assert_eq!(fired, ["a", "b"]);
        assert_eq!(timers.timeout(now), Some(Duration::from_millis(5)));
        assert_eq!(timers.timeout(t0 + Duration::from_secs(1)), Some(Duration::ZERO), "overdue: do not sleep");
    }

    #[test]
    fn cancelled_timers_never_fire_and_do_not_shorten_sleeps() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let early = timers.insert(t0 + Duration::from_millis(1), 1);
        timers.insert(t0 + Duration::from_millis(50), 2);
        assert_eq!(timers.cancel(early), Some(1));
        assert_eq!(timers.cancel(early), None, "cancelling twice is harmless");
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.timeout(t0), Some(Duration::from_millis(50)));
        let later = t0 + Duration::from_secs(1);
        assert_eq!(timers.pop_expired(later).map(|(_, v)| v), Some(2));
        assert!(timers.pop_expired(later).is_none());
        assert!(timers.is_empty());
        assert_eq!(timers.timeout(later), None, "no timers: sleep without limit");
    }
}
