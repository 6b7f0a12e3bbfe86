//! # Chapter 8 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run one lab's tests with
//!
//! ```text
//! cargo test -p ch08-metrics --no-default-features lab_12_1
//! cargo test -p ch08-metrics --no-default-features lab_12_2
//! ```
//!
//! The numbers are those of the C curriculum's metrics chapter (its
//! chapter 12). Lab 12.1 writes the three kinds of metric and the text a
//! scrape returns, graded on their own; lab 12.2 adds one metric to the
//! real balancer through chapter 5's `Observe` hook, graded with real
//! requests through the real loop. Neither is plugged into `metrics_lb`,
//! and each can be done, and passed, without the other.

#[cfg_attr(feature = "reference", path = "../../solutions/lab_12_1_metric_types.rs")]
pub mod lab_12_1_metric_types;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_12_2_status_classes.rs")]
pub mod lab_12_2_status_classes;
