//! `advanced_lb`: the chapter 4 load balancer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use ch01_fundamentals::cli::{DEFAULT_PORT, ListenArgs, LogArgs};
use ch01_fundamentals::logging;
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::Shutdown;
use ch02_proxy::cli::TimeoutArgs;
use ch03_load_balancer::cli::BackendArgs;
use ch04_advanced::algorithm;
use ch04_advanced::balancer::{AdvancedLb, HashKey, Options, run};
use ch04_advanced::cli::{AlgorithmArgs, HealthArgs};
use ch04_advanced::health::CheckHooks;
use ch04_advanced::labs::lab_4_5_statistics::PeriodicReporter;
use ch04_advanced::labs::lab_8_4_weight_reload::reload_weights_file;
use ch04_advanced::labs::{self, Expectation, lab_7_3_http_health_check, lab_7_4_warm_up};
use ch04_advanced::node::{Backend, Pool};
use ch04_advanced::routing::{Group, Router};
use ch04_advanced::stats;
use clap::Parser;

/// The advanced load balancer: many algorithms, active and passive health
/// checks with slow start, X-Request-ID, sticky sessions, path routing,
/// per-backend statistics (kill -USR1) and draining on SIGTERM or Ctrl-C.
///
/// Try it: `cargo run -p ch04-advanced -- --algorithm wrr`, then
/// `curl -i localhost:8080/` (with nothing on 127.0.0.1:9001-9003 it starts
/// three demo backends, weights 3, 2, 1, and says so). `advanced_lb 8080`
/// works too.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    backends: BackendArgs,
    #[command(flatten)]
    algorithm: AlgorithmArgs,
    /// What --algorithm hash hashes.
    #[arg(long, value_enum, default_value_t = HashKey::Ip)]
    hash_key: HashKey,
    /// Route a path prefix to its own backends: PREFIX=HOST:PORT[:W][,HOST:PORT[:W]...] (repeatable).
    #[arg(long = "route", value_name = "PREFIX=BACKENDS")]
    routes: Vec<String>,
    #[command(flatten)]
    health: HealthArgs,
    /// Probe with lab 7.3's HTTP check instead, expecting this status from
    /// GET --health-path (with --health-expect-body, 200 if not given).
    #[arg(long, value_name = "STATUS")]
    health_expect_status: Option<u16>,
    /// Probe with lab 7.3's HTTP check instead, expecting this text in the
    /// body of GET --health-path.
    #[arg(long, value_name = "TEXT")]
    health_expect_body: Option<String>,
    /// Count failed requests with lab 4.3's counter: --max-fails in a row
    /// take a backend down.
    #[arg(long)]
    failure_counting: bool,
    /// Probe only the backends that are down, on lab 4.4's schedule (every
    /// --health-interval-ms, back after --healthy-threshold good probes in
    /// a row); backends that are up are watched by real traffic alone.
    #[arg(long)]
    recovery_check: bool,
    /// Before a recovering backend takes traffic again, send it this many
    /// requests of our own (lab 7.4's warm-up; a failure keeps it down).
    #[arg(long, value_name = "N", default_value_t = 0)]
    warm_up: u32,
    /// The path the warm-up requests ask for.
    #[arg(long, value_name = "PATH", default_value = "/")]
    warm_up_path: String,
    /// Seconds over which a recovered backend's weight ramps up.
    #[arg(long, default_value_t = 0)]
    slow_start_secs: u64,
    /// Seconds in-flight requests get to finish on SIGTERM/Ctrl-C.
    #[arg(long, default_value_t = 30)]
    drain_timeout_secs: u64,
    #[command(flatten)]
    timeouts: TimeoutArgs,
    /// Clients served at once.
    #[arg(long, default_value_t = ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Print a short report every N requests (lab 4.5), with each
    /// backend's average response time; the flag alone means every 100.
    /// Off without it (a build with your unfinished lab 4.5 still runs).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "100", default_value_t = 0)]
    stats_every: u64,
    /// Answer this path with JSON statistics, e.g. /lb-stats (lab 8.3).
    #[arg(long)]
    stats_path: Option<String>,
    /// Reload the default group's weights from this file on SIGHUP (lab 8.4).
    #[arg(long)]
    weights_file: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

/// Labs 4.4, 7.3 and 7.4 in the active checks, when their flags ask for
/// them.
fn check_hooks(args: &Args) -> CheckHooks {
    let timeout = Duration::from_millis(args.health.health_timeout_ms.max(1));
    let resolve = |addr: &str| -> Result<std::net::SocketAddr, String> {
        std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| format!("{addr} has no address"))
    };
    let mut hooks = CheckHooks::default();
    if args.health_expect_status.is_some() || args.health_expect_body.is_some() {
        let expect = Expectation {
            status: args.health_expect_status.unwrap_or(200),
            body_contains: args.health_expect_body.clone(),
        };
        let path = args.health.health_path.clone();
        hooks.probe = Some(Arc::new(move |addr: &str| {
            lab_7_3_http_health_check::http_check(resolve(addr)?, &path, &expect, timeout).map_err(|e| e.to_string())
        }));
    }
    if args.warm_up > 0 {
        let (requests, path) = (args.warm_up, args.warm_up_path.clone());
        hooks.warm_up = Some(Arc::new(move |addr: &str| {
            let sent = lab_7_4_warm_up::warm_up(resolve(addr)?, &path, requests, timeout).map_err(|e| e.to_string())?;
            tracing::info!(backend = addr, requests = sent, "warmed up");
            Ok(())
        }));
    }
    if args.recovery_check {
        hooks.recovery = Some(Arc::new(labs::ScheduledRecovery::default()));
    }
    hooks
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
    logging::init(args.log.log_format);
    let shutdown = Shutdown::new();

    // Signals first: their mask is inherited by every thread started later.
    // SIGUSR1 prints the statistics; SIGHUP reloads --weights-file.
    #[cfg(unix)]
    let lb_slot = {
        let weights = args.weights_file.clone();
        let reload = move |lb: &Arc<AdvancedLb>| match &weights {
            Some(path) => match reload_weights_file(lb.default_pool(), path) {
                Ok(changed) => tracing::info!(file = %path.display(), changed, "weights reloaded"),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "weights not reloaded; keeping the old ones")
                }
            },
            None => tracing::warn!("SIGHUP: no --weights-file to reload"),
        };
        let stopping = ch03_load_balancer::signals::Stopping::Draining;
        ch03_load_balancer::signals::for_server(&shutdown, stopping, |lb| stats::report(lb), reload)?
    };

    let chosen = args.backends.choose(&[3, 2, 1])?;
    let specs = &chosen.specs;
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    // `--algorithm fastest` is lab 7.2's.
    let alg_options = algorithm::Options {
        cookie_name: args.algorithm.cookie_name.clone(),
        seed,
        fastest: Some(labs::fastest),
        ..Default::default()
    };
    let slow_start = Duration::from_secs(args.slow_start_secs);
    let group = |name: &str, backends: Vec<Backend>| {
        let pool = Pool { slow_start, ..Pool::new(backends) };
        let algorithm = algorithm::build(args.algorithm.algorithm, &pool, &alg_options);
        Group { name: name.to_string(), pool: Arc::new(pool), algorithm }
    };
    let mut router = Router::new(group("default", parse_backends(specs)?));
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
        // Labs 4.3, 4.5 and 8.3, when asked for.
        passive: args
            .failure_counting
            .then(|| Arc::new(labs::CountedFailures::default()) as Arc<dyn ch04_advanced::health::PassiveCheck>),
        reporter: (args.stats_every > 0)
            .then(|| Arc::new(PeriodicReporter::new(args.stats_every)) as Arc<dyn stats::Reporter>),
        stats_endpoint: args.stats_path.clone().map(labs::stats_endpoint),
        weights_file: args.weights_file.clone(),
        trusted_proxies: args.algorithm.trusted_proxies.clone(),
        health: args.health.config(),
        timeouts: args.timeouts.timeouts(),
        ..Options::default()
    };
    options.limits = args.timeouts.limits(options.limits);

    let lb = AdvancedLb::new(router, options);
    #[cfg(unix)]
    let _ = lb_slot.set(Arc::clone(&lb));
    let hooks = check_hooks(&args);
    let mut checkers = Vec::new();
    for checker in lb.router.checkers(&lb.options.health) {
        checkers.push(checker.with_hooks(hooks.clone()).spawn(shutdown.clone())?);
    }

    let addr = args.listen.addr(DEFAULT_PORT).map_err(|e| anyhow!(e))?;
    let listener = listen(addr, DEFAULT_BACKLOG).with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, backends = %specs.join(", "), algorithm = ?args.algorithm.algorithm, "advanced load balancer listening");
    chosen.announce(local.port());
    run(listener, Arc::clone(&lb), shutdown.clone())?;
    shutdown.trigger();
    for c in checkers {
        let _ = c.join();
    }
    eprint!("{}", stats::report(&lb));
    Ok(())
}
