//! The three kinds of metric, each a handle to shared atomics: cloning an
//! `Arc` of one is how a connection, a backend or a thread gets to update
//! it, and updating is one atomic instruction (two or three for a
//! histogram), never a lock.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

// ANCHOR: counter
/// A number that only goes up: requests served, bytes sent. Prometheus
/// computes rates from it, and a restart (back to 0) is understood as one.
#[derive(Debug, Default)]
pub struct Counter {
    value: AtomicU64,
}

impl Counter {
    /// A counter at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}
// ANCHOR_END: counter

/// A number that goes up and down: connections open now, backends up.
#[derive(Debug, Default)]
pub struct Gauge {
    value: AtomicI64,
}

impl Gauge {
    /// A gauge at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.value.store(v, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one away.
    pub fn dec(&self) {
        self.value.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds `n` (negative to take away).
    pub fn add(&self, n: i64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

// ANCHOR: histogram
/// How a quantity is distributed: each observation is counted in the
/// first bucket whose upper bound holds it, and added to a running sum.
/// Prometheus wants the buckets cumulative (`le="0.5"` counts everything
/// up to 0.5 s); they are stored apart and summed when rendered, so an
/// observation touches one bucket, not all those above it.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds, increasing, finite; `+Inf` is implied.
    bounds: Box<[f64]>,
    /// One per bound, and one more for `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum of observations, as f64 bits.
    sum: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds (sorted, duplicates and
    /// non-finite values dropped).
    pub fn new(bounds: &[f64]) -> Self {
        let mut b: Vec<f64> = bounds.iter().copied().filter(|x| x.is_finite()).collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        let counts = (0..=b.len()).map(|_| AtomicU64::new(0)).collect();
        Self { bounds: b.into_boxed_slice(), counts, sum: AtomicU64::new(0f64.to_bits()) }
    }

    /// Counts one observation. NaN is not a value: it is ignored.
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        // The first bound >= v (bounds are inclusive: `le`).
        let i = self.bounds.partition_point(|&b| b < v);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        // f64 has no atomic add: compare-and-swap until ours lands.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + v).to_bits()));
    }

    /// Counts a duration, in seconds (Prometheus' base unit).
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// The upper bounds.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Cumulative counts, one per bound and the last for `+Inf` (which is
    /// the total count).
    pub fn cumulative(&self) -> Vec<u64> {
        let mut total = 0;
        self.counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect()
    }

    /// The sum of every observation.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// An estimate of quantile `q` (0 to 1) by linear interpolation inside
    /// the bucket that holds it, as Prometheus' `histogram_quantile` does;
    /// `None` with no observation.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let cumulative = self.cumulative();
        let total = *cumulative.last()?;
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let i = cumulative.iter().position(|&c| c as f64 >= rank)?;
        let Some(&upper) = self.bounds.get(i) else {
            // In the +Inf bucket: the highest finite bound is all we know.
            return self.bounds.last().copied();
        };
        let lower = if i == 0 { 0.0 } else { self.bounds.get(i - 1).copied().unwrap_or(0.0) };
        let below = if i == 0 { 0 } else { cumulative.get(i - 1).copied().unwrap_or(0) };
        let inside = cumulative.get(i).copied().unwrap_or(0) - below;
        if inside == 0 {
            return Some(upper);
        }
        Some(lower + (upper - lower) * (rank - below as f64) / inside as f64)
    }
}
// ANCHOR_END: histogram

/// Buckets for request latencies, in seconds: 1, 2.5 and 5 in each decade
/// from a millisecond, then 10, 20, 30 and 60 seconds. A backend that
/// takes 25 s is still told apart from one that takes 11 (buckets that
/// stop at 10 s would put both in `+Inf`).
pub fn latency_buckets() -> Vec<f64> {
    let mut out = Vec::new();
    for decade in [0.001, 0.01, 0.1, 1.0] {
        for m in [1.0, 2.5, 5.0] {
            out.push(decade * m);
        }
    }
    out.extend([10.0, 20.0, 30.0, 60.0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_count() {
        let c = Counter::new();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        let g = Gauge::new();
        g.inc();
        g.inc();
        g.dec();
        g.add(-5);
        assert_eq!(g.get(), -4);
        g.set(7);
        assert_eq!(g.get(), 7);
    }

    #[test]
    fn a_histogram_counts_into_inclusive_buckets() {
        let h = Histogram::new(&[1.0, 0.5, 2.0, 2.0, f64::INFINITY]);
        assert_eq!(h.bounds(), [0.5, 1.0, 2.0]);
        for v in [0.1, 0.5, 0.7, 1.0, 3.0, f64::NAN] {
            h.observe(v);
        }
        assert_eq!(h.cumulative(), [2, 4, 4, 5]);
        assert_eq!(h.count(), 5);
        assert!((h.sum() - 5.3).abs() < 1e-9);
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket() {
        let h = Histogram::new(&[1.0, 2.0]);
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..10 {
            h.observe(1.5);
        }
        // All ten in (1, 2]: the median is half-way through that bucket.
        assert_eq!(h.quantile(0.5), Some(1.5));
        h.observe(100.0);
        assert_eq!(h.quantile(1.0), Some(2.0), "in +Inf: the top finite bound");
    }

    #[test]
    fn latency_buckets_run_from_a_millisecond_to_a_minute() {
        let b = latency_buckets();
        assert_eq!(b.first(), Some(&0.001));
        assert_eq!(b.last(), Some(&60.0));
        assert!(b.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn observations_from_many_threads_all_count() {
        let h = std::sync::Arc::new(Histogram::new(&latency_buckets()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = std::sync::Arc::clone(&h);
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        h.observe(f64::from(t * 10_000 + i) / 1e5);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.count(), 40_000);
        let exact: f64 = (0..40_000).map(|i| f64::from(i) / 1e5).sum();
        assert!((h.sum() - exact).abs() < 1e-6, "{} vs {exact}", h.sum());
    }
}
