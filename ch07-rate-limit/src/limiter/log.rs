//! Saying what was limited without flooding the log.
//!
//! A client over its limit may send thousands of requests a second; a log
//! line for each would be a second flood, and would bury everything else.
//! So within each interval, the first refusal of each key is logged at
//! once, later ones are counted, and when the interval is over one line
//! per key gives the count. At most `MAX_KEYS` keys are named per
//! interval; beyond them one line sums up the rest.

use crate::clock::Nanos;
use crate::keyed::Key;

/// Keys named in one interval; the rest are summed up.
pub const MAX_KEYS: usize = 16;

#[derive(Debug)]
struct Entry {
    policy: usize,
    key: Key,
    label: String,
    more: u64,
}

/// The log's memory of the current interval (bounded: `MAX_KEYS` entries).
#[derive(Debug)]
pub struct LimitLog {
    interval: Nanos,
    ends: Nanos,
    entries: Vec<Entry>,
    others: u64,
}

/// A line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The first refusal of a key in this interval.
    First {
        /// Which policy, and the key as a person reads it.
        label: String,
    },
    /// How many more refusals a key had in the interval that ended.
    More {
        /// Which policy, and the key.
        label: String,
        /// Refusals after the first.
        count: u64,
    },
    /// Refusals of keys past the first `MAX_KEYS` in the interval.
    Others {
        /// Refusals.
        count: u64,
    },
}

impl LimitLog {
    /// A log that sums up every `interval`.
    pub fn new(interval: Nanos) -> Self {
        Self { interval: interval.max(1), ends: 0, entries: Vec::new(), others: 0 }
    }

    /// Notes a refusal; returns what to log now (the summary of an interval
    /// that ended, and this refusal if it is its key's first).
    pub fn refused(&mut self, policy: usize, key: Key, now: Nanos, label: impl FnOnce() -> String) -> Vec<Line> {
        let mut out = self.tick(now);
        if self.entries.is_empty() && self.others == 0 {
            self.ends = now.saturating_add(self.interval);
        }
        if let Some(e) = self.entries.iter_mut().find(|e| e.policy == policy && e.key == key) {
            e.more += 1;
        } else if self.entries.len() < MAX_KEYS {
            let label = label();
            out.push(Line::First { label: label.clone() });
            self.entries.push(Entry { policy, key, label, more: 0 });
        } else {
            self.others += 1;
        }
        out
    }

    /// The summary of the interval, if it is over at `now` (called on every
    /// request: cheap when there is nothing to say).
    pub fn tick(&mut self, now: Nanos) -> Vec<Line> {
        if now < self.ends || (self.entries.is_empty() && self.others == 0) {
            return Vec::new();
        }
        self.flush()
    }

    /// The summary so far, whatever the time (at exit).
    pub fn flush(&mut self) -> Vec<Line> {
        let mut out: Vec<Line> = self
            .entries
            .drain(..)
            .filter(|e| e.more > 0)
            .map(|e| Line::More { label: e.label, count: e.more })
            .collect();
        if self.others > 0 {
            out.push(Line::Others { count: std::mem::take(&mut self.others) });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_interval_then_a_count() {
        let mut log = LimitLog::new(10);
        let a = Key::raw([0, 1]);
        let b = Key::raw([0, 2]);
        assert_eq!(log.refused(0, a, 0, || "a".into()), [Line::First { label: "a".into() }]);
        for t in 1..5 {
            assert!(log.refused(0, a, t, || unreachable!()).is_empty());
        }
        assert_eq!(log.refused(0, b, 5, || "b".into()), [Line::First { label: "b".into() }]);
        // The interval is over: a's four more, nothing for b; then a is new again.
        let lines = log.refused(0, a, 10, || "a".into());
        assert_eq!(lines, [Line::More { label: "a".into(), count: 4 }, Line::First { label: "a".into() }]);
    }

    #[test]
    fn past_the_named_keys_refusals_are_summed() {
        let mut log = LimitLog::new(100);
        let mut firsts = 0;
        for i in 0..1000u64 {
            firsts += log.refused(0, Key::raw([1, i]), 0, || i.to_string()).len();
        }
        assert_eq!(firsts, MAX_KEYS);
        assert_eq!(log.tick(100), [Line::Others { count: 1000 - MAX_KEYS as u64 }]);
        assert!(log.tick(200).is_empty());
    }
}
