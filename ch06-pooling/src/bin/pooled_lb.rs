//! `pooled_lb`: `high_perf_lb` with a pool of backend connections.

use ch05_event_loop::app::Program;
use ch06_pooling::cli::PooledArgs;
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
    pooled: PooledArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The pool (`reuse`) is filled in by `serve_pooled`, from the --pool-*
    // flags; every request goes on to a backend (chapter 7 adds a limiter).
    let program = Program {
        // `--algorithm fastest` is chapter 4's lab 7.2.
        fastest: Some(ch04_advanced::labs::fastest),
        ..Program::new("pooled load balancer")
    };
    args.pooled.serve(program)
}
// ANCHOR_END: main
