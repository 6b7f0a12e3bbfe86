//! The cost of one backend selection, per algorithm, for pools of 3, 30 and
//! 300 backends: `cargo bench -p ch04-advanced`.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use ch04_advanced::algorithm::{self, Context, Kind};
use ch04_advanced::node::{Backend, Pool};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn pool(n: usize) -> Pool {
    Pool::new((0..n).map(|i| Backend::new(format!("10.0.{}.{}:80", i / 250, i % 250), 1 + (i % 5) as u32)).collect())
}

fn selection(c: &mut Criterion) {
    let kinds = [Kind::Rr, Kind::Wrr, Kind::Lc, Kind::Iphash, Kind::Random, Kind::Wrandom, Kind::Hash, Kind::Sticky];
    let mut group = c.benchmark_group("pick");
    for n in [3, 30, 300] {
        let pool = pool(n);
        for kind in kinds {
            let alg = algorithm::build(kind, &pool, &algorithm::Options::default());
            let cookie = pool.nodes[n / 2].id.clone();
            let ctx = Context {
                client_ip: IpAddr::from([203, 0, 113, 7]),
                key: "/objects/42",
                cookie: Some(&cookie),
                now: Instant::now(),
            };
            group.bench_with_input(BenchmarkId::new(alg.name(), n), &n, |b, _| {
                b.iter(|| black_box(alg.pick(black_box(&pool), black_box(&ctx))))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, selection);
criterion_main!(benches);
