//! # Lab 6.2 — a small HTTP cache in the forward proxy
//!
//! Let the forward proxy answer repeated GETs from memory.
//!
//! - [`cache_ttl`] decides whether a response may be stored and for how
//!   long: only for a `GET` request, only for a `200` response, only when
//!   the response's `Cache-Control` has `max-age=N` with N > 0 (the time
//!   to live is N seconds), and never when either the request's or the
//!   response's `Cache-Control` says `no-store`, or the response's says
//!   `no-cache` or `private`. Directive names ignore case; `Cache-Control`
//!   may be one header with commas or several headers. A `max-age` above
//!   2147483648 (2^31 seconds, 68 years) counts as 2147483648 (RFC 9111
//!   section 1.2.2): the origin server chooses the number, and `Instant +
//!   Duration` panics on overflow.
//! - [`HttpCache`] holds whole responses (the bytes as sent to the client)
//!   by key (the absolute URL). It is bounded two ways: at most
//!   `max_entries` responses and at most `max_bytes` bytes of responses in
//!   total. A response bigger than `max_bytes` is not stored (`put`
//!   returns false). When a `put` would go over a bound, the least recently
//!   used entries (by `get` or `put`) are evicted until it fits.
//! - `get` returns a stored response only before its expiry
//!   (`now < stored_at + ttl`); an expired entry is removed. The clock is
//!   passed in (`now`), so tests control time.
//! - All methods take `&self` (connection threads share one cache): keep
//!   the state behind a `Mutex`.
//! - **Invalidation** (Appendix D's Lab 6): a stored response goes stale
//!   the moment a request changes what it shows. [`invalidates`] says
//!   when (RFC 9111 section 4.4): a request with an *unsafe* method
//!   (anything but `GET`, `HEAD`, `OPTIONS` and `TRACE`; compare the
//!   method's name exactly, methods are case-sensitive) whose response
//!   is not an error (a status below 400). The proxy then calls
//!   [`HttpCache::remove`] with the request's URL, which drops the entry
//!   if there is one (returns whether there was) and gives its bytes
//!   back. So after a `POST` to a URL, the next `GET` of it goes to the
//!   origin again.
//!
//! Run it: `cargo test -p ch02-proxy --no-default-features lab_6_2`.

use std::time::{Duration, Instant};

use crate::http::{RequestHead, ResponseHead};

/// A bounded, expiring, least-recently-used response cache.
#[derive(Debug)]
pub struct HttpCache {
    // TODO: your fields (bounds, and a Mutex around the entries).
}

impl HttpCache {
    /// An empty cache with these bounds.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        // TODO: build the empty cache.
        let _ = (max_entries, max_bytes);
        todo!("lab 6.2: create the cache")
    }

    /// The byte bound (the proxy does not try to cache anything bigger).
    pub fn max_bytes(&self) -> usize {
        todo!("lab 6.2: the byte bound")
    }

    /// The stored response for `key`, if present and fresh at `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<Vec<u8>> {
        // TODO: look up, check expiry, mark as recently used.
        let _ = (key, now);
        todo!("lab 6.2: look up a response")
    }

    /// Stores `response` under `key` for `ttl` from `now`; false if it can
    /// never fit.
    pub fn put(&self, key: &str, response: Vec<u8>, ttl: Duration, now: Instant) -> bool {
        // TODO: refuse oversize responses, evict LRU entries, insert.
        let _ = (key, response, ttl, now);
        todo!("lab 6.2: store a response")
    }

    /// Number of stored responses.
    pub fn len(&self) -> usize {
        todo!("lab 6.2: count entries")
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of stored responses.
    pub fn bytes(&self) -> usize {
        todo!("lab 6.2: count bytes")
    }

    /// Drops the response stored for `key`, if any; whether there was one.
    pub fn remove(&self, key: &str) -> bool {
        // TODO: remove the entry and give its bytes back.
        let _ = key;
        todo!("lab 6 (invalidation): remove an entry")
    }
}

/// Whether a request with `method` answered with `status` makes the
/// stored response for its URL stale.
pub fn invalidates(method: &str, status: u16) -> bool {
    // TODO: unsafe methods, answered without an error.
    let _ = (method, status);
    todo!("lab 6 (invalidation): which requests invalidate")
}

/// How long `response` to `request` may be cached, or `None`.
pub fn cache_ttl(request: &RequestHead, response: &ResponseHead) -> Option<Duration> {
    // TODO: the rules in the module docs; Headers::tokens helps.
    let _ = (request, response);
    todo!("lab 6.2: decide cacheability")
}
