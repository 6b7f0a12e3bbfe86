//! # Lab 4.5 — statistics every N requests
//!
//! Print a short report every N requests (100 in `advanced_lb` unless
//! `--stats-every` says otherwise), as the C original and the Pingora
//! tutorial's exercise do, with each backend's average response time.
//!
//! - [`format_report`] renders exactly:
//!   ```text
//!   --- after 100 requests ---
//!   127.0.0.1:9001 UP requests=50 failures=0 avg_ms=1.25
//!   127.0.0.1:9002 DOWN requests=50 failures=3 avg_ms=0.00
//!   ```
//!   (a header line, then one line per backend in order, each ending in
//!   `\n`; `avg_ms` is [`BackendLine::mean_us`] in milliseconds with two
//!   decimals, rounded to the nearest hundredth: 1,254 µs is `1.25`,
//!   1,255 µs is `1.26`).
//! - [`PeriodicReporter::on_request`] is called once per request by every
//!   connection thread at once (it takes `&self`: count with an atomic).
//!   On the `every`-th call, the `2 * every`-th, and so on, it returns
//!   `Some(format_report(count, lines))`; otherwise `None`. With `every`
//!   zero it never reports. Under concurrency, exactly one call gets each
//!   report.
//!
//! Run it: `cargo test -p ch04-advanced --no-default-features lab_4_5`,
//! then `advanced_lb --demo --stats-every 5`.
//!
//! [`BackendLine::mean_us`]: crate::stats::BackendLine::mean_us

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
