//! What updating a metric costs, and rendering a large scrape:
//! `cargo bench -p ch08-metrics`. Targets: a counter increment <= 5 ns, a
//! histogram observation <= 20 ns (one thread), /metrics for 1,000
//! backends <= 10 ms.

use std::hint::black_box;

use ch08_metrics::family::Family;
use ch08_metrics::metric::{Counter, Histogram, latency_buckets};
use ch08_metrics::registry::Registry;
use criterion::{Criterion, criterion_group, criterion_main};

fn update(c: &mut Criterion) {
    let counter = Counter::new();
    c.bench_function("counter inc", |b| b.iter(|| black_box(&counter).inc()));
    let histogram = Histogram::new(&latency_buckets());
    let mut v = 0.0;
    c.bench_function("histogram observe", |b| {
        b.iter(|| {
            v = if v > 70.0 { 0.0001 } else { v * 1.7 + 0.0001 };
            black_box(&histogram).observe(black_box(v))
        })
    });
}

fn render(c: &mut Criterion) {
    let r = Registry::new();
    let requests = r.register(
        Family::new("lb_requests_total", "Requests.", &["backend", "status"], 10_000, Counter::new)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let latency = r.register(
        Family::new("lb_request_duration_seconds", "Latency.", &["backend"], 10_000, || {
            Histogram::new(&latency_buckets())
        })
        .unwrap_or_else(|e| panic!("{e}")),
    );
    for i in 0..1000 {
        let backend = format!("10.0.{}.{}:8080", i / 250, i % 250);
        for status in ["200", "404", "502"] {
            requests.with(&[&backend, status]).add(i);
        }
        latency.with(&[&backend]).observe(0.001 * f64::from(i as u32));
    }
    c.bench_function("render 1000 backends", |b| b.iter(|| black_box(r.render().len())));
}

criterion_group!(benches, update, render);
criterion_main!(benches);
