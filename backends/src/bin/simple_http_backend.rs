//! `simple_http_backend`: one or several test backends.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use backends::{BackendConfig, State, run};
use ch01_fundamentals::logging::{self, LogFormat};
use clap::Parser;
use tokio::net::TcpListener;

/// A small HTTP/1.1 server to put behind a proxy or load balancer.
///
/// Endpoints: / (names the backend), /health (200, or 503 after
/// POST /admin/health/down; /admin/health/up restores it), /echo (the
/// request head it received), /bytes/N (N bytes; ?chunked=1), /slow?ms=N,
/// /status/CODE, /stats (JSON counters).
///
/// Example: `simple_http_backend --count 3 --base-port 9001` starts
/// backend-9001, backend-9002 and backend-9003.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on (with --count, see --base-port).
    #[arg(short, long, default_value_t = 9001)]
    port: u16,
    /// Address to listen on.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Name shown in answers [default: backend-PORT]; with --count,
    /// NAME-1, NAME-2, ...
    #[arg(short, long)]
    name: Option<String>,
    /// Delay added to each request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Random extra delay of up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Fraction of requests (0.0 to 1.0) answered with 500.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Start this many backends on consecutive ports.
    #[arg(long, default_value_t = 1)]
    count: u16,
    /// First port when --count is given [default: --port].
    #[arg(long)]
    base_port: Option<u16>,
    /// Milliseconds a request head may take from its first byte (then 408).
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Milliseconds a keep-alive connection may stay idle before this
    /// backend closes it.
    #[arg(long, default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// A random extra of up to this many milliseconds on each idle timeout.
    #[arg(long, default_value_t = 0)]
    idle_jitter_ms: u64,
    /// Log line format (RUST_LOG chooses the level).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log_format);
    if !(0.0..=1.0).contains(&args.fail_rate) {
        bail!("--fail-rate must be between 0.0 and 1.0, got {}", args.fail_rate);
    }
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let base = args.base_port.unwrap_or(args.port);
    let mut servers = Vec::new();
    for i in 0..args.count {
        let port = base.checked_add(i).context("ports run past 65535")?;
        let addr = SocketAddr::new(args.host, port);
        // A deep accept queue (tokio's bind asks for 1024): a load balancer
        // may open thousands of connections at once.
        let listener = ch01_fundamentals::net::listen(addr, 4096)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
            .with_context(|| format!("cannot listen on {addr}"))?;
        // The bound address: with port 0 the kernel chose the port.
        let addr = listener.local_addr()?;
        let name = match (&args.name, args.count) {
            (Some(n), 1) => n.clone(),
            (Some(n), _) => format!("{n}-{}", i + 1),
            (None, _) => format!("backend-{}", addr.port()),
        };
        let config = BackendConfig {
            addr,
            name: name.clone(),
            latency: Duration::from_millis(args.latency_ms),
            jitter: Duration::from_millis(args.jitter_ms),
            fail_rate: args.fail_rate,
            header_timeout: Duration::from_millis(args.header_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(args.idle_timeout_ms.max(1)),
            idle_jitter: Duration::from_millis(args.idle_jitter_ms),
            ..BackendConfig::default()
        };
        tracing::info!(%addr, %name, "backend listening");
        let state = State::new(config);
        servers.push(tokio::spawn(run(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })));
    }
    for s in servers {
        s.await??;
    }
    tracing::info!("backends stopped");
    Ok(())
}
