//! `reverse_proxy`: one backend behind one address.

use std::fs::OpenOptions;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use ch01_fundamentals::cli::{DEFAULT_PORT, ListenArgs, LogArgs};
use ch01_fundamentals::logging;
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::Shutdown;
use ch02_proxy::cli::TimeoutArgs;
use ch02_proxy::http::split_authority;
use ch02_proxy::labs::RequestLogger;
use ch02_proxy::labs::lab_6_3_forwarding_chain::add_forwarded;
use ch02_proxy::reverse::{ReverseConfig, run};
use clap::Parser;

/// A reverse proxy: forwards every request to one backend, adding
/// X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host, and
/// answers 400, 405, 408, 414, 431, 501, 502, 503 or 504 with a body that
/// says why.
///
/// Try it: `cargo run -p backends` (a backend on 9001) in one terminal,
/// `cargo run -p ch02-proxy -- --backend 127.0.0.1:9001` in another, then
/// `curl -i 127.0.0.1:8080/echo`. The C book's form works too:
/// `reverse_proxy 8080 127.0.0.1 9001`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs,
    /// The backend's host, positionally (`reverse_proxy 8080 127.0.0.1 9001`).
    #[arg(value_name = "BACKEND_HOST", requires = "backend_port", conflicts_with = "backend")]
    backend_host: Option<String>,
    /// The backend's port, positionally.
    #[arg(value_name = "BACKEND_PORT", requires = "backend_host")]
    backend_port: Option<u16>,
    /// The backend, host:port [default: 127.0.0.1:9001].
    #[arg(short, long)]
    backend: Option<String>,
    #[command(flatten)]
    timeouts: TimeoutArgs,
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
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log.log_format);
    let backend = match (&args.backend_host, args.backend_port, &args.backend) {
        (Some(host), Some(port), _) if host.contains(':') => format!("[{host}]:{port}"),
        (Some(host), Some(port), _) => format!("{host}:{port}"),
        // `http://host:port/` as the seeds write it, or plain `host:port`.
        (_, _, Some(b)) => {
            let b = b.trim_end_matches('/');
            b.strip_prefix("http://").or_else(|| b.strip_prefix("HTTP://")).unwrap_or(b).to_string()
        }
        _ => "127.0.0.1:9001".to_string(),
    };
    if ch02_proxy::proxy::is_tls_backend(&backend) {
        bail!("--backend {backend}: {}", ch02_proxy::proxy::NO_TLS_TO_BACKENDS);
    }
    if split_authority(&backend).is_none() {
        bail!("--backend must be host:port, got {backend:?}");
    }
    let mut config = ReverseConfig::new(backend.clone());
    config.timeouts = args.timeouts.timeouts();
    config.limits = args.timeouts.limits(config.limits);
    config.limits.max_head_bytes = args.max_head_bytes;
    config.max_connections = args.max_connections;
    if args.forwarded {
        config.edit_headers = Some(Arc::new(add_forwarded));
    }
    if let Some(path) = &args.access_log {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open access log {}", path.display()))?;
        config.on_exchange = Some(Arc::new(RequestLogger::new(Box::new(file))).hook());
    }
    let addr = args.listen.addr(DEFAULT_PORT).map_err(|e| anyhow!(e))?;
    let listener = listen(addr, DEFAULT_BACKLOG).with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, %backend, "reverse proxy listening");
    run(listener, config, Shutdown::new())?;
    Ok(())
}
