//! The bounded buffers a connection holds: bytes received and not yet
//! passed on, or waiting to be written.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

/// Bytes waiting to be written (or parsed), with a read position, so
/// taking bytes from the front does not move the rest.
#[derive(Debug, Default)]
pub struct Buf {
    data: Vec<u8>,
    start: usize,
}

impl Buf {
    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.data.len() - self.start
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn bytes(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or_default()
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        // Bytes already sent sit at the front until the buffer empties. A
        // reader that never quite catches up would keep it from emptying,
        // and the allocation would grow for ever; so before growing it, drop
        // the sent bytes instead. Memory stays near the bytes waiting.
        if self.start > 0 && self.data.len() + bytes.len() > self.data.capacity() {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }

    pub(super) fn take_all(&mut self) -> Vec<u8> {
        let out = self.bytes().to_vec();
        self.clear();
        out
    }

    pub(super) fn clear(&mut self) {
        self.data.clear();
        self.start = 0;
    }

    /// Gives the memory back: an idle connection should own no buffer.
    pub(super) fn shrink(&mut self) {
        if self.is_empty() {
            self.data = Vec::new();
        }
    }
}

/// `b` split after its first `n` bytes (a body tracker's count, never more
/// than it was fed); a count past the end keeps everything in the first part.
pub(super) fn split(b: &[u8], n: usize) -> (&[u8], &[u8]) {
    b.split_at_checked(n).unwrap_or((b, &[]))
}

#[cfg(test)]
mod tests {
    use super::Buf;

    #[test]
    fn a_buffer_that_never_empties_does_not_grow_without_bound() {
        let mut b = Buf::default();
        let piece = [7u8; 1000];
        b.push(&piece);
        for _ in 0..10_000 {
            // The reader takes a little less than what arrives each time,
            // until the writer stops at 16 KiB waiting (backpressure).
            b.consume(900);
            if b.len() + piece.len() <= 16 * 1024 {
                b.push(&piece);
            }
        }
        assert!(b.len() <= 16 * 1024);
        assert!(b.data.capacity() <= 64 * 1024, "capacity {} for {} bytes waiting", b.data.capacity(), b.len());
    }

    #[test]
    fn bytes_come_out_in_order() {
        let mut b = Buf::default();
        b.push(b"hello ");
        b.consume(2);
        b.push(b"world");
        assert_eq!(b.bytes(), b"llo world");
        assert_eq!(b.take_all(), b"llo world");
        assert!(b.is_empty());
    }
}
