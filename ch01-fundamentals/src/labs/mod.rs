//! # Chapter 1 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run one lab's tests with
//!
//! ```text
//! cargo test -p ch01-fundamentals --no-default-features lab_5_1
//! ```
//!
//! (`--no-default-features` turns off the `reference` feature, which would
//! otherwise swap in the reference solutions from `solutions/`.)
//!
//! Types that a lab's signature needs but that are not part of the
//! exercise live here, so the lab files hold only the work.

use std::net::SocketAddr;
use std::time::Duration;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_1_stamped_echo.rs")]
pub mod lab_1_stamped_echo;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_5_1_uppercase_echo.rs")]
pub mod lab_5_1_uppercase_echo;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_5_2_time_server.rs")]
pub mod lab_5_2_time_server;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_5_3_chat_server.rs")]
pub mod lab_5_3_chat_server;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_5_4_connection_log.rs")]
pub mod lab_5_4_connection_log;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_2_calculator.rs")]
pub mod lab_2_calculator;

/// Longest line the line-based lab servers accept, in bytes.
pub const MAX_LINE: usize = 1024;

/// What lab 5.4 records about one finished connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// Bytes received from the client.
    pub bytes_in: u64,
    /// Bytes sent to the client.
    pub bytes_out: u64,
    /// Time from accept to close.
    pub duration: Duration,
}

/// Why lab 2's calculator refused a line. The `Display` text is what the
/// server sends after `ERR `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// Not three words, or not text at all.
    #[error("usage: OP A B (OP is ADD, SUB, MUL or DIV)")]
    Usage,
    /// The first word is not an operation we know.
    #[error("unknown operation: {0}")]
    UnknownOperation(String),
    /// An operand is not a 64-bit signed integer.
    #[error("not a number: {0}")]
    NotANumber(String),
    /// `DIV A 0`.
    #[error("division by zero")]
    DivisionByZero,
    /// The result does not fit in an `i64`.
    #[error("overflow")]
    Overflow,
}
