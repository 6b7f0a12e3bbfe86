//! # Lab 5.1 — an upper-case echo server
//!
//! Change the echo server so that it answers every *line* with the same
//! line in upper case.
//!
//! - [`uppercase`] turns ASCII letters `a`–`z` into `A`–`Z` and leaves every
//!   other byte (digits, punctuation, UTF-8, binary) as it is.
//! - [`handle_client`] reads the client's lines with
//!   [`BoundedLines`](crate::lines::BoundedLines) (limit
//!   [`MAX_LINE`](super::MAX_LINE)) and answers each with the upper-cased
//!   line and `\n`. A line over the limit gets `ERR line too long\n` and the
//!   connection goes on with the next line. At end of stream, return
//!   `Ok(())`.
//!
//! Run it: `cargo test -p ch01-fundamentals --no-default-features lab_5_1`.

use std::io;
use std::net::TcpStream;

/// Upper-cases the ASCII letters of `line`.
pub fn uppercase(line: &[u8]) -> Vec<u8> {
    // TODO: map each byte; `u8` has a helper for exactly this.
    let _ = line;
    todo!("lab 5.1: upper-case the ASCII letters")
}

/// Serves one client of the upper-case echo server.
pub fn handle_client(stream: TcpStream) -> io::Result<()> {
    // TODO: clone the stream for writing, wrap the original in BoundedLines,
    // and answer line by line until Line::Eof.
    let _ = stream;
    todo!("lab 5.1: answer each line upper-cased")
}
