//! `tokio_lb`: the same load balancer on tokio (see `ch05_event_loop::twin`).

use std::sync::Arc;

use anyhow::Context;
use ch01_fundamentals::logging;
use ch01_fundamentals::net::raise_fd_limit;
use ch04_advanced::algorithm;
use ch04_advanced::health::HealthChecker;
use ch04_advanced::node::Pool;
use ch05_event_loop::cli::{LbArgs, announce_demo};
use ch05_event_loop::twin::{Twin, run};
use clap::Parser;

/// high_perf_lb's twin on tokio: the same rules, algorithms and health
/// checks, written as straight-line async code. By default on one thread,
/// like high_perf_lb; --threads N runs tokio's multi-threaded scheduler.
///
/// Try it: `cargo run -p ch05-event-loop --bin tokio_lb -- --demo`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    lb: LbArgs,
    /// Worker threads (1: tokio's current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.lb.log_format);
    let mut setup = args.lb.setup()?;
    let fds = raise_fd_limit().context("cannot raise the open-files limit")?;
    let pool = Arc::new(Pool::new(std::mem::take(&mut setup.backends)));
    let algorithm = algorithm::build(args.lb.algorithm, &pool, &algorithm::Options::default());
    let shutdown = ch01_fundamentals::server::Shutdown::new();
    // Active checks from chapter 4's checker thread: short, and blocking
    // there does not matter.
    let checker = HealthChecker { pool: Arc::clone(&pool), config: setup.health.clone() }.spawn(shutdown.clone())?;
    let twin = Arc::new(Twin {
        pool,
        algorithm,
        addrs: setup.addrs.clone(),
        limits: setup.limits,
        timeouts: setup.timeouts,
        health: setup.health.clone(),
    });
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(setup.listen)
            .await
            .with_context(|| format!("cannot listen on {}", setup.listen))?;
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, backends = setup.addrs.len(), threads = args.threads, fd_limit = fds,
            "tokio load balancer listening");
        announce_demo(&setup, local.port());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let stop = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("stopping: no new connections");
        };
        run(listener, Arc::clone(&twin), stop).await?;
        anyhow::Ok(())
    })?;
    shutdown.trigger();
    let _ = checker.join();
    Ok(())
}
