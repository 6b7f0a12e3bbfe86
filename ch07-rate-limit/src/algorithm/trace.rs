//! Generated traffic, and how far an algorithm's decisions are from the
//! exact reference's. The tests use it to bound each algorithm's error;
//! `cargo run -p ch07-rate-limit --example compare` prints the table and
//! the figure data chapter 7 shows.

use super::{Algorithm, Decision};
use crate::clock::Nanos;

/// A small deterministic random sequence (an LCG): the same seed gives
/// the same trace on every machine, so a figure or a failure can be
/// reproduced.
#[derive(Debug, Clone)]
pub struct Lcg(pub u64);

impl Lcg {
    /// The next 31 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.next_u64() as f64 / (1u64 << 31) as f64
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An exponentially distributed gap with this mean: the time between
    /// arrivals of independent clicks (a Poisson process).
    pub fn exponential(&mut self, mean: f64) -> Nanos {
        let u = self.unit();
        (-(1.0 - u).ln() * mean) as Nanos
    }
}

/// Arrival times of a steady random stream: `rate` requests a second on
/// average, for `seconds`.
pub fn poisson(seed: u64, rate: f64, seconds: f64) -> Vec<Nanos> {
    let mut rng = Lcg(seed);
    let mean = 1e9 / rate;
    let end = (seconds * 1e9) as Nanos;
    let mut t = 0;
    let mut out = Vec::new();
    loop {
        t += rng.exponential(mean).max(1);
        if t >= end {
            return out;
        }
        out.push(t);
    }
}

/// Arrival times of a client that bursts: `size` requests almost at
/// once (a page and its assets), then quiet for a random pause of mean
/// `pause` seconds, for `seconds`.
pub fn bursts(seed: u64, size: u64, pause: f64, seconds: f64) -> Vec<Nanos> {
    let mut rng = Lcg(seed);
    let end = (seconds * 1e9) as Nanos;
    let mut t = 0;
    let mut out = Vec::new();
    while t < end {
        for _ in 0..1 + rng.below(size * 2) {
            t += rng.exponential(5e6).max(1); // ~5 ms apart within a burst
            out.push(t);
        }
        t += rng.exponential(pause * 1e9);
    }
    out.retain(|&x| x < end);
    out
}

/// Every decision an algorithm makes over `times`, from a fresh state.
pub fn decide_all<A: Algorithm>(alg: &A, times: &[Nanos]) -> Vec<Decision> {
    let mut state = alg.fresh();
    times.iter().map(|&t| alg.check(&mut state, t)).collect()
}

/// Where an algorithm's decisions differ from the reference's on the same
/// trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Disagreement {
    /// Requests in the trace.
    pub requests: usize,
    /// Allowed here, refused by the reference.
    pub wrongly_allowed: usize,
    /// Refused here, allowed by the reference.
    pub wrongly_limited: usize,
}

impl Disagreement {
    /// Compares two runs over the same trace.
    pub fn between(ours: &[Decision], reference: &[Decision]) -> Self {
        let mut d = Self { requests: ours.len().min(reference.len()), ..Self::default() };
        for (a, b) in ours.iter().zip(reference) {
            match (a.allowed(), b.allowed()) {
                (true, false) => d.wrongly_allowed += 1,
                (false, true) => d.wrongly_limited += 1,
                _ => {}
            }
        }
        d
    }

    /// Judges each decision by the exact rule, "at most `limit` requests
    /// in any `window`", applied to what *this* algorithm has let through
    /// so far. (Comparing with a separate run of the exact log would count
    /// every later decision as wrong once the two histories part ways:
    /// under overload they let through the same number, but not the same
    /// requests.) This is the error Cloudflare reports for its sliding
    /// window.
    pub fn against_rule(times: &[Nanos], ours: &[Decision], limit: usize, window: Nanos) -> Self {
        let mut d = Self { requests: ours.len().min(times.len()), ..Self::default() };
        let mut recent = std::collections::VecDeque::new();
        for (&t, decision) in times.iter().zip(ours) {
            while recent.front().is_some_and(|&x: &Nanos| x + window <= t) {
                recent.pop_front();
            }
            let exact = recent.len() < limit;
            match (decision.allowed(), exact) {
                (true, false) => d.wrongly_allowed += 1,
                (false, true) => d.wrongly_limited += 1,
                _ => {}
            }
            if decision.allowed() {
                recent.push_back(t);
            }
        }
        d
    }

    /// Adds another trace's counts.
    pub fn add(&mut self, other: Disagreement) {
        self.requests += other.requests;
        self.wrongly_allowed += other.wrongly_allowed;
        self.wrongly_limited += other.wrongly_limited;
    }

    /// Disagreements as a percentage of requests.
    pub fn percent(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        100.0 * (self.wrongly_allowed + self.wrongly_limited) as f64 / self.requests as f64
    }
}

/// The traces the comparison runs, for a quota of `rate` a second: steady
/// streams at half, once, one and a half and three times the rate, and a
/// bursty client. Each has a name for the table.
pub fn workload(rate: f64, seconds: f64) -> Vec<(String, Vec<Nanos>)> {
    let mut out = Vec::new();
    for (i, load) in [0.5, 1.0, 1.5, 3.0].into_iter().enumerate() {
        out.push((format!("steady {load}x"), poisson(100 + i as u64, rate * load, seconds)));
    }
    out.push(("bursts".to_string(), bursts(7, 8, 4.0 / rate.max(0.01), seconds)));
    out
}
