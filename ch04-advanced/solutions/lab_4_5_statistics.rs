//! # Lab 4.5 — statistics every N requests (reference solution)
//!
//! The task is in `src/labs/lab_4_5_statistics.rs`.
//!
//! Why one atomic is enough: `fetch_add` hands every caller a different
//! number, so exactly one thread holds the number 100, exactly one holds
//! 200, and so on. Reading the counter and then comparing (two steps)
//! would let two threads both see 100 and print the report twice.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::stats::BackendLine;

/// Reports every `every` requests.
#[derive(Debug)]
pub struct PeriodicReporter {
    /// Report period; 0 turns reporting off.
    every: u64,
    /// Requests counted so far.
    count: AtomicU64,
}

impl PeriodicReporter {
    /// A reporter for every `every` requests (0: never).
    pub fn new(every: u64) -> Self {
        Self { every, count: AtomicU64::new(0) }
    }

    /// Counts a request; the report when one is due.
    pub fn on_request(&self, lines: &[BackendLine]) -> Option<String> {
        if self.every == 0 {
            return None;
        }
        // Relaxed is enough: we need each number handed out once (which
        // every ordering guarantees), not ordering with other memory.
        // Wrapping after 2^64 requests is not a concern worth a branch.
        let n = self.count.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        (n % self.every == 0).then(|| format_report(n, lines))
    }
}

/// The report after `total` requests.
pub fn format_report(total: u64, lines: &[BackendLine]) -> String {
    let mut out = format!("--- after {total} requests ---\n");
    for line in lines {
        // Writing to a String cannot fail; the Result is only the trait's.
        // Hundredths of a millisecond, rounded half up: 1,255 µs is 126.
        let hundredths = line.mean_us.saturating_add(5) / 10;
        let _ = writeln!(
            out,
            "{} {} requests={} failures={} avg_ms={}.{:02}",
            line.addr,
            if line.up { "UP" } else { "DOWN" },
            line.requests,
            line.failures,
            hundredths / 100,
            hundredths % 100
        );
    }
    out
}
