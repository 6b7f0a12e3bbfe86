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
        // Every key placed first, so the timed loop finds them (the common case).
        let keys: Vec<Key> = (0..n).map(|i| Key::ip(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32).into())).collect();
        for (i, &k) in keys.iter().enumerate() {
            table.check(k, i as u64, Charge::Yes);
        }
        let mut rng = Lcg(1);
        let mut now = 1_000_000_000u64;
        group.bench_with_input(BenchmarkId::new("gcra", n), &n, |b, _| {
            b.iter(|| {
                now += 1_000;
                // A random client each time: at a million keys, a cache miss.
                let k = keys.get(rng.below(n) as usize).copied().unwrap_or(Key::raw([0, 0]));
                black_box(table.check(black_box(k), now, Charge::Yes))
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

criterion_group!(benches, keyed, algorithms);
criterion_main!(benches);
