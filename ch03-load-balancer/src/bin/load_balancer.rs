//! `load_balancer`: the chapter 3 load balancer.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use ch01_fundamentals::cli::{DEFAULT_PORT, ListenArgs, LogArgs};
use ch01_fundamentals::logging;
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::Shutdown;
use ch02_proxy::cli::TimeoutArgs;
use ch03_load_balancer::backend::Backend;
use ch03_load_balancer::balancer::{LbConfig, LoadBalancer, Strategy, run};
use ch03_load_balancer::cli::BackendArgs;
use ch03_load_balancer::labs::lab_4_1_random_selection::RandomSelector;
use ch03_load_balancer::labs::lab_4_2_weighted_selection::WeightedSelector;
use ch03_load_balancer::stats;
use clap::{Parser, ValueEnum};

/// How the next backend is chosen.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StrategyArg {
    /// Round robin: each backend in turn.
    #[value(alias = "round-robin")]
    Rr,
    /// Uniformly at random (lab 4.1).
    Random,
    /// At random, in proportion to weights, host:port:WEIGHT (lab 4.2).
    #[value(alias = "weighted-random", alias = "wrandom")]
    Weighted,
}

/// A blocking, thread-per-connection HTTP load balancer.
///
/// Requests are spread over the backends; a backend that refuses a
/// connection is marked DOWN and skipped (failover), and comes back when a
/// later try succeeds. `kill -USR1 <pid>` prints statistics; so does
/// stopping it with Ctrl-C.
///
/// Try it: `cargo run -p ch03-load-balancer`, then `curl localhost:8080/`
/// a few times (with nothing on 127.0.0.1:9001-9003 it starts three demo
/// backends itself and says so). `load_balancer 8080` works too.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    backends: BackendArgs,
    /// How to choose a backend (also --algorithm/-a, as in later chapters).
    #[arg(short, long, value_enum, default_value_t = StrategyArg::Rr, alias = "algorithm", short_alias = 'a')]
    strategy: StrategyArg,
    /// Seconds a backend that refused a connection is skipped.
    #[arg(long, default_value_t = 10)]
    retry_after_secs: u64,
    #[command(flatten)]
    timeouts: TimeoutArgs,
    /// Clients served at once.
    #[arg(long, default_value_t = ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log.log_format);
    let shutdown = Shutdown::new();

    // Signals first: the mask is inherited by every thread started after.
    // SIGUSR1 prints the statistics; SIGHUP has nothing to reload here.
    #[cfg(unix)]
    let lb_slot = ch03_load_balancer::signals::for_server(
        &shutdown,
        ch03_load_balancer::signals::Stopping::Now,
        |lb: &Arc<LoadBalancer>| stats::report(lb),
        |_| {},
    )?;

    let chosen = args.backends.choose(&[])?;
    let specs = &chosen.specs;
    let backends = specs.iter().map(|s| Backend::parse(s)).collect::<Result<Vec<_>, _>>()?;
    if backends.is_empty() {
        bail!("no backends");
    }
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let strategy = match args.strategy {
        StrategyArg::Rr => Strategy::RoundRobin,
        StrategyArg::Random => Strategy::Select(Box::new(RandomSelector::new(seed))),
        StrategyArg::Weighted => Strategy::Select(Box::new(WeightedSelector::new())),
    };
    let mut config =
        LbConfig { strategy, retry_after: Duration::from_secs(args.retry_after_secs), ..LbConfig::default() };
    config.timeouts = args.timeouts.timeouts();
    config.limits = args.timeouts.limits(config.limits);
    config.max_connections = args.max_connections;
    let lb = LoadBalancer::new(backends, config);
    #[cfg(unix)]
    let _ = lb_slot.set(Arc::clone(&lb));

    let addr = args.listen.addr(DEFAULT_PORT).map_err(|e| anyhow!(e))?;
    let listener = listen(addr, DEFAULT_BACKLOG).with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, backends = %specs.join(", "), strategy = ?args.strategy, "load balancer listening");
    chosen.announce(local.port());
    run(listener, Arc::clone(&lb), shutdown)?;
    eprint!("{}", stats::report(&lb));
    Ok(())
}
