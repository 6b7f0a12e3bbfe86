//! `high_perf_lb`: chapter 4's load balancer on one thread, without
//! blocking, on the chapter's hand-built Poller.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::Context;
use ch01_fundamentals::logging;
use ch01_fundamentals::net::{listen, raise_fd_limit};
use ch01_fundamentals::server::Shutdown;
use ch04_advanced::node::Pool;
use ch04_advanced::stats::report_pools;
use ch05_event_loop::cli::LbArgs;
use ch05_event_loop::lb::{Config, Lb, Stats, run};
use ch05_event_loop::poller;
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
    lb: LbArgs,
    /// Which system call waits for readiness: epoll (Linux), kqueue (BSD,
    /// macOS) or poll (everywhere).
    #[arg(long, default_value_t = poller::Mechanism::best(), value_parser = parse_poller)]
    poller: poller::Mechanism,
    /// Client connections held at once (more get 503).
    #[arg(long, default_value_t = 50_000)]
    max_connections: usize,
    /// KiB buffered per direction per connection (backpressure above).
    #[arg(long, default_value_t = 16)]
    buffer_kib: usize,
}

fn parse_poller(s: &str) -> Result<poller::Mechanism, String> {
    s.parse::<poller::Mechanism>().map_err(|e| e.to_string())
}

fn report(pool: &Pool, stats: &Stats, started: Instant) -> String {
    let total = stats.requests.load(Ordering::Relaxed);
    let mut out =
        report_pools("high-performance load balancer", started.elapsed(), total, [("default", pool)].into_iter());
    // Zero on a healthy day; anything else is a bug the log explains.
    let panics = stats.panics.load(Ordering::Relaxed);
    if panics > 0 {
        out.push_str(&format!("connections closed by a bug (a caught panic; see the log): {panics}\n"));
    }
    out
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.lb.log.log_format);
    let shutdown = Shutdown::new();
    let started = Instant::now();

    // Signals first: the mask that routes them to the signal thread is
    // inherited only by threads started later (the demo backends').
    let slot: Arc<OnceLock<(Arc<Pool>, Arc<Stats>)>> = Arc::default();
    let (seen, stop) = (Arc::clone(&slot), shutdown.clone());
    ch03_load_balancer::signals::spawn(move |request| {
        use ch03_load_balancer::signals::Request;
        match request {
            Request::Report => {
                if let Some((pool, stats)) = seen.get() {
                    eprint!("{}", report(pool, stats, started));
                }
                true
            }
            Request::Reload => {
                tracing::warn!("SIGHUP: nothing to reload in this chapter");
                true
            }
            Request::Stop => {
                tracing::info!("stopping: no new connections; draining those in progress");
                // The trigger connects to the listener: the loop wakes up.
                stop.trigger();
                false
            }
        }
    })?;

    let mut setup = args.lb.setup()?;
    // `--algorithm fastest` is chapter 4's lab 7.2.
    setup.algorithm.fastest = Some(ch04_advanced::labs::fastest);
    let config = Config {
        limits: setup.limits,
        timeouts: setup.timeouts,
        health: setup.health.clone(),
        max_connections: args.max_connections.max(1),
        buffer_size: args.buffer_kib.max(1) * 1024,
        drain_timeout: args.lb.drain_timeout(),
        poller: args.poller,
        algorithm: setup.algorithm.clone(),
        trusted_proxies: args.lb.algorithm.trusted_proxies.clone(),
    };
    let lb = Lb::new(std::mem::take(&mut setup.backends), args.lb.algorithm.algorithm, config)?;
    let _ = slot.set((Arc::clone(&lb.pool), Arc::clone(&lb.stats)));

    // Every connection is a file descriptor; the default soft limit (often
    // 1024) would cap us long before memory or CPU.
    let fds = raise_fd_limit().context("cannot raise the open-files limit")?;
    let listener = listen(setup.listen, 4096).with_context(|| format!("cannot listen on {}", setup.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, backends = setup.addrs.len(), algorithm = ?args.lb.algorithm.algorithm,
        poller = %args.poller, fd_limit = fds, "high-performance load balancer listening");
    setup.chosen.announce(local.port());
    run(listener, &lb, shutdown)?;
    eprint!("{}", report(&lb.pool, &lb.stats, started));
    Ok(())
}
