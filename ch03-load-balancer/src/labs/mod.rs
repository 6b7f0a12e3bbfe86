//! # Chapter 3 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run one lab's tests with
//!
//! ```text
//! cargo test -p ch03-load-balancer --no-default-features lab_4_1
//! ```
//!
//! Once a lab passes, the load balancer can use it:
//! `load_balancer --strategy random` (lab 4.1) or `--strategy weighted`
//! (lab 4.2).

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_1_random_selection.rs")]
pub mod lab_4_1_random_selection;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_2_weighted_selection.rs")]
pub mod lab_4_2_weighted_selection;

pub use crate::rng::Rng;
