//! `tokio_lb`: the same load balancer on tokio (see `ch05_event_loop::twin`).

use std::sync::Arc;

use anyhow::Context;
use ch01_fundamentals::logging;
use ch01_fundamentals::net::raise_fd_limit;
use ch04_advanced::algorithm;
use ch04_advanced::health::HealthChecker;
use ch04_advanced::node::Pool;
use ch05_event_loop::cli::LbArgs;
use ch05_event_loop::twin::{Twin, run};
use clap::Parser;

/// high_perf_lb's twin on tokio: the same rules, algorithms and health
/// checks, written as straight-line async code. By default on one thread,
/// like high_perf_lb; --threads N runs tokio's multi-threaded scheduler.
///
/// Try it: `cargo run -p ch05-event-loop --bin tokio_lb`, then
/// `curl -i localhost:8080/` (with nothing on 127.0.0.1:9001-9003 it
/// starts three demo backends and says so). `tokio_lb 8080` works too.
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
    logging::init(args.lb.log.log_format);
    let mut setup = args.lb.setup()?;
    // `--algorithm fastest` is chapter 4's lab 7.2.
    setup.algorithm.fastest = Some(ch04_advanced::labs::fastest);
    let fds = raise_fd_limit().context("cannot raise the open-files limit")?;
    let pool = Arc::new(Pool::new(std::mem::take(&mut setup.backends)));
    let algorithm = algorithm::build(args.lb.algorithm.algorithm, &pool, &setup.algorithm);
    let shutdown = ch01_fundamentals::server::Shutdown::new();
    // Active checks from chapter 4's checker thread: short, and blocking
    // there does not matter.
    let checker = HealthChecker::new(Arc::clone(&pool), setup.health.clone()).spawn(shutdown.clone())?;
    let twin = Arc::new(Twin {
        pool,
        algorithm,
        addrs: setup.addrs.clone(),
        limits: setup.limits,
        timeouts: setup.timeouts,
        health: setup.health.clone(),
        drain_timeout: args.lb.drain_timeout(),
        trusted_proxies: args.lb.algorithm.trusted_proxies.clone(),
    });
    let started = std::time::Instant::now();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?
    };
    runtime.block_on(async {
        // The same deep accept queue as high_perf_lb (tokio's bind asks for
        // 1024; a burst of connections beyond it waits for SYN retries).
        let listener = ch01_fundamentals::net::listen(setup.listen, 4096)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .with_context(|| format!("cannot listen on {}", setup.listen))?;
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, backends = setup.addrs.len(), threads = args.threads, fd_limit = fds,
            "tokio load balancer listening");
        setup.chosen.announce(local.port());
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        // SIGUSR1 prints the statistics, as high_perf_lb does.
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let pool = Arc::clone(&twin.pool);
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                eprint!("{}", report(&pool, started));
            }
        });
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
    eprint!("{}", report(&twin.pool, started));
    Ok(())
}

/// The statistics table (requests are counted per backend here).
fn report(pool: &Pool, started: std::time::Instant) -> String {
    let total = pool.nodes.iter().map(|n| n.backend.requests.load(std::sync::atomic::Ordering::Relaxed)).sum();
    ch04_advanced::stats::report_pools("tokio load balancer", started.elapsed(), total, [("default", pool)].into_iter())
}
