//! # Chapter 2 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run one lab's tests with
//!
//! ```text
//! cargo test -p ch02-proxy --no-default-features lab_6_1
//! ```
//!
//! Types that a lab's signature needs but that are not part of the
//! exercise live here, and so does the glue that fits a lab to the trait
//! the proxy defines for it, which the binaries then plug in: the core
//! (`forward.rs`, `reverse.rs`) never calls a lab itself.

use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Instant;

use crate::forward::ResponseCache;
use crate::http::{RequestHead, ResponseHead};

#[cfg_attr(feature = "reference", path = "../../solutions/lab_6_1_request_logging.rs")]
pub mod lab_6_1_request_logging;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_6_2_http_cache.rs")]
pub mod lab_6_2_http_cache;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_6_3_forwarding_chain.rs")]
pub mod lab_6_3_forwarding_chain;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_6_4_timeouts.rs")]
pub mod lab_6_4_timeouts;

/// Lab 6.2's cache as the forward proxy's [`ResponseCache`]: a response
/// is stored when [`cache_ttl`](lab_6_2_http_cache::cache_ttl) gives it a
/// time to live.
impl ResponseCache for lab_6_2_http_cache::HttpCache {
    fn lookup(&self, key: &str, now: Instant) -> Option<Vec<u8>> {
        self.get(key, now)
    }

    fn store(&self, key: &str, request: &RequestHead, response: &ResponseHead, bytes: Vec<u8>, now: Instant) {
        if let Some(ttl) = lab_6_2_http_cache::cache_ttl(request, response) {
            self.put(key, bytes, ttl, now);
        }
    }

    fn max_bytes(&self) -> usize {
        lab_6_2_http_cache::HttpCache::max_bytes(self)
    }

    fn after(&self, key: &str, method: &str, status: u16) {
        if lab_6_2_http_cache::invalidates(method, status) {
            self.remove(key);
        }
    }
}

/// Lab 6.1's access log: lines go to any writer (a file, stderr, a buffer).
pub struct RequestLogger {
    /// Where lines are written; the mutex keeps each line whole.
    pub out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for RequestLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestLogger")
    }
}

impl RequestLogger {
    /// A logger writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out: Mutex::new(out) }
    }
}

/// Why lab 6.4's connect gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// There was no address to try.
    #[error("no address to connect to")]
    NoAddress,
    /// Every address refused (nothing listening there).
    #[error("connection refused")]
    Refused,
    /// At least one address did not answer within the timeout.
    #[error("connection timed out")]
    TimedOut,
    /// Another error, from the last address tried.
    #[error("connect failed: {0:?}")]
    Other(io::ErrorKind),
}

impl ConnectError {
    /// The status a proxy answers with: 504 for a timeout, 502 otherwise.
    pub fn status(&self) -> u16 {
        if *self == ConnectError::TimedOut { 504 } else { 502 }
    }
}

/// How lab 6.4's copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyEnd {
    /// The source closed; this many bytes were copied.
    Eof(u64),
    /// Nothing arrived for the idle timeout; this many bytes were copied.
    Idle(u64),
}
