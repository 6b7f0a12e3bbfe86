//! `rate_limited_lb`: `pooled_lb` with a rate limiter in front of the
//! backends.

use ch05_event_loop::app::Program;
use ch05_event_loop::lb::admit::Admission;
use ch07_rate_limit::cli::LimitedArgs;
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
    limited: LimitedArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut limiter = args.limited.limiter().map_err(anyhow::Error::msg)?;
    let stats = limiter.shared_stats();
    // The pool (`reuse`) is filled in by `serve_pooled`, from --pool-* flags.
    let program = Program {
        admission: Some(&mut limiter as &mut dyn Admission),
        report: Box::new(move || stats.report()),
        // `--algorithm fastest` is chapter 4's lab 7.2.
        fastest: Some(ch04_advanced::labs::fastest),
        ..Program::new("rate-limited load balancer")
    };
    args.limited.pooled.serve(program)
}
// ANCHOR_END: main
