//! `reverse_proxy`: one backend behind one address.

use std::fs::OpenOptions;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ch01_fundamentals::logging::{self, LogFormat};
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::Shutdown;
use ch02_proxy::http::split_authority;
use ch02_proxy::labs::RequestLogger;
use ch02_proxy::reverse::{ReverseConfig, run};
use clap::Parser;

/// A reverse proxy: forwards every request to one backend, adding
/// X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host, and
/// answers 400, 405, 408, 414, 431, 501, 502 or 504 with a body that says why.
///
/// Try it: `cargo run -p backends` (a backend on 9001) in one terminal,
/// `cargo run -p ch02-proxy -- --backend 127.0.0.1:9001` in another, then
/// `curl -i 127.0.0.1:8080/echo`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on.
    #[arg(short, long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The backend, host:port.
    #[arg(short, long, default_value = "127.0.0.1:9001")]
    backend: String,
    /// Milliseconds to wait for a connection to the backend (then 504).
    #[arg(long, default_value_t = 5_000)]
    connect_timeout_ms: u64,
    /// Milliseconds to wait for the backend's response head (then 504).
    #[arg(long, default_value_t = 30_000)]
    response_timeout_ms: u64,
    /// Milliseconds a client has to send its request head (then 408).
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Milliseconds without a byte moving before a body transfer is cut.
    #[arg(long, default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// Largest request head in bytes (then 431).
    #[arg(long, default_value_t = ch02_proxy::http::DEFAULT_MAX_HEAD_BYTES)]
    max_head_bytes: usize,
    /// Clients served at once.
    #[arg(long, default_value_t = ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Append an access-log line per request to this file (lab 6.1).
    #[arg(long, value_name = "FILE")]
    access_log: Option<std::path::PathBuf>,
    /// Also add an RFC 7239 Forwarded header (lab 6.3).
    #[arg(long)]
    forwarded: bool,
    /// Log line format (RUST_LOG chooses the level).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log_format);
    if split_authority(&args.backend).is_none() {
        bail!("--backend must be host:port, got {:?}", args.backend);
    }
    let mut config = ReverseConfig::new(args.backend.clone());
    config.timeouts.connect = Duration::from_millis(args.connect_timeout_ms);
    config.timeouts.response = Duration::from_millis(args.response_timeout_ms);
    config.timeouts.idle = Duration::from_millis(args.idle_timeout_ms);
    config.limits.header_timeout = Duration::from_millis(args.header_timeout_ms);
    config.limits.max_head_bytes = args.max_head_bytes;
    config.max_connections = args.max_connections;
    config.add_forwarded = args.forwarded;
    if let Some(path) = &args.access_log {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open access log {}", path.display()))?;
        config.on_exchange = Some(Arc::new(RequestLogger::new(Box::new(file))).hook());
    }
    let addr = SocketAddr::new(args.host, args.port);
    let listener = listen(addr, DEFAULT_BACKLOG).with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, backend = %args.backend, "reverse proxy listening");
    run(listener, config, Shutdown::new())?;
    Ok(())
}
