//! # Chapter 4 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run one lab's tests with
//!
//! ```text
//! cargo test -p ch04-advanced --no-default-features lab_4_3
//! ```
//!
//! Several labs plug into `advanced_lb` once they pass:
//! `--algorithm fastest` (7.2), `--stats-every N` (4.5),
//! `--stats-path /lb-stats` (8.3) and `--weights-file FILE` with SIGHUP (8.4).
//!
//! Types that a lab's signature needs but that are not part of the
//! exercise live here, and so does the glue that fits a lab to what the
//! balancer defines for it
//! ([`algorithm::Options::fastest`](crate::algorithm::Options::fastest),
//! [`Reporter`], [`StatsEndpoint`]), which the binaries then plug in: the
//! core modules never call a lab themselves.

use crate::algorithm::Algorithm;
use crate::node::Pool;
use crate::stats::{Reporter, StatsEndpoint};

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_3_failure_counting.rs")]
pub mod lab_4_3_failure_counting;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_4_recovery_check.rs")]
pub mod lab_4_4_recovery_check;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_5_statistics.rs")]
pub mod lab_4_5_statistics;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_7_2_response_time.rs")]
pub mod lab_7_2_response_time;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_7_3_http_health_check.rs")]
pub mod lab_7_3_http_health_check;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_7_4_warm_up.rs")]
pub mod lab_7_4_warm_up;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_8_3_lb_stats_endpoint.rs")]
pub mod lab_8_3_lb_stats_endpoint;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_8_4_weight_reload.rs")]
pub mod lab_8_4_weight_reload;

/// The type of lab 4.5's report lines; the balancer makes them
/// ([`crate::balancer::AdvancedLb::backend_lines`]).
pub use crate::stats::BackendLine;

/// Lab 4.5's reporter as the balancer's [`Reporter`] (`--stats-every`).
impl Reporter for lab_4_5_statistics::PeriodicReporter {
    fn on_request(&self, lines: &[BackendLine]) -> Option<String> {
        lab_4_5_statistics::PeriodicReporter::on_request(self, lines)
    }
}

/// Lab 7.2's algorithm for `pool`, smoothing factor 0.3: what the binaries
/// put in [`algorithm::Options::fastest`](crate::algorithm::Options::fastest)
/// for `--algorithm fastest`.
pub fn fastest(pool: &Pool) -> Box<dyn Algorithm> {
    Box::new(lab_7_2_response_time::FastestResponse::new(pool.nodes.len(), 0.3))
}

/// Lab 8.3's document at `path`, as the balancer's [`StatsEndpoint`]
/// (`--stats-path`).
pub fn stats_endpoint(path: impl Into<String>) -> StatsEndpoint {
    StatsEndpoint { path: path.into(), render: lab_8_3_lb_stats_endpoint::stats_json }
}

/// What lab 7.3's health check expects of a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The exact status code.
    pub status: u16,
    /// Text the body must contain, if any.
    pub body_contains: Option<String>,
}

/// Why lab 7.3's health check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckFailure {
    /// No connection could be made.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// Connecting or reading took longer than the timeout.
    #[error("timed out")]
    Timeout,
    /// The answer was not an HTTP response we could read.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The status was not the expected one.
    #[error("unexpected status {0}")]
    Status(u16),
    /// The body did not contain the expected text.
    #[error("the body does not contain the expected text")]
    Body,
}

/// Why lab 7.4's warm-up failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WarmUpError {
    /// Request number `request` (from 1) could not be sent or answered.
    #[error("warm-up request {request} failed: {error}")]
    Io {
        /// Which request.
        request: u32,
        /// What went wrong.
        error: String,
    },
    /// Request number `request` (from 1) was answered with a non-2xx status.
    #[error("warm-up request {request} got status {status}")]
    Status {
        /// Which request.
        request: u32,
        /// The status.
        status: u16,
    },
}

/// Why lab 8.4 refused a weights file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if *.line > 0 { format!("line {}: ", .line) } else { String::new() })]
pub struct WeightsError {
    /// The line (from 1), or 0 when the error is not about one line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}
