//! Property tests: whatever bytes arrive, the parsers return a value (a
//! head, "need more", or an error with a status) and never panic.
//!
//! The inputs come from a seeded generator, so a failure is reproducible:
//! the seed and the input are in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use ch02_proxy::http::{Limits, parse_request, parse_response};

/// xorshift64*: small, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const VALID: &[&[u8]] = &[
    b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /api HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
];

/// Bytes that matter to HTTP parsing, to be spliced in often.
const INTERESTING: &[u8] = b"\r\n :,;\t\x00\x7f\xff0123456789abcdefABCDEF-+\"chunked";

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(8) {
        let at = if input.is_empty() { 0 } else { rng.below(input.len() + 1) };
        match rng.below(5) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            1 => input.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < input.len() => {
                input.remove(at);
            }
            3 => input.truncate(at),
            _ => {
                let i = at.min(input.len());
                input.insert(i, rng.next() as u8);
            }
        }
    }
}

fn check(input: &[u8], seed: u64) {
    let limits = Limits { max_head_bytes: 256, max_target_bytes: 64, ..Limits::default() };
    for limits in [Limits::default(), limits] {
        let result = std::panic::catch_unwind(|| {
            if let Err(e) = parse_request(input, &limits) {
                // Every refusal a client can hear has a status from 400 to 599.
                assert!(e.status().is_none_or(|s| (400..600).contains(&s)));
            }
            let _ = parse_response(input, &limits, "GET");
            let _ = parse_response(input, &limits, "HEAD");
        });
        assert!(result.is_ok(), "seed {seed}: panicked on {:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn arbitrary_bytes_never_panic_the_parsers() {
    let mut rng = Rng(0x1bad_5eed);
    for case in 0..20_000u64 {
        let len = rng.below(300);
        let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(&input, case);
    }
}

#[test]
fn mutated_valid_messages_never_panic_the_parsers() {
    let mut rng = Rng(0x0dd_ba11);
    for case in 0..50_000u64 {
        let mut input = VALID[rng.below(VALID.len())].to_vec();
        mutate(&mut rng, &mut input);
        check(&input, case);
    }
}

#[test]
fn every_prefix_of_a_valid_message_is_partial_or_complete() {
    for message in VALID.iter().take(4) {
        for end in 0..message.len() {
            let r = parse_request(&message[..end], &Limits::default());
            assert!(r.is_ok(), "prefix {:?} refused: {r:?}", String::from_utf8_lossy(&message[..end]));
        }
    }
}
