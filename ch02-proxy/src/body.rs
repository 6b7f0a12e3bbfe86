//! Moving a message body from one connection to another, by its framing.
//!
//! A proxy must know where a body ends, or it cannot tell the body from the
//! next message. Content-Length bodies are copied byte-counted; chunked
//! bodies are copied unchanged while every chunk-size line is checked, so a
//! malformed one is refused instead of forwarded.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, Read, Write};

use ch01_fundamentals::io::write_all;

use crate::http::{Buffered, Framing};

/// Longest chunk-size line (size and extensions) accepted.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Most bytes of trailer fields accepted after the last chunk.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Why a body could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The sender broke the framing (a bad chunk size, a missing CRLF).
    #[error("malformed body: {0}")]
    Malformed(&'static str),
    /// The sender closed before the body was complete.
    #[error("connection closed {0} bytes before the end of the body")]
    Truncated(u64),
    /// Reading from the sender failed.
    #[error("reading the body failed: {0}")]
    Read(io::Error),
    /// Writing to the receiver failed.
    #[error("writing the body failed: {0}")]
    Write(io::Error),
}

/// Copies the body that follows a head from `from` to `to`; returns the
/// number of bytes written.
pub fn copy_body<S: Read>(from: &mut Buffered<S>, to: &mut dyn Write, framing: Framing) -> Result<u64, BodyError> {
    match framing {
        Framing::Empty => Ok(0),
        Framing::Length(n) => copy_exact(from, to, n),
        Framing::Chunked => copy_chunked(from, to),
        Framing::UntilClose => copy_until_close(from, to),
    }
}

/// Copies exactly `n` bytes.
fn copy_exact<S: Read>(from: &mut Buffered<S>, to: &mut dyn Write, n: u64) -> Result<u64, BodyError> {
    let mut left = n;
    let mut chunk = [0u8; 16 * 1024];
    while left > 0 {
        let want = left.min(chunk.len() as u64) as usize;
        let window = chunk.get_mut(..want).unwrap_or_default();
        let got = from.read(window).map_err(BodyError::Read)?;
        if got == 0 {
            return Err(BodyError::Truncated(left));
        }
        write_all(to, filled(window, got)?).map_err(BodyError::Write)?;
        left -= got as u64;
    }
    Ok(n)
}

/// The `got` bytes a `read` put at the start of `buf`. `Read` promises
/// `got <= buf.len()`; a reader that broke it is an error, not a panic.
fn filled(buf: &[u8], got: usize) -> Result<&[u8], BodyError> {
    buf.get(..got).ok_or_else(|| BodyError::Read(std::io::Error::other("a reader returned more bytes than asked")))
}

/// Copies until the sender closes.
fn copy_until_close<S: Read>(from: &mut Buffered<S>, to: &mut dyn Write) -> Result<u64, BodyError> {
    let mut total = 0;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let got = from.read(&mut chunk).map_err(BodyError::Read)?;
        if got == 0 {
            return Ok(total);
        }
        write_all(to, filled(&chunk, got)?).map_err(BodyError::Write)?;
        total += got as u64;
    }
}

/// Takes one line ending in CRLF from `from` (CRLF included), at most `max` bytes.
fn take_line<S: Read>(from: &mut Buffered<S>, max: usize) -> Result<Vec<u8>, BodyError> {
    loop {
        if let Some(i) = from.buf.iter().position(|&b| b == b'\n') {
            // Too long however it arrived: in one read as here, or in
            // several, where the check below refuses it.
            if i > max {
                return Err(BodyError::Malformed("chunk line too long"));
            }
            let line = match from.buf.get(..=i) {
                Some(line) if line.ends_with(b"\r\n") => line.to_vec(),
                _ => return Err(BodyError::Malformed("line not ended by CRLF")),
            };
            // A CR only before the LF: another server could end the line at
            // a bare CR and read the rest as the next chunk (as in heads).
            if line.iter().filter(|&&b| b == b'\r').count() > 1 {
                return Err(BodyError::Malformed("bare CR in a chunk line"));
            }
            from.consume(i + 1);
            return Ok(line);
        }
        if from.buf.len() > max {
            return Err(BodyError::Malformed("chunk line too long"));
        }
        if from.fill().map_err(BodyError::Read)? == 0 {
            return Err(BodyError::Truncated(0));
        }
    }
}

// ANCHOR: chunk_size
/// Parses the size at the start of a chunk line: hex digits, then an
/// optional `;extension`, nothing else. Refuses signs, spaces, `0x`, and
/// sizes that do not fit in 64 bits.
pub fn parse_chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    let digits = line.split(|&b| b == b';').next().unwrap_or(&[]);
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(BodyError::Malformed("invalid chunk size"));
    }
    let mut size = 0u64;
    for &d in digits {
        // At most 16 hex digits, so this cannot overflow.
        size = size * 16 + (d as char).to_digit(16).unwrap_or(0) as u64;
    }
    Ok(size)
}
// ANCHOR_END: chunk_size

/// Copies a chunked body unchanged, checking its framing as it goes.
fn copy_chunked<S: Read>(from: &mut Buffered<S>, to: &mut dyn Write) -> Result<u64, BodyError> {
    let mut total = 0u64;
    loop {
        let line = take_line(from, MAX_CHUNK_LINE)?;
        let size = parse_chunk_size(&line)?;
        write_all(to, &line).map_err(BodyError::Write)?;
        total += line.len() as u64;
        if size == 0 {
            break;
        }
        total += copy_exact(from, to, size)?;
        let crlf = take_line(from, 2)?;
        if crlf != b"\r\n" {
            return Err(BodyError::Malformed("chunk data not followed by CRLF"));
        }
        write_all(to, &crlf).map_err(BodyError::Write)?;
        total += 2;
    }
    // Trailer fields, then the empty line that ends the message.
    let mut trailer_bytes = 0;
    loop {
        let line = take_line(from, MAX_TRAILER_BYTES)?;
        trailer_bytes += line.len();
        if trailer_bytes > MAX_TRAILER_BYTES {
            return Err(BodyError::Malformed("trailer section too large"));
        }
        write_all(to, &line).map_err(BodyError::Write)?;
        total += line.len() as u64;
        if line == b"\r\n" {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// A Buffered whose socket yields `data` and then end of stream.
    fn source(data: &[u8]) -> Buffered {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (reader, _) = listener.accept().unwrap();
        writer.write_all(data).unwrap();
        drop(writer);
        Buffered::new(reader)
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a\r\n").unwrap(), 26);
        assert_eq!(parse_chunk_size(b"0;name=value\r\n").unwrap(), 0);
        assert_eq!(parse_chunk_size(b"FFFFFFFFFFFFFFFF\r\n").unwrap(), u64::MAX);
        for bad in [&b"\r\n"[..], b"-1\r\n", b"+1\r\n", b" 1\r\n", b"0x10\r\n", b"g\r\n", b"10000000000000000\r\n"] {
            assert!(parse_chunk_size(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_chunked_body_is_copied_unchanged_and_stops_at_its_end() {
        let body = b"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n";
        let mut data = body.to_vec();
        data.extend_from_slice(b"NEXT MESSAGE");
        let mut from = source(&data);
        let mut out = Vec::new();
        assert_eq!(copy_body(&mut from, &mut out, Framing::Chunked).unwrap(), body.len() as u64);
        assert_eq!(out, body);
        let mut rest = Vec::new();
        from.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"NEXT MESSAGE");
    }

    #[test]
    fn bad_chunked_bodies_are_refused() {
        for bad in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"5\r\nhelloXX0\r\n\r\n", b"5\nhello\r\n0\r\n\r\n"] {
            let mut out = Vec::new();
            assert!(matches!(copy_body(&mut source(bad), &mut out, Framing::Chunked), Err(BodyError::Malformed(_))));
        }
        let mut out = Vec::new();
        assert!(matches!(copy_body(&mut source(b"5\r\nhe"), &mut out, Framing::Chunked), Err(BodyError::Truncated(_))));
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        let mut from = source(b"abcdefNEXT");
        let mut out = Vec::new();
        assert_eq!(copy_body(&mut from, &mut out, Framing::Length(6)).unwrap(), 6);
        assert_eq!(out, b"abcdef");
        let mut short = source(b"abc");
        assert!(matches!(copy_body(&mut short, &mut Vec::new(), Framing::Length(6)), Err(BodyError::Truncated(3))));
    }

    /// A socket that delivers one byte per read.
    struct Trickle(std::collections::VecDeque<u8>);

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match (self.0.pop_front(), out.first_mut()) {
                (Some(b), Some(slot)) => {
                    *slot = b;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    /// `data` copied as a chunked body, all of it already buffered and then
    /// one byte per read.
    fn copied_both_ways(data: &[u8]) -> [Result<u64, BodyError>; 2] {
        let mut at_once = Buffered { stream: io::empty(), buf: data.to_vec() };
        let mut trickle = Buffered::new(Trickle(data.iter().copied().collect()));
        [
            copy_body(&mut at_once, &mut Vec::new(), Framing::Chunked),
            copy_body(&mut trickle, &mut Vec::new(), Framing::Chunked),
        ]
    }

    // Found by fuzzing (fuzz/fuzz_targets/body_framing.rs): a bare CR in a
    // trailer line, or in a chunk extension, was forwarded, where chapter
    // 5's BodyTracker refused it; a server that ends lines at a bare CR
    // would read the rest of the line as the next message.
    #[test]
    fn a_bare_cr_in_a_chunk_line_or_a_trailer_is_refused() {
        let found = b"0\r\nb\xe6z)a\r\nb\x00\x000\r\n\xe6\xe6\xe6\xe6\xe6[\xe6\x00ta\xe6\xe6\xe6\xe6@ H=\x88\r\n\
                      b(\x00ta\xe6\xe6\xe6\xe6@ \r=\x88\r\nb(110110 C\r\n\r\nn\r\n";
        for bad in [&found[..], b"5;a\rb\r\nhello\r\n0\r\n\r\n", b"0\r\nX: a\rb\r\n\r\n"] {
            for copied in copied_both_ways(bad) {
                assert!(
                    matches!(copied, Err(BodyError::Malformed(_))),
                    "{:?}: {copied:?}",
                    String::from_utf8_lossy(bad)
                );
            }
        }
    }

    // Found by fuzzing (body_framing, from a seed): a chunk line longer than
    // MAX_CHUNK_LINE was refused when it arrived in pieces but passed when
    // one read brought it whole.
    #[test]
    fn a_chunk_line_over_the_limit_is_refused_however_it_arrives() {
        let body = |extension: usize| [b"1;".as_slice(), &vec![b'a'; extension], b"\r\nx\r\n0\r\n\r\n"].concat();
        // "1;" + extension + "\r": the LF is at index extension + 3.
        let longest = body(MAX_CHUNK_LINE - 3);
        for copied in copied_both_ways(&longest) {
            assert_eq!(copied.ok(), Some(longest.len() as u64));
        }
        for copied in copied_both_ways(&body(MAX_CHUNK_LINE - 2)) {
            assert!(matches!(copied, Err(BodyError::Malformed("chunk line too long"))), "{copied:?}");
        }
    }
}
