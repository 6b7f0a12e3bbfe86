//! Where does a body end? Found while its bytes stream past.
//!
//! Chapter 2's `copy_body` answers the question with blocking reads: it
//! asks for the next chunk line and waits. An event loop cannot wait; it
//! gets whatever bytes the kernel has, maybe half a chunk-size line. So
//! the same rules become a state machine that is fed bytes as they come
//! and says how many of them still belong to the body. The bytes are
//! never changed: a load balancer passes a chunked body on as it is, it
//! only needs to know where it stops, for two reasons:
//!
//! - a client may send its next request right behind the body (keep-alive,
//!   pipelining); those bytes must not go to this request's backend;
//! - a backend may send junk after its response; it must not reach a
//!   client whose connection carries the next response.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use ch02_proxy::body::{MAX_CHUNK_LINE, MAX_TRAILER_BYTES};
use ch02_proxy::http::Framing;

/// Where in a chunked body the tracker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size (`digits` so far).
    Size { digits: u8 },
    /// After `;`: an extension, up to CR.
    Extension,
    /// Expecting the LF of the size line.
    SizeLf,
    /// Inside the data of a chunk.
    Data,
    /// Expecting the CR after the data.
    DataCr,
    /// Expecting the LF after the data.
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    /// Inside a trailer line.
    TrailerLine,
    /// Expecting the LF of a trailer line.
    TrailerLf,
    /// Expecting the final LF.
    FinalLf,
}

/// Follows one message body through its bytes.
#[derive(Debug, Clone)]
pub struct BodyTracker {
    kind: Kind,
    /// Bytes of the current size line, or of the trailers (bounded).
    line: usize,
    done: bool,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Length(u64),
    Chunked { state: Chunk, left: u64 },
    UntilClose,
}

// ANCHOR: tracker
impl BodyTracker {
    /// A tracker for a body framed as `framing` says.
    pub fn new(framing: Framing) -> Self {
        let (kind, done) = match framing {
            Framing::Empty => (Kind::Length(0), true),
            Framing::Length(n) => (Kind::Length(n), n == 0),
            Framing::Chunked => (Kind::Chunked { state: Chunk::Size { digits: 0 }, left: 0 }, false),
            Framing::UntilClose => (Kind::UntilClose, false),
        };
        Self { kind, line: 0, done }
    }

    /// Whether the whole body has gone past.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether only the sender closing ends this body.
    pub fn until_close(&self) -> bool {
        matches!(self.kind, Kind::UntilClose)
    }

    /// Feeds the next bytes of the stream; returns how many of them belong
    /// to the body (all of them, unless the body ends inside `bytes`).
    /// A malformed chunked body is an error: the message cannot be
    /// forwarded safely.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, &'static str> {
        if self.done {
            return Ok(0);
        }
        match &mut self.kind {
            Kind::UntilClose => Ok(bytes.len()),
            Kind::Length(left) => {
                let take = (*left).min(bytes.len() as u64);
                *left -= take;
                self.done = *left == 0;
                Ok(take as usize)
            }
            Kind::Chunked { .. } => self.feed_chunked(bytes),
        }
    }
    // ANCHOR_END: tracker

    fn feed_chunked(&mut self, bytes: &[u8]) -> Result<usize, &'static str> {
        let Kind::Chunked { mut state, mut left } = self.kind else { return Ok(0) };
        let mut i = 0;
        while i < bytes.len() && !self.done {
            // Chunk data is skipped in one step; everything else is one byte
            // at a time, because any byte may be the last one we have.
            if state == Chunk::Data {
                let take = left.min((bytes.len() - i) as u64);
                left -= take;
                i += take as usize;
                if left == 0 {
                    state = Chunk::DataCr;
                }
                continue;
            }
            let Some(&b) = bytes.get(i) else { break };
            i += 1;
            state = match state {
                Chunk::Size { digits } => {
                    self.line += 1;
                    match b {
                        _ if b.is_ascii_hexdigit() => {
                            if digits == 16 {
                                return Err("chunk size does not fit in 64 bits");
                            }
                            // Sixteen hex digits at most: this cannot overflow.
                            left = left * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                            Chunk::Size { digits: digits + 1 }
                        }
                        b';' if digits > 0 => Chunk::Extension,
                        b'\r' if digits > 0 => Chunk::SizeLf,
                        _ => return Err("invalid chunk size"),
                    }
                }
                Chunk::Extension => {
                    self.line += 1;
                    if self.line > MAX_CHUNK_LINE {
                        return Err("chunk line too long");
                    }
                    match b {
                        b'\r' => Chunk::SizeLf,
                        b'\n' => return Err("line not ended by CRLF"),
                        _ => Chunk::Extension,
                    }
                }
                Chunk::SizeLf => {
                    if b != b'\n' {
                        return Err("line not ended by CRLF");
                    }
                    self.line = 0;
                    if left == 0 { Chunk::TrailerStart } else { Chunk::Data }
                }
                Chunk::Data => Chunk::Data,
                Chunk::DataCr if b == b'\r' => Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => Chunk::Size { digits: 0 },
                Chunk::DataCr | Chunk::DataLf => return Err("chunk data not followed by CRLF"),
                Chunk::TrailerStart if b == b'\r' => Chunk::FinalLf,
                Chunk::TrailerStart | Chunk::TrailerLine => {
                    self.line += 1;
                    if self.line > MAX_TRAILER_BYTES {
                        return Err("trailers too large");
                    }
                    match b {
                        b'\r' => Chunk::TrailerLf,
                        b'\n' => return Err("line not ended by CRLF"),
                        _ => Chunk::TrailerLine,
                    }
                }
                Chunk::TrailerLf if b == b'\n' => Chunk::TrailerStart,
                Chunk::FinalLf if b == b'\n' => {
                    self.done = true;
                    Chunk::FinalLf
                }
                Chunk::TrailerLf | Chunk::FinalLf => return Err("line not ended by CRLF"),
            };
        }
        self.kind = Kind::Chunked { state, left };
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns the body length.
    fn body_len(framing: Framing, input: &[u8], step: usize) -> Result<Option<usize>, &'static str> {
        let mut t = BodyTracker::new(framing);
        let mut total = 0;
        for piece in input.chunks(step) {
            let n = t.feed(piece)?;
            total += n;
            if t.is_done() {
                return Ok(Some(total));
            }
        }
        Ok(t.is_done().then_some(total))
    }

    #[test]
    fn content_length_stops_at_the_length() {
        for step in [1, 3, 100] {
            assert_eq!(body_len(Framing::Length(5), b"helloGET / HTTP/1.1", step), Ok(Some(5)));
        }
        assert_eq!(body_len(Framing::Length(5), b"hel", 2), Ok(None), "not all there yet");
        assert!(BodyTracker::new(Framing::Empty).is_done());
    }

    #[test]
    fn chunked_bodies_end_after_the_last_chunk_and_trailers_whatever_the_split() {
        let body = b"5\r\nhello\r\n6;name=v\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";
        let mut input = body.to_vec();
        input.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        for step in 1..=body.len() {
            assert_eq!(body_len(Framing::Chunked, &input, step), Ok(Some(body.len())), "step {step}");
        }
        assert_eq!(body_len(Framing::Chunked, b"0\r\n\r\n", 1), Ok(Some(5)));
        assert_eq!(body_len(Framing::Chunked, b"A\r\n0123456789\r\n0\r\n", 4), Ok(None), "final CRLF missing");
    }

    #[test]
    fn malformed_chunked_bodies_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"-1\r\n",
            b"5 \r\n",
            b"5\nhello",
            b"5\r\nhelloXX",
            b"11111111111111111\r\n",
            b"0\r\nbad\ntrailer",
        ] {
            assert!(body_len(Framing::Chunked, bad, 1).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long_extension = [b"1;".as_slice(), &vec![b'a'; MAX_CHUNK_LINE + 1]].concat();
        assert_eq!(body_len(Framing::Chunked, &long_extension, 64), Err("chunk line too long"));
    }

    #[test]
    fn close_delimited_bodies_never_end_by_themselves() {
        let mut t = BodyTracker::new(Framing::UntilClose);
        assert_eq!(t.feed(b"anything at all"), Ok(15));
        assert!(!t.is_done());
        assert!(t.until_close());
    }
}
