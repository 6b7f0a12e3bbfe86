//! The command line both chapter 5 binaries share: the same flag groups
//! as every balancer before them (listen, backends, algorithm, health,
//! timeouts, logging), flattened in.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use ch01_fundamentals::cli::{DEFAULT_PORT, ListenArgs, LogArgs};
use ch02_proxy::cli::TimeoutArgs;
use ch02_proxy::http::Limits;
use ch02_proxy::proxy::Timeouts;
use ch03_load_balancer::cli::BackendArgs;
use ch03_load_balancer::demo::Chosen;
use ch04_advanced::algorithm;
use ch04_advanced::cli::{AlgorithmArgs, HealthArgs};
use ch04_advanced::health::HealthConfig;
use ch04_advanced::node::Backend;

/// Flags common to `high_perf_lb` and `tokio_lb`.
#[derive(Debug, Clone, clap::Args)]
pub struct LbArgs {
    /// Where to listen.
    #[command(flatten)]
    pub listen: ListenArgs,
    /// The backends.
    #[command(flatten)]
    pub backends: BackendArgs,
    /// How a backend is chosen.
    #[command(flatten)]
    pub algorithm: AlgorithmArgs,
    /// Health checks.
    #[command(flatten)]
    pub health: HealthArgs,
    /// Timeouts.
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    /// Seconds requests in progress get to finish on SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout_secs: u64,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// What the flags describe, checked.
#[derive(Debug)]
pub struct Setup {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The backends.
    pub backends: Vec<Backend>,
    /// Their addresses, resolved.
    pub addrs: Vec<SocketAddr>,
    /// Head limits and the header timeout.
    pub limits: Limits,
    /// Connect, response and idle timeouts.
    pub timeouts: Timeouts,
    /// Health checking.
    pub health: HealthConfig,
    /// The algorithm's options (sticky cookie name).
    pub algorithm: algorithm::Options,
    /// Where the backends came from; demo backends live as long as this.
    pub chosen: Chosen,
}

impl LbArgs {
    /// Checks the flags and starts the demo backends if asked for, or if
    /// none is given and none answers on the defaults.
    pub fn setup(&self) -> anyhow::Result<Setup> {
        let listen = self.listen.addr(DEFAULT_PORT).map_err(|e| anyhow!(e))?;
        let chosen = self.backends.choose(&[3, 2, 1])?;
        let backends = chosen.specs.iter().map(|s| Backend::parse(s.trim())).collect::<Result<Vec<_>, _>>()?;
        if backends.is_empty() {
            bail!("at least one backend is needed");
        }
        let mut addrs = Vec::new();
        for b in &backends {
            let addr = b.addr.to_socket_addrs().with_context(|| format!("backend {}: cannot resolve", b.addr))?.next();
            addrs.push(addr.with_context(|| format!("backend {}: no address", b.addr))?);
        }
        let algorithm =
            algorithm::Options { cookie_name: self.algorithm.cookie_name.clone(), ..algorithm::Options::default() };
        Ok(Setup {
            listen,
            backends,
            addrs,
            limits: self.timeouts.limits(Limits::default()),
            timeouts: self.timeouts.timeouts(),
            health: self.health.config(),
            algorithm,
            chosen,
        })
    }

    /// How long requests in progress may take to finish on shutdown.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }
}
