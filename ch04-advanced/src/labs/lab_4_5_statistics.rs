//! # Lab 4.5 — statistics every N requests
//!
//! Print a short report every N requests, as the C original does.
//!
//! - [`format_report`] renders exactly:
//!   ```text
//!   --- after 100 requests ---
//!   127.0.0.1:9001 UP requests=50 failures=0
//!   127.0.0.1:9002 DOWN requests=50 failures=3
//!   ```
//!   (a header line, then one line per backend in order, each ending in `\n`).
//! - [`PeriodicReporter::on_request`] is called once per request by every
//!   connection thread at once (it takes `&self`: count with an atomic).
//!   On the `every`-th call, the `2 * every`-th, and so on, it returns
//!   `Some(format_report(count, lines))`; otherwise `None`. With `every`
//!   zero it never reports. Under concurrency, exactly one call gets each
//!   report.
//!
//! Run it: `cargo test -p ch04-advanced --no-default-features lab_4_5`,
//! then `advanced_lb --demo --stats-every 5`.

use crate::stats::BackendLine;

/// Reports every `every` requests.
#[derive(Debug)]
pub struct PeriodicReporter {
    // TODO: your fields (an atomic counter).
}

impl PeriodicReporter {
    /// A reporter for every `every` requests (0: never).
    pub fn new(every: u64) -> Self {
        let _ = every;
        todo!("lab 4.5: create the reporter")
    }

    /// Counts a request; the report when one is due.
    pub fn on_request(&self, lines: &[BackendLine]) -> Option<String> {
        let _ = lines;
        todo!("lab 4.5: count and maybe report")
    }
}

/// The report after `total` requests.
pub fn format_report(total: u64, lines: &[BackendLine]) -> String {
    let _ = (total, lines);
    todo!("lab 4.5: format the report")
}
