//! # Lab 5 — a token-bucket rate limiter that answers 429
//!
//! A load balancer stands between many clients and a few backends. One
//! client that sends too much (a bug in a retry loop, a scraper, an attack)
//! can take all the backends' time from everyone else. A rate limiter
//! refuses that client's extra requests at the door, cheaply, with
//! `429 Too Many Requests`, before they cost a backend anything.
//!
//! The *token bucket* is the limiter most proxies use (nginx's
//! `limit_req` is a close cousin), because it allows what real clients
//! do — a short burst, a page and its images — while holding the average
//! to a rate. Write one, then the 429 response that goes with it.
//!
//! ## The bucket: [`TokenBucket`]
//!
//! - **Capacity.** The bucket holds at most `capacity` tokens, and it
//!   starts full: a new client may send `capacity` requests at once.
//! - **Taking.** [`TokenBucket::try_take`] takes one token if there is a
//!   whole one and answers `Ok(())`. If there is none, it takes nothing
//!   and answers `Err(wait)`: how many nanoseconds until one whole token
//!   will be there, always at least 1. The caller turns that into the
//!   429's `Retry-After`.
//! - **Refill.** Tokens come back at `refill_per_sec` per second,
//!   continuously: half a token after half a token's time. Nothing runs in
//!   the background (no thread, no timer per client: a balancer may hold a
//!   bucket for each of 100,000 clients). Instead the refill is *lazy*:
//!   each call works out what has come back since the previous call, from
//!   the time that has passed, and never lets the bucket hold more than
//!   `capacity`. A client idle for an hour has a full bucket, not a
//!   bucket of 3,600 × rate tokens.
//! - **One token's time.** A token takes `ceil(1_000_000_000 /
//!   refill_per_sec)` nanoseconds to come back, and at least 1 ns. Rounded
//!   *up*, so that rounding never lets a client through early: at 3 per
//!   second a token takes 333,333,334 ns. (So a rate above 10⁹ per second
//!   counts as 10⁹ per second.)
//! - **Time.** The bucket never reads the clock: every method is given
//!   `now`, a [`Nanos`] count from an arbitrary origin, so the tests are
//!   exact. Clocks can step backwards, though, and a limiter must neither
//!   panic nor hand out tokens because of it: a `now` earlier than the
//!   latest `now` the bucket has seen is treated as that latest one.
//! - **Settings that make no sense.** [`TokenBucket::new`] takes
//!   `capacity` 0 as 1 (a bucket that can never hold a token would refuse
//!   everything forever, and `new` cannot fail). A `refill_per_sec` that
//!   is zero, negative, infinite or NaN means the bucket *never refills*:
//!   it gives its first `capacity` tokens, then refuses for good, with
//!   `Err(Nanos::MAX)`. (A limiter whose setting is broken should fail
//!   closed, not let everything through.)
//! - [`TokenBucket::tokens`] says how many tokens the bucket holds at
//!   `now`, fractions included, without taking any (and without changing
//!   the bucket).
//!
//! **The tests are exact to the nanosecond**, and one of them replays a
//! long random trace against a model and expects the same answer to every
//! call. Keeping the tokens as an `f64` and adding `elapsed × rate` at
//! every call drifts: `0.1` added ten times is not `1.0` in floating
//! point, so after ten steps of 10 ms at 10 per second a token would be
//! missing. And turning a fraction of a token back into nanoseconds
//! rounds, so a wait can come out 1 ns off. Hint: count in integers. If
//! one token takes `t` ns, a bucket can hold its tokens as *nanoseconds of
//! waiting*: each nanosecond that passes adds 1, a token costs `t`, and
//! the bucket is full at `capacity × t` (a `u128` cannot overflow there).
//! Then `wait` is simply what is missing to reach `t`.
//!
//! ## The answer: [`retry_after_secs`] and [`too_many_requests`]
//!
//! `Retry-After` counts whole seconds (RFC 9110 section 10.2.3), so
//! [`retry_after_secs`] rounds the wait *up*, and gives at least 1: a
//! client told to wait 0 seconds would come straight back and be refused
//! again. 1 ns → 1, exactly 1 s → 1, 1 s + 1 ns → 2. `Nanos::MAX` (what
//! a bucket that never refills answers) must not overflow.
//!
//! [`too_many_requests`] builds the complete response, bytes ready for the
//! socket:
//!
//! ```text
//! HTTP/1.1 429 Too Many Requests
//! Retry-After: N
//! Content-Type: text/plain; charset=utf-8
//! Content-Length: <the body's length in bytes>
//!
//! <a short body that says to retry after N seconds>
//! ```
//!
//! with CRLF line ends, N from [`retry_after_secs`], and a body holding
//! `N` followed by ` second` (the tests look for it: "retry after 2
//! seconds" will do). No `Connection: close`: a limited client has done
//! nothing wrong with its connection, and closing it would only make it
//! pay a new handshake for its next, allowed request.
//!
//! When your bucket passes, compare it with the chapter's own,
//! `crate::algorithm::TokenBucket` (in `src/algorithm/token_bucket.rs`).
//!
//! Run it: `cargo test -p ch07-rate-limit --no-default-features lab_5`.

use crate::clock::Nanos;

/// A token bucket: at most `capacity` requests at once, `refill_per_sec`
/// per second on average.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    // TODO: your fields. (What does the bucket need to remember between
    // calls, so that it can work out the refill lazily?)
}

impl TokenBucket {
    /// A full bucket at `now`: `capacity` tokens (0 counts as 1), refilled
    /// at `refill_per_sec` tokens per second (never, if that is not a
    /// finite number above 0).
    pub fn new(capacity: u32, refill_per_sec: f64, now: Nanos) -> TokenBucket {
        // TODO: clamp the settings, and start full.
        let _ = (capacity, refill_per_sec, now);
        todo!("lab 5: create a full bucket")
    }

    /// Takes one token at `now`: `Ok(())`, or `Err(wait)` with the
    /// nanoseconds until a whole token is there (at least 1; `Nanos::MAX`
    /// if the bucket never refills).
    pub fn try_take(&mut self, now: Nanos) -> Result<(), Nanos> {
        // TODO: refill for the time since the last call (capped at the
        // capacity; nothing if time went backwards), then take or refuse.
        let _ = now;
        todo!("lab 5: take a token, or say how long to wait")
    }

    /// The tokens in the bucket at `now`, fractions included; takes none.
    pub fn tokens(&self, now: Nanos) -> f64 {
        // TODO: the same refill as `try_take`, without storing it.
        let _ = now;
        todo!("lab 5: count the tokens")
    }
}

/// The `Retry-After` value for a wait of `wait` ns: whole seconds, rounded
/// up, at least 1.
pub fn retry_after_secs(wait: Nanos) -> u64 {
    // TODO: round up to whole seconds, never below 1.
    let _ = wait;
    todo!("lab 5: nanoseconds to Retry-After seconds")
}

/// A complete `429 Too Many Requests` response telling the client to retry
/// after `wait` ns (rounded up to whole seconds).
pub fn too_many_requests(wait: Nanos) -> Vec<u8> {
    // TODO: the status line, Retry-After, Content-Type, Content-Length,
    // the empty line, and the body.
    let _ = wait;
    todo!("lab 5: build the 429 response")
}
