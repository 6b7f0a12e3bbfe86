//! `high_perf_lb`: chapter 4's load balancer on one thread, without
//! blocking, on the chapter's hand-built Poller.

use ch05_event_loop::app::{Program, ReactorArgs, serve};
use clap::Parser;

/// A single-threaded, non-blocking load balancer: one thread and a
/// readiness Poller (epoll, kqueue or poll) hold every connection.
/// Keep-alive clients, chapter 4's algorithms and health checks, chapter
/// 2's head rules and error responses. Statistics on SIGUSR1 and at exit;
/// SIGTERM or Ctrl-C drains.
///
/// Try it: `cargo run -p ch05-event-loop`, then `curl -i localhost:8080/`
/// (with nothing on 127.0.0.1:9001-9003 it starts three demo backends and
/// says so). `high_perf_lb 8080` works too.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    reactor: ReactorArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let program = Program {
        // `--algorithm fastest` is chapter 4's lab 7.2.
        fastest: Some(ch04_advanced::labs::fastest),
        ..Program::new("high-performance load balancer")
    };
    serve(&args.reactor, program)
}
