//! Backends: where requests go, and what we know about each one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

// ANCHOR: backend
/// One backend server and its live counters. Shared between connection
/// threads behind an `Arc`; every field is atomic or locked, so no thread
/// ever waits for another to read a counter.
#[derive(Debug)]
pub struct Backend {
    /// `host:port` to connect to.
    pub addr: String,
    /// Relative share of traffic for weighted strategies (1 by default).
    pub weight: u32,
    up: AtomicBool,
    /// While down: when it may be tried again.
    retry_at: Mutex<Option<Instant>>,
    /// Requests being served right now.
    pub active: AtomicU64,
    /// Requests sent to it.
    pub requests: AtomicU64,
    /// Connection attempts or exchanges that failed.
    pub failures: AtomicU64,
    /// Bytes sent to it (requests).
    pub bytes_out: AtomicU64,
    /// Bytes received from it (responses).
    pub bytes_in: AtomicU64,
}
// ANCHOR_END: backend

/// Why a `--backend` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad backend {spec:?}: {why} (expected host:port or host:port:weight)")]
pub struct BackendSpecError {
    /// The value given.
    pub spec: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl Backend {
    /// A backend at `addr` (`host:port`) with `weight`.
    pub fn new(addr: impl Into<String>, weight: u32) -> Self {
        Self {
            addr: addr.into(),
            weight,
            up: AtomicBool::new(true),
            retry_at: Mutex::new(None),
            active: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
        }
    }

    /// Parses `host:port` or `host:port:weight` (`[v6]:port[:weight]`),
    /// with or without `http://` in front. A TLS backend (`https://`, port
    /// 443) is refused: we would speak plain HTTP to it.
    pub fn parse(spec: &str) -> Result<Self, BackendSpecError> {
        let err = |why| BackendSpecError { spec: spec.to_string(), why };
        if ch02_proxy::proxy::is_tls_backend(spec) {
            return Err(err(ch02_proxy::proxy::NO_TLS_TO_BACKENDS));
        }
        let spec = spec.trim_end_matches('/');
        let spec = spec.strip_prefix("http://").or_else(|| spec.strip_prefix("HTTP://")).unwrap_or(spec);
        let parts: Vec<&str> = if let Some(rest) = spec.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| err("unclosed ["))?;
            let after = after.strip_prefix(':').ok_or_else(|| err("missing port"))?;
            let mut v = vec![host];
            v.extend(after.split(':'));
            v
        } else {
            spec.split(':').collect()
        };
        let (host, port, weight) = match parts[..] {
            [host, port] => (host, port, "1"),
            [host, port, weight] => (host, port, weight),
            _ => return Err(err("wrong number of ':'")),
        };
        if host.is_empty() {
            return Err(err("empty host"));
        }
        let port: u16 = port.parse().map_err(|_| err("port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(err("port 0"));
        }
        let weight: u32 = weight.parse().map_err(|_| err("weight is not a whole number"))?;
        if weight == 0 || weight > 1000 {
            return Err(err("weight must be from 1 to 1000"));
        }
        let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        Ok(Self::new(addr, weight))
    }

    /// Whether the backend is believed to be up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Whether a request may go to it now: it is up, or it is down but its
    /// retry time has come (the next request is the probe).
    pub fn is_available(&self, now: Instant) -> bool {
        self.is_up() || self.retry_at.lock().unwrap_or_else(PoisonError::into_inner).is_none_or(|t| now >= t)
    }

    /// Marks it down, to be retried after `retry_after`. Returns true when
    /// this changed its state (so the caller logs the transition once).
    pub fn mark_down(&self, retry_after: Duration) -> bool {
        *self.retry_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + retry_after);
        self.up.swap(false, Ordering::SeqCst)
    }

    /// Marks it up. Returns true when this changed its state.
    pub fn mark_up(&self) -> bool {
        *self.retry_at.lock().unwrap_or_else(PoisonError::into_inner) = None;
        !self.up.swap(true, Ordering::SeqCst)
    }
}

// ANCHOR: backend_set
/// The backends behind one load balancer, and the round-robin position.
#[derive(Debug)]
pub struct BackendSet {
    backends: Vec<Arc<Backend>>,
    next: AtomicUsize,
}

impl BackendSet {
    /// A set of these backends (in this order).
    pub fn new(backends: Vec<Backend>) -> Self {
        Self { backends: backends.into_iter().map(Arc::new).collect(), next: AtomicUsize::new(0) }
    }

    /// All backends, up or down.
    pub fn all(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// Round robin: each call moves one step along the list and returns
    /// the first available backend from there, so requests rotate evenly
    /// and a down backend's turn passes to the next one.
    pub fn next_round_robin(&self, now: Instant) -> Option<Arc<Backend>> {
        let n = self.backends.len();
        if n == 0 {
            return None;
        }
        // fetch_add hands every thread a different starting point without a lock.
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| &self.backends[start.wrapping_add(i) % n]).find(|b| b.is_available(now)).cloned()
    }
}
// ANCHOR_END: backend_set

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_specs() {
        let b = Backend::parse("127.0.0.1:9001").unwrap();
        assert_eq!((b.addr.as_str(), b.weight), ("127.0.0.1:9001", 1));
        let b = Backend::parse("localhost:80:5").unwrap();
        assert_eq!((b.addr.as_str(), b.weight), ("localhost:80", 5));
        let b = Backend::parse("[::1]:8080:2").unwrap();
        assert_eq!((b.addr.as_str(), b.weight), ("[::1]:8080", 2));
        for bad in ["", "host", "host:", ":80", "h:0", "h:99999", "h:80:0", "h:80:x", "h:1:2:3", "[::1:80"] {
            assert!(Backend::parse(bad).is_err(), "{bad}");
        }
        assert!(Backend::parse("h:80:x").unwrap_err().to_string().contains("weight"));
        let b = Backend::parse("http://127.0.0.1:9001/").unwrap();
        assert_eq!(b.addr, "127.0.0.1:9001", "the seeds write backends as URLs");
    }

    #[test]
    fn tls_backends_are_refused_with_a_reason() {
        for tls in ["https://example.com", "example.com:443", "10.0.0.1:443:2"] {
            let e = Backend::parse(tls).unwrap_err().to_string();
            assert!(e.contains("TLS to backends is not part of this curriculum"), "{tls}: {e}");
        }
    }

    #[test]
    fn round_robin_rotates_and_skips_down_backends() {
        let set = BackendSet::new(vec![Backend::new("a:1", 1), Backend::new("b:1", 1), Backend::new("c:1", 1)]);
        let now = Instant::now();
        let picks: Vec<String> = (0..6).map(|_| set.next_round_robin(now).unwrap().addr.clone()).collect();
        assert_eq!(picks, ["a:1", "b:1", "c:1", "a:1", "b:1", "c:1"]);
        set.all()[1].mark_down(Duration::from_secs(60));
        let picks: Vec<String> = (0..4).map(|_| set.next_round_robin(now).unwrap().addr.clone()).collect();
        assert!(!picks.contains(&"b:1".to_string()), "{picks:?}");
        for b in set.all() {
            b.mark_down(Duration::from_secs(60));
        }
        assert!(set.next_round_robin(now).is_none());
        // After the retry time, a down backend is offered again as a probe.
        assert!(set.next_round_robin(now + Duration::from_secs(61)).is_some());
    }

    #[test]
    fn transitions_are_reported_once() {
        let b = Backend::new("a:1", 1);
        assert!(b.mark_down(Duration::ZERO));
        assert!(!b.mark_down(Duration::ZERO));
        assert!(b.mark_up());
        assert!(!b.mark_up());
    }
}
