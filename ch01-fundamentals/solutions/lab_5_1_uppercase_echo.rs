//! # Lab 5.1 — an upper-case echo server (reference solution)
//!
//! Each line is answered upper-cased; an over-long line gets an error line
//! and the connection goes on. The task is in `src/labs/lab_5_1_uppercase_echo.rs`.

use std::io;
use std::net::TcpStream;

use crate::io::write_all;
use crate::lines::{BoundedLines, Line};

/// Upper-cases the ASCII letters of `line`.
pub fn uppercase(line: &[u8]) -> Vec<u8> {
    line.iter().map(u8::to_ascii_uppercase).collect()
}

/// Serves one client of the upper-case echo server.
pub fn handle_client(stream: TcpStream) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut lines = BoundedLines::new(stream, super::MAX_LINE);
    loop {
        match lines.read_line()? {
            Line::Text(text) => {
                let mut reply = uppercase(&text);
                reply.push(b'\n');
                write_all(&mut writer, &reply)?;
            }
            Line::TooLong => {
                write_all(&mut writer, b"ERR line too long\n")?;
            }
            Line::Eof => return Ok(()),
        }
    }
}
