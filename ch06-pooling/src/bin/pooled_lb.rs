//! `pooled_lb`: `high_perf_lb` with a pool of backend connections.

use ch05_event_loop::app::ReactorArgs;
use ch06_pooling::cli::{PoolArgs, serve_pooled};
use clap::Parser;

/// Chapter 5's single-threaded load balancer, keeping backend connections
/// open between requests: one TCP handshake per backend connection instead
/// of one per request. Idle connections are watched, so one the backend
/// closes is never used; a request that meets the race anyway is sent
/// again on a fresh connection when that is safe (never a POST that left).
/// Pool statistics on SIGUSR1 and at exit.
///
/// Try it: `cargo run -p ch06-pooling`, then `curl -i localhost:8080/`
/// (with nothing on 127.0.0.1:9001-9003 it starts three demo backends and
/// says so). `pooled_lb 8080` works too; `--no-pool` compares.
// ANCHOR: main
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    reactor: ReactorArgs,
    #[command(flatten)]
    pool: PoolArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // No admission hook: every request goes on (chapter 7 adds one).
    serve_pooled("pooled load balancer", &args.reactor, &args.pool, None, Box::new(String::new))
}
// ANCHOR_END: main
