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
//! Every lab but 8.4's parser alone plugs into `advanced_lb` once it
//! passes: `--failure-counting` (4.3), `--recovery-check` (4.4),
//! `--stats-every N` (4.5), `--algorithm fastest` (7.2),
//! `--health-expect-status`/`--health-expect-body` (7.3), `--warm-up N`
//! (7.4), `--stats-path /lb-stats` (8.3) and `--weights-file FILE` with
//! SIGHUP (8.4).
//!
//! Types that a lab's signature needs but that are not part of the
//! exercise live here, and so does the glue that fits a lab to what the
//! balancer defines for it
//! ([`algorithm::Options::fastest`](crate::algorithm::Options::fastest),
//! [`Reporter`], [`StatsEndpoint`], [`CountedFailures`],
//! [`ScheduledRecovery`]), which the binaries then plug in: the core
//! modules never call a lab themselves.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::algorithm::Algorithm;
use crate::health::{HealthChecker, HealthConfig, PassiveCheck, RecoveryRound, bring_up, record_request, take_down};
use crate::node::{Node, Pool};
use crate::stats::{Reporter, StatsEndpoint};
use lab_4_3_failure_counting::FailureCounter;
use lab_4_4_recovery_check::RecoveryCheck;

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

/// One value per node, keyed by the node itself (the same address can be
/// a node of two routes, each with its own health).
#[derive(Debug)]
struct PerNode<T>(Mutex<HashMap<usize, T>>);

impl<T> Default for PerNode<T> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<T> PerNode<T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<usize, T>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn key(node: &Node) -> usize {
    std::ptr::from_ref(node).addr()
}

// ANCHOR: counted_failures
/// Lab 4.3's counter as the balancer's passive check
/// (`--failure-counting`): one [`FailureCounter`] per backend, with
/// `--max-fails` as its threshold, decides when real requests take a
/// backend down.
#[derive(Debug, Default)]
pub struct CountedFailures {
    counters: PerNode<FailureCounter>,
}

impl PassiveCheck for CountedFailures {
    fn record(&self, node: &Node, ok: bool, config: &HealthConfig, now: Instant) {
        if !node.is_healthy() {
            // Down already: what a late answer or a retry after
            // --fail-timeout-secs means is chapter 4's business.
            record_request(node, ok, config, now);
            return;
        }
        let mut counters = self.counters.lock();
        let counter = counters.entry(key(node)).or_insert_with(|| FailureCounter::new(config.max_fails));
        if counter.is_down() {
            // It went down through this counter and is up again: a probe
            // (or a retry) brought it back since. Start afresh.
            counter.reset();
        }
        if ok {
            counter.record_success();
        } else if counter.record_failure() {
            take_down(node, &mut node.health(), config);
            tracing::warn!(backend = %node.addr(), failures = counter.consecutive_failures(), "backend is DOWN (lab 4.3: requests failed in a row)");
        }
    }
}
// ANCHOR_END: counted_failures

// ANCHOR: scheduled_recovery
/// Lab 4.4's schedule as the health checker's round
/// (`--recovery-check`): backends that are up are left to the passive
/// check; one that is down gets a [`RecoveryCheck`] (every
/// `--health-interval-ms`, back after `--healthy-threshold` good probes in
/// a row) and is probed when it says a probe is due.
#[derive(Debug, Default)]
pub struct ScheduledRecovery {
    checks: PerNode<RecoveryCheck>,
}

impl RecoveryRound for ScheduledRecovery {
    fn round(&self, checker: &HealthChecker, now: Instant) {
        let config = &checker.config;
        for node in &checker.pool.nodes {
            let due = {
                let mut checks = self.checks.lock();
                let check = checks.entry(key(node)).or_insert_with(|| RecoveryCheck::new(config.interval, config.rise));
                match (node.is_healthy(), check.is_down()) {
                    (true, false) => false,
                    // Back by another way (a retry): forget the schedule.
                    (true, true) => {
                        *check = RecoveryCheck::new(config.interval, config.rise);
                        false
                    }
                    (false, false) => {
                        check.went_down(now);
                        false
                    }
                    (false, true) => check.probe_due(now),
                }
            };
            if !due {
                continue;
            }
            // The probe can take up to its timeout: not under the lock.
            let result = checker.check(node);
            let back = self.checks.lock().get_mut(&key(node)).is_some_and(|c| c.record_probe(result.is_ok(), now));
            match (back, result) {
                (true, _) => match checker.warm(node) {
                    Ok(()) => {
                        bring_up(node, &mut node.health(), now);
                        tracing::info!(backend = %node.addr(), "backend is UP (lab 4.4: recovery probes passed)");
                    }
                    Err(why) => {
                        // Not ready after all: the schedule starts over.
                        if let Some(c) = self.checks.lock().get_mut(&key(node)) {
                            *c = RecoveryCheck::new(config.interval, config.rise);
                        }
                        tracing::warn!(backend = %node.addr(), reason = %why, "backend stays DOWN (warm-up failed)");
                    }
                },
                (false, Err(why)) => tracing::debug!(backend = %node.addr(), reason = %why, "recovery probe failed"),
                (false, Ok(())) => {}
            }
        }
    }
}
// ANCHOR_END: scheduled_recovery

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
