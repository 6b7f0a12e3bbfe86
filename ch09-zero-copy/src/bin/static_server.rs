//! `static_server`: a directory over HTTP/1.1, file bodies by sendfile.

use std::path::PathBuf;

use anyhow::Context;
use ch01_fundamentals::cli::{ListenArgs, LogArgs};
use ch01_fundamentals::logging;
use ch01_fundamentals::net::{listen, raise_fd_limit};
use ch01_fundamentals::server::Shutdown;
use ch05_event_loop::poller::Mechanism;
use ch09_zero_copy::server::{StaticConfig, run};
use clap::Parser;

/// Serves the files under --root over HTTP/1.1: GET and HEAD, keep-alive,
/// Range (206, 416), ETag and Last-Modified (304), content types from
/// extensions. Nothing outside the root is ever served: `..`, encoded
/// separators, NUL bytes and symlinks that lead out are refused. Bodies
/// go out with sendfile(2) where the system has it. One thread serves
/// every connection, on chapter 5's poller.
///
/// Try it: `cargo run -p ch09-zero-copy -- --root book/build`, then
/// `curl -I localhost:8080/` and `curl -r 0-99 localhost:8080/index.html`.
// ANCHOR: main
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs,
    /// The directory to serve.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Most bytes one sendfile call sends (KiB), so that one big file does
    /// not hold a connection's send path for long.
    #[arg(long, default_value_t = 2048)]
    max_chunk_kib: usize,
    /// Milliseconds for a complete request head (then 408), and for an
    /// idle keep-alive client to send its next request.
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Milliseconds a client may go without accepting a byte of its reply.
    #[arg(long, default_value_t = 30_000)]
    write_timeout_ms: u64,
    /// Clients held at once; more get 503.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Which system call waits for readiness: epoll, kqueue or poll.
    #[arg(long, default_value_t = Mechanism::best(), value_parser = ch05_event_loop::app::parse_poller)]
    poller: Mechanism,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log.log_format);
    let root = args.root.canonicalize().with_context(|| format!("cannot serve {}", args.root.display()))?;
    anyhow::ensure!(root.is_dir(), "{} is not a directory", root.display());
    let shutdown = Shutdown::new();
    #[cfg(unix)]
    ch01_fundamentals::signals::on_signals(shutdown.clone(), ch01_fundamentals::signals::Stopping::Now, || {}, || {})?;
    let addr = args.listen.addr(ch01_fundamentals::cli::DEFAULT_PORT).map_err(anyhow::Error::msg)?;
    let fds = raise_fd_limit().context("cannot raise the open-files limit")?;
    let listener = listen(addr, 4096).with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, root = %root.display(), poller = %args.poller, fd_limit = fds,
        "static server listening");
    let ms = std::time::Duration::from_millis;
    let mut config = StaticConfig {
        max_chunk: args.max_chunk_kib.max(1) * 1024,
        write_timeout: ms(args.write_timeout_ms.max(1)),
        max_connections: args.max_connections.max(1),
        poller: args.poller,
        ..StaticConfig::new(root)
    };
    config.limits.header_timeout = ms(args.header_timeout_ms.max(1));
    run(listener, &config, shutdown)?;
    Ok(())
}
// ANCHOR_END: main
