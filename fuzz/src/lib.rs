//! What the fuzz targets share: reading control bytes off the front of an
//! input, cutting bytes into the pieces a socket might deliver them in,
//! an in-memory socket, and the checks every forwarded head must pass.
//!
//! The targets are in `fuzz_targets/`; run them with `cargo xtask fuzz`.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ch02_proxy::http::{HeadError, Limits, RequestHead, ResponseHead, parse_request, parse_response};

/// The control bytes at the front of a fuzz input, then the payload.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wraps a fuzz input.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next control byte (0 once the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two control bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// Everything after the control bytes taken so far.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Small limits, so a few hundred fuzzed bytes reach every limit check.
pub const SMALL_LIMITS: Limits = Limits {
    max_head_bytes: 256,
    max_target_bytes: 64,
    max_headers: 8,
    header_timeout: std::time::Duration::from_secs(10),
};

/// The limits the servers run with, or small ones when `small`.
pub fn limits(small: bool) -> Limits {
    if small { SMALL_LIMITS } else { Limits::default() }
}

/// Limits loose enough for any head our proxies write (a valid head plus
/// the headers they add).
pub const WRITTEN_LIMITS: Limits = Limits {
    max_head_bytes: 1 << 20,
    max_target_bytes: 1 << 20,
    max_headers: 1000,
    header_timeout: std::time::Duration::from_secs(10),
};

/// A peer address (in 203.0.113.0/24 or 2001:db8::/32): IPv4 or IPv6 as `pick` says.
pub fn peer_ip(pick: u8) -> IpAddr {
    if pick & 1 == 0 {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, pick))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(pick)))
    }
}

/// Cuts `data` into the pieces a socket could deliver it in. The fuzzer
/// chooses the cut with `seed`: its low three bits pick the largest piece
/// (1, 2, 3, 8, 64, 512 or 8192 bytes, or the whole input at once), the
/// rest seed a generator for the sizes, so the same input always splits the
/// same way.
pub fn split(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let max = match seed & 7 {
        0 => return if data.is_empty() { Vec::new() } else { vec![data] },
        1 => 1,
        2 => 2,
        3 => 3,
        4 => 8,
        5 => 64,
        6 => 512,
        _ => 8192,
    };
    let mut state = u64::from(seed >> 3) | 0x9e37_79b9_7f4a_7c00;
    let mut pieces = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift64: enough to vary the sizes.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = (state % max as u64) as usize + 1;
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// An in-memory socket: each `read` returns at most the rest of the next
/// piece, as a kernel returns what has arrived so far; then end of stream.
#[derive(Debug, Default)]
pub struct Pieces {
    queue: VecDeque<Vec<u8>>,
}

impl Pieces {
    /// A socket that will deliver `pieces` in order, then end of stream.
    pub fn new<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self { queue: pieces.into_iter().filter(|p| !p.is_empty()).map(<[u8]>::to_vec).collect() }
    }

    /// Takes at most `room` bytes of the next piece; `None` at end of stream.
    pub fn take(&mut self, room: usize) -> Option<Vec<u8>> {
        let front = self.queue.front_mut()?;
        if room >= front.len() {
            return self.queue.pop_front();
        }
        let rest = front.split_off(room);
        Some(std::mem::replace(front, rest))
    }

    /// Whether every byte has been delivered.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

impl Read for Pieces {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        match self.take(out.len()) {
            Some(piece) => {
                out[..piece.len()].copy_from_slice(&piece);
                Ok(piece.len())
            }
            None => Ok(0),
        }
    }
}

/// A refused head must be answered with a 4xx or 5xx that the servers send.
pub fn check_refusal(e: &HeadError) {
    assert!(matches!(e.status(), Some(400 | 414 | 431 | 501)), "refusal with an unexpected status: {e:?}");
}

/// What a proxy writes upstream must parse back as the same request: same
/// method, target and, above all, the same body framing. A forwarded head
/// that frames the body differently than we did is request smuggling.
pub fn assert_forwardable(wire: &[u8], head: &RequestHead) {
    match parse_request(wire, &WRITTEN_LIMITS) {
        Ok(Some((again, len))) => {
            assert_eq!(len, wire.len(), "the written head ends early: {:?}", String::from_utf8_lossy(wire));
            assert_eq!(again.method, head.method);
            assert_eq!(again.target, head.target);
            assert_eq!(again.framing, head.framing, "framing changed: {:?}", String::from_utf8_lossy(wire));
        }
        other => panic!("the written head does not parse: {other:?}\n{:?}", String::from_utf8_lossy(wire)),
    }
}

/// The same for a response head sent to a client after a `method` request.
pub fn assert_response_forwardable(wire: &[u8], head: &ResponseHead, method: &str) {
    match parse_response(wire, &WRITTEN_LIMITS, method) {
        Ok(Some((again, len))) => {
            assert_eq!(len, wire.len(), "the written head ends early: {:?}", String::from_utf8_lossy(wire));
            assert_eq!(again.status, head.status);
            assert_eq!(again.framing, head.framing, "framing changed: {:?}", String::from_utf8_lossy(wire));
        }
        other => panic!("the written response head does not parse: {other:?}\n{:?}", String::from_utf8_lossy(wire)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_the_input_in_order() {
        let data: Vec<u8> = (0..=255).collect();
        for seed in 0..=255 {
            let pieces = split(&data, seed);
            assert_eq!(pieces.concat(), data);
            assert!(pieces.iter().all(|p| !p.is_empty()));
        }
    }

    #[test]
    fn pieces_read_as_a_socket_does() {
        let mut p = Pieces::new([&b"abc"[..], b"", b"de"]);
        let mut out = [0u8; 2];
        assert_eq!(p.read(&mut out).unwrap(), 2);
        assert_eq!(p.read(&mut out).unwrap(), 1);
        assert_eq!(&out[..1], b"c");
        assert_eq!(p.read(&mut out).unwrap(), 2);
        assert_eq!(p.read(&mut out).unwrap(), 0);
    }
}
