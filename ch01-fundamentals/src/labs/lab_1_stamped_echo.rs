//! # Lab 1 — an echo server that stamps and logs every message
//!
//! The curriculum's first project: the echo server, made useful to the
//! person running it. Every line a client sends comes back prefixed with
//! the time the server answered it, and every message is written to the
//! server's log with who sent it.
//!
//! - [`stamp`] returns `[HH:MM:SS] ` (UTC, two digits each) followed by
//!   the line's bytes unchanged (any bytes: UTF-8 or not), without a
//!   newline. `at` before 1970 counts as 1970-01-01T00:00:00.
//! - [`handle_client`] reads the client's lines with
//!   [`BoundedLines`](crate::lines::BoundedLines) (limit
//!   [`MAX_LINE`](super::MAX_LINE)). For each line it asks `now` for the
//!   time once, answers `stamp(line, time)` and `\n`, and calls `log`
//!   with `PEER STAMPED` where PEER is the client's address
//!   (`127.0.0.1:50312`) and STAMPED is the stamped line as text (invalid
//!   UTF-8 shown with U+FFFD, as `String::from_utf8_lossy` does). A line
//!   over the limit gets `ERR line too long\n` and is logged as
//!   `PEER ERR line too long`; the connection goes on. At end of stream,
//!   return `Ok(())`.
//!
//! The clock and the log are parameters, so the tests can fix the time
//! and read the log; `lab_server stamp` passes the real clock and writes
//! the log to standard error.
//!
//! Run it: `cargo test -p ch01-fundamentals --no-default-features lab_1_`.

use std::io;
use std::net::TcpStream;
use std::time::SystemTime;

/// `[HH:MM:SS] ` and `line`.
pub fn stamp(line: &[u8], at: SystemTime) -> Vec<u8> {
    // TODO: seconds since the epoch, then the time of day.
    let _ = (line, at);
    todo!("lab 1: stamp a line with the time of day")
}

/// Serves one client: each line answered stamped, and logged.
pub fn handle_client(stream: TcpStream, now: &dyn Fn() -> SystemTime, log: &dyn Fn(&str)) -> io::Result<()> {
    // TODO: as lab 5.1, with a stamp instead of upper case, and a log line.
    let _ = (stream, now, log);
    todo!("lab 1: answer and log each line")
}
