//! # Chapter 5 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run one lab's tests with
//!
//! ```text
//! cargo test -p ch05-event-loop --no-default-features lab_8_1
//! ```

#[cfg_attr(feature = "reference", path = "../../solutions/lab_8_1_idle_timeout.rs")]
pub mod lab_8_1_idle_timeout;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_chat_poller.rs")]
pub mod lab_4_chat_poller;
