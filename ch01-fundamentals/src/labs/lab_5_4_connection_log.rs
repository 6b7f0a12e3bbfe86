//! # Lab 5.4 — a connection log
//!
//! Make the echo server keep a log file with one line per finished
//! connection: who it was, how many bytes went each way, how long it lasted.
//!
//! - [`format_entry`] renders a [`LogEntry`] as exactly
//!   `peer=127.0.0.1:50312 bytes_in=12 bytes_out=12 duration_ms=3\n`
//!   (whole milliseconds, rounded down).
//! - [`ConnectionLog::open`] opens the file for appending (creating it if
//!   needed, never truncating it); [`ConnectionLog::record`] appends one
//!   entry. Many connection threads record at once, so lines must never
//!   interleave: write each line with a single write under a lock.
//! - [`handle_client`] echoes like [`crate::echo::handle_client`], counting
//!   the bytes, and records the entry when the client has closed its side
//!   (or the connection failed) *before* closing the connection: a client
//!   that has read end of stream can rely on its line being in the file.
//!
//! Run it: `cargo test -p ch01-fundamentals --no-default-features lab_5_4`.

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Mutex;

use super::LogEntry;

/// An append-only log file shared by every connection.
#[derive(Debug)]
pub struct ConnectionLog {
    /// The open file; the mutex keeps lines whole.
    pub file: Mutex<File>,
}

impl ConnectionLog {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Self> {
        // TODO: OpenOptions with create and append.
        let _ = path;
        todo!("lab 5.4: open the log")
    }

    /// Appends one line for `entry`.
    pub fn record(&self, entry: &LogEntry) -> io::Result<()> {
        // TODO: format, lock, write the whole line at once.
        let _ = entry;
        todo!("lab 5.4: append an entry")
    }
}

/// Formats one log line, newline included.
pub fn format_entry(entry: &LogEntry) -> String {
    // TODO: the exact format in the module docs.
    let _ = entry;
    todo!("lab 5.4: format an entry")
}

/// Echoes for one client and logs the connection when it ends.
pub fn handle_client(stream: TcpStream, log: &ConnectionLog) -> io::Result<()> {
    // TODO: echo with a fixed buffer, count bytes, record, then close.
    let _ = (stream, log);
    todo!("lab 5.4: echo and log")
}
