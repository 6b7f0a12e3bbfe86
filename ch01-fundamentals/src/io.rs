//! Reading and writing a byte stream correctly.
//!
//! TCP delivers a stream of bytes, not messages. A single `read` may return
//! any number of bytes from one up to the buffer's size, and a single
//! `write` may accept only part of what it was given. Both may also fail
//! with `EINTR` when a signal arrives during the call; that is not an
//! error, just a reason to try again. These helpers spell the rules out.

use std::io::{self, ErrorKind, Read, Write};

// ANCHOR: read_some
/// Reads at least one byte into `buf`, retrying when a signal interrupts
/// the call. `Ok(0)` means the peer closed its sending side (end of stream).
pub fn read_some<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Ok(n) => return Ok(n),
            // EINTR: a signal handler ran while we were blocked. Nothing
            // was read; the call is simply repeated.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: read_some

// ANCHOR: write_all
/// Writes every byte of `buf`, however many calls the kernel needs.
///
/// Returns how many `write` calls it took. More than one means a *partial
/// write*: a signal interrupted a blocking write after some bytes were
/// copied, a send timeout expired, or (on a non-blocking socket, chapter 5)
/// the send buffer filled up. Code that assumes one call sends everything
/// works in tests and fails under load. A `write` that
/// returns 0 means the peer can take nothing more and is reported as
/// `WriteZero` instead of looping forever.
pub fn write_all<W: Write + ?Sized>(writer: &mut W, mut buf: &[u8]) -> io::Result<usize> {
    let mut calls = 0;
    while !buf.is_empty() {
        calls += 1;
        match writer.write(buf) {
            Ok(0) => return Err(io::Error::new(ErrorKind::WriteZero, "peer accepted no bytes")),
            // Partial write: keep the unsent tail and go round again.
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(calls)
}
// ANCHOR_END: write_all

/// What [`copy_stream`] moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Bytes read from the source.
    pub bytes: u64,
    /// Number of `read` calls that returned data.
    pub reads: u64,
}

// ANCHOR: copy_stream
/// Copies `reader` to `writer` until end of stream through one fixed
/// buffer, so memory stays at `buf.len()` however much data flows and
/// however long the "lines" are: the echo server never buffers a message.
pub fn copy_stream<R, W>(reader: &mut R, writer: &mut W, buf: &mut [u8]) -> io::Result<Copied>
where
    R: Read + ?Sized,
    W: Write + ?Sized,
{
    let mut copied = Copied::default();
    loop {
        let n = read_some(reader, buf)?;
        if n == 0 {
            return Ok(copied);
        }
        write_all(writer, &buf[..n])?;
        copied.bytes += n as u64;
        copied.reads += 1;
    }
}
// ANCHOR_END: copy_stream

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `max` bytes per call and fails once with
    /// `Interrupted`, like a busy socket hit by a signal.
    struct Trickle {
        max: usize,
        interrupted: bool,
        out: Vec<u8>,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A reader that hands out one byte per call after an `Interrupted`.
    struct Drip<'a> {
        data: &'a [u8],
        interrupted: bool,
    }

    impl Read for Drip<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(ErrorKind::Interrupted.into());
            }
            if self.data.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data[0];
            self.data = &self.data[1..];
            Ok(1)
        }
    }

    #[test]
    fn write_all_survives_partial_writes_and_eintr() {
        let mut w = Trickle { max: 3, interrupted: false, out: Vec::new() };
        let calls = write_all(&mut w, b"hello world").unwrap();
        assert_eq!(w.out, b"hello world");
        // 1 interrupted + ceil(11 / 3) = 4 partial writes.
        assert_eq!(calls, 5);
    }

    #[test]
    fn write_zero_is_an_error_not_a_hang() {
        let mut w = Trickle { max: 0, interrupted: true, out: Vec::new() };
        let err = write_all(&mut w, b"x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WriteZero);
    }

    #[test]
    fn copy_stream_handles_one_byte_reads() {
        let mut r = Drip { data: b"partial reads", interrupted: false };
        let mut out = Vec::new();
        let mut buf = [0u8; 8];
        let copied = copy_stream(&mut r, &mut out, &mut buf).unwrap();
        assert_eq!(out, b"partial reads");
        assert_eq!(copied, Copied { bytes: 13, reads: 13 });
    }
}
