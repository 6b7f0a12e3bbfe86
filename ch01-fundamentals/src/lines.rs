//! Line-oriented protocols with a bound on line length.
//!
//! `BufRead::read_line` keeps appending until it sees a newline, so a client
//! that sends a gigabyte without one makes the server allocate a gigabyte.
//! [`BoundedLines`] stops at a limit: an over-long line is reported once as
//! [`Line::TooLong`], the rest of it is skipped without being stored, and
//! the connection can go on with the next line.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, BufRead, BufReader, ErrorKind, Read};

/// The line limit the chapter's servers use unless told otherwise.
pub const DEFAULT_MAX_LINE: usize = 8 * 1024;

/// One result of [`BoundedLines::read_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line without its `\n` (and without a `\r` before it). A last line
    /// cut short by the end of the stream is delivered too.
    Text(Vec<u8>),
    /// A line longer than the limit; its bytes were discarded.
    TooLong,
    /// The peer closed its side and nothing is left.
    Eof,
}

// ANCHOR: bounded_lines
/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug)]
pub struct BoundedLines<R> {
    reader: BufReader<R>,
    max: usize,
    line: Vec<u8>,
}

impl<R: Read> BoundedLines<R> {
    /// Wraps `inner`; lines longer than `max` bytes are refused.
    pub fn new(inner: R, max: usize) -> Self {
        Self { reader: BufReader::with_capacity(4096.min(max.max(64)), inner), max, line: Vec::new() }
    }

    /// Reads the next line; memory never grows past `max` bytes.
    pub fn read_line(&mut self) -> io::Result<Line> {
        self.line.clear();
        let mut too_long = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                // End of stream: hand out what we have, if anything.
                if self.line.len() > self.max {
                    too_long = true;
                }
                return Ok(match (too_long, self.line.is_empty()) {
                    (true, _) => Line::TooLong,
                    (false, true) => Line::Eof,
                    (false, false) => Line::Text(std::mem::take(&mut self.line)),
                });
            }
            let (chunk, found_newline) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (available.get(..i).unwrap_or(available), true),
                None => (available, false),
            };
            // One byte over `max` is kept for a CR that may end the line.
            if !too_long && self.line.len() + chunk.len() <= self.max + 1 {
                self.line.extend_from_slice(chunk);
            } else {
                // Over the limit: forget the line and skip to its end.
                too_long = true;
                self.line.clear();
            }
            let used = chunk.len() + usize::from(found_newline);
            self.reader.consume(used);
            if found_newline {
                if too_long {
                    return Ok(Line::TooLong);
                }
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                if self.line.len() > self.max {
                    self.line.clear();
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Text(std::mem::take(&mut self.line)));
            }
        }
    }

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        self.reader.get_ref()
    }
}
// ANCHOR_END: bounded_lines

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut l = BoundedLines::new(input, max);
        let mut out = Vec::new();
        loop {
            let line = l.read_line().unwrap();
            let eof = line == Line::Eof;
            out.push(line);
            if eof {
                return out;
            }
        }
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        assert_eq!(
            lines(b"one\r\ntwo\nthree", 64),
            vec![Line::Text(b"one".to_vec()), Line::Text(b"two".to_vec()), Line::Text(b"three".to_vec()), Line::Eof]
        );
    }

    #[test]
    fn a_long_line_is_skipped_and_the_next_one_still_arrives() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nafter\n");
        assert_eq!(lines(&input, 10), vec![Line::TooLong, Line::Text(b"after".to_vec()), Line::Eof]);
    }

    #[test]
    fn exactly_max_bytes_is_allowed() {
        assert_eq!(lines(b"12345\n", 5), vec![Line::Text(b"12345".to_vec()), Line::Eof]);
        assert_eq!(lines(b"123456\n", 5), vec![Line::TooLong, Line::Eof]);
        // The CR of a CRLF does not count toward the limit.
        assert_eq!(lines(b"12345\r\n", 5), vec![Line::Text(b"12345".to_vec()), Line::Eof]);
        assert_eq!(lines(b"123456", 5), vec![Line::TooLong, Line::Eof]);
    }

    #[test]
    fn binary_bytes_pass_through() {
        assert_eq!(lines(&[0, 255, 7, b'\n'], 8), vec![Line::Text(vec![0, 255, 7]), Line::Eof]);
    }
}
