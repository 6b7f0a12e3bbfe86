//! # Lab 1 — an echo server that stamps and logs every message (reference solution)
//!
//! The task is in `src/labs/lab_1_stamped_echo.rs`.

use std::io;
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::io::write_all;
use crate::lines::{BoundedLines, Line};

/// `[HH:MM:SS] ` and `line`.
pub fn stamp(line: &[u8], at: SystemTime) -> Vec<u8> {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let of_day = secs % 86_400;
    let mut out = format!("[{:02}:{:02}:{:02}] ", of_day / 3600, of_day / 60 % 60, of_day % 60).into_bytes();
    out.extend_from_slice(line);
    out
}

/// Serves one client: each line answered stamped, and logged.
pub fn handle_client(stream: TcpStream, now: &dyn Fn() -> SystemTime, log: &dyn Fn(&str)) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    let mut writer = stream.try_clone()?;
    let mut lines = BoundedLines::new(stream, super::MAX_LINE);
    loop {
        match lines.read_line()? {
            Line::Text(text) => {
                let stamped = stamp(&text, now());
                log(&format!("{peer} {}", String::from_utf8_lossy(&stamped)));
                let mut reply = stamped;
                reply.push(b'\n');
                write_all(&mut writer, &reply)?;
            }
            Line::TooLong => {
                log(&format!("{peer} ERR line too long"));
                write_all(&mut writer, b"ERR line too long\n")?;
            }
            Line::Eof => return Ok(()),
        }
    }
}
