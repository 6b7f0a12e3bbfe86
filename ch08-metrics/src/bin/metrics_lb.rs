//! `metrics_lb`: `rate_limited_lb` with metrics and an admin listener.

use ch08_metrics::serve::{Extra, MetricsArgs, serve};
use clap::Parser;

/// Chapter 7's rate-limited, pooled load balancer, observable: every
/// request is counted by backend and status and timed into a histogram,
/// and an admin listener (127.0.0.1:8081 beside 8080 by default) serves /metrics in
/// the Prometheus text format, /lb-stats as JSON, /healthz and /readyz.
///
/// Try it: `cargo run -p ch08-metrics`, then `curl localhost:8080/` a few
/// times and `curl localhost:8081/metrics` (with nothing on
/// 127.0.0.1:9001-9003 it starts three demo backends and says so).
// ANCHOR: main
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    metrics: MetricsArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // `--algorithm fastest` is chapter 4's lab 7.2.
    let extra = Extra { admin_listening: Some(admin_listening), ..Extra::default() };
    serve(&args.metrics, "metrics load balancer", Some(ch04_advanced::labs::fastest), extra)
}
// ANCHOR_END: main

/// Where the admin listener listens: logged from here, so that the line
/// carries this binary's name.
fn admin_listening(addr: std::net::SocketAddr) {
    tracing::info!(addr = %addr, "admin listening (/metrics, /lb-stats, /healthz, /readyz)");
}
