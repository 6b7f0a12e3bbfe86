//! `l4_proxy`: a layer 4 (TCP) load balancer, bytes relayed by splice.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use ch01_fundamentals::cli::{ListenArgs, LogArgs};
use ch01_fundamentals::logging;
use ch01_fundamentals::net::{listen, raise_fd_limit};
use ch01_fundamentals::server::Shutdown;
use ch03_load_balancer::cli::BackendArgs;
use ch04_advanced::algorithm::Kind as Algorithm;
use ch04_advanced::cli::HealthArgs;
use ch04_advanced::health::{HealthChecker, Probe};
use ch04_advanced::node::{Backend, Pool};
use ch05_event_loop::lb::backends::Current;
use ch05_event_loop::poller::Mechanism;
use ch09_zero_copy::l4::{L4Config, L4Stats, LAYER4_ALGORITHMS, at_layer4, run, settings};
use ch09_zero_copy::relay::Kind;
use clap::Parser;

/// A layer 4 load balancer: each TCP connection goes to one backend,
/// chosen by round robin, weighted round robin, least connections or
/// client IP hash, and its bytes are relayed both ways with splice(2)
/// once a connection has carried 64 KiB (--copy: read and write only;
/// --splice: splice only) without ever being parsed: any protocol over
/// TCP. One thread, chapter 5's poller; a second probes the backends
/// (a TCP connect every --health-interval-ms by default). Statistics on
/// SIGUSR1 and at exit.
///
/// Try it: `cargo run -p ch09-zero-copy --bin l4_proxy`, then
/// `curl localhost:8080/` (with nothing on 127.0.0.1:9001-9003 it starts
/// three demo HTTP backends and says so).
// ANCHOR: main
#[derive(Debug, Parser)]
#[command(version, mut_arg("health_check", |a| a.default_value("tcp")))]
struct Args {
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    backends: BackendArgs,
    /// How a backend is chosen for a connection: rr, wrr, lc, iphash,
    /// random, wrandom or hash (chapter 4's names and aliases; the hashes
    /// key on the client's address; sticky and fastest need a request).
    #[arg(short, long, visible_alias = "strategy", short_alias = 's', value_enum, default_value_t = Algorithm::Rr)]
    algorithm: Algorithm,
    /// Relay with read and write through a buffer, never splice (to compare).
    #[arg(long, conflicts_with = "splice")]
    copy: bool,
    /// Splice from the first byte. By default a connection's first 64 KiB
    /// each way are copied and only the rest spliced: for small transfers
    /// a pipe costs more than it saves.
    #[arg(long)]
    splice: bool,
    /// KiB each direction holds between the sockets (the pipe, or the buffer).
    #[arg(long, default_value_t = 256)]
    buffer_kib: usize,
    /// Milliseconds a backend may take to accept; then the next is tried.
    #[arg(long, default_value_t = 2_000)]
    connect_timeout_ms: u64,
    /// Milliseconds a connection may move no byte before it is closed.
    #[arg(long, default_value_t = 300_000)]
    idle_timeout_ms: u64,
    /// Client connections held at once; more are closed on arrival.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Which system call waits for readiness: epoll, kqueue or poll.
    #[arg(long, default_value_t = Mechanism::best(), value_parser = ch05_event_loop::app::parse_poller)]
    poller: Mechanism,
    #[command(flatten)]
    health: HealthArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log.log_format);
    if !at_layer4(args.algorithm) {
        bail!("--algorithm {:?} needs a request to look at; at layer 4 use {LAYER4_ALGORITHMS}", args.algorithm);
    }
    let shutdown = Shutdown::new();
    let stats = Arc::new(L4Stats::default());
    #[cfg(unix)]
    let slot = {
        use ch03_load_balancer::signals::{Stopping, for_server};
        let stats = Arc::clone(&stats);
        for_server(&shutdown, Stopping::Now, move |pool: &Arc<Pool>| stats.report("l4_proxy", &pool.nodes), |_| {})?
    };
    let chosen = args.backends.choose(&[3, 2, 1])?;
    let backends = chosen.specs.iter().map(|s| Backend::parse(s.trim())).collect::<Result<Vec<_>, _>>()?;
    let connect = Duration::from_millis(args.connect_timeout_ms.max(1));
    let idle = Duration::from_millis(args.idle_timeout_ms.max(1));
    // Stopping closes the connections at once: no drain.
    let loop_settings = settings(connect, idle, args.health.config(), Duration::ZERO);
    let health = loop_settings.health.clone();
    // One set that nothing replaces (chapter 10's layer 4 mode reloads it).
    let current = Current::new(backends, args.algorithm, &loop_settings)?;
    let pool = Arc::clone(&current.load().pool);
    #[cfg(unix)]
    let _ = slot.set(Arc::clone(&pool));
    let size = args.buffer_kib.max(4) * 1024;
    let kind = match (args.copy, args.splice) {
        (true, _) => Kind::Copy(size),
        (false, true) => Kind::Splice(size),
        (false, false) => Kind::Auto(size),
    };
    let config = L4Config { kind, max_connections: args.max_connections.max(1), poller: args.poller };
    if health.probe != Probe::Off {
        HealthChecker::new(Arc::clone(&pool), health).spawn(shutdown.clone())?;
    }
    let fds = raise_fd_limit().context("cannot raise the open-files limit")?;
    let addr = args.listen.addr(ch01_fundamentals::cli::DEFAULT_PORT).map_err(anyhow::Error::msg)?;
    let listener = listen(addr, 4096).with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, backends = pool.nodes.len(), algorithm = ?args.algorithm, relay = ?kind,
        poller = %args.poller, fd_limit = fds, "l4 proxy listening");
    chosen.announce(local.port());
    run(listener, &current, &config, &stats, shutdown)?;
    eprint!("{}", stats.report("l4_proxy", &pool.nodes));
    Ok(())
}
// ANCHOR_END: main
