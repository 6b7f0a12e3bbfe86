//! # Lab 6.2 — a small HTTP cache (reference solution)
//!
//! Entries live in a map; recency is a counter stamped on each use, and
//! eviction scans for the smallest stamp. That is O(n) per eviction, fine
//! for a cache of a few hundred entries and much simpler than a linked
//! list. The task is in `src/labs/lab_6_2_http_cache.rs`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::http::{RequestHead, ResponseHead};

#[derive(Debug)]
struct Entry {
    response: Vec<u8>,
    expires: Instant,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    bytes: usize,
    clock: u64,
}

impl Inner {
    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= e.response.len();
        }
    }

    fn evict_lru(&mut self) {
        let oldest = self.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone());
        if let Some(key) = oldest {
            self.remove(&key);
        }
    }
}

/// A bounded, expiring, least-recently-used response cache.
#[derive(Debug)]
pub struct HttpCache {
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl HttpCache {
    /// An empty cache with these bounds.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self { max_entries, max_bytes, inner: Mutex::new(Inner::default()) }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The byte bound (the proxy does not try to cache anything bigger).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The stored response for `key`, if present and fresh at `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<Vec<u8>> {
        let mut inner = self.inner();
        inner.clock += 1;
        let clock = inner.clock;
        match inner.entries.get_mut(key) {
            Some(e) if now < e.expires => {
                e.last_used = clock;
                Some(e.response.clone())
            }
            Some(_) => {
                inner.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `response` under `key` for `ttl` from `now`; false if it can
    /// never fit.
    pub fn put(&self, key: &str, response: Vec<u8>, ttl: Duration, now: Instant) -> bool {
        if response.len() > self.max_bytes || self.max_entries == 0 {
            return false;
        }
        let mut inner = self.inner();
        inner.remove(key);
        while inner.entries.len() >= self.max_entries || inner.bytes + response.len() > self.max_bytes {
            inner.evict_lru();
        }
        inner.clock += 1;
        let last_used = inner.clock;
        inner.bytes += response.len();
        inner.entries.insert(key.to_string(), Entry { response, expires: now + ttl, last_used });
        true
    }

    /// Number of stored responses.
    pub fn len(&self) -> usize {
        self.inner().entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of stored responses.
    pub fn bytes(&self) -> usize {
        self.inner().bytes
    }

    /// Drops the response stored for `key`, if any; whether there was one.
    pub fn remove(&self, key: &str) -> bool {
        let mut inner = self.inner();
        let had = inner.entries.contains_key(key);
        inner.remove(key);
        had
    }
}

/// Whether a request with `method` answered with `status` makes the
/// stored response for its URL stale (RFC 9111 section 4.4).
pub fn invalidates(method: &str, status: u16) -> bool {
    let safe = matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE");
    !safe && status < 400
}

/// How long `response` to `request` may be cached, or `None`.
pub fn cache_ttl(request: &RequestHead, response: &ResponseHead) -> Option<Duration> {
    if request.method != "GET" || response.status != 200 {
        return None;
    }
    let lower = |t: String| t.to_ascii_lowercase();
    if request.headers.tokens("cache-control").map(lower).any(|d| d == "no-store") {
        return None;
    }
    let directives: Vec<String> = response.headers.tokens("cache-control").map(lower).collect();
    if directives.iter().any(|d| d == "no-store" || d == "no-cache" || d == "private") {
        return None;
    }
    let max_age = directives.iter().find_map(|d| d.strip_prefix("max-age=")?.trim_matches('"').parse::<u64>().ok())?;
    // RFC 9111 1.2.2: a larger delta-seconds counts as 2^31; unbounded, a
    // huge max-age would overflow `now + ttl` in `put` (found by fuzzing).
    (max_age > 0).then(|| Duration::from_secs(max_age.min(1 << 31)))
}
