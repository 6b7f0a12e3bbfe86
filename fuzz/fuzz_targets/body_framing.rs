//! `body_framing`: where does a body end? The bytes after a head, through
//! chapter 2's body copier (`copy_body`: chunked decoding with blocking
//! reads) and chapter 5's incremental `BodyTracker`.
//!
//! Input: a framing byte, two length bytes (for `Content-Length`), a split
//! byte, then the stream. Each decoder is fed the stream at once and in
//! the pieces the split byte chooses (for chapter 2 also with the first
//! piece already buffered, as after a head read past its end).
//!
//! Checked besides "never panics":
//! - each decoder gives the same verdict whatever the pieces (a body's end
//!   must not depend on how TCP cut the bytes);
//! - a body `copy_body` accepts is forwarded unchanged and the bytes after
//!   it are left for the next message;
//! - both decoders agree on where an accepted body ends: if the blocking
//!   proxies and the event loop split a stream into messages differently,
//!   a request can be smuggled past one of them.
#![no_main]

use ch02_proxy::body::{BodyError, MAX_TRAILER_BYTES, copy_body};
use ch02_proxy::http::{Buffered, Framing};
use ch05_event_loop::framing::BodyTracker;
use lbs_fuzz::{Input, Pieces, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let framing = match input.byte() % 8 {
        0..=4 => Framing::Chunked,
        5 => Framing::Length(u64::from(input.u16())),
        6 => Framing::UntilClose,
        _ => Framing::Empty,
    };
    let cut = input.byte();
    let stream = input.rest();

    // Chapter 2: the whole stream already buffered, then from a socket in
    // pieces, then the first piece buffered and the rest from the socket.
    let at_once = copy(Buffered { stream: Pieces::default(), buf: stream.to_vec() }, framing);
    let pieces = split(stream, cut);
    let in_pieces = copy(Buffered::new(Pieces::new(pieces.iter().copied())), framing);
    let (first, later) = pieces.split_first().map_or((&[][..], &[][..]), |(f, l)| (*f, l));
    let read_ahead = copy(Buffered { stream: Pieces::new(later.iter().copied()), buf: first.to_vec() }, framing);
    assert_eq!(at_once, in_pieces, "copy_body's verdict depends on the pieces");
    assert_eq!(at_once, read_ahead, "copy_body's verdict depends on what was read ahead");
    if let Copied::Body { sent, left } = &at_once {
        assert_eq!([sent.as_slice(), left].concat(), stream, "the body was changed, or bytes were lost");
        if let Framing::Length(n) = framing {
            assert_eq!(sent.len() as u64, n);
        }
    }

    // Chapter 5: the tracker fed everything at once, then piece by piece.
    let tracked = track(framing, [stream]);
    assert_eq!(tracked, track(framing, pieces.iter().copied()), "BodyTracker's verdict depends on the pieces");

    // Both chapters end an accepted body at the same byte. (The trailer
    // limits are counted slightly differently; past them, no comparison.)
    if stream.len() <= MAX_TRAILER_BYTES {
        let accepted_by_2 = match &at_once {
            Copied::Body { sent, .. } => Some(sent.len()),
            _ => None,
        };
        let accepted_by_5 = match tracked {
            Tracked::Done(n) => Some(n),
            Tracked::Open(n) if framing == Framing::UntilClose => Some(n),
            _ => None,
        };
        assert_eq!(accepted_by_2, accepted_by_5, "chapters 2 and 5 end this {framing:?} body differently");
    }
});

/// What `copy_body` did.
#[derive(Debug, PartialEq, Eq)]
enum Copied {
    /// The body as forwarded, and the bytes left after it.
    Body { sent: Vec<u8>, left: Vec<u8> },
    /// Refused: the framing is broken.
    Malformed,
    /// The sender closed before the end.
    Truncated,
}

fn copy(mut from: Buffered<Pieces>, framing: Framing) -> Copied {
    let mut sent = Vec::new();
    match copy_body(&mut from, &mut sent, framing) {
        Ok(n) => {
            assert_eq!(n as usize, sent.len(), "copy_body counted {n} bytes and wrote {}", sent.len());
            let mut left = std::mem::take(&mut from.buf);
            std::io::Read::read_to_end(&mut from.stream, &mut left).expect("reading memory cannot fail");
            Copied::Body { sent, left }
        }
        Err(BodyError::Malformed(_)) => Copied::Malformed,
        Err(BodyError::Truncated(_)) => Copied::Truncated,
        Err(e) => panic!("memory cannot fail: {e}"),
    }
}

/// What a `BodyTracker` said.
#[derive(Debug, PartialEq, Eq)]
enum Tracked {
    /// The body ended after this many bytes.
    Done(usize),
    /// All of these bytes belong to a body that has not ended.
    Open(usize),
    /// Refused.
    Malformed,
}

fn track<'a>(framing: Framing, pieces: impl IntoIterator<Item = &'a [u8]>) -> Tracked {
    let mut tracker = BodyTracker::new(framing);
    let mut total = 0;
    for piece in pieces {
        if tracker.is_done() {
            assert_eq!(tracker.feed(piece), Ok(0), "a finished body took more bytes");
            continue;
        }
        match tracker.feed(piece) {
            Ok(n) => {
                assert!(n <= piece.len(), "the tracker took {n} of {} bytes", piece.len());
                assert!(n == piece.len() || tracker.is_done(), "the tracker stopped early without finishing");
                total += n;
            }
            Err(_) => return Tracked::Malformed,
        }
    }
    if tracker.is_done() { Tracked::Done(total) } else { Tracked::Open(total) }
}
