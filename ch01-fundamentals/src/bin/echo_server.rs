//! `echo_server [PORT]`: the chapter 1 echo server.
//!
//! Thin on purpose: parse arguments, bind, hand over to the library.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use ch01_fundamentals::logging::{self, LogFormat};
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::{DEFAULT_MAX_CONNECTIONS, ServerConfig, Shutdown};
use clap::Parser;

/// A thread-per-connection TCP echo server: every byte a client sends
/// comes straight back.
///
/// Try it: `cargo run -p ch01-fundamentals` in one terminal, then
/// `cargo run -p ch01-fundamentals --bin echo_client -- --message hello`
/// (or `nc 127.0.0.1 8080`) in another.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on (the same as --port; give one or the other).
    #[arg(value_name = "PORT")]
    port_positional: Option<u16>,
    /// Port to listen on [default: 8080].
    #[arg(short, long)]
    port: Option<u16>,
    /// Address to listen on; 0.0.0.0 accepts connections from other machines.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Length of the queue of connections waiting for accept().
    #[arg(long, default_value_t = DEFAULT_BACKLOG)]
    backlog: i32,
    /// Clients served at once; more are closed on arrival.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Log line format (RUST_LOG chooses the level).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log_format);
    let port = match (args.port_positional, args.port) {
        (Some(p), Some(q)) if p != q => bail!("two different ports given ({p} and --port {q}); give one"),
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => 8080,
    };
    let shutdown = Shutdown::new();
    // Ctrl-C or SIGTERM: stop accepting, close every connection, log, exit.
    #[cfg(unix)]
    {
        let stop = shutdown.clone();
        ch01_fundamentals::signals::spawn(move |request| {
            if request == ch01_fundamentals::signals::Request::Stop {
                tracing::info!("stopping");
                stop.trigger();
                return false;
            }
            true
        })?;
        match ch01_fundamentals::net::raise_fd_limit() {
            Ok(limit) => tracing::debug!(limit, "open-files limit"),
            Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
        }
    }
    let addr = SocketAddr::new(args.host, port);
    let listener = listen(addr, args.backlog).with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "echo server listening");
    let config = ServerConfig { max_connections: args.max_connections, ..ServerConfig::default() };
    ch01_fundamentals::echo::run_with(listener, shutdown, config)?;
    Ok(())
}
