//! # Lab 5.4 — a connection log (reference solution)
//!
//! The task is in `src/labs/lab_5_4_connection_log.rs`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{Shutdown as Both, TcpStream};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::LogEntry;
use crate::io::{read_some, write_all};

/// An append-only log file shared by every connection.
#[derive(Debug)]
pub struct ConnectionLog {
    /// The open file; the mutex keeps lines whole.
    pub file: Mutex<File>,
}

impl ConnectionLog {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file: Mutex::new(file) })
    }

    /// Appends one line for `entry`.
    pub fn record(&self, entry: &LogEntry) -> io::Result<()> {
        let line = format_entry(entry);
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(line.as_bytes())
    }
}

/// Formats one log line, newline included.
pub fn format_entry(entry: &LogEntry) -> String {
    format!(
        "peer={} bytes_in={} bytes_out={} duration_ms={}\n",
        entry.peer,
        entry.bytes_in,
        entry.bytes_out,
        entry.duration.as_millis()
    )
}

/// Echoes for one client and logs the connection when it ends.
pub fn handle_client(stream: TcpStream, log: &ConnectionLog) -> io::Result<()> {
    let started = Instant::now();
    let peer = stream.peer_addr()?;
    let mut reader = stream.try_clone()?;
    let mut writer = stream;
    let mut buf = vec![0u8; 16 * 1024];
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    let result = loop {
        match read_some(&mut reader, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                bytes_in += n as u64;
                if let Err(e) = write_all(&mut writer, &buf[..n]) {
                    break Err(e);
                }
                bytes_out += n as u64;
            }
            Err(e) => break Err(e),
        }
    };
    let entry = LogEntry { peer, bytes_in, bytes_out, duration: started.elapsed() };
    let logged = log.record(&entry);
    let _ = writer.shutdown(Both::Write);
    result.and(logged)
}
