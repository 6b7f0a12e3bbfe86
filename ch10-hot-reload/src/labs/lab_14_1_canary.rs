//! # Lab 14.1 — a canary and a blue-green switch, as configurations
//!
//! Releasing a new version of a backend is a change of configuration, and
//! with chapter 10's reload it is carried out without a restart: write the
//! file, send SIGHUP. Two ways of doing it are standard:
//!
//! - **Canary**: the new version takes a small share of the traffic (say
//!   5 %), watched closely; the share grows as confidence does.
//! - **Blue-green**: the new set (green) is started beside the old (blue),
//!   then all traffic switches to it at once; blue stays running, so
//!   switching back is one reload away.
//!
//! Both are pure functions from a [`Config`] to a new one. Nothing here
//! may panic, whatever the input.
//!
//! ## 1. [`canary`]
//!
//! `canary(config, addr, percent)` returns a copy of `config` in which the
//! backend whose `host:port` is `addr` gets `percent` percent of the
//! requests under a weighted algorithm (its weight over the sum of all
//! weights), and the others share the rest in the proportions they had.
//!
//! - `addr` not among the backends: [`RolloutError::NotABackend`];
//!   `percent` outside 1 to 99: [`RolloutError::BadPercent`]; `addr` the
//!   only backend: [`RolloutError::Alone`] (checked in that order).
//! - Every other backend's weight is its old weight times one whole
//!   factor `k >= 1`, the same for all of them (so their proportions stay
//!   exact); the canary's weight `c` is any whole number.
//! - Every weight stays from 1 to 1000 (the schema's limits).
//! - The canary's share `100 * c / (c + k * S)` (S: the sum of the other
//!   weights) is within 0.5 of `percent`.
//! - When no `k` and `c` meet all three, [`RolloutError::OutOfRange`].
//!   (Try every `k` from 1 while the largest other weight times `k` stays
//!   within 1000; for each, the best `c` is the whole number nearest to
//!   `percent * k * S / (100 - percent)`.)
//! - Nothing else changes: order, hosts, ports, every other setting.
//!
//! ## 2. [`switch`]
//!
//! `switch(config, green)` returns a copy of `config` whose backends are
//! exactly those named in `green` (`host:port` each), in `config`'s order
//! and with their weights: blue-green's cut-over. A name not in
//! `config`: [`RolloutError::NotABackend`]; an empty `green`:
//! [`RolloutError::Empty`].
//!
//! ## Grading
//!
//! The tests check both against the rules on thousands of generated
//! configurations, then put a canary to work: chapter 5's loop with
//! chapter 4's smooth weighted round robin in front of real backends,
//! and one whole cycle of requests, counted at the backends.

use super::RolloutError;
use crate::config::Config;

/// `config` with backend `addr` taking `percent` percent of the requests.
pub fn canary(config: &Config, addr: &str, percent: u32) -> Result<Config, RolloutError> {
    // TODO: check the arguments, find k and c, and build the new configuration.
    let _ = (config, addr, percent);
    todo!("lab 14.1, part 1: the canary's weight, the others scaled by one factor")
}

/// `config` with only the backends named in `green`.
pub fn switch(config: &Config, green: &[&str]) -> Result<Config, RolloutError> {
    // TODO: keep the green backends, in order.
    let _ = (config, green);
    todo!("lab 14.1, part 2: the cut-over to the green set")
}
