//! The command line both chapter 5 binaries share: the same flags as
//! chapter 4 where they mean the same thing.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};
use ch02_proxy::http::Limits;
use ch02_proxy::proxy::Timeouts;
use ch04_advanced::algorithm::Kind;
use ch04_advanced::health::{HealthConfig, Probe};
use ch04_advanced::node::Backend;

/// Active health-check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckArg {
    /// Passive checks only (failed requests).
    Off,
    /// A TCP connection must succeed.
    Tcp,
    /// GET --health-path must answer 2xx.
    Http,
}

/// Flags common to `high_perf_lb` and `tokio_lb`.
#[derive(Debug, Clone, clap::Args)]
pub struct LbArgs {
    /// Port to listen on.
    #[arg(short, long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// A backend, HOST:PORT[:WEIGHT]; repeat the flag for more
    /// (default: 127.0.0.1:9001, :9002 and :9003).
    #[arg(short, long = "backend", value_name = "HOST:PORT[:WEIGHT]")]
    pub backends: Vec<String>,
    /// Start three demo backends in this process (weights 3, 2, 1) and
    /// balance over them.
    #[arg(long, conflicts_with = "backends")]
    pub demo: bool,
    /// How a backend is chosen.
    #[arg(short, long, value_enum, default_value_t = Kind::Rr)]
    pub algorithm: Kind,
    /// Active health checks.
    #[arg(long, value_enum, default_value_t = CheckArg::Http)]
    pub health_check: CheckArg,
    /// Path probed by --health-check http.
    #[arg(long, default_value = "/health")]
    pub health_path: String,
    /// Milliseconds between probes of a backend.
    #[arg(long, default_value_t = 2_000)]
    pub health_interval_ms: u64,
    /// Milliseconds a probe may take.
    #[arg(long, default_value_t = 1_000)]
    pub health_timeout_ms: u64,
    /// Probe successes in a row that bring a backend back.
    #[arg(long, default_value_t = 2)]
    pub healthy_threshold: u32,
    /// Probe failures in a row that take a backend out.
    #[arg(long, default_value_t = 3)]
    pub unhealthy_threshold: u32,
    /// Failed requests in a row that take a backend out (passive checks).
    #[arg(long, default_value_t = 3)]
    pub max_fails: u32,
    /// Milliseconds for a complete request head (408 after), and for an
    /// idle keep-alive connection to send its next request.
    #[arg(long, default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Milliseconds to connect to a backend before trying the next.
    #[arg(long, default_value_t = 2_000)]
    pub connect_timeout_ms: u64,
    /// Milliseconds for a backend's response head (504 after).
    #[arg(long, default_value_t = 30_000)]
    pub response_timeout_ms: u64,
    /// Milliseconds with no byte moving in a body before giving up.
    #[arg(long, default_value_t = 60_000)]
    pub idle_timeout_ms: u64,
    /// Seconds requests in progress get to finish on SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout_secs: u64,
    /// Log line format (RUST_LOG chooses the level).
    #[arg(long, value_enum, default_value_t = ch01_fundamentals::logging::LogFormat::Text)]
    pub log_format: ch01_fundamentals::logging::LogFormat,
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
    /// Demo backends, kept alive while the program runs.
    pub demo: Vec<backends::BackendHandle>,
}

impl LbArgs {
    /// Checks the flags and starts the demo backends if asked.
    pub fn setup(&self) -> anyhow::Result<Setup> {
        let demo = if self.demo { ch03_load_balancer::demo::start(3)? } else { Vec::new() };
        let specs = ch03_load_balancer::demo::backend_specs(&demo, &[3, 2, 1], &self.backends);
        let backends = specs.iter().map(|s| Backend::parse(s.trim())).collect::<Result<Vec<_>, _>>()?;
        if backends.is_empty() {
            bail!("at least one backend is needed");
        }
        let mut addrs = Vec::new();
        for b in &backends {
            let addr = b.addr.to_socket_addrs().with_context(|| format!("backend {}: cannot resolve", b.addr))?.next();
            addrs.push(addr.with_context(|| format!("backend {}: no address", b.addr))?);
        }
        let ms = Duration::from_millis;
        let limits = Limits { header_timeout: ms(self.header_timeout_ms.max(1)), ..Limits::default() };
        let timeouts = Timeouts {
            connect: ms(self.connect_timeout_ms.max(1)),
            response: ms(self.response_timeout_ms.max(1)),
            idle: ms(self.idle_timeout_ms.max(1)),
        };
        let health = HealthConfig {
            probe: match self.health_check {
                CheckArg::Off => Probe::Off,
                CheckArg::Tcp => Probe::Tcp,
                CheckArg::Http => Probe::Http(self.health_path.clone()),
            },
            interval: ms(self.health_interval_ms.max(10)),
            timeout: ms(self.health_timeout_ms.max(1)),
            rise: self.healthy_threshold.max(1),
            fall: self.unhealthy_threshold.max(1),
            max_fails: self.max_fails.max(1),
            ..HealthConfig::default()
        };
        Ok(Setup { listen: SocketAddr::new(self.host, self.port), backends, addrs, limits, timeouts, health, demo })
    }
}

/// Prints where the demo backends are and what to curl.
pub fn announce_demo(setup: &Setup, port: u16) {
    if !setup.demo.is_empty() {
        let list: Vec<String> = setup.addrs.iter().map(|a| a.to_string()).collect();
        eprintln!("demo: backends {} (weights 3, 2, 1) are running in this process", list.join(", "));
        eprintln!("demo: try `curl -i http://localhost:{port}/`");
    }
}
