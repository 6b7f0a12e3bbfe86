//! # Lab 5.2 — a time server
//!
//! A client connects; the server sends the current time as one line in
//! RFC 3339 form, in UTC, to the second (`2026-11-23T07:05:09Z\n`), and
//! closes the connection.
//!
//! - [`format_rfc3339`] formats a [`SystemTime`] that way, for any time from
//!   1970 to the end of year 9999. Fractions of a second are dropped. There
//!   is no date crate here: turn seconds since the epoch into days and a time
//!   of day, then days into a year, month and day (mind leap years: every 4
//!   years, except every 100, except every 400).
//! - [`handle_client`] writes `format_rfc3339(now)` and `\n` to the client
//!   and returns; dropping the stream closes it. The time is passed in so
//!   that tests can use a fixed clock.
//!
//! Run it: `cargo test -p ch01-fundamentals --no-default-features lab_5_2`.

use std::io;
use std::net::TcpStream;
use std::time::SystemTime;

/// Formats `t` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(t: SystemTime) -> String {
    // TODO: seconds since UNIX_EPOCH -> (days, seconds of day) -> civil date.
    let _ = t;
    todo!("lab 5.2: format a time as RFC 3339")
}

/// Sends the time `now` to the client, then closes.
pub fn handle_client(stream: TcpStream, now: SystemTime) -> io::Result<()> {
    // TODO: write the formatted time and a newline.
    let _ = (stream, now);
    todo!("lab 5.2: send the time")
}
