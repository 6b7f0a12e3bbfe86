//! # Chapter 10 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run them with
//!
//! ```text
//! cargo test -p ch10-hot-reload --no-default-features lab_14_1
//! cargo test -p ch10-hot-reload --no-default-features lab_9
//! ```
//!
//! Lab 14.1 is the production chapter's: a canary release and a
//! blue-green switch, written as changes to a configuration, so a reload
//! carries them out. Lab 9 is the curriculum's hot-reload project: the
//! generation cell that lets a running server take a new configuration
//! while every request finishes on the one it started with. Neither is
//! used by `hot_reload_lb`: they are graded against chapter 10's own
//! configuration types, chapter 4's algorithm and chapter 5's loop, and
//! with real requests.

#[cfg_attr(feature = "reference", path = "../../solutions/lab_14_1_canary.rs")]
pub mod lab_14_1_canary;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_9_swap.rs")]
pub mod lab_9_swap;

/// Why a rollout step cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutError {
    /// A backend named is not in the configuration.
    NotABackend,
    /// A percentage outside 1 to 99.
    BadPercent,
    /// The canary is the only backend: nothing to share the traffic with.
    Alone,
    /// No weights from 1 to 1000 give that share closely enough.
    OutOfRange,
    /// A switch to no backend at all.
    Empty,
}
