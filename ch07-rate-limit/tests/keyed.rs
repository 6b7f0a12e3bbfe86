//! The keyed table's promise, checked on generated traffic: bounded
//! memory may make the limiter stricter, never looser. For every key, at
//! every moment, the table has allowed no more requests than a map with
//! unlimited memory would have.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::collections::HashMap;

use ch07_rate_limit::algorithm::trace::Lcg;
use ch07_rate_limit::algorithm::{Algorithm, Gcra, LeakyBucket, SlidingWindow, TokenBucket};
use ch07_rate_limit::clock::{Nanos, SECOND};
use ch07_rate_limit::keyed::{Charge, Key, Keyed};
use ch07_rate_limit::quota::Quota;

/// Runs one generated trace through a small table and an unbounded map.
/// Returns how often the table had to use its overflow.
fn eviction_never_allows_more<A: Algorithm + Clone>(alg: A, seed: u64, keys: u64, capacity: usize) -> u64
where
    A::State: Copy,
{
    let mut rng = Lcg(seed);
    let mut table = Keyed::new(alg.clone(), capacity);
    let mut unbounded: HashMap<u64, A::State> = HashMap::new();
    let mut allowed_table: HashMap<u64, u64> = HashMap::new();
    let mut allowed_exact: HashMap<u64, u64> = HashMap::new();
    let mut now: Nanos = 0;
    // Some keys are heavy hitters, most are occasional.
    let hot = keys.div_ceil(8);
    for step in 0..20_000 {
        now += rng.below(SECOND / 20);
        let k = if rng.below(2) == 0 { rng.below(hot) } else { rng.below(keys) };
        if table.check(Key::raw([9, k]), now, Charge::Yes).allowed() {
            *allowed_table.entry(k).or_default() += 1;
        }
        let state = unbounded.entry(k).or_insert_with(|| alg.fresh());
        if alg.check(state, now).allowed() {
            *allowed_exact.entry(k).or_default() += 1;
        }
        let (t, e) = (allowed_table.get(&k).copied().unwrap_or(0), allowed_exact.get(&k).copied().unwrap_or(0));
        assert!(
            t <= e,
            "{}: seed {seed}, step {step}: key {k} allowed {t} times by the table, {e} by the map",
            alg.name()
        );
    }
    table.stats().overflowed
}

fn quota(rate: f64, burst: u32) -> Quota {
    Quota::new(rate, burst).unwrap()
}

#[test]
fn eviction_never_increases_what_is_allowed() {
    let mut overflowed = 0;
    for seed in 0..12 {
        for (keys, capacity) in [(10, 64), (200, 16), (1000, 8)] {
            let q = quota(2.0 + seed as f64, 3);
            overflowed += eviction_never_allows_more(Gcra::new(q), seed, keys, capacity);
            overflowed += eviction_never_allows_more(TokenBucket::new(q), seed, keys, capacity);
            overflowed += eviction_never_allows_more(LeakyBucket::nodelay(q), seed, keys, capacity);
        }
    }
    // The small tables really were full: the overflow path was exercised.
    assert!(overflowed > 1000, "{overflowed}");
}

#[test]
fn a_table_large_enough_decides_exactly_like_the_map() {
    let alg = Gcra::new(quota(5.0, 4));
    let mut rng = Lcg(77);
    let mut table = Keyed::new(alg, 1000);
    let mut map: HashMap<u64, Nanos> = HashMap::new();
    let mut now = 0;
    for _ in 0..50_000 {
        now += rng.below(SECOND / 100);
        let k = rng.below(500);
        let a = table.check(Key::raw([1, k]), now, Charge::Yes);
        let b = alg.check(map.entry(k).or_insert(0), now);
        assert_eq!(a, b);
    }
    assert_eq!(table.stats().overflowed, 0);
}

#[test]
fn the_sliding_window_in_a_table_is_never_looser_either() {
    for seed in 0..6 {
        eviction_never_allows_more(SlidingWindow::new(quota(4.0, 5)), seed, 300, 16);
    }
}
