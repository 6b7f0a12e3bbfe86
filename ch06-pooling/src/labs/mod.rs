//! # Chapter 6 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run one lab's tests with
//!
//! ```text
//! cargo test -p ch06-pooling --no-default-features lab_8
//! ```
//!
//! Neither lab is plugged into `pooled_lb`: lab 8 is a smaller pool to
//! compare with `crate::pool` once it passes, and lab 7 is graded against
//! chapter 2's parser, which the load balancer keeps using.

#[cfg_attr(feature = "reference", path = "../../solutions/lab_7_parser.rs")]
pub mod lab_7_parser;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_8_pool.rs")]
pub mod lab_8_pool;
