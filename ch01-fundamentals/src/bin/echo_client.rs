//! `echo_client`: sends lines to an echo server and prints what comes back.

use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use ch01_fundamentals::cli::LogArgs;
use ch01_fundamentals::io::write_all;
use ch01_fundamentals::logging;
use ch01_fundamentals::net::connect;
use clap::Parser;

/// Talks to an echo server: each line of standard input is sent, and the
/// echo is printed. With --message, sends that one message and exits.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Server address.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Server port.
    #[arg(short, long, default_value_t = 8080)]
    port: u16,
    /// Send this one message (a newline is added), print the echo, exit.
    #[arg(short, long)]
    message: Option<String>,
    /// Seconds to wait for the connection and for each echo.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log.log_format);
    let addr = SocketAddr::new(args.host, args.port);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut stream = connect(addr, timeout).with_context(|| {
        format!("could not connect to {addr} (is the server running? `cargo run -p ch01-fundamentals` starts one)")
    })?;
    stream.set_read_timeout(Some(timeout))?;
    let stdout = io::stdout();
    let mut out = stdout.lock();

    if let Some(message) = args.message {
        // One message: send it, close our sending side, print all that
        // comes back until the server closes too.
        write_all(&mut stream, format!("{message}\n").as_bytes())?;
        stream.shutdown(Shutdown::Write)?;
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed).context("reading the echo")?;
        out.write_all(&echoed)?;
        return Ok(());
    }

    // Interactive: a line out, the same number of bytes back.
    for line in io::stdin().lock().lines() {
        let line = line.context("reading standard input")?;
        let sent = format!("{line}\n");
        write_all(&mut stream, sent.as_bytes())?;
        let mut echoed = vec![0u8; sent.len()];
        if let Err(e) = stream.read_exact(&mut echoed) {
            bail!("the server did not echo {} bytes: {e}", sent.len());
        }
        out.write_all(&echoed)?;
        out.flush()?;
    }
    Ok(())
}
