//! # Lab 2 — a calculator server
//!
//! Each line the client sends is one calculation; the server answers each
//! with one line, and the connection stays open after errors.
//!
//! - A request is `OP A B`: `OP` is `ADD`, `SUB`, `MUL` or `DIV` (in any
//!   letter case), `A` and `B` are 64-bit signed integers, separated by
//!   spaces or tabs. `ADD 5 3` is answered `8\n`; `DIV 7 2` is `3\n`
//!   (division rounds toward zero, like Rust's `/`).
//! - [`evaluate`] returns the result or a [`CalcError`]: `Usage` when
//!   the line is not exactly three words, `UnknownOperation(op)` with the
//!   word as sent, `NotANumber(word)` for the first operand that does not
//!   parse, `DivisionByZero`, and `Overflow` when the result does not fit
//!   (use the `checked_` arithmetic methods; `i64::MIN / -1` overflows too).
//! - [`respond`] turns one raw line into the reply: the number and `\n`,
//!   or `ERR ` followed by the error's text and `\n`. A line that is not
//!   UTF-8 is a `Usage` error.
//! - [`handle_client`] reads lines with
//!   [`BoundedLines`](crate::lines::BoundedLines) (limit
//!   [`MAX_LINE`](super::MAX_LINE)), answers each with [`respond`], answers
//!   an over-long line with `ERR line too long\n`, and returns at end of
//!   stream.
//!
//! Run it: `cargo test -p ch01-fundamentals --no-default-features lab_2`.

use std::io;
use std::net::TcpStream;

use super::CalcError;

/// Evaluates one request line (without its newline).
pub fn evaluate(line: &str) -> Result<i64, CalcError> {
    // TODO: split_whitespace, match the operation, parse, checked arithmetic.
    let _ = line;
    todo!("lab 2: evaluate a calculation")
}

/// The full reply line for one raw request line.
pub fn respond(line: &[u8]) -> String {
    // TODO: str::from_utf8, then evaluate.
    let _ = line;
    todo!("lab 2: format the reply")
}

/// Serves one calculator client.
pub fn handle_client(stream: TcpStream) -> io::Result<()> {
    // TODO: a loop over BoundedLines, answering each line.
    let _ = stream;
    todo!("lab 2: serve a client")
}
