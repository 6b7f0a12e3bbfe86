//! A backend as chapter 4 sees it: chapter 3's [`Backend`] (address,
//! UP/DOWN, counters) plus a weight that can change, health-check streaks,
//! the moment it recovered (for slow start) and a latency histogram.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use ch03_load_balancer::backend::Backend;

/// Weights are kept in hundredths inside the algorithms, so slow start
/// can ramp a weight of 1 smoothly instead of jumping from 0 to 1.
pub const WEIGHT_SCALE: u64 = 100;

/// Health bookkeeping of one node.
#[derive(Debug, Default, Clone, Copy)]
pub struct Health {
    /// Active probes failed in a row.
    pub probe_failures: u32,
    /// Active probes succeeded in a row.
    pub probe_successes: u32,
    /// Real requests failed in a row (passive checking).
    pub passive_failures: u32,
    /// When it last came back up (slow start counts from here).
    pub recovered_at: Option<Instant>,
}

// ANCHOR: latency
/// Request latencies in exponential buckets: bucket `i` counts latencies
/// up to `64 µs << i`. Recording is two atomic adds, so connection threads
/// never wait for each other; percentiles are read from the buckets.
#[derive(Debug)]
pub struct Latency {
    buckets: [AtomicU64; Latency::BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Latency {
    /// 64 µs up to about 9 minutes.
    pub const BUCKETS: usize = 24;

    fn bound_us(i: usize) -> u64 {
        64u64 << i
    }

    /// Records one latency.
    pub fn record(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = (0..Self::BUCKETS).find(|&i| us <= Self::bound_us(i)).unwrap_or(Self::BUCKETS - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The mean, or zero when nothing was recorded.
    pub fn mean(&self) -> Duration {
        let sum = self.sum_us.load(Ordering::Relaxed);
        Duration::from_micros(sum.checked_div(self.count()).unwrap_or(0))
    }

    /// An upper bound for the `q` quantile (0.99 for p99): the top of the
    /// bucket where the cumulative count reaches `q` of all.
    pub fn quantile(&self, q: f64) -> Duration {
        let n = self.count();
        if n == 0 {
            return Duration::ZERO;
        }
        let wanted = ((n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for i in 0..Self::BUCKETS {
            seen += self.buckets[i].load(Ordering::Relaxed);
            if seen >= wanted {
                return Duration::from_micros(Self::bound_us(i));
            }
        }
        Duration::from_micros(Self::bound_us(Self::BUCKETS - 1))
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}
// ANCHOR_END: latency

/// A backend with everything chapter 4 tracks about it.
#[derive(Debug)]
pub struct Node {
    /// Address, UP/DOWN and counters (chapter 3).
    pub backend: Backend,
    /// A stable short id, used in sticky-session cookies so the cookie
    /// does not reveal the backend's address.
    pub id: String,
    weight: AtomicU32,
    health: Mutex<Health>,
    /// Latency of successful requests.
    pub latency: Latency,
    /// Most requests it may serve at once; 0: no limit.
    max_active: AtomicU64,
}

/// FNV-1a: a tiny, stable hash (the same on every run and machine), for
/// ids and hashing strategies. Not for untrusted-key hash tables.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // A final mix (from MurmurHash3) spreads nearby inputs apart.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

impl Node {
    /// A node for `backend`, healthy.
    pub fn new(backend: Backend) -> Self {
        let id = format!("{:08x}", fnv1a(backend.addr.as_bytes()) as u32);
        let weight = AtomicU32::new(backend.weight);
        Self {
            backend,
            id,
            weight,
            health: Mutex::new(Health::default()),
            latency: Latency::default(),
            max_active: AtomicU64::new(0),
        }
    }

    /// Its address.
    pub fn addr(&self) -> &str {
        &self.backend.addr
    }

    /// The configured weight (it may be changed at run time).
    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    /// Changes the configured weight.
    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Ordering::Relaxed);
    }

    /// Whether it is up.
    pub fn is_healthy(&self) -> bool {
        self.backend.is_up()
    }

    /// Limits the requests it serves at once to `max` (0: no limit): a
    /// backend at its limit is passed over as if it were down, until one
    /// of its requests ends.
    pub fn set_max_active(&self, max: u64) {
        self.max_active.store(max, Ordering::Relaxed);
    }

    /// The limit of requests at once (0: none).
    pub fn max_active(&self) -> u64 {
        self.max_active.load(Ordering::Relaxed)
    }

    /// Whether it serves as many requests as its limit allows.
    pub fn is_full(&self) -> bool {
        let max = self.max_active();
        max > 0 && self.active() >= max
    }

    /// Counts one more request in progress, unless it is at its limit:
    /// one atomic step, so that two threads picking at once (chapter 10's
    /// workers) cannot both take its last place. False: it is full.
    pub fn try_begin(&self) -> bool {
        let max = self.max_active();
        let active = &self.backend.active;
        if max == 0 {
            active.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        active.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| (a < max).then_some(a + 1)).is_ok()
    }

    /// Requests in progress.
    pub fn active(&self) -> u64 {
        self.backend.active.load(Ordering::Relaxed)
    }

    /// The health bookkeeping, locked.
    pub fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ANCHOR: effective_weight
    /// The weight the algorithms use now, in hundredths: the configured
    /// weight, ramped up linearly during `slow_start` after a recovery so
    /// a backend that just came back (cold caches, empty pools) is not hit
    /// with its full share at once. Never below 1, so it still gets some.
    pub fn effective_weight(&self, now: Instant, slow_start: Duration) -> u64 {
        let full = u64::from(self.weight()) * WEIGHT_SCALE;
        let Some(since) = self.health().recovered_at else { return full };
        let elapsed = now.saturating_duration_since(since);
        if slow_start.is_zero() || elapsed >= slow_start {
            return full;
        }
        ((full as u128 * elapsed.as_nanos() / slow_start.as_nanos()) as u64).max(1)
    }
    // ANCHOR_END: effective_weight
}

/// The nodes of one backend group, with the settings every algorithm needs.
#[derive(Debug)]
pub struct Pool {
    /// The nodes, in configuration order.
    pub nodes: Vec<Arc<Node>>,
    /// How long a recovered node takes to reach its full weight.
    pub slow_start: Duration,
}

impl Pool {
    /// A pool of `backends` with no slow start.
    pub fn new(backends: Vec<Backend>) -> Self {
        Self { nodes: backends.into_iter().map(|b| Arc::new(Node::new(b))).collect(), slow_start: Duration::ZERO }
    }

    /// Whether node `i` may receive a request at `now`: up, or down but due
    /// for a retry, and below its limit of requests at once, if it has one.
    pub fn eligible(&self, i: usize, now: Instant) -> bool {
        self.nodes[i].backend.is_available(now) && !self.nodes[i].is_full()
    }

    /// Indices of the eligible nodes.
    pub fn eligible_indices(&self, now: Instant) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(move |&i| self.eligible(i, now))
    }

    /// Node `i`'s effective weight at `now`.
    pub fn weight(&self, i: usize, now: Instant) -> u64 {
        self.nodes[i].effective_weight(now, self.slow_start)
    }

    /// The index of the node with this address.
    pub fn find(&self, addr: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr() == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_racing_for_the_last_places_never_take_more_than_the_limit() {
        let node = std::sync::Arc::new(Node::new(Backend::new("127.0.0.1:9", 1)));
        node.set_max_active(3);
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let node = std::sync::Arc::clone(&node);
                std::thread::spawn(move || node.try_begin())
            })
            .collect();
        let taken = takers.into_iter().map(|t| t.join().unwrap()).filter(|&took| took).count();
        assert_eq!((taken, node.active()), (3, 3));
        assert!(node.is_full() && !node.try_begin());
        node.backend.active.fetch_sub(1, Ordering::Relaxed);
        assert!(node.try_begin(), "a place freed is taken again");
    }

    #[test]
    fn latency_mean_and_p99() {
        let l = Latency::default();
        for _ in 0..99 {
            l.record(Duration::from_micros(100));
        }
        l.record(Duration::from_millis(50));
        assert_eq!(l.count(), 100);
        assert_eq!(l.mean(), Duration::from_micros((99 * 100 + 50_000) / 100));
        assert_eq!(l.quantile(0.99), Duration::from_micros(128), "99 of 100 are within the 128 µs bucket");
        assert_eq!(l.quantile(1.0), Duration::from_micros(65_536));
        assert_eq!(Latency::default().quantile(0.99), Duration::ZERO);
    }

    #[test]
    fn slow_start_ramps_the_weight() {
        let n = Node::new(Backend::new("a:1", 4));
        let t0 = Instant::now();
        let ramp = Duration::from_secs(10);
        assert_eq!(n.effective_weight(t0, ramp), 400, "never recovered: full weight");
        n.health().recovered_at = Some(t0);
        assert_eq!(n.effective_weight(t0, ramp), 1, "just back: the least weight");
        assert_eq!(n.effective_weight(t0 + Duration::from_secs(5), ramp), 200);
        assert_eq!(n.effective_weight(t0 + Duration::from_secs(10), ramp), 400);
        assert_eq!(n.effective_weight(t0, Duration::ZERO), 400, "no slow start");
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = Node::new(Backend::new("127.0.0.1:9001", 1));
        let b = Node::new(Backend::new("127.0.0.1:9002", 1));
        assert_eq!(a.id, Node::new(Backend::new("127.0.0.1:9001", 1)).id);
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 8);
    }
}
