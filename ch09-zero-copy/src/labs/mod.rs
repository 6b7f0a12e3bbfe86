//! # Chapter 9 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run them with
//!
//! ```text
//! cargo test -p ch09-zero-copy --no-default-features lab_3
//! ```
//!
//! Lab 3 is the C curriculum's file server, written again from the
//! ground: which file a target names (and never one outside the root),
//! which bytes a `Range` asks for, and a connection answered with
//! `sendfile`. It is graded against chapter 9's own [`files`](crate::files)
//! on tables and thousands of generated targets, and with real requests on
//! a real socket. `static_server` does not use it.

#[cfg_attr(feature = "reference", path = "../../solutions/lab_3_file_server.rs")]
pub mod lab_3_file_server;

/// Why a target names no file that may be served: the answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the target cannot be read (a bad `%` escape, not UTF-8, not a path).
    BadRequest,
    /// 403: it tries to leave the root, or names something unreadable.
    Forbidden,
    /// 404: nothing is there (or it is not a regular file).
    NotFound,
}

impl Refusal {
    /// The status code.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadRequest => 400,
            Refusal::Forbidden => 403,
            Refusal::NotFound => 404,
        }
    }
}

/// The bytes of a file a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The whole file: 200.
    Whole,
    /// Bytes `start..=end`: 206.
    Part {
        /// The first byte.
        start: u64,
        /// The last byte, included.
        end: u64,
    },
    /// None of this file: 416.
    Unsatisfiable,
}
