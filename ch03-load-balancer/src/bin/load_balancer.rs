//! `load_balancer`: the chapter 3 load balancer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use ch01_fundamentals::logging::{self, LogFormat};
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::Shutdown;
use ch03_load_balancer::backend::Backend;
use ch03_load_balancer::balancer::{LbConfig, LoadBalancer, Strategy, run};
use ch03_load_balancer::labs::lab_4_1_random_selection::RandomSelector;
use ch03_load_balancer::labs::lab_4_2_weighted_selection::WeightedSelector;
use ch03_load_balancer::{demo, stats};
use clap::{Parser, ValueEnum};

/// How the next backend is chosen.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StrategyArg {
    /// Round robin: each backend in turn.
    Rr,
    /// Uniformly at random (lab 4.1).
    Random,
    /// In proportion to weights, host:port:WEIGHT (lab 4.2).
    Weighted,
}

/// A blocking, thread-per-connection HTTP load balancer.
///
/// Requests are spread over the backends; a backend that refuses a
/// connection is marked DOWN and skipped (failover), and comes back when a
/// later try succeeds. `kill -USR1 <pid>` prints statistics; so does
/// stopping it with Ctrl-C.
///
/// Try it: `cargo run -p ch03-load-balancer -- --demo`, then
/// `curl localhost:8080/` a few times.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on.
    #[arg(short, long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// A backend, host:port[:weight] (repeatable).
    /// [default: 127.0.0.1:9001, 127.0.0.1:9002, 127.0.0.1:9003]
    #[arg(short, long = "backend", value_name = "HOST:PORT[:WEIGHT]")]
    backends: Vec<String>,
    /// Start three test backends in this process and balance over them.
    #[arg(long, conflicts_with = "backends")]
    demo: bool,
    /// How to choose a backend.
    #[arg(short, long, value_enum, default_value_t = StrategyArg::Rr)]
    strategy: StrategyArg,
    /// Seconds a backend that refused a connection is skipped.
    #[arg(long, default_value_t = 10)]
    retry_after_secs: u64,
    /// Milliseconds to wait for a connection to a backend.
    #[arg(long, default_value_t = 2_000)]
    connect_timeout_ms: u64,
    /// Milliseconds to wait for a backend's response head (then 504).
    #[arg(long, default_value_t = 30_000)]
    response_timeout_ms: u64,
    /// Milliseconds a client has to send its request head (then 408).
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Clients served at once.
    #[arg(long, default_value_t = ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Log line format (RUST_LOG chooses the level).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log_format);
    let shutdown = Shutdown::new();

    // Signals first: the mask is inherited by every thread started after.
    #[cfg(unix)]
    let lb_slot: Arc<std::sync::OnceLock<Arc<LoadBalancer>>> = Arc::default();
    #[cfg(unix)]
    {
        let (slot, stop) = (Arc::clone(&lb_slot), shutdown.clone());
        ch03_load_balancer::signals::spawn(move |request| {
            use ch03_load_balancer::signals::Request;
            match request {
                Request::Report => {
                    if let Some(lb) = slot.get() {
                        eprint!("{}", stats::report(lb));
                    }
                    true
                }
                Request::Reload => true,
                Request::Stop => {
                    tracing::info!("stopping");
                    stop.trigger();
                    false
                }
            }
        })?;
    }

    let demo_backends = if args.demo { demo::start(3)? } else { Vec::new() };
    let specs = demo::backend_specs(&demo_backends, &[], &args.backends);
    let backends = specs.iter().map(|s| Backend::parse(s)).collect::<Result<Vec<_>, _>>()?;
    if backends.is_empty() {
        bail!("no backends");
    }
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let strategy = match args.strategy {
        StrategyArg::Rr => Strategy::RoundRobin,
        StrategyArg::Random => Strategy::Random(RandomSelector::new(seed)),
        StrategyArg::Weighted => Strategy::Weighted(WeightedSelector::new()),
    };
    let mut config =
        LbConfig { strategy, retry_after: Duration::from_secs(args.retry_after_secs), ..LbConfig::default() };
    config.timeouts.connect = Duration::from_millis(args.connect_timeout_ms);
    config.timeouts.response = Duration::from_millis(args.response_timeout_ms);
    config.limits.header_timeout = Duration::from_millis(args.header_timeout_ms.max(1));
    config.max_connections = args.max_connections;
    let lb = LoadBalancer::new(backends, config);
    #[cfg(unix)]
    let _ = lb_slot.set(Arc::clone(&lb));

    let addr = SocketAddr::new(args.host, args.port);
    let listener = listen(addr, DEFAULT_BACKLOG).with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, backends = %specs.join(", "), strategy = ?args.strategy, "load balancer listening");
    if args.demo {
        eprintln!("demo: backends {} are running in this process", specs.join(", "));
        eprintln!("demo: try `curl http://localhost:{}/` several times", local.port());
    }
    run(listener, Arc::clone(&lb), shutdown)?;
    eprint!("{}", stats::report(&lb));
    Ok(())
}
