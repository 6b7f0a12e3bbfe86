//! `forward_proxy`: a CONNECT and plain-HTTP forward proxy that is not an
//! open relay.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use ch01_fundamentals::cli::{ListenArgs, LogArgs};
use ch01_fundamentals::logging;
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::Shutdown;
use ch02_proxy::cli::TimeoutArgs;
use ch02_proxy::forward::{ForwardConfig, run};
use ch02_proxy::labs::lab_6_2_http_cache::HttpCache;
use clap::Parser;

/// A forward proxy. CONNECT host:port opens a tunnel (HTTPS through a
/// proxy); GET http://host/path is forwarded as a plain request. Only
/// allowed ports are reached: 443 for CONNECT and 80 for plain requests,
/// plus every --allow-port; anything else gets 403.
///
/// Try it: `cargo run -p backends` (a backend on 9001), then
/// `cargo run -p ch02-proxy --bin forward_proxy -- --allow-port 9001` and
/// `curl -p -x http://127.0.0.1:3128 http://127.0.0.1:9001/`.
#[derive(Debug, Parser)]
#[command(version, mut_arg("port", |a| a.help("Port to listen on [default: 3128]")))]
struct Args {
    #[command(flatten)]
    listen: ListenArgs,
    /// Also allow this port, for CONNECT and plain requests (repeatable).
    #[arg(long = "allow-port", value_name = "PORT")]
    allow_ports: Vec<u16>,
    #[command(flatten)]
    timeouts: TimeoutArgs,
    /// Clients served at once.
    #[arg(long, default_value_t = ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Cache up to this many GET responses (lab 6.2); 0 turns the cache off.
    #[arg(long, default_value_t = 0)]
    cache_entries: usize,
    /// Bytes of responses the cache may hold.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    cache_bytes: usize,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log.log_format);
    let mut config = ForwardConfig::default();
    for port in &args.allow_ports {
        config.allow_port(*port);
    }
    config.timeouts = args.timeouts.timeouts();
    config.limits = args.timeouts.limits(config.limits);
    config.max_connections = args.max_connections;
    if args.cache_entries > 0 {
        config.cache = Some(Arc::new(HttpCache::new(args.cache_entries, args.cache_bytes)));
    }
    let addr = args.listen.addr(3128).map_err(|e| anyhow!(e))?;
    let listener = listen(addr, DEFAULT_BACKLOG).with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        connect_ports = ?config.connect_ports,
        http_ports = ?config.http_ports,
        "forward proxy listening"
    );
    run(listener, config, Shutdown::new())?;
    Ok(())
}
