//! The cost of one rate-limit check, for 1, 1,000 and 1,000,000 keys:
//! `cargo bench -p ch07-rate-limit`. Target: ≤ 50 ns on one thread.

use std::hint::black_box;

use ch07_rate_limit::algorithm::trace::Lcg;
use ch07_rate_limit::algorithm::{Algorithm, Gcra, TokenBucket};
use ch07_rate_limit::keyed::{Charge, Key, Keyed};
use ch07_rate_limit::quota::Quota;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn keyed(c: &mut Criterion) {
    let quota = Quota::new(1000.0, 100).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("keyed check");
    for n in [1u64, 1_000, 1_000_000] {
        let mut table = Keyed::new(Gcra::new(quota), n as usize);
        // Client i is 10.0.0.0 + i: made from a number, so the benchmark
        // reads no memory of its own. Every key is placed first, so the
        // timed loop finds them (the common case).
        let key = |i: u64| Key::ip(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32).into());
        for i in 0..n {
            table.check(key(i), i, Charge::Yes);
        }
        let mut rng = Lcg(1);
        let mut now = 1_000_000_000u64;
        group.bench_with_input(BenchmarkId::new("gcra", n), &n, |b, _| {
            b.iter(|| {
                now += 1_000;
                // A random client each time: at a million keys, a cache miss.
                // A random client; `(r × n) >> 31` picks one without a division.
                black_box(table.check(black_box(key((rng.next_u64() * n) >> 31)), now, Charge::Yes))
            })
        });
        // The same, as the balancer checks: the client's cache lines were
        // asked for (`Keyed::prefetch`) when its socket became readable,
        // a `read` call earlier. Here the prefetch runs eight checks
        // ahead, about as long as a `read` takes.
        const AHEAD: usize = 8;
        let mut ring = [key(0); AHEAD];
        let mut at = 0usize;
        group.bench_with_input(BenchmarkId::new("gcra, prefetched", n), &n, |b, _| {
            b.iter(|| {
                now += 1_000;
                let next = key((rng.next_u64() * n) >> 31);
                table.prefetch(next);
                at = (at + 1) % AHEAD;
                let this = std::mem::replace(&mut ring[at], next);
                black_box(table.check(black_box(this), now, Charge::Yes))
            })
        });
    }
    group.finish();
}

fn algorithms(c: &mut Criterion) {
    let quota = Quota::new(1000.0, 100).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("one state");
    let gcra = Gcra::new(quota);
    let mut tat = gcra.fresh();
    let mut now = 0u64;
    group.bench_function("gcra", |b| {
        b.iter(|| {
            now += 1_000;
            black_box(gcra.check(&mut tat, now))
        })
    });
    let tb = TokenBucket::new(quota);
    let mut tokens = tb.fresh();
    group.bench_function("token bucket", |b| {
        b.iter(|| {
            now += 1_000;
            black_box(tb.check(&mut tokens, now))
        })
    });
    group.finish();
}

/// The floor under the million-key case: one read from a random place in
/// an array as big as that table (20 MB), each read's address depending
/// on the one before (as one request's check follows another's), so the
/// processor cannot overlap them: the latency of memory itself. A check
/// at a million random keys cannot be much faster than this.
fn memory_floor(c: &mut Criterion) {
    let words = 20_000_000 / 8;
    let mut rng = Lcg(3);
    let array: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
    let mut x = 0u64;
    c.bench_function("one dependent random read in 20 MB", |b| {
        b.iter(|| {
            let i = (((x ^ rng.next_u64()) & 0x7FFF_FFFF) * words as u64) >> 31;
            x = array.get(i as usize).copied().unwrap_or(0);
            black_box(x)
        })
    });
}

criterion_group!(benches, keyed, algorithms, memory_floor);
criterion_main!(benches);
