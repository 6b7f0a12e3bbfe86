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
//! (lab 4.2). The balancer itself never calls a lab: it defines the
//! [`Selector`] trait, the impls below fit the labs to it, and the binary
//! plugs them in.

use std::sync::Arc;
use std::time::Instant;

use crate::backend::Backend;
use crate::balancer::Selector;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_1_random_selection.rs")]
pub mod lab_4_1_random_selection;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_2_weighted_selection.rs")]
pub mod lab_4_2_weighted_selection;

pub use crate::rng::Rng;

impl Selector for lab_4_1_random_selection::RandomSelector {
    fn pick(&self, backends: &[Arc<Backend>], now: Instant) -> Option<usize> {
        lab_4_1_random_selection::RandomSelector::pick(self, backends, now)
    }
}

impl Selector for lab_4_2_weighted_selection::WeightedSelector {
    fn pick(&self, backends: &[Arc<Backend>], now: Instant) -> Option<usize> {
        lab_4_2_weighted_selection::WeightedSelector::pick(self, backends, now)
    }
}
