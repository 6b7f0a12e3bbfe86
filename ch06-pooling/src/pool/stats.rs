//! The pool's counters: atomics, so the signal thread can print them while
//! the loop runs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

// ANCHOR: evicted
/// Why a kept connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evicted {
    /// Idle too long (our timeout, or the backend's promised one).
    Ttl,
    /// The pool was full; the least recently used went.
    Lru,
    /// The backend closed it while it was idle (FIN or RST seen by the loop).
    ClosedByPeer,
    /// The backend sent bytes while it was idle.
    UnexpectedData,
    /// Its backend was marked down.
    Unhealthy,
    /// It carried the most requests one connection may.
    MaxRequests,
    /// Found dead when taken out for a request (the peek).
    StaleAtCheckout,
}

impl Evicted {
    /// Every reason, in report order.
    pub const ALL: [Evicted; 7] = [
        Evicted::Ttl,
        Evicted::Lru,
        Evicted::ClosedByPeer,
        Evicted::UnexpectedData,
        Evicted::Unhealthy,
        Evicted::MaxRequests,
        Evicted::StaleAtCheckout,
    ];

    /// The reason's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Evicted::Ttl => "ttl",
            Evicted::Lru => "lru",
            Evicted::ClosedByPeer => "closed_by_peer",
            Evicted::UnexpectedData => "unexpected_data",
            Evicted::Unhealthy => "unhealthy",
            Evicted::MaxRequests => "max_requests",
            Evicted::StaleAtCheckout => "stale_at_checkout",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}
// ANCHOR_END: evicted

/// The counters.
#[derive(Debug, Default)]
pub struct PoolStats {
    created: AtomicU64,
    reused: AtomicU64,
    returned: AtomicU64,
    not_reusable: AtomicU64,
    idle: AtomicU64,
    evicted: [AtomicU64; 7],
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Connections opened because none was kept (misses).
    pub created: u64,
    /// Requests that went out on a kept connection (hits).
    pub reused: u64,
    /// Connections idle in the pool now.
    pub idle: u64,
    /// Connections carrying a request now.
    pub in_use: u64,
    /// Connections closed at the end of an exchange because they could not
    /// carry another (the backend said close, the exchange failed).
    pub not_reusable: u64,
    /// Kept connections closed, by [`Evicted`] reason (in `Evicted::ALL` order).
    pub evicted: [u64; 7],
}

impl Snapshot {
    // ANCHOR: hit_rate
    /// Connections open now: idle and in use.
    pub fn total(&self) -> u64 {
        self.idle + self.in_use
    }

    /// The share of requests that found a kept connection (0 with none).
    pub fn hit_rate(&self) -> f64 {
        let all = self.created + self.reused;
        if all == 0 { 0.0 } else { self.reused as f64 / all as f64 }
    }
    // ANCHOR_END: hit_rate

    /// Evictions for `reason`.
    pub fn evicted(&self, reason: Evicted) -> u64 {
        self.evicted.get(reason.index()).copied().unwrap_or(0)
    }

    /// The lines for the statistics report.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "backend connection pool: {} open ({} idle, {} in use); {} opened, {} reused: hit rate {:.2} %",
            self.total(),
            self.idle,
            self.in_use,
            self.created,
            self.reused,
            self.hit_rate() * 100.0
        );
        let reasons: Vec<String> = Evicted::ALL.iter().map(|&r| format!("{} {}", r.name(), self.evicted(r))).collect();
        let _ =
            writeln!(out, "  evicted: {}; not reusable after the exchange: {}", reasons.join(", "), self.not_reusable);
        out
    }
}

impl PoolStats {
    pub(super) fn checked_out(&self, reused: bool) {
        let counter = if reused { &self.reused } else { &self.created };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn returned(&self) {
        self.returned.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn not_reusable(&self) {
        self.not_reusable.fetch_add(1, Ordering::Relaxed);
    }

    /// One more or one fewer idle connection: added, not stored, since
    /// the pools of several loops may share these counters.
    pub(super) fn idle_changed(&self, by: i64) {
        if by >= 0 {
            self.idle.fetch_add(by.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.idle.fetch_sub(by.unsigned_abs(), Ordering::Relaxed);
        }
    }

    pub(super) fn evict(&self, reason: Evicted) {
        if let Some(counter) = self.evicted.get(reason.index()) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (created, reused, returned) = (load(&self.created), load(&self.reused), load(&self.returned));
        Snapshot {
            created,
            reused,
            idle: load(&self.idle),
            in_use: (created + reused).saturating_sub(returned),
            not_reusable: load(&self.not_reusable),
            evicted: self.evicted.each_ref().map(load),
        }
    }
}
