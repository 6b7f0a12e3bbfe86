//! `advanced_lb`: the chapter 4 load balancer.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use ch01_fundamentals::logging::{self, LogFormat};
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::Shutdown;
use ch04_advanced::algorithm::{self, Kind};
use ch04_advanced::balancer::{AdvancedLb, HashKey, Options, run};
use ch04_advanced::health::Probe;
use ch04_advanced::node::{Backend, Pool};
use ch04_advanced::routing::{Group, Router};
use ch04_advanced::stats;
use clap::{Parser, ValueEnum};

/// Active health-check kind.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum CheckArg {
    /// Passive checks only (failed requests).
    Off,
    /// A TCP connection must succeed.
    Tcp,
    /// GET --health-path must answer 2xx.
    Http,
}

/// The advanced load balancer: many algorithms, active and passive health
/// checks with slow start, X-Request-ID, sticky sessions, path routing,
/// per-backend statistics (kill -USR1) and draining on SIGTERM or Ctrl-C.
///
/// Try it: `cargo run -p ch04-advanced -- --demo --algorithm wrr`, then
/// `curl -i localhost:8080/`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on.
    #[arg(short, long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// A backend of the default group, host:port[:weight] (repeatable).
    /// [default: 127.0.0.1:9001, 127.0.0.1:9002, 127.0.0.1:9003]
    #[arg(short, long = "backend", value_name = "HOST:PORT[:WEIGHT]")]
    backends: Vec<String>,
    /// Start three test backends in this process (weights 3, 2, 1) and use them.
    #[arg(long, conflicts_with = "backends")]
    demo: bool,
    /// How to choose a backend.
    #[arg(short, long, value_enum, default_value_t = Kind::Rr)]
    algorithm: Kind,
    /// Cookie name for --algorithm sticky.
    #[arg(long, default_value = "lbs_backend")]
    cookie_name: String,
    /// What --algorithm hash hashes.
    #[arg(long, value_enum, default_value_t = HashKey::Ip)]
    hash_key: HashKey,
    /// Route a path prefix to its own backends: PREFIX=HOST:PORT[:W][,HOST:PORT[:W]...] (repeatable).
    #[arg(long = "route", value_name = "PREFIX=BACKENDS")]
    routes: Vec<String>,
    /// Active health check.
    #[arg(long, value_enum, default_value_t = CheckArg::Http)]
    health_check: CheckArg,
    /// Path probed by --health-check http.
    #[arg(long, default_value = "/health")]
    health_path: String,
    /// Milliseconds between health-check rounds.
    #[arg(long, default_value_t = 2_000)]
    health_interval_ms: u64,
    /// Milliseconds a probe may take.
    #[arg(long, default_value_t = 1_000)]
    health_timeout_ms: u64,
    /// Successful probes in a row that bring a backend back.
    #[arg(long, default_value_t = 2)]
    healthy_threshold: u32,
    /// Failed probes in a row that take a backend down.
    #[arg(long, default_value_t = 3)]
    unhealthy_threshold: u32,
    /// Failed requests in a row that take a backend down (passive check).
    #[arg(long, default_value_t = 3)]
    max_fails: u32,
    /// With --health-check off: seconds before a down backend is retried.
    #[arg(long, default_value_t = 10)]
    fail_timeout_secs: u64,
    /// Seconds over which a recovered backend's weight ramps up.
    #[arg(long, default_value_t = 0)]
    slow_start_secs: u64,
    /// Seconds in-flight requests get to finish on SIGTERM/Ctrl-C.
    #[arg(long, default_value_t = 30)]
    drain_timeout_secs: u64,
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
    /// Print a short report every N requests (lab 4.5); 0 turns it off.
    #[arg(long, default_value_t = 0)]
    stats_every: u64,
    /// Answer this path with JSON statistics, e.g. /lb-stats (lab 8.3).
    #[arg(long)]
    stats_path: Option<String>,
    /// Reload the default group's weights from this file on SIGHUP (lab 8.4).
    #[arg(long)]
    weights_file: Option<PathBuf>,
    /// Log line format (RUST_LOG chooses the level).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn parse_backends(specs: &[String]) -> anyhow::Result<Vec<Backend>> {
    let backends = specs.iter().map(|s| Backend::parse(s.trim())).collect::<Result<Vec<_>, _>>()?;
    if backends.is_empty() {
        bail!("a group needs at least one backend");
    }
    Ok(backends)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log_format);
    let shutdown = Shutdown::new();

    // Signals first: their mask is inherited by every thread started later.
    #[cfg(unix)]
    let lb_slot: Arc<std::sync::OnceLock<Arc<AdvancedLb>>> = Arc::default();
    #[cfg(unix)]
    {
        let (slot, stop, weights) = (Arc::clone(&lb_slot), shutdown.clone(), args.weights_file.clone());
        ch03_load_balancer::signals::spawn(move |request| {
            use ch03_load_balancer::signals::Request;
            let Some(lb) = slot.get() else { return request != Request::Stop };
            match request {
                Request::Report => eprint!("{}", stats::report(lb)),
                Request::Reload => match &weights {
                    Some(path) => {
                        match ch04_advanced::labs::lab_8_4_weight_reload::reload_weights_file(lb.default_pool(), path) {
                            Ok(changed) => tracing::info!(file = %path.display(), changed, "weights reloaded"),
                            Err(e) => {
                                tracing::error!(file = %path.display(), error = %e, "weights not reloaded; keeping the old ones")
                            }
                        }
                    }
                    None => tracing::warn!("SIGHUP: no --weights-file to reload"),
                },
                Request::Stop => {
                    tracing::info!("stopping: no new connections; draining those in progress");
                    stop.trigger();
                    return false;
                }
            }
            true
        })?;
    }

    let demo = if args.demo { ch03_load_balancer::demo::start(3)? } else { Vec::new() };
    let specs = ch03_load_balancer::demo::backend_specs(&demo, &[3, 2, 1], &args.backends);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let alg_options = algorithm::Options { cookie_name: args.cookie_name.clone(), seed, ..Default::default() };
    let slow_start = Duration::from_secs(args.slow_start_secs);
    let group = |name: &str, backends: Vec<Backend>| {
        let pool = Pool { slow_start, ..Pool::new(backends) };
        let algorithm = algorithm::build(args.algorithm, &pool, &alg_options);
        Group { name: name.to_string(), pool: Arc::new(pool), algorithm }
    };
    let mut router = Router::new(group("default", parse_backends(&specs)?));
    for route in &args.routes {
        let (prefix, list) =
            route.split_once('=').with_context(|| format!("--route {route:?}: expected PREFIX=HOST:PORT[,...]"))?;
        if !prefix.starts_with('/') {
            bail!("--route {route:?}: the prefix must start with /");
        }
        let specs: Vec<String> = list.split(',').map(str::to_string).collect();
        router.add_route(prefix, group(prefix, parse_backends(&specs).with_context(|| format!("--route {route:?}"))?));
    }

    let mut options = Options {
        max_connections: args.max_connections,
        drain_timeout: Duration::from_secs(args.drain_timeout_secs),
        hash_key: args.hash_key,
        stats_every: args.stats_every,
        stats_path: args.stats_path.clone(),
        weights_file: args.weights_file.clone(),
        ..Options::default()
    };
    options.timeouts.connect = Duration::from_millis(args.connect_timeout_ms);
    options.timeouts.response = Duration::from_millis(args.response_timeout_ms);
    options.limits.header_timeout = Duration::from_millis(args.header_timeout_ms.max(1));
    options.health.probe = match args.health_check {
        CheckArg::Off => Probe::Off,
        CheckArg::Tcp => Probe::Tcp,
        CheckArg::Http => Probe::Http(args.health_path.clone()),
    };
    options.health.interval = Duration::from_millis(args.health_interval_ms.max(10));
    options.health.timeout = Duration::from_millis(args.health_timeout_ms.max(1));
    options.health.rise = args.healthy_threshold.max(1);
    options.health.fall = args.unhealthy_threshold.max(1);
    options.health.max_fails = args.max_fails.max(1);
    options.health.fail_timeout = Duration::from_secs(args.fail_timeout_secs);

    let lb = AdvancedLb::new(router, options);
    #[cfg(unix)]
    let _ = lb_slot.set(Arc::clone(&lb));
    let mut checkers = Vec::new();
    for checker in lb.router.checkers(&lb.options.health) {
        checkers.push(checker.spawn(shutdown.clone())?);
    }

    let addr = SocketAddr::new(args.host, args.port);
    let listener = listen(addr, DEFAULT_BACKLOG).with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, backends = %specs.join(", "), algorithm = ?args.algorithm, "advanced load balancer listening");
    if args.demo {
        eprintln!("demo: backends {} (weights 3, 2, 1) are running in this process", specs.join(", "));
        eprintln!("demo: try `curl -i http://localhost:{}/`", local.port());
    }
    run(listener, Arc::clone(&lb), shutdown.clone())?;
    shutdown.trigger();
    for c in checkers {
        let _ = c.join();
    }
    eprint!("{}", stats::report(&lb));
    Ok(())
}
