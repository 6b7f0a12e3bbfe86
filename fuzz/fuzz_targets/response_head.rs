//! `response_head`: the bytes a backend answers with, through what the
//! proxies do with them before a client sees them.
//!
//! Input: a flags byte, a method byte (the request the backend answers), a
//! split byte, then the backend's bytes in the pieces the split byte
//! chooses. Three readers:
//!
//! - chapter 2's `forward_exchange_with` (the reverse and forward proxies,
//!   chapters 3 and 4): `Buffered::read_response_head` skipping interim
//!   1xx responses, hop-by-hop headers out, `Connection: close`, chapter
//!   4's `X-Request-ID` and `Set-Cookie`, the head written, the body copied
//!   by `copy_body`; and the forward proxy's cache (lab 6.2): `cache_ttl`,
//!   the response stored, and read back on a hit;
//! - chapter 5's `read_upstream` and `parse_response_head`, bounded reads,
//!   with a `BodyTracker` on the body, and chapter 6's `persistence` (may
//!   the backend connection carry another request);
//! - the health probes of chapters 4 and 5 (`probe_verdict`).
//!
//! Checked besides "never panics": the same answer whatever the pieces,
//! every response head we write parses back with the same status and
//! framing, and a cached response can be read back.
#![no_main]

use std::time::{Duration, Instant};

use ch02_proxy::body::{BodyError, copy_body};
use ch02_proxy::http::{Buffered, Framing, Headers, Limits, RequestHead, Version, parse_response, remove_hop_by_hop};
use ch02_proxy::labs::lab_6_2_http_cache::{HttpCache, cache_ttl};
use ch04_advanced::health::probe_verdict;
use ch05_event_loop::framing::BodyTracker;
use lbs_fuzz::{Input, Pieces, assert_response_forwardable, limits, split};
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let method = METHODS[usize::from(input.byte()) % METHODS.len()];
    let cut = input.byte();
    let bytes = input.rest();
    let limits = limits(flags & 1 != 0);
    let sticky = flags & 2 != 0;

    let blocking_at_once = blocking(split(bytes, 0), &limits, method, sticky);
    let blocking_in_pieces = blocking(split(bytes, cut), &limits, method, sticky);
    assert_eq!(blocking_at_once, blocking_in_pieces, "chapter 2 answered differently depending on the pieces");

    let loop_at_once = event_loop(split(bytes, 0), &limits, method, sticky);
    let loop_in_pieces = event_loop(split(bytes, cut), &limits, method, sticky);
    assert_eq!(loop_at_once, loop_in_pieces, "chapter 5 answered differently depending on the pieces");

    // Both pass on the same final response, unless a 101 came first:
    // chapter 2 forwards a 101, chapter 5 skips it as an interim response.
    if let (Some(a), Some(b)) = (&blocking_at_once.status, &loop_at_once.status)
        && !loop_at_once.skipped_101
    {
        assert_eq!(a, b, "chapters 2 and 5 disagree on the response");
    }

    // Health probes: the verdict on what a probe has read so far.
    for end in [bytes.len().min(512), bytes.len().min(4096), bytes.len()] {
        let _ = probe_verdict(&bytes[..end]);
    }
});

/// What a client is sent.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    /// The final response's status and framing; `None`: we answered 502.
    status: Option<(u16, Framing)>,
    /// The head as written to the client.
    head: Vec<u8>,
    /// The body bytes sent, and whether the body was complete.
    body: Vec<u8>,
    complete: bool,
    /// Chapter 5 only: whether a 101 was skipped as interim.
    skipped_101: bool,
}

fn request(method: &str) -> RequestHead {
    RequestHead {
        method: method.to_string(),
        target: "http://origin.example/".to_string(),
        version: Version::Http11,
        headers: Headers::default(),
        framing: Framing::Empty,
    }
}

/// `forward_exchange_with`, from the upstream's first byte on.
fn blocking(pieces: Vec<&[u8]>, limits: &Limits, method: &str, sticky: bool) -> Answer {
    let mut answer = Answer { status: None, head: Vec::new(), body: Vec::new(), complete: false, skipped_101: false };
    let mut upstream = Buffered::new(Pieces::new(pieces));
    // Buffered::read_response_head
    let mut response = loop {
        match parse_response(&upstream.buf, limits, method) {
            Ok(Some((head, len))) => {
                upstream.consume(len);
                if (100..200).contains(&head.status) && head.status != 101 {
                    continue;
                }
                break head;
            }
            Ok(None) => {}
            Err(_) => return answer, // 502
        }
        if upstream.fill().expect("reading memory cannot fail") == 0 {
            return answer; // 502: closed before (the end of) a head
        }
    };
    remove_hop_by_hop(&mut response.headers);
    response.headers.set("Connection", "close");
    // What the proxies of chapter 2 send (edit_response does nothing)...
    let proxied = response.clone();
    let proxied_head = proxied.to_bytes();
    assert_response_forwardable(&proxied_head, &proxied, method);
    // ...and chapter 4's balancer (its edit_response).
    response.headers.set("X-Request-ID", "0123456789abcdef0123456789abcdef");
    if sticky {
        response.headers.push("Set-Cookie", "lbs_backend=deadbeef; Path=/; HttpOnly");
    }
    let head = response.to_bytes();
    assert_response_forwardable(&head, &response, method);
    answer.status = Some((response.status, response.framing));
    match copy_body(&mut upstream, &mut answer.body, response.framing) {
        Ok(n) => {
            assert_eq!(n as usize, answer.body.len());
            answer.complete = true;
        }
        Err(BodyError::Malformed(_) | BodyError::Truncated(_)) => {}
        Err(e) => panic!("memory cannot fail: {e}"),
    }

    // The forward proxy's cache (forward.rs, `plain`): what the client got
    // is stored if it can be read back, and read back on a hit.
    let request = request(method);
    let stored = [proxied_head.as_slice(), &answer.body].concat();
    if answer.complete
        && let Some(ttl) = cache_ttl(&request, &proxied)
        && matches!(parse_response(&stored, limits, "GET"), Ok(Some(_)))
    {
        let cache = HttpCache::new(4, 1 << 20);
        let now = Instant::now();
        if cache.put(&request.target, stored, ttl, now) {
            let hit = cache.get(&request.target, now + Duration::from_millis(1));
            let hit = hit.expect("a fresh cached response is found");
            assert!(
                matches!(parse_response(&hit, limits, "GET"), Ok(Some(_))),
                "a cached response cannot be read back: every hit would be a 500"
            );
        }
    }
    answer.head = head;
    answer
}

/// Chapter 5's `read_upstream` and `parse_response_head`.
fn event_loop(pieces: Vec<&[u8]>, limits: &Limits, method: &str, sticky: bool) -> Answer {
    let mut answer = Answer { status: None, head: Vec::new(), body: Vec::new(), complete: false, skipped_101: false };
    let mut socket = Pieces::new(pieces);
    let mut response_head = Vec::new();
    let mut eof = false;
    // The head: read (bounded), then parse, until a final response.
    let (mut head, rest) = 'head: loop {
        let room = (limits.max_head_bytes + 1).saturating_sub(response_head.len());
        assert!(room > 0, "a full response head buffer was neither parsed nor refused");
        match socket.take(room) {
            Some(b) => response_head.extend_from_slice(&b),
            None => eof = true,
        }
        loop {
            match parse_response(&response_head, limits, method) {
                Ok(Some((head, len))) => {
                    let rest = response_head.split_off(len);
                    if (100..200).contains(&head.status) {
                        answer.skipped_101 |= head.status == 101;
                        response_head = rest;
                        continue;
                    }
                    break 'head (head, rest);
                }
                Ok(None) if eof => return answer, // 502
                Ok(None) if response_head.len() > limits.max_head_bytes => return answer, // 502
                Ok(None) => break,
                Err(_) => return answer, // 502
            }
        }
    };
    // Chapter 6 reads the backend's Connection and Keep-Alive headers
    // (whether the connection may carry another request) before they go.
    if ch05_event_loop::lb::reuse::persistence(&head).is_ok() {
        assert_ne!(head.framing, Framing::UntilClose, "a body that ends with the connection cannot keep it");
    }
    remove_hop_by_hop(&mut head.headers);
    let keep_alive = head.framing != Framing::UntilClose;
    head.headers.set("Connection", if keep_alive { "keep-alive" } else { "close" });
    if sticky {
        head.headers.push("Set-Cookie", "lbs_backend=deadbeef; Path=/; HttpOnly");
    }
    answer.head = head.to_bytes();
    assert_response_forwardable(&answer.head, &head, method);
    answer.status = Some((head.status, head.framing));
    // The body: fed to the tracker as it comes, cut short on an error.
    let mut tracker = BodyTracker::new(head.framing);
    let mut next = Some(rest);
    while let Some(b) = next {
        match tracker.feed(&b) {
            Ok(n) => answer.body.extend_from_slice(&b[..n]),
            Err(_) => {
                // Cut short: what went before depends on the pieces.
                answer.body.clear();
                return answer;
            }
        }
        if tracker.is_done() {
            answer.complete = true;
            return answer;
        }
        next = socket.take(16 * 1024);
    }
    // The backend closed: complete only if the body runs until close.
    answer.complete = tracker.until_close();
    answer
}
