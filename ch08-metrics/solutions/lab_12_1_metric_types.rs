//! # Lab 12.1 — a counter, a gauge and a histogram, and their exposition
//!
//! A metric is a number a program keeps about itself and lets a monitoring
//! system read. Prometheus, the system most load balancers are watched
//! with, knows three kinds, and this lab writes all three, then the text a
//! scrape of them returns. (The chapter's own versions are in
//! `src/metric.rs` and `src/registry.rs`: do this lab before reading them.)
//!
//! ## The three kinds
//!
//! Many threads update a metric at once (every connection, every worker)
//! while another reads it for a scrape, so each must be `Sync` and take no
//! lock: use atomics (`std::sync::atomic`), `Ordering::Relaxed` is enough
//! (a metric orders nothing else).
//!
//! - [`Counter`]: only goes up. `inc` adds 1, `add(n)` adds `n`, `get`
//!   reads it. Starts at 0.
//! - [`Gauge`]: goes up and down (connections open now). `set`, `inc`,
//!   `dec`, `get`, on an `i64`. Starts at 0.
//! - [`Histogram`]: counts observations into buckets with fixed upper
//!   bounds (`le`, "less than or equal"), and keeps their sum and count.
//!   - [`Histogram::new`] takes the bounds in any order; it keeps the
//!     finite ones, sorted ascending, each once (NaN and infinities are
//!     dropped: `+Inf` is always there, implicitly, as the last bucket).
//!   - [`Histogram::observe`] puts a value in the first bucket whose bound
//!     is at least the value (a value equal to a bound belongs to that
//!     bucket), or in the `+Inf` bucket past the last bound, adds it to the
//!     sum and 1 to the count. NaN is ignored entirely.
//!   - [`Histogram::cumulative`] returns, for each bound and then `+Inf`,
//!     how many observations were *at most* that bound: Prometheus wants
//!     cumulative counts, so the last one equals the count. (Store the
//!     buckets apart and add them up here: then `observe` touches one
//!     bucket, not every bucket above it.)
//!   - [`Histogram::sum`] and [`Histogram::count`]. The sum is an `f64`;
//!     an atomic `f64` is an `AtomicU64` holding the bits (`f64::to_bits`,
//!     `f64::from_bits`) updated with a compare-and-swap loop.
//!
//! ## The exposition: [`expose`]
//!
//! A scrape is text, one family after another. For a family called `name`
//! with help text `help`, of kind [`Kind`]:
//!
//! ```text
//! # HELP lb_requests_total Requests answered.
//! # TYPE lb_requests_total counter
//! lb_requests_total{backend="a:1",status="200"} 41
//! lb_requests_total{backend="b:2",status="200"} 7
//! ```
//!
//! - `# HELP name help`, with `\` written `\\` and a newline `\n` in the
//!   help; then `# TYPE name counter` (or `gauge`, `histogram`).
//! - Then each series, in the order given: the name, its labels in braces
//!   (`{a="x",b="y"}`, in the order given; nothing at all, not even `{}`,
//!   when a series has no labels), a space, the value, a newline.
//! - Label values are quoted, with `\` written `\\`, `"` written `\"` and
//!   a newline `\n`.
//! - Values are written as Rust's `Display` writes an `f64` (`41`,
//!   `0.005`, `2.5`), except infinities: `+Inf` and `-Inf`.
//! - A histogram series is several lines: `name_bucket` with the series'
//!   labels and one more, `le`, for each bound and then `le="+Inf"`, each
//!   with its cumulative count; then `name_sum` and `name_count` with the
//!   series' labels:
//!
//! ```text
//! # HELP lb_request_duration_seconds Latency.
//! # TYPE lb_request_duration_seconds histogram
//! lb_request_duration_seconds_bucket{backend="a:1",le="0.1"} 1
//! lb_request_duration_seconds_bucket{backend="a:1",le="1"} 2
//! lb_request_duration_seconds_bucket{backend="a:1",le="+Inf"} 3
//! lb_request_duration_seconds_sum{backend="a:1"} 5.55
//! lb_request_duration_seconds_count{backend="a:1"} 3
//! ```
//!
//! Every line ends with a newline, the last one too. The tests compare
//! your text with such files exactly, and hand it to `promtool check
//! metrics` (Prometheus' own checker) when it is installed.
//!
//! When your types pass, compare them with the chapter's own, in
//! `src/metric.rs` and `src/registry.rs`.
//!
//! Run it: `cargo test -p ch08-metrics --no-default-features lab_12_1`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A number that only goes up.
#[derive(Debug, Default)]
pub struct Counter {
    value: AtomicU64,
}

impl Counter {
    /// A counter at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds 1.
    pub fn inc(&self) {
        self.add(1);
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

/// A number that goes up and down.
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

    /// Adds 1.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes 1 away.
    pub fn dec(&self) {
        self.value.fetch_sub(1, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// Observations counted into buckets, with their sum and count.
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// One per bound, then `+Inf`; not cumulative.
    buckets: Vec<AtomicU64>,
    /// The sum's bits.
    sum: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds (see the module docs).
    pub fn new(bounds: &[f64]) -> Self {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self { bounds, buckets, sum: AtomicU64::new(0f64.to_bits()) }
    }

    /// The finite bounds, ascending.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Counts `v`.
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let i = self.bounds.partition_point(|&b| b < v);
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let mut old = self.sum.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(old) + v).to_bits();
            match self.sum.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => old = now,
            }
        }
    }

    /// Observations at most each bound, then in all (`+Inf`).
    pub fn cumulative(&self) -> Vec<u64> {
        let mut total = 0;
        self.buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect()
    }

    /// The sum of the observations.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.cumulative().last().copied().unwrap_or(0)
    }
}

/// A family's series, of one kind: each with its labels.
#[derive(Debug, Clone, Copy)]
pub enum Kind<'a> {
    /// Counters.
    Counter(&'a [(&'a [(&'a str, &'a str)], &'a Counter)]),
    /// Gauges.
    Gauge(&'a [(&'a [(&'a str, &'a str)], &'a Gauge)]),
    /// Histograms.
    Histogram(&'a [(&'a [(&'a str, &'a str)], &'a Histogram)]),
}

/// The text of one family: HELP, TYPE and every series (see the module
/// docs).
pub fn expose(name: &str, help: &str, kind: Kind<'_>) -> String {
    let mut out = String::new();
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    let type_name = match kind {
        Kind::Counter(_) => "counter",
        Kind::Gauge(_) => "gauge",
        Kind::Histogram(_) => "histogram",
    };
    let _ = writeln!(out, "\n# TYPE {name} {type_name}");
    match kind {
        Kind::Counter(series) => {
            for (labels, c) in series {
                sample(&mut out, name, labels, None, c.get() as f64);
            }
        }
        Kind::Gauge(series) => {
            for (labels, g) in series {
                sample(&mut out, name, labels, None, g.get() as f64);
            }
        }
        Kind::Histogram(series) => {
            for (labels, h) in series {
                let bucket = format!("{name}_bucket");
                let cumulative = h.cumulative();
                for (i, count) in cumulative.iter().enumerate() {
                    let le = h.bounds().get(i).map_or_else(|| "+Inf".to_string(), |b| number(*b));
                    sample(&mut out, &bucket, labels, Some(&le), *count as f64);
                }
                sample(&mut out, &format!("{name}_sum"), labels, None, h.sum());
                sample(&mut out, &format!("{name}_count"), labels, None, h.count() as f64);
            }
        }
    }
    out
}

fn number(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        v.to_string()
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], le: Option<&str>, value: f64) {
    out.push_str(name);
    let pairs: Vec<(&str, &str)> = labels.iter().copied().chain(le.map(|le| ("le", le))).collect();
    if !pairs.is_empty() {
        out.push('{');
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}
