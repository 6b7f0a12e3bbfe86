//! Graded tests for the chapter 6 labs. Every test name starts with its
//! lab's id: `cargo test -p ch06-pooling --no-default-features lab_8`
//! grades your lab 8 (plain `cargo test` here grades the reference).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ch02_proxy::body::{MAX_CHUNK_LINE, MAX_TRAILER_BYTES};
use ch02_proxy::http::{self, Framing, Limits, Version};
use ch05_event_loop::framing::BodyTracker;
use ch06_pooling::labs::lab_7_parser::{self as lab, ChunkedDecoder, Refusal};
use ch06_pooling::labs::lab_8_pool::{Checkin, MiniPool, MiniStats};

/// A small deterministic random sequence (an LCG): a failure names its
/// step, and the same run replays it.
struct Lcg(u64);

impl Lcg {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Bytes for a failure message, escaped and cut short.
fn show(raw: &[u8]) -> String {
    let text = raw.escape_ascii().to_string();
    if text.len() > 200 {
        format!("{}... ({} bytes)", text.chars().take(200).collect::<String>(), raw.len())
    } else {
        text
    }
}

// ---------------------------------------------------------------- lab 8

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A connection that writes its name in a shared log when it is closed
/// (dropped), so the tests see exactly what the pool closed, and when.
#[derive(Debug)]
struct Conn {
    name: u32,
    log: Rc<RefCell<Vec<u32>>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.log.borrow_mut().push(self.name);
    }
}

#[derive(Debug, Default)]
struct Log(Rc<RefCell<Vec<u32>>>);

impl Log {
    fn conn(&self, name: u32) -> Conn {
        Conn { name, log: Rc::clone(&self.0) }
    }

    /// The names of the connections closed so far, in order.
    fn closed(&self) -> Vec<u32> {
        self.0.borrow().clone()
    }
}

#[test]
fn lab_8_checkout_takes_the_last_checked_in_first_per_backend() {
    let t0 = Instant::now();
    let mut pool = MiniPool::new(8, secs(60), 0);
    for n in 1..=3 {
        assert_eq!(pool.checkin(0, n, n, t0), Checkin::Kept);
    }
    assert_eq!(pool.checkin(1, 10, 7, t0), Checkin::Kept);
    assert_eq!((pool.idle(0), pool.idle(1), pool.idle(2)), (3, 1, 0));
    assert_eq!(pool.checkout(0, t0), Some((3, 3)), "the warmest first");
    assert_eq!(pool.checkout(0, t0), Some((2, 2)));
    assert_eq!(pool.checkout(1, t0), Some((10, 7)), "backend 1 has its own, with its served count");
    assert_eq!(pool.checkout(0, t0), Some((1, 1)));
    assert_eq!(pool.checkout(0, t0), None);
    assert_eq!(pool.idle(0), 0);
    assert_eq!(pool.stats(), MiniStats { hits: 4, misses: 1, ..MiniStats::default() });
}

#[test]
fn lab_8_an_empty_pool_misses_and_counts_it() {
    let t0 = Instant::now();
    let mut pool: MiniPool<u32> = MiniPool::new(4, secs(60), 0);
    assert_eq!(pool.checkout(0, t0), None);
    assert_eq!(pool.checkout(9, t0), None, "a backend never seen");
    assert_eq!(pool.idle(9), 0);
    assert_eq!(pool.stats(), MiniStats { misses: 2, ..MiniStats::default() });
}

#[test]
fn lab_8_a_full_backend_closes_its_oldest_to_keep_the_newest() {
    let (t0, log) = (Instant::now(), Log::default());
    let mut pool = MiniPool::new(2, secs(60), 0);
    assert_eq!(pool.checkin(0, log.conn(1), 1, t0), Checkin::Kept);
    assert_eq!(pool.checkin(0, log.conn(2), 1, t0 + ms(1)), Checkin::Kept);
    assert_eq!(pool.checkin(0, log.conn(3), 1, t0 + ms(2)), Checkin::KeptClosedOldest);
    assert_eq!(log.closed(), [1], "the oldest was closed, and nothing else");
    assert_eq!(pool.checkin(0, log.conn(4), 1, t0 + ms(3)), Checkin::KeptClosedOldest);
    assert_eq!(log.closed(), [1, 2]);
    assert_eq!(pool.idle(0), 2);
    let first = pool.checkout(0, t0 + ms(4)).expect("4 is kept").0;
    let second = pool.checkout(0, t0 + ms(4)).expect("3 is kept").0;
    assert_eq!((first.name, second.name), (4, 3));
    assert!(pool.checkout(0, t0 + ms(4)).is_none());
    assert_eq!(log.closed(), [1, 2], "connections handed out are not closed by the pool");
    assert_eq!(pool.stats(), MiniStats { hits: 2, misses: 1, full: 2, ..MiniStats::default() });
}

#[test]
fn lab_8_the_idle_limit_is_per_backend() {
    let t0 = Instant::now();
    let mut pool = MiniPool::new(1, secs(60), 0);
    assert_eq!(pool.checkin(0, 1, 1, t0), Checkin::Kept);
    assert_eq!(pool.checkin(1, 2, 1, t0), Checkin::Kept, "backend 1 has room of its own");
    assert_eq!(pool.checkin(0, 3, 1, t0), Checkin::KeptClosedOldest);
    assert_eq!((pool.idle(0), pool.idle(1)), (1, 1));
    assert_eq!(pool.checkout(1, t0), Some((2, 1)), "backend 0 being full cost backend 1 nothing");
    assert_eq!(pool.checkout(0, t0), Some((3, 1)));
}

#[test]
fn lab_8_a_connection_is_recycled_until_it_has_served_max_requests() {
    let (t0, log) = (Instant::now(), Log::default());
    let mut pool = MiniPool::new(4, secs(60), 5);
    assert_eq!(pool.checkin(0, log.conn(7), 1, t0), Checkin::Kept);
    let mut outcomes = Vec::new();
    for i in 1..=10 {
        let now = t0 + secs(i);
        let Some((conn, served)) = pool.checkout(0, now) else { break };
        outcomes.push(pool.checkin(0, conn, served + 1, now));
    }
    assert_eq!(outcomes, [Checkin::Kept, Checkin::Kept, Checkin::Kept, Checkin::ClosedMaxRequests]);
    assert_eq!(log.closed(), [7], "closed after its fifth request");
    assert_eq!(pool.stats(), MiniStats { hits: 4, misses: 1, retired: 1, ..MiniStats::default() });
}

#[test]
fn lab_8_max_requests_zero_is_no_limit_and_retiring_comes_first() {
    let t0 = Instant::now();
    let mut unlimited = MiniPool::new(2, secs(60), 0);
    assert_eq!(unlimited.checkin(0, 1, u32::MAX, t0), Checkin::Kept);
    let mut pool = MiniPool::new(1, secs(60), 3);
    assert_eq!(pool.checkin(0, 1, 2, t0), Checkin::Kept);
    assert_eq!(pool.checkin(0, 2, 3, t0), Checkin::ClosedMaxRequests, "retired, so the kept one stays");
    assert_eq!(pool.checkin(0, 3, 4, t0), Checkin::ClosedMaxRequests);
    assert_eq!(pool.checkout(0, t0), Some((1, 2)));
    assert_eq!(pool.stats(), MiniStats { hits: 1, retired: 2, ..MiniStats::default() });
}

#[test]
fn lab_8_expired_connections_are_closed_at_checkout_never_handed_out() {
    let (t0, log) = (Instant::now(), Log::default());
    let mut pool = MiniPool::new(8, secs(10), 0);
    for (name, at) in [(1, 0), (2, 4), (3, 8)] {
        assert_eq!(pool.checkin(0, log.conn(name), 1, t0 + secs(at)), Checkin::Kept);
    }
    let now = t0 + secs(15);
    let (fresh, _) = pool.checkout(0, now).expect("3 has been idle 7 s of its 10");
    assert_eq!(fresh.name, 3);
    assert!(pool.checkout(0, now).is_none(), "2 and 1 have been idle 11 s and 15 s");
    assert_eq!(log.closed(), [2, 1], "closed from the top of the stack down");
    assert_eq!(pool.idle(0), 0);
    assert_eq!(pool.stats(), MiniStats { hits: 1, misses: 1, expired: 2, ..MiniStats::default() });
}

#[test]
fn lab_8_a_connection_expires_exactly_at_its_ttl() {
    let t0 = Instant::now();
    let mut pool = MiniPool::new(8, secs(10), 0);
    assert_eq!(pool.checkin(0, 1, 1, t0), Checkin::Kept);
    assert_eq!(pool.checkin(0, 2, 1, t0), Checkin::Kept);
    assert_eq!(pool.checkout(0, t0 + secs(10) - ms(1)), Some((2, 1)), "1 ms before it expires");
    assert_eq!(pool.checkout(0, t0 + secs(10)), None, "idle for exactly the TTL: expired");
    assert_eq!(pool.checkin(0, 2, 2, t0 + secs(10)), Checkin::Kept);
    assert_eq!(pool.checkout(0, t0 + secs(19)), Some((2, 2)), "checking in starts a new idle period");
    assert_eq!(pool.stats(), MiniStats { hits: 2, misses: 1, expired: 1, ..MiniStats::default() });
}

#[test]
fn lab_8_marking_a_backend_down_closes_its_idle_connections_only() {
    let (t0, log) = (Instant::now(), Log::default());
    let mut pool = MiniPool::new(8, secs(60), 0);
    for name in 1..=3 {
        assert_eq!(pool.checkin(0, log.conn(name), 1, t0), Checkin::Kept);
    }
    assert_eq!(pool.checkin(1, log.conn(10), 1, t0), Checkin::Kept);
    assert_eq!(pool.mark_down(0), 3);
    let mut closed = log.closed();
    closed.sort_unstable();
    assert_eq!(closed, [1, 2, 3]);
    assert_eq!(pool.idle(0), 0);
    assert!(pool.checkout(0, t0).is_none());
    assert_eq!(pool.mark_down(0), 0, "nothing left to close");
    assert_eq!(pool.mark_down(7), 0, "a backend never seen");
    assert_eq!(pool.idle(1), 1, "the other backend keeps its connection");
    assert_eq!(pool.checkin(0, log.conn(4), 1, t0), Checkin::Kept, "the pool does not remember a backend as down");
    assert_eq!(pool.stats(), MiniStats { misses: 1, down: 3, ..MiniStats::default() });
}

#[test]
fn lab_8_a_pool_with_no_room_closes_what_it_is_given() {
    let (t0, log) = (Instant::now(), Log::default());
    let mut pool = MiniPool::new(0, secs(60), 2);
    assert_eq!(pool.checkin(0, log.conn(1), 1, t0), Checkin::ClosedNoRoom);
    assert_eq!(pool.checkin(0, log.conn(2), 2, t0), Checkin::ClosedMaxRequests, "the request limit is checked first");
    assert_eq!(log.closed(), [1, 2]);
    assert!(pool.checkout(0, t0).is_none());
    assert_eq!(pool.stats(), MiniStats { misses: 1, full: 1, retired: 1, ..MiniStats::default() });
}

/// The chapter's pool and the lab's, on the same random sequence of
/// check-ins, checkouts, clock ticks and backends marked down, must make
/// the same choice every time.
#[cfg(unix)]
#[test]
fn lab_8_makes_the_same_choices_as_the_chapters_pool() {
    use ch05_event_loop::lb::reuse::Promise;
    use ch06_pooling::pool::{Alive, Evicted, Liveness, Pool, PoolConfig, Pooled};

    /// A connection of the chapter's pool, always alive.
    #[derive(Debug)]
    struct Id(u32);

    impl Liveness for Id {
        fn liveness(&self) -> Alive {
            Alive::Yes
        }
    }

    /// Checks `id` in to both pools; returns what each did.
    fn checkin_both(
        mini: &mut MiniPool<u32>,
        real: &mut Pool<Id>,
        backend: usize,
        (id, served): (u32, u32),
        now: Instant,
    ) -> (Checkin, Checkin) {
        let mut closed = Vec::new();
        let kept = Pooled { conn: Id(id), served, promise: Promise::default() };
        let theirs = match (real.put(backend, kept, Ok(()), now, &mut closed).is_some(), closed.len()) {
            (true, 0) => Checkin::Kept,
            (true, _) => Checkin::KeptClosedOldest,
            (false, _) => Checkin::ClosedMaxRequests,
        };
        (mini.checkin(backend, id, served, now), theirs)
    }

    const BACKENDS: usize = 3;
    let (ttl, max_idle, max_requests) = (secs(5), 3, 4);
    let mut mini = MiniPool::new(max_idle, ttl, max_requests);
    // The lab's pool has no cap across backends: make the chapter's too large to matter.
    let mut real = Pool::new(PoolConfig { max_idle, max_idle_total: 1000, idle_timeout: ttl, max_requests });
    let mut rng = Lcg(0x00c0_ffee);
    let mut now = Instant::now();
    // Connections checked out: (backend, id, served).
    let mut in_use: Vec<(usize, u32, u32)> = Vec::new();
    let mut next_id = 0;
    for step in 0..5000 {
        let backend = rng.below(BACKENDS);
        match rng.below(20) {
            0..=4 => {
                // A new connection finished its first request.
                next_id += 1;
                let (ours, theirs) = checkin_both(&mut mini, &mut real, backend, (next_id, 1), now);
                assert_eq!(ours, theirs, "step {step}: checking in new connection {next_id} to backend {backend}");
            }
            5..=8 if !in_use.is_empty() => {
                // One in use finished another request.
                let (backend, id, served) = in_use.swap_remove(rng.below(in_use.len()));
                let (ours, theirs) = checkin_both(&mut mini, &mut real, backend, (id, served + 1), now);
                assert_eq!(ours, theirs, "step {step}: checking in {id} (served {}) to backend {backend}", served + 1);
            }
            5..=14 => {
                let theirs = real.get(backend, now, &mut Vec::new()).map(|p| (p.conn.0, p.served));
                if theirs.is_none() {
                    real.opened(backend);
                }
                let ours = mini.checkout(backend, now);
                assert_eq!(ours, theirs, "step {step}: checkout from backend {backend}");
                if let Some((id, served)) = ours {
                    in_use.push((backend, id, served));
                }
            }
            15..=18 => now += ms(rng.below(2500) as u64),
            _ => {
                let mut closed = Vec::new();
                real.close_backend(backend, &mut closed);
                assert_eq!(mini.mark_down(backend), closed.len(), "step {step}: backend {backend} marked down");
            }
        }
    }
    for backend in 0..BACKENDS {
        assert_eq!(mini.idle(backend), real.idle_for(backend), "idle connections of backend {backend}");
    }
    let (ours, theirs) = (mini.stats(), real.stats());
    assert_eq!(
        [ours.hits, ours.misses, ours.expired, ours.full, ours.retired, ours.down],
        [
            theirs.reused,
            theirs.created,
            theirs.evicted(Evicted::Ttl),
            theirs.evicted(Evicted::Lru),
            theirs.evicted(Evicted::MaxRequests),
            theirs.evicted(Evicted::Unhealthy),
        ],
        "hits, misses, expired, full, retired, down"
    );
    assert!(
        ours.expired > 0 && ours.full > 0 && ours.retired > 0 && ours.down > 0,
        "the sequence should exercise every rule: {ours:?}"
    );
}

// ---------------------------------------------------------------- lab 7

/// What a parser said about some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The head is not complete yet.
    More,
    /// A complete head, accepted.
    Accepted,
    /// Refused, with this status.
    Refused(u16),
}

/// The lab's verdict.
fn ours(raw: &[u8], limits: &Limits) -> Verdict {
    match lab::parse_request(raw, limits) {
        Ok(None) => Verdict::More,
        Ok(Some(_)) => Verdict::Accepted,
        Err(refusal) => Verdict::Refused(refusal.status()),
    }
}

/// Chapter 2's verdict: the project's standard.
fn chapter_2(raw: &[u8], limits: &Limits) -> Verdict {
    match http::parse_request(raw, limits) {
        Ok(None) => Verdict::More,
        Ok(Some(_)) => Verdict::Accepted,
        Err(e) => Verdict::Refused(e.status().unwrap_or(0)),
    }
}

/// Both parsers must accept `raw` and read the same head from it.
fn assert_reads_like_chapter_2(raw: &[u8], limits: &Limits) -> lab::Request {
    let (request, n) = match lab::parse_request(raw, limits) {
        Ok(Some(parsed)) => parsed,
        other => panic!("{}: expected a complete head, got {other:?}", show(raw)),
    };
    let (head, len) = http::parse_request(raw, limits).unwrap().expect("chapter 2 sees a complete head");
    assert_eq!(n, len, "{}: the head's length", show(raw));
    assert_eq!(
        (request.method.as_str(), request.target.as_str(), request.version),
        (head.method.as_str(), head.target.as_str(), head.version),
        "{}",
        show(raw)
    );
    let headers: Vec<(String, Vec<u8>)> = head.headers.0.iter().map(|h| (h.name.clone(), h.value.clone())).collect();
    assert_eq!(request.headers, headers, "{}", show(raw));
    assert_eq!(request.framing, head.framing, "{}", show(raw));
    request
}

/// Requests chapter 2 accepts, with their framing.
const ACCEPTED: &[(&[u8], Framing)] = &[
    (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", Framing::Empty),
    (b"POST /submit?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", Framing::Length(5)),
    // Bare LF line ends, alone and mixed with CRLF.
    (b"GET /lf HTTP/1.1\nHost: h\nAccept: */*\n\n", Framing::Empty),
    (b"GET /mixed HTTP/1.1\r\nHost: h\nX-A: 1\r\n\n", Framing::Empty),
    // Spaces and tabs around a value are not part of it; a value may be empty.
    (b"GET / HTTP/1.1\r\nHost:   h \t \r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-In:  a  b  \r\n\r\n", Framing::Empty),
    // A target with multi-byte UTF-8 characters.
    (b"GET /caf\xc3\xa9/\xe2\x82\xac?q=\xe2\x9c\x93 HTTP/1.1\r\nHost: h\r\n\r\n", Framing::Empty),
    // Empty lines before the request line.
    (b"\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", Framing::Empty),
    (b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", Framing::Chunked),
    (b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", Framing::Chunked),
    (b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked\r\n\r\n", Framing::Chunked),
    (b"GET / HTTP/1.0\r\n\r\n", Framing::Empty),
    (b"POST /old HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", Framing::Length(2)),
    (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", Framing::Length(3)),
    (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", Framing::Empty),
    (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n", Framing::Length(7)),
    // obs-text in a value; header names compared ignoring case.
    (b"GET / HTTP/1.1\r\nhost: h\r\nX-Latin: caf\xe9\r\n\r\n", Framing::Empty),
    (b"GET / HTTP/1.1\r\nHost: h:8080\r\nX-Odd_Name.1!#$%&'*+^`|~: v\r\n\r\n", Framing::Empty),
    (b"M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n", Framing::Empty),
    (b"GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n", Framing::Empty),
    (b"get /methods-are-case-sensitive-tokens HTTP/1.1\r\nHost: h\r\n\r\n", Framing::Empty),
];

/// Requests chapter 2 refuses, with its status.
const REFUSED: &[(&[u8], u16)] = &[
    // Whitespace before the colon.
    (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400),
    // obs-fold, and a first header line that starts with whitespace.
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\t2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400),
    // Not header lines.
    (b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX(Y): v\r\n\r\n", 400),
    // Bare CRs.
    (b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400),
    (b"GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    // Control characters in a value.
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400),
    // Host missing in HTTP/1.1, or repeated.
    (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", 400),
    // Content-Length: differing, malformed, too large.
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", 400),
    // Both framings, and Transfer-Encoding that is not one final chunked.
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400),
    // A coding we do not implement, before chunked.
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    // Request lines.
    (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
    (b"GET\t/\tHTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET /\r\nHost: h\r\n\r\n", 400),
    (b"GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b" / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET / http/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400),
    // Targets that are not UTF-8, or hold DEL.
    (b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET /caf\xc3 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n", 400),
];

#[test]
fn lab_7_parses_a_simple_request() {
    let raw = b"GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nBODY";
    let (request, n) = lab::parse_request(raw, &Limits::default()).unwrap().expect("a complete head");
    assert_eq!(n, 43, "the head ends after the empty line; BODY is not part of it");
    assert_eq!((request.method.as_str(), request.target.as_str(), request.version), ("GET", "/a?b", Version::Http11));
    assert_eq!(request.headers, [("Host".to_string(), b"x".to_vec()), ("Accept".to_string(), b"*/*".to_vec())]);
    assert_eq!(request.framing, Framing::Empty);
}

#[test]
fn lab_7_accepts_what_chapter_2_accepts_and_reads_it_the_same() {
    let limits = Limits::default();
    for &(raw, framing) in ACCEPTED {
        let request = assert_reads_like_chapter_2(raw, &limits);
        assert_eq!(request.framing, framing, "{}", show(raw));
    }
    let raw = b"GET / HTTP/1.1\r\nHost:   h \t \r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-In:  a  b  \r\n\r\n";
    let (request, _) = lab::parse_request(raw, &limits).unwrap().unwrap();
    let values: Vec<&[u8]> = request.headers.iter().map(|(_, v)| v.as_slice()).collect();
    assert_eq!(values, [b"h".as_slice(), b"", b"v", b"a  b"], "OWS around values removed, inside kept");
    let (_, n) = lab::parse_request(b"\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\nNEXT", &limits).unwrap().unwrap();
    assert_eq!(n, 30, "the skipped empty lines are part of the head's length");
}

#[test]
fn lab_7_refuses_what_chapter_2_refuses_with_the_same_status() {
    let limits = Limits::default();
    for &(raw, status) in REFUSED {
        assert_eq!(chapter_2(raw, &limits), Verdict::Refused(status), "chapter 2 on {}", show(raw));
        assert_eq!(ours(raw, &limits), Verdict::Refused(status), "{}", show(raw));
    }
}

#[test]
fn lab_7_an_unsupported_version_is_505_a_malformed_one_400() {
    let limits = Limits::default();
    for version in ["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3.0"] {
        let raw = format!("GET / {version}\r\nHost: h\r\n\r\n");
        assert_eq!(ours(raw.as_bytes(), &limits), Verdict::Refused(505), "{version}");
        // Chapter 2 refuses these too, but with 400: httparse has one
        // error for every version it cannot read. The lab is more precise.
        assert_eq!(chapter_2(raw.as_bytes(), &limits), Verdict::Refused(400), "chapter 2 on {version}");
    }
    for version in ["HTTP/1.10", "HTTP/1", "HTTPS/1.1", "HTTP/a.b", "HTTP/1.1 ", "HTTP/ 1.1", "HTTP/1.1x"] {
        let raw = format!("GET / {version}\r\nHost: h\r\n\r\n");
        assert_eq!(chapter_2(raw.as_bytes(), &limits), Verdict::Refused(400), "chapter 2 on {version:?}");
        assert_eq!(ours(raw.as_bytes(), &limits), Verdict::Refused(400), "{version:?}");
    }
}

#[test]
fn lab_7_every_prefix_of_a_request_asks_for_more() {
    let limits = Limits::default();
    for &(raw, _) in ACCEPTED {
        let (_, n) = http::parse_request(raw, &limits).unwrap().unwrap();
        for end in 0..n {
            let prefix = &raw[..end];
            assert_eq!(chapter_2(prefix, &limits), Verdict::More, "chapter 2 on {}", show(prefix));
            assert_eq!(ours(prefix, &limits), Verdict::More, "{}", show(prefix));
        }
    }
}

#[test]
fn lab_7_heads_over_the_limits_get_431_and_414() {
    let head = b"GET / HTTP/1.1\r\nHost: h\r\n".as_slice();
    let big_value = [head, b"X-Big: ", &vec![b'a'; 17_000]].concat();
    let big_complete = [big_value.as_slice(), b"\r\n\r\n"].concat();
    let many_headers = |n: usize| {
        let mut raw = head.to_vec();
        for i in 1..n {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw
    };
    let long_target = |n: usize| [b"GET /".as_slice(), &vec![b'a'; n - 1], b" HTTP/1.1\r\nHost: h\r\n\r\n"].concat();
    let default_cases = [
        (big_value, Verdict::Refused(431)),
        (big_complete, Verdict::Refused(431)),
        (many_headers(100), Verdict::Accepted),
        (many_headers(101), Verdict::Refused(431)),
        (long_target(8192), Verdict::Accepted),
        (long_target(8193), Verdict::Refused(414)),
    ];
    for (raw, expected) in &default_cases {
        assert_eq!(chapter_2(raw, &Limits::default()), *expected, "chapter 2 on {}", show(raw));
        assert_eq!(ours(raw, &Limits::default()), *expected, "{}", show(raw));
    }

    // Small limits, to test the boundaries exactly.
    let small = Limits { max_head_bytes: 64, max_target_bytes: 16, max_headers: 2, ..Limits::default() };
    let padded = |pad: usize| [head, b"X: ", &vec![b'p'; pad], b"\r\n\r\n"].concat();
    assert_eq!(padded(32).len(), 64);
    let small_cases = [
        (padded(32), Verdict::Accepted),
        (padded(33), Verdict::Refused(431)),
        (padded(33)[..64].to_vec(), Verdict::Refused(431)),
        (padded(33)[..63].to_vec(), Verdict::More),
        (b"GET /aaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), Verdict::Accepted),
        (b"GET /aaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), Verdict::Refused(414)),
        (b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n".to_vec(), Verdict::Refused(431)),
    ];
    for (raw, expected) in &small_cases {
        assert_eq!(chapter_2(raw, &small), *expected, "chapter 2 on {}", show(raw));
        assert_eq!(ours(raw, &small), *expected, "{}", show(raw));
    }
}

#[test]
fn lab_7_a_multibyte_target_is_kept_whole_and_measured_in_bytes() {
    let raw = "GET /caf\u{e9}/\u{20ac}?q=\u{2713} HTTP/1.1\r\nHost: h\r\n\r\n";
    let request = assert_reads_like_chapter_2(raw.as_bytes(), &Limits::default());
    assert_eq!(request.target, "/caf\u{e9}/\u{20ac}?q=\u{2713}");
    // The limit counts bytes, and a cut at byte 10 would fall inside a
    // character of the last two targets.
    let limits = Limits { max_target_bytes: 10, ..Limits::default() };
    for (target, expected) in [
        ("/\u{e9}\u{e9}\u{e9}\u{e9}a", Verdict::Accepted),
        ("/\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}", Verdict::Refused(414)),
        ("/a\u{20ac}\u{20ac}\u{20ac}", Verdict::Refused(414)),
    ] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(chapter_2(raw.as_bytes(), &limits), expected, "chapter 2 on {target}");
        assert_eq!(ours(raw.as_bytes(), &limits), expected, "{target}");
    }
}

/// Thousands of requests made by breaking valid ones (a byte inserted,
/// removed, replaced, or the rest cut off) get chapter 2's verdict: both
/// accept and read the same head, or both refuse (the status may differ
/// when a request breaks two rules and the parsers meet them in a
/// different order). Chapter 2 may refuse a head before its end has
/// arrived, while yours waits: that is allowed; the reverse is not.
#[test]
fn lab_7_mutated_requests_get_chapter_2s_verdict() {
    const BASES: &[&[u8]] = &[
        b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
        b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.0\nX-Latin: caf\xe9\n\n",
    ];
    const BYTES: &[u8] = b" \t\r\n:,;0159aAzZ-/(\x00\x01\x7f\x80\xc3\xff";
    let limits = Limits::default();
    let mut rng = Lcg(7);
    let (mut accepted, mut refused, mut more) = (0, 0, 0);
    for case in 0..4000 {
        let mut raw = BASES[rng.below(BASES.len())].to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(raw.len() + 1);
            let byte = BYTES[rng.below(BYTES.len())];
            match rng.below(7) {
                0 | 1 => raw.insert(at, byte),
                2 | 3 if at < raw.len() => {
                    raw.remove(at);
                }
                4 | 5 if at < raw.len() => raw[at] = byte,
                _ => raw.truncate(at),
            }
        }
        let (lab_says, ch02_says) = (lab::parse_request(&raw, &limits), http::parse_request(&raw, &limits));
        match (&lab_says, &ch02_says) {
            (Ok(Some(_)), Ok(Some(_))) => {
                assert_reads_like_chapter_2(&raw, &limits);
                accepted += 1;
            }
            (Err(_), Err(_)) => refused += 1,
            (Ok(None), Ok(None) | Err(_)) => more += 1,
            _ => panic!("case {case}: {}\nlab 7: {lab_says:?}\nchapter 2: {ch02_says:?}", show(&raw)),
        }
    }
    assert!(accepted > 50 && refused > 50 && more > 50, "accepted {accepted}, refused {refused}, incomplete {more}");
}

/// Feeds `input` to a new decoder in pieces of `step` bytes, until it is
/// done: the data, the bytes used, whether it finished; or the status of
/// the refusal.
fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, usize, bool), u16> {
    let mut decoder = ChunkedDecoder::new();
    let (mut body, mut used) = (Vec::new(), 0);
    for piece in input.chunks(step.max(1)) {
        used += decoder.feed(piece, &mut body).map_err(Refusal::status)?;
        if decoder.is_done() {
            break;
        }
    }
    Ok((body, used, decoder.is_done()))
}

/// Complete chunked bodies, with their data.
const CHUNKED: &[(&[u8], &[u8])] = &[
    (b"5\r\nhello\r\n6;name=v\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n", b"hello world"),
    (b"0\r\n\r\n", b""),
    (b"A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", b"0123456789abcdefghij"),
    (b"0005\r\nhello\r\n00;last\r\nA: 1\r\nB: 2\r\n\r\n", b"hello"),
    // Data is data: CR and LF inside a chunk mean nothing.
    (b"3\r\n\r\n\r\r\n0\r\n\r\n", b"\r\n\r"),
    (b"1;a=b;c\r\n\xff\r\n0\r\n\r\n", b"\xff"),
];

/// Chunked bodies not over yet, with the data so far.
const UNFINISHED: &[(&[u8], &[u8])] = &[
    (b"5\r\nhel", b"hel"),
    (b"A\r\n0123456789\r\n0\r\n", b"0123456789"),
    (b"0\r\n\r", b""),
    (b"5;ext", b""),
    // The largest size there is: 2^64 - 1 bytes to come.
    (b"ffffffffffffffff\r\n", b""),
];

/// Malformed chunked bodies.
const MALFORMED: &[&[u8]] = &[
    b"x\r\n",
    b"\r\n",
    b";ext\r\n",
    b"-1\r\n",
    b"5 \r\n",
    b" 5\r\n",
    b"0x5\r\n",
    b"5\nhello\r\n0\r\n\r\n",
    b"5;ext\nhello\r\n0\r\n\r\n",
    b"5\rhello",
    b"5\r\nhelloXX",
    b"5\r\nhello\n0\r\n\r\n",
    b"5\r\nhello\r0\r\n\r\n",
    // 2^64 and 2^68 - 1: one hex digit more than fits.
    b"10000000000000000\r\n",
    b"fffffffffffffffff\r\n",
    b"0\r\nbad\ntrailer\r\n\r\n",
    b"0\r\n\n",
    b"0\r\n\r\r\n",
    b"0\r\nX: 1\r\r\n\r\n",
];

/// The malformed bodies, and two over the limits.
fn malformed() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = MALFORMED.iter().map(|b| b.to_vec()).collect();
    all.push([b"1;".as_slice(), &vec![b'a'; MAX_CHUNK_LINE + 10], b"\r\nx\r\n0\r\n\r\n"].concat());
    let trailer = [b"X-T: ".as_slice(), &[b'a'; 1000], b"\r\n"].concat();
    all.push([b"0\r\n".as_slice(), &trailer.repeat(MAX_TRAILER_BYTES / 1000 + 2), b"\r\n"].concat());
    all
}

/// Every chunked input the tests use: complete (with the next request
/// behind), unfinished and malformed.
fn chunked_inputs() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = CHUNKED.iter().map(|(body, _)| [*body, b"GET /next HTTP/1.1\r\n"].concat()).collect();
    all.extend(UNFINISHED.iter().map(|(body, _)| body.to_vec()));
    all.extend(malformed());
    all
}

#[test]
fn lab_7_chunked_bodies_decode_and_stop_at_their_end() {
    for &(body, data) in CHUNKED {
        let input = [body, b"GET /next HTTP/1.1\r\n"].concat();
        assert_eq!(decode(&input, input.len()), Ok((data.to_vec(), body.len(), true)), "{}", show(body));
    }
    for &(body, data) in UNFINISHED {
        assert_eq!(decode(body, body.len()), Ok((data.to_vec(), body.len(), false)), "{}", show(body));
    }
    let (mut decoder, mut data) = (ChunkedDecoder::new(), Vec::new());
    assert_eq!(decoder.feed(b"0\r\n\r\nGET", &mut data), Ok(5), "the next request is not the body's");
    assert!(decoder.is_done());
    assert_eq!(decoder.feed(b"more", &mut data), Ok(0), "once done, nothing more is taken");
    assert!(data.is_empty());
}

#[test]
fn lab_7_malformed_chunked_bodies_are_refused() {
    for bad in malformed() {
        assert_eq!(decode(&bad, bad.len()), Err(400), "{}", show(&bad));
        assert_eq!(decode(&bad, 1), Err(400), "{} fed byte by byte", show(&bad));
    }
}

#[test]
fn lab_7_chunked_fed_in_any_pieces_gives_the_same_result() {
    for input in chunked_inputs() {
        let whole = decode(&input, input.len());
        for step in 1..=input.len().min(40) {
            assert_eq!(decode(&input, step), whole, "{} in pieces of {step}", show(&input));
        }
    }
}

/// Chapter 5's `BodyTracker` finds where a chunked body ends without
/// decoding it: on every input, the lab's decoder must use the same bytes,
/// finish at the same place, and refuse the same bodies.
#[test]
fn lab_7_chunked_agrees_with_chapter_5s_body_tracker() {
    for input in chunked_inputs() {
        let mut tracker = BodyTracker::new(Framing::Chunked);
        let theirs = tracker.feed(&input).map(|used| (used, tracker.is_done())).map_err(|_| 400u16);
        let ours = decode(&input, input.len()).map(|(_, used, done)| (used, done));
        assert_eq!(ours, theirs, "{}", show(&input));
    }
}

#[test]
fn lab_7_a_pipelined_chunked_request_read_one_byte_at_a_time() {
    let limits = Limits::default();
    let stream: &[u8] = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
        4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\nT: v\r\n\r\n\
        GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    let mut bytes = stream.iter().copied();
    let mut buf = Vec::new();
    let (request, n) = loop {
        buf.push(bytes.next().expect("the head ends"));
        if let Some(parsed) = lab::parse_request(&buf, &limits).unwrap() {
            break parsed;
        }
    };
    assert_eq!(n, buf.len(), "the head is complete with its last byte, not later");
    assert_eq!((request.target.as_str(), request.framing), ("/up", Framing::Chunked));
    let (mut decoder, mut data) = (ChunkedDecoder::new(), Vec::new());
    while !decoder.is_done() {
        let byte = bytes.next().expect("the body ends");
        assert_eq!(decoder.feed(&[byte], &mut data), Ok(1));
    }
    assert_eq!(data, b"Wikipedia");
    let rest: Vec<u8> = bytes.collect();
    let (next, n) = lab::parse_request(&rest, &limits).unwrap().expect("the next request");
    assert_eq!((next.method.as_str(), next.target.as_str(), n), ("GET", "/next", rest.len()));
}
