//! Graded tests for the chapter 7 labs. Every test name starts with its
//! lab's id: `cargo test -p ch07-rate-limit --no-default-features lab_5`
//! grades your lab 5, `... lab_8_2` your lab 8.2 (plain `cargo test` here
//! grades the reference). Time is a number of nanoseconds handed to the
//! code under test, so nothing here sleeps and every answer is exact.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ch07_rate_limit::algorithm::trace::Lcg;
use ch07_rate_limit::clock::Nanos;
use ch07_rate_limit::labs::lab_5_token_bucket::{TokenBucket, retry_after_secs, too_many_requests};
use ch07_rate_limit::labs::lab_8_2_per_ip::{Decision, PerIpLimiter, PerIpStats};

/// A number below `n` from the chapter's deterministic sequence
/// (`algorithm::trace::Lcg`): a failure names its step, and the same run
/// replays it.
fn below(rng: &mut Lcg, n: usize) -> usize {
    rng.below(n as u64) as usize
}

const MS: Nanos = 1_000_000;
const SEC: Nanos = 1_000_000_000;

/// Whether two token counts are equal, up to floating-point noise.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// A token bucket written the other way round from the usual one, to
/// check yours against: it keeps no token count at all, only the instant
/// the bucket will be full again (`full_at`). Taking a token pushes that
/// instant one token's time later; a token may be taken if that does not
/// push it more than `capacity` tokens' time past `now`. (This is the
/// "generic cell rate algorithm" of ATM networks; its answers are the
/// token bucket's, exactly.) Only for rates whose token time is a whole
/// number of nanoseconds, so that it never rounds.
#[derive(Debug, Clone, Copy)]
struct ModelBucket {
    per_token: u128,
    room: u128,
    full_at: u128,
    seen: Nanos,
}

impl ModelBucket {
    fn new(capacity: u32, per_token: Nanos, now: Nanos) -> Self {
        let per_token = u128::from(per_token);
        Self { per_token, room: u128::from(capacity) * per_token, full_at: u128::from(now), seen: now }
    }

    /// `now`, or the latest time seen if that is later (the rule for
    /// clocks that step back).
    fn clamp(&self, now: Nanos) -> u128 {
        u128::from(now.max(self.seen))
    }

    /// Nanoseconds until the bucket is full again; 0 if it is.
    fn until_full(&self, now: Nanos) -> u128 {
        self.full_at.saturating_sub(self.clamp(now))
    }

    fn take(&mut self, now: Nanos) -> Result<(), Nanos> {
        let missing = self.until_full(now);
        let t = self.clamp(now);
        self.seen = self.seen.max(now);
        if missing + self.per_token <= self.room {
            self.full_at = self.full_at.max(t) + self.per_token;
            Ok(())
        } else {
            Err(Nanos::try_from(missing + self.per_token - self.room).unwrap())
        }
    }

    fn tokens(&self, now: Nanos) -> f64 {
        (self.room - self.until_full(now)) as f64 / self.per_token as f64
    }
}

// ---------------------------------------------------------------- lab 5

/// Takes `n` tokens at `now`, each of which must be there.
fn take_all(bucket: &mut TokenBucket, n: u32, now: Nanos) {
    for i in 0..n {
        assert_eq!(bucket.try_take(now), Ok(()), "token {i} of {n} at {now} ns");
    }
}

#[test]
fn lab_5_a_new_bucket_is_full() {
    let mut bucket = TokenBucket::new(5, 1.0, 0);
    assert!(close(bucket.tokens(0), 5.0), "a new bucket holds its capacity, not {}", bucket.tokens(0));
    take_all(&mut bucket, 5, 0);
    assert_eq!(bucket.try_take(0), Err(SEC), "the sixth waits one token's time: 1 s at 1 per second");
    assert!(close(bucket.tokens(0), 0.0));

    let t0 = 7 * SEC;
    let mut bucket = TokenBucket::new(3, 1.0, t0);
    take_all(&mut bucket, 3, t0);
    assert_eq!(bucket.try_take(t0), Err(SEC), "full at its creation time, whatever that is");
}

#[test]
fn lab_5_one_token_comes_back_after_one_over_the_rate() {
    let t0 = 42 * SEC;
    let mut bucket = TokenBucket::new(3, 10.0, t0);
    take_all(&mut bucket, 3, t0);
    assert_eq!(bucket.try_take(t0 + 100 * MS), Ok(()), "10 per second: one token after 100 ms");
    assert_eq!(bucket.try_take(t0 + 100 * MS), Err(100 * MS));
    // Ten refills of 10 ms must add up to one whole token, exactly.
    for step in 1..10 {
        let now = t0 + 100 * MS + step * 10 * MS;
        assert_eq!(bucket.try_take(now), Err(100 * MS - step * 10 * MS), "after {step} steps of 10 ms");
    }
    assert_eq!(bucket.try_take(t0 + 200 * MS), Ok(()), "ten steps of 10 ms make a whole token");
    let later = t0 + 500 * MS;
    assert!(close(bucket.tokens(later), 3.0));
    take_all(&mut bucket, 3, later);
    assert_eq!(bucket.try_take(later), Err(100 * MS), "300 ms made 3 tokens, the capacity");
}

#[test]
fn lab_5_the_wait_is_exact_to_the_nanosecond() {
    let mut bucket = TokenBucket::new(4, 2.0, 0);
    take_all(&mut bucket, 4, 0);
    assert_eq!(bucket.try_take(0), Err(500_000_000), "2 per second: a token every 500 ms");
    assert_eq!(bucket.try_take(123), Err(500_000_000 - 123), "the wait shrinks as time passes");
    assert_eq!(bucket.try_take(499_999_999), Err(1), "1 ns early: no token yet, and a wait of 1, never 0");
    assert_eq!(bucket.try_take(500_000_000), Ok(()), "after exactly the wait, the token is there");
    assert_eq!(bucket.try_take(500_000_000), Err(500_000_000));

    // A token time that is not a whole number of ns is rounded up.
    let mut bucket = TokenBucket::new(1, 3.0, 0);
    take_all(&mut bucket, 1, 0);
    let wait = bucket.try_take(1).unwrap_err();
    assert_eq!(wait, 333_333_333, "3 per second: a token takes 333,333,334 ns, and 1 ns has passed");
    assert_eq!(bucket.try_take(wait), Err(1), "a refusal takes nothing, and the wait was not early");
    assert_eq!(bucket.try_take(1 + wait), Ok(()), "waiting what it said was enough");
}

#[test]
fn lab_5_a_long_idle_never_fills_past_the_capacity() {
    let mut bucket = TokenBucket::new(3, 100.0, 0);
    take_all(&mut bucket, 3, 0);
    assert!(close(bucket.tokens(5 * MS), 0.5), "half a token's time, half a token");
    let later = 3600 * SEC;
    assert!(close(bucket.tokens(later), 3.0), "an hour idle: {} tokens, not 3", bucket.tokens(later));
    take_all(&mut bucket, 3, later);
    assert_eq!(bucket.try_take(later), Err(10 * MS), "an hour idle gave 3 tokens, not 360,000");

    // `tokens` looks without taking: asking about a later time changes nothing.
    let mut bucket = TokenBucket::new(2, 1.0, 0);
    take_all(&mut bucket, 2, 0);
    assert!(close(bucket.tokens(10 * SEC), 2.0));
    assert!(close(bucket.tokens(SEC / 4), 0.25));
    assert_eq!(bucket.try_take(SEC / 2), Err(SEC / 2), "looking at 10 s did not move the bucket to 10 s");
    assert_eq!(bucket.try_take(SEC), Ok(()));
}

#[test]
fn lab_5_time_going_backwards_adds_nothing_and_does_not_panic() {
    let t0 = 10 * SEC;
    let mut bucket = TokenBucket::new(2, 1.0, t0);
    take_all(&mut bucket, 2, t0);
    assert_eq!(bucket.try_take(t0 - 5 * SEC), Err(SEC), "5 s in the past counts as the latest time seen");
    assert_eq!(bucket.try_take(0), Err(SEC));
    assert!(close(bucket.tokens(0), 0.0));
    assert_eq!(bucket.try_take(t0 + SEC / 2), Err(SEC / 2), "stepping back and forth made no token");
    assert_eq!(bucket.try_take(t0 + SEC), Ok(()));
    assert_eq!(bucket.try_take(t0), Err(SEC), "the latest time seen is t0 + 1 s now");

    // A bucket made at the end of time and used from its start.
    let mut bucket = TokenBucket::new(1, 1.0, Nanos::MAX);
    assert_eq!(bucket.try_take(0), Ok(()));
    assert_eq!(bucket.try_take(0), Err(SEC));
    assert_eq!(bucket.try_take(Nanos::MAX), Err(SEC));

    // All of time in one step, at the fastest rate, with the largest
    // capacity: nothing may overflow.
    let mut bucket = TokenBucket::new(u32::MAX, 1e9, 0);
    take_all(&mut bucket, 1, 0);
    assert!(close(bucket.tokens(Nanos::MAX), f64::from(u32::MAX)));
    assert_eq!(bucket.try_take(Nanos::MAX), Ok(()));
}

#[test]
fn lab_5_fractional_rates() {
    let mut bucket = TokenBucket::new(1, 0.5, 0);
    take_all(&mut bucket, 1, 0);
    assert_eq!(bucket.try_take(0), Err(2 * SEC), "half a token per second: a token every 2 s");
    assert!(close(bucket.tokens(SEC), 0.5));
    assert_eq!(bucket.try_take(SEC), Err(SEC));
    assert_eq!(bucket.try_take(2 * SEC - 1), Err(1));
    assert_eq!(bucket.try_take(2 * SEC), Ok(()));

    let mut bucket = TokenBucket::new(2, 0.25, 0);
    take_all(&mut bucket, 2, 0);
    assert_eq!(bucket.try_take(0), Err(4 * SEC));
    assert!(close(bucket.tokens(6 * SEC), 1.5));
    assert_eq!(bucket.try_take(6 * SEC), Ok(()));
    assert_eq!(bucket.try_take(6 * SEC), Err(2 * SEC), "half a token left: the other half takes 2 s");
}

#[test]
fn lab_5_settings_that_make_no_sense_are_clamped() {
    let mut bucket = TokenBucket::new(0, 1.0, 0);
    assert!(close(bucket.tokens(0), 1.0), "capacity 0 counts as 1");
    take_all(&mut bucket, 1, 0);
    assert_eq!(bucket.try_take(0), Err(SEC));

    for rate in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut bucket = TokenBucket::new(2, rate, 0);
        take_all(&mut bucket, 2, 0);
        assert_eq!(bucket.try_take(0), Err(Nanos::MAX), "rate {rate}: never refills");
        assert_eq!(bucket.try_take(Nanos::MAX), Err(Nanos::MAX), "rate {rate}: not even after centuries");
        assert!(close(bucket.tokens(Nanos::MAX), 0.0), "rate {rate}");
    }

    // Faster than a token per nanosecond counts as one per nanosecond.
    let mut bucket = TokenBucket::new(1, 1e12, 0);
    take_all(&mut bucket, 1, 0);
    assert_eq!(bucket.try_take(0), Err(1));
    assert_eq!(bucket.try_take(1), Ok(()));

    // So slow that a token takes longer than a u64 of nanoseconds: no panic,
    // and a wait of more than a century.
    let mut bucket = TokenBucket::new(3, 1e-30, 0);
    take_all(&mut bucket, 3, 0);
    let wait = bucket.try_take(0).unwrap_err();
    assert!(wait > 100 * 365 * 24 * 3600 * SEC, "wait {wait}");
}

/// Rates whose token time is a whole number of ns, with that time.
const EXACT_RATES: &[(f64, Nanos)] = &[
    (1.0, SEC),
    (2.0, SEC / 2),
    (4.0, SEC / 4),
    (5.0, SEC / 5),
    (10.0, SEC / 10),
    (1000.0, MS),
    (0.5, 2 * SEC),
    (0.25, 4 * SEC),
];

/// Long random traces (bursts, pauses of every length, the clock now and
/// then stepping back) against the model: every answer, every wait and
/// every token count must agree, and a client never gets more than the
/// capacity plus the rate times the time that has passed.
#[test]
fn lab_5_agrees_with_a_model_on_random_traces() {
    let mut rng = Lcg(5);
    for run in 0..40 {
        let (rate, per_token) = EXACT_RATES[below(&mut rng, EXACT_RATES.len())];
        let capacity = 1 + below(&mut rng, 10) as u32;
        let start = rng.next_u64() * 1000;
        let mut bucket = TokenBucket::new(capacity, rate, start);
        let mut model = ModelBucket::new(capacity, per_token, start);
        let (mut now, mut latest, mut allowed, mut refused) = (start, start, 0u64, 0u64);
        for step in 0..2000 {
            now = match below(&mut rng, 10) {
                0 => now,
                1 => now + below(&mut rng, 10) as u64,
                2..=5 => now + per_token * below(&mut rng, 100) as u64 / 100,
                6 | 7 => now + rng.next_u64() % (2 * per_token),
                8 => now + per_token * (u64::from(capacity) + below(&mut rng, 3) as u64),
                _ => now.saturating_sub(rng.next_u64() % per_token),
            };
            latest = latest.max(now);
            let context = format!("run {run} step {step}: capacity {capacity}, rate {rate}/s, now {now}");
            let ours = bucket.try_take(now);
            assert_eq!(ours, model.take(now), "{context}");
            match ours {
                Ok(()) => allowed += 1,
                Err(_) => refused += 1,
            }
            let (theirs, mine) = (model.tokens(now), bucket.tokens(now));
            assert!((theirs - mine).abs() < 1e-6, "{context}: {mine} tokens, the model has {theirs}");
            let most = u64::from(capacity) + (latest - start) / per_token;
            assert!(allowed <= most, "{context}: {allowed} allowed, more than capacity + rate × time ({most})");
        }
        assert!(allowed > 0 && refused > 0, "run {run}: {allowed} allowed, {refused} refused");
    }
}

#[test]
fn lab_5_retry_after_rounds_up_to_whole_seconds() {
    let cases: [(Nanos, u64); 9] = [
        (0, 1),
        (1, 1),
        (SEC - 1, 1),
        (SEC, 1),
        (SEC + 1, 2),
        (2 * SEC, 2),
        (2 * SEC + 500 * MS, 3),
        (60 * SEC, 60),
        // What a bucket that never refills answers: rounding up must not overflow.
        (Nanos::MAX, 18_446_744_074),
    ];
    for (wait, secs) in cases {
        assert_eq!(retry_after_secs(wait), secs, "a wait of {wait} ns");
    }
}

/// A response split by hand: the status line, the header fields (name,
/// value with the spaces around it removed), the body.
fn split_response(raw: &[u8]) -> (String, Vec<(String, String)>, String) {
    let text = std::str::from_utf8(raw).expect("the response is UTF-8 text");
    let (head, body) = text.split_once("\r\n\r\n").expect("the head ends with an empty line");
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("a status line").to_string();
    let fields = lines
        .map(|line| {
            assert!(!line.contains('\n') && !line.contains('\r'), "every line ends with CRLF: {line:?}");
            let (name, value) = line.split_once(':').expect("a header field has a colon");
            assert!(!name.is_empty() && !name.contains(' '), "header name {name:?}");
            (name.to_string(), value.trim().to_string())
        })
        .collect();
    (status, fields, body.to_string())
}

/// The values of the fields named `name` (names are case-insensitive).
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

#[test]
fn lab_5_the_429_response_is_complete_and_well_formed() {
    let cases: [(Nanos, u64); 6] =
        [(1, 1), (SEC, 1), (SEC + 1, 2), (59 * SEC + 5, 60), (3600 * SEC, 3600), (Nanos::MAX, 18_446_744_074)];
    for (wait, secs) in cases {
        let raw = too_many_requests(wait);
        let (status, fields, body) = split_response(&raw);
        assert_eq!(status, "HTTP/1.1 429 Too Many Requests", "wait {wait}");
        assert_eq!(field(&fields, "Retry-After"), [secs.to_string()], "wait {wait}");
        assert_eq!(field(&fields, "Content-Type"), ["text/plain; charset=utf-8"], "wait {wait}");
        assert_eq!(field(&fields, "Content-Length"), [body.len().to_string()], "wait {wait}: body {body:?}");
        assert!(body.contains(&format!("{secs} second")), "the body says when to retry: {body:?}");
        let closes = field(&fields, "Connection").iter().any(|v| v.to_ascii_lowercase().contains("close"));
        assert!(!closes, "a limited client keeps its connection");
    }
}

// ---------------------------------------------------------------- lab 8.2

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

fn v6(n: u128) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(n))
}

fn limited(retry_after: Nanos) -> Decision {
    Decision::Limited { retry_after }
}

const ALLOWED: Decision = Decision::Allowed;

#[test]
fn lab_8_2_each_ip_has_its_own_bucket() {
    let mut limiter = PerIpLimiter::new(3, 1.0, 16);
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
    for _ in 0..3 {
        assert_eq!(limiter.check(a, 0), ALLOWED);
    }
    assert_eq!(limiter.check(a, 0), limited(SEC));
    for _ in 0..3 {
        assert_eq!(limiter.check(b, 0), ALLOWED, "b's burst is its own: a used none of it");
    }
    assert_eq!(limiter.check(b, 0), limited(SEC));
    assert_eq!(limiter.check(a, SEC), ALLOWED, "a's token came back to a's bucket");
    assert_eq!(limiter.check(a, SEC), limited(SEC));
    assert_eq!(limiter.clients(), 2);
    assert_eq!(limiter.stats(), PerIpStats { allowed: 7, limited: 3, forgotten: 0, turned_away: 0 });
}

#[test]
fn lab_8_2_ipv4_and_ipv6_addresses_are_different_clients() {
    let mut limiter = PerIpLimiter::new(2, 1.0, 16);
    let clients = ["127.0.0.1", "::1", "::ffff:127.0.0.1", "2001:db8::1", "2001:db8::2", "10.0.0.1"];
    for text in clients {
        assert_eq!(limiter.check(ip(text), 0), ALLOWED, "{text}: a full bucket of its own");
        assert_eq!(limiter.check(ip(text), 0), ALLOWED, "{text}");
        assert_eq!(limiter.check(ip(text), 0), limited(SEC), "{text}");
    }
    assert_eq!(limiter.clients(), clients.len());
}

#[test]
fn lab_8_2_retry_after_is_exact() {
    let t0 = 1000 * SEC;
    let a = ip("198.51.100.7");
    let mut limiter = PerIpLimiter::new(3, 4.0, 4);
    for _ in 0..3 {
        assert_eq!(limiter.check(a, t0), ALLOWED);
    }
    assert_eq!(limiter.check(a, t0), limited(250 * MS), "4 per second: a token every 250 ms");
    assert_eq!(limiter.check(a, t0 + 100 * MS), limited(150 * MS));
    assert_eq!(limiter.check(a, t0 + 250 * MS - 1), limited(1));
    assert_eq!(limiter.check(a, t0 + 250 * MS), ALLOWED);
    assert_eq!(limiter.check(a, t0 + 250 * MS), limited(250 * MS));
    assert_eq!(limiter.check(a, t0), limited(250 * MS), "the clock stepped back: the latest time seen counts");

    let mut slow = PerIpLimiter::new(0, 0.5, 4);
    assert_eq!(slow.check(a, 0), ALLOWED, "capacity 0 counts as 1");
    assert_eq!(slow.check(a, 0), limited(2 * SEC));
    assert_eq!(slow.check(a, SEC), limited(SEC));

    let mut never = PerIpLimiter::new(1, 0.0, 4);
    assert_eq!(never.check(a, 0), ALLOWED);
    assert_eq!(never.check(a, 0), limited(Nanos::MAX), "a rate of 0 never refills");
    assert_eq!(never.check(a, Nanos::MAX), limited(Nanos::MAX));
}

/// The heart of the lab: a map full of limited clients turns new ones
/// away, and never makes room by forgetting a client that is limited.
#[test]
fn lab_8_2_a_limited_client_is_never_forgotten_to_make_room() {
    let mut limiter = PerIpLimiter::new(2, 1.0, 3);
    let drained = [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")];
    for c in drained {
        assert_eq!(limiter.check(c, 0), ALLOWED);
        assert_eq!(limiter.check(c, 0), ALLOWED);
        assert_eq!(limiter.check(c, 0), limited(SEC));
    }
    let newcomer = ip("10.0.0.4");
    assert_eq!(limiter.check(newcomer, 0), limited(2 * SEC), "no room until a drained bucket is full, at 2 s");
    assert_eq!(limiter.clients(), 3, "nothing is stored for a client turned away");
    for c in drained {
        assert_eq!(limiter.check(c, 0), limited(SEC), "{c} is still limited: the newcomer reset nothing");
    }

    // A hundred other addresses try, and change nothing either.
    for n in 0..100 {
        assert_eq!(limiter.check(v4(0x0b00_0000 + n), SEC / 2), limited(3 * SEC / 2), "address {n}");
    }
    for c in drained {
        assert_eq!(limiter.check(c, SEC / 2), limited(SEC / 2), "{c}: half a token back, no more");
    }
    assert_eq!(limiter.clients(), 3);

    // At 1 s the first one has a token again and uses it: it is full again
    // at 3 s, the other two at 2 s.
    assert_eq!(limiter.check(drained[0], SEC), ALLOWED);
    assert_eq!(limiter.check(drained[0], SEC), limited(SEC));
    assert_eq!(limiter.check(newcomer, 2 * SEC - 1), limited(1));
    assert_eq!(limiter.check(newcomer, 2 * SEC), ALLOWED, "at 2 s two buckets are full again: room");
    assert_eq!(limiter.clients(), 2, "the two full-again entries were forgotten, the refilling one kept");
    // It kept its history: one token back since 1 s, not a new full bucket of two.
    assert_eq!(limiter.check(drained[0], 2 * SEC), ALLOWED);
    assert_eq!(limiter.check(drained[0], 2 * SEC), limited(SEC));
    assert_eq!(
        limiter.stats(),
        PerIpStats { allowed: 9, limited: 3 + 1 + 3 + 100 + 3 + 1 + 1 + 1, forgotten: 2, turned_away: 1 + 100 + 1 }
    );
}

#[test]
fn lab_8_2_full_again_entries_are_forgotten_to_admit_new_clients() {
    let mut limiter = PerIpLimiter::new(4, 2.0, 8);
    // Eight clients send one request each at 0: 3 tokens of 4 left, full
    // again at 500 ms (one token's time).
    for n in 0..8 {
        assert_eq!(limiter.check(v4(n), 0), ALLOWED);
    }
    assert_eq!(limiter.clients(), 8);
    // Client 0 sends again at 400 ms: 2.8 tokens left, full at 1 s.
    assert_eq!(limiter.check(v4(0), 400 * MS), ALLOWED);
    let newcomer = v6(0x2001_0db8 << 96);
    assert_eq!(limiter.check(newcomer, 500 * MS - 1), limited(1), "1 ns before the first buckets are full");
    assert_eq!(limiter.check(newcomer, 500 * MS), ALLOWED, "at the exact instant they are full, they go");
    assert_eq!(limiter.clients(), 2, "clients 1 to 7 forgotten; client 0 is still refilling");
    // A forgotten client comes back to what it would have had anyway: a full bucket.
    for _ in 0..4 {
        assert_eq!(limiter.check(v4(1), 500 * MS), ALLOWED);
    }
    assert_eq!(limiter.check(v4(1), 500 * MS), limited(500 * MS));
    assert_eq!(limiter.clients(), 3);
    assert_eq!(limiter.stats(), PerIpStats { allowed: 14, limited: 2, forgotten: 7, turned_away: 1 });
}

#[test]
fn lab_8_2_nothing_is_forgotten_while_there_is_room() {
    let mut limiter = PerIpLimiter::new(1, 1.0, 4);
    for n in 0..3 {
        assert_eq!(limiter.check(v4(n), 0), ALLOWED);
    }
    assert_eq!(limiter.check(v4(3), 100 * SEC), ALLOWED);
    assert_eq!(limiter.clients(), 4, "the map had room: the full-again entries stay until it is needed");
    assert_eq!(limiter.check(v4(4), 100 * SEC), ALLOWED);
    assert_eq!(limiter.clients(), 2, "the map was full: the three full-again entries went");
    assert_eq!(limiter.stats(), PerIpStats { allowed: 5, limited: 0, forgotten: 3, turned_away: 0 });
}

#[test]
fn lab_8_2_max_clients_zero_counts_as_one() {
    let mut limiter = PerIpLimiter::new(1, 1.0, 0);
    let (a, b) = (ip("203.0.113.1"), ip("203.0.113.2"));
    assert_eq!(limiter.check(a, 0), ALLOWED);
    assert_eq!(limiter.check(b, 0), limited(SEC), "turned away: room when a's bucket is full, at 1 s");
    assert_eq!(limiter.check(a, 0), limited(SEC));
    assert_eq!(limiter.clients(), 1);
    assert_eq!(limiter.check(b, SEC), ALLOWED, "a was full again and forgotten");
    assert_eq!(limiter.check(a, SEC), limited(SEC), "a is new again, and there is no room");
    assert_eq!(limiter.clients(), 1);
    assert_eq!(limiter.stats(), PerIpStats { allowed: 2, limited: 3, forgotten: 1, turned_away: 2 });
}

/// The rules of lab 8.2, written as plainly as possible: a list of
/// (address, model bucket) scanned from end to end.
struct ModelLimiter {
    capacity: u32,
    per_token: Nanos,
    max_clients: usize,
    entries: Vec<(IpAddr, ModelBucket)>,
    stats: PerIpStats,
}

impl ModelLimiter {
    fn new(capacity: u32, per_token: Nanos, max_clients: usize) -> Self {
        Self { capacity, per_token, max_clients, entries: Vec::new(), stats: PerIpStats::default() }
    }

    fn check(&mut self, ip: IpAddr, now: Nanos) -> Decision {
        let decision = self.decide(ip, now);
        match decision {
            Decision::Allowed => self.stats.allowed += 1,
            Decision::Limited { .. } => self.stats.limited += 1,
        }
        decision
    }

    fn decide(&mut self, ip: IpAddr, now: Nanos) -> Decision {
        let index = match self.entries.iter().position(|(key, _)| *key == ip) {
            Some(index) => index,
            None => {
                if self.entries.len() >= self.max_clients {
                    let before = self.entries.len();
                    self.entries.retain(|(_, bucket)| bucket.until_full(now) > 0);
                    self.stats.forgotten += (before - self.entries.len()) as u64;
                }
                if self.entries.len() >= self.max_clients {
                    self.stats.turned_away += 1;
                    let soonest = self.entries.iter().map(|(_, bucket)| bucket.until_full(now)).min().unwrap();
                    return limited(Nanos::try_from(soonest).unwrap());
                }
                self.entries.push((ip, ModelBucket::new(self.capacity, self.per_token, now)));
                self.entries.len() - 1
            }
        };
        match self.entries[index].1.take(now) {
            Ok(()) => ALLOWED,
            Err(wait) => limited(wait),
        }
    }
}

/// 10,000 distinct addresses (IPv4 and IPv6), mixed with 16 busy clients
/// that are limited most of the time: the limiter must never hold more
/// than `max_clients` entries, must answer every request as the model
/// does, and its counters must add up.
#[test]
fn lab_8_2_memory_stays_bounded_under_10000_addresses() {
    const MAX: usize = 64;
    let mut rng = Lcg(82);
    let mut limiter = PerIpLimiter::new(2, 10.0, MAX);
    let mut model = ModelLimiter::new(2, SEC / 10, MAX);
    let busy: Vec<IpAddr> = (0..16).map(|n| v4(0xc633_6400 + n)).collect();
    let (mut now, mut fresh, mut calls) = (0, 0u32, 0u64);
    while fresh < 10_000 {
        let client = if below(&mut rng, 2) == 0 {
            busy[below(&mut rng, busy.len())]
        } else {
            fresh += 1;
            if fresh % 2 == 1 { v6((0x2001_0db8 << 96) + u128::from(fresh)) } else { v4(0x0a00_0000 + fresh) }
        };
        now += rng.next_u64() % (MS + 1);
        calls += 1;
        let decision = limiter.check(client, now);
        assert_eq!(decision, model.check(client, now), "call {calls}: {client} at {now} ns");
        assert!(limiter.clients() <= MAX, "call {calls}: {} entries, the bound is {MAX}", limiter.clients());
        assert_eq!(limiter.clients(), model.entries.len(), "call {calls}");
    }
    let stats = limiter.stats();
    assert_eq!(stats, model.stats);
    assert_eq!(stats.allowed + stats.limited, calls, "every call is allowed or limited");
    assert!(
        stats.forgotten > 1000 && stats.turned_away > 1000,
        "the run made room, and turned clients away: {stats:?}"
    );
}

/// Smaller random runs over every setting: few addresses that come back
/// after being forgotten, long pauses, the clock stepping back.
#[test]
fn lab_8_2_agrees_with_a_model_on_random_traces() {
    let mut rng = Lcg(28);
    for run in 0..60 {
        let (rate, per_token) = EXACT_RATES[below(&mut rng, EXACT_RATES.len())];
        let capacity = 1 + below(&mut rng, 4) as u32;
        let max_clients = [1, 2, 3, 8][below(&mut rng, 4)];
        let addresses = max_clients + 1 + below(&mut rng, 2 * max_clients);
        let mut limiter = PerIpLimiter::new(capacity, rate, max_clients);
        let mut model = ModelLimiter::new(capacity, per_token, max_clients);
        let mut now = 1000 * SEC;
        for step in 0..1000 {
            let n = below(&mut rng, addresses) as u32;
            let client = if n % 3 == 2 { v6(u128::from(n)) } else { v4(n) };
            now = match below(&mut rng, 8) {
                0 => now,
                1..=4 => now + rng.next_u64() % per_token,
                5 | 6 => now + per_token * (1 + below(&mut rng, 2 * capacity as usize) as u64),
                _ => now.saturating_sub(rng.next_u64() % per_token),
            };
            let context = format!("run {run} step {step}: capacity {capacity}, rate {rate}/s, max {max_clients}");
            assert_eq!(limiter.check(client, now), model.check(client, now), "{context}: {client} at {now} ns");
            assert!(limiter.clients() <= max_clients, "{context}: {} entries", limiter.clients());
            assert_eq!(limiter.clients(), model.entries.len(), "{context}");
        }
        assert_eq!(limiter.stats(), model.stats, "run {run}");
    }
}
