//! Reading a head that arrives in pieces: when it is worth parsing
//! (`HeadScan`), and a stream with the bytes read past the head
//! (`Buffered`).
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{HeadError, Limits, RequestHead, ResponseHead, parse_request, parse_response};

// ANCHOR: head_scan
/// Decides when a head that arrives in pieces is worth parsing: when its
/// end has arrived, or a limit is crossed (or on the first bytes, so a
/// garbage request line is refused at once). Re-parsing after every small
/// read would cost time in the square of the head's size, which a client
/// sending one byte per packet could exploit; this looks at each new byte
/// once. Used by the blocking proxies here and by chapter 5's event loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadScan {
    scanned: usize,
    first_line_done: bool,
}

impl HeadScan {
    /// Whether `buf` (the head so far; it only grows) should be parsed now.
    pub fn worth_parsing(&mut self, buf: &[u8], limits: &Limits) -> bool {
        let from = self.scanned.saturating_sub(3).min(buf.len());
        let fresh = buf.get(from..).unwrap_or_default();
        let ended = fresh.windows(2).any(|w| w == b"\n\n") || fresh.windows(3).any(|w| w == b"\n\r\n");
        self.first_line_done |= fresh.contains(&b'\n');
        let over =
            buf.len() >= limits.max_head_bytes || (!self.first_line_done && buf.len() > limits.max_target_bytes + 64);
        let first = self.scanned == 0 && !buf.is_empty();
        self.scanned = buf.len();
        ended || over || first
    }
}
// ANCHOR_END: head_scan

/// A stream and the bytes read from it but not used yet. Reading a head
/// usually reads a little past it (the start of a body, or a pipelined
/// request); those bytes stay here for whoever reads next.
///
/// The stream is a `TcpStream` in the servers; the body copier works over
/// any reader, so tests and the fuzz targets feed it from memory.
#[derive(Debug)]
pub struct Buffered<S = TcpStream> {
    /// The connection.
    pub stream: S,
    /// Bytes received and not yet consumed.
    pub buf: Vec<u8>,
}

impl<S: Read> Buffered<S> {
    /// Wraps a stream with an empty buffer.
    pub fn new(stream: S) -> Self {
        Self { stream, buf: Vec::with_capacity(8 * 1024) }
    }

    /// Reads once more into the buffer; `Ok(0)` is end of stream.
    pub fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8 * 1024];
        let n = ch01_fundamentals::io::read_some(&mut self.stream, &mut chunk)?;
        self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Drops the first `n` buffered bytes.
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }
}

impl Buffered {
    // ANCHOR: read_request_head
    /// Reads a request head, within `limits.header_timeout` in total: a
    /// client sending one byte a second cannot hold the connection longer.
    pub fn read_request_head(&mut self, limits: &Limits) -> Result<RequestHead, HeadError> {
        let deadline = Instant::now() + limits.header_timeout;
        let mut scan = HeadScan::default();
        loop {
            if scan.worth_parsing(&self.buf, limits)
                && let Some((head, len)) = parse_request(&self.buf, limits)?
            {
                self.consume(len);
                return Ok(head);
            }
            self.fill_before(deadline, limits.header_timeout)?;
        }
    }
    // ANCHOR_END: read_request_head

    /// Reads a response head to a `method` request, within `timeout`.
    pub fn read_response_head(
        &mut self,
        limits: &Limits,
        method: &str,
        timeout: Duration,
    ) -> Result<ResponseHead, HeadError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((head, len)) = parse_response(&self.buf, limits, method)? {
                self.consume(len);
                if (100..200).contains(&head.status) && head.status != 101 {
                    continue; // 100 Continue and friends: the real response follows.
                }
                return Ok(head);
            }
            self.fill_before(deadline, timeout)?;
        }
    }

    fn fill_before(&mut self, deadline: Instant, budget: Duration) -> Result<(), HeadError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout(budget));
        }
        self.stream.set_read_timeout(Some(left)).map_err(|e| HeadError::Io(e.kind()))?;
        let result = self.fill();
        let _ = self.stream.set_read_timeout(None);
        match result {
            Ok(0) if self.buf.is_empty() => Err(HeadError::Closed),
            Ok(0) => Err(HeadError::Malformed("connection closed in the middle of a head")),
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                Err(HeadError::Timeout(budget))
            }
            Err(e) => Err(HeadError::Io(e.kind())),
        }
    }
}

impl<S: Read> Read for Buffered<S> {
    /// Buffered bytes first, then the socket.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.buf.is_empty() {
            let n = out.len().min(self.buf.len());
            // `n` fits both by construction; `get` proves it without a panic.
            if let (Some(to), Some(from)) = (out.get_mut(..n), self.buf.get(..n)) {
                to.copy_from_slice(from);
            }
            self.consume(n);
            return Ok(n);
        }
        self.stream.read(out)
    }
}
