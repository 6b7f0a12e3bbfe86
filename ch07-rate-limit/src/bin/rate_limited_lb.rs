//! `rate_limited_lb`: `pooled_lb` with a rate limiter in front of the
//! backends.

use ch05_event_loop::app::{Program, ReactorArgs};
use ch05_event_loop::lb::admit::Admission;
use ch06_pooling::cli::{PoolArgs, serve_pooled};
use ch07_rate_limit::cli::RateArgs;
use ch07_rate_limit::limiter::RateLimiter;
use clap::Parser;

/// Chapter 6's pooled load balancer with a rate limiter in front of the
/// backends: a client over its allowance gets 429 Too Many Requests with
/// Retry-After and RateLimit headers (or, with --rate-mode delay, waits
/// its turn), and no backend sees the request. Each client's allowance is
/// GCRA (8 bytes) in a table of fixed size. Statistics on SIGUSR1 and at
/// exit.
///
/// Try it: `cargo run -p ch07-rate-limit`, then
/// `for i in $(seq 15); do curl -s -o /dev/null -w '%{http_code} ' localhost:8080/; done`
/// (5 a second, bursts of 10, per client address, by default; with nothing
/// on 127.0.0.1:9001-9003 it starts three demo backends and says so).
// ANCHOR: main
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    reactor: ReactorArgs,
    #[command(flatten)]
    pool: PoolArgs,
    #[command(flatten)]
    rate: RateArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let trusted = args.reactor.lb.algorithm.trusted_proxies.len();
    let settings = args.rate.settings(trusted).map_err(anyhow::Error::msg)?;
    let mut limiter = RateLimiter::new(&settings);
    let stats = limiter.shared_stats();
    let limits = limiter.describe();
    let kib = limiter.memory_bytes() / 1024;
    let mode = if settings.dry_run { "dry run: nothing is limited, only counted" } else { "enforced" };
    // Said before the loop starts, as the demo backends are announced.
    eprintln!("rate limits ({mode}, {kib} KiB of tables):");
    for line in &limits {
        eprintln!("  {line}");
    }
    if limits.is_empty() {
        eprintln!("  none: every request passes (see --rate, --rate-global, --rate-route)");
    }
    let program = Program {
        name: "rate-limited load balancer",
        // Filled in by `serve_pooled`, from --pool-* flags.
        reuse: None,
        admission: Some(&mut limiter as &mut dyn Admission),
        report: Box::new(move || stats.report()),
        // `--algorithm fastest` is chapter 4's lab 7.2.
        fastest: Some(ch04_advanced::labs::fastest),
    };
    serve_pooled(&args.reactor, &args.pool, program)
}
// ANCHOR_END: main
