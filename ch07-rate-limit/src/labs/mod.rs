//! # Chapter 7 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run one lab's tests with
//!
//! ```text
//! cargo test -p ch07-rate-limit --no-default-features lab_5
//! cargo test -p ch07-rate-limit --no-default-features lab_8_2
//! ```
//!
//! Neither lab is plugged into `rate_limited_lb`: both are graded on their
//! own, with time passed in as a number of nanoseconds (never read from
//! the clock), so every test is exact and instant. Lab 5 is a token bucket
//! and the 429 response that goes with it; once it passes, compare it with
//! the chapter's `crate::algorithm::TokenBucket` (in `src/algorithm/token_bucket.rs`). Lab 8.2 keeps a bucket
//! per client IP in bounded memory; compare it with `crate::keyed`. Lab
//! 8.2 does not use lab 5's code, so each can be done, and passed, without
//! the other.

#[cfg_attr(feature = "reference", path = "../../solutions/lab_5_token_bucket.rs")]
pub mod lab_5_token_bucket;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_8_2_per_ip.rs")]
pub mod lab_8_2_per_ip;
