//! `echo_server [PORT]`: the chapter 1 echo server.
//!
//! Thin on purpose: parse arguments, bind, hand over to the library.

use anyhow::{Context, anyhow};
use ch01_fundamentals::cli::{ListenArgs, LogArgs};
use ch01_fundamentals::logging;
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
    #[command(flatten)]
    listen: ListenArgs,
    /// Length of the queue of connections waiting for accept().
    #[arg(long, default_value_t = DEFAULT_BACKLOG)]
    backlog: i32,
    /// Clients served at once; more are closed on arrival.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log.log_format);
    let addr = args.listen.addr(ch01_fundamentals::cli::DEFAULT_PORT).map_err(|e| anyhow!(e))?;
    let shutdown = Shutdown::new();
    // Ctrl-C or SIGTERM: stop accepting, close every connection, log, exit.
    #[cfg(unix)]
    {
        use ch01_fundamentals::signals::{Stopping, on_signals};
        on_signals(shutdown.clone(), Stopping::Now, || {}, || {})?;
        match ch01_fundamentals::net::raise_fd_limit() {
            Ok(limit) => tracing::debug!(limit, "open-files limit"),
            Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
        }
    }
    let listener = listen(addr, args.backlog).with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "echo server listening");
    let config = ServerConfig { max_connections: args.max_connections, ..ServerConfig::default() };
    ch01_fundamentals::echo::run_with(listener, shutdown, config)?;
    Ok(())
}
