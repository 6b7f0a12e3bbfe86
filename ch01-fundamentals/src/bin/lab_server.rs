//! `lab_server LAB`: runs one of the chapter's lab servers, so you can try
//! your work with `nc` or `telnet` before (or after) the graded tests.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use ch01_fundamentals::cli::LogArgs;
use ch01_fundamentals::labs::{
    lab_1_stamped_echo, lab_2_calculator, lab_5_1_uppercase_echo, lab_5_2_time_server, lab_5_3_chat_server,
    lab_5_4_connection_log,
};
use ch01_fundamentals::logging;
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::{ServerConfig, Shutdown, serve};
use clap::{Parser, ValueEnum};

/// Which lab to run.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Lab {
    /// Lab 1: echo with a time stamp on every answer, each message logged to stderr.
    Stamp,
    /// Lab 5.1: upper-case echo.
    Uppercase,
    /// Lab 5.2: time server.
    Time,
    /// Lab 5.3: chat server.
    Chat,
    /// Lab 5.4: echo with a connection log (see --log-file).
    Log,
    /// Lab 2: calculator (`ADD 5 3`).
    Calc,
}

/// Runs a chapter 1 lab server. Without `--no-default-features` this is
/// the reference solution; with it, your own code from src/labs/.
///
/// Example: `cargo run -p ch01-fundamentals --bin lab_server -- calc`,
/// then `nc 127.0.0.1 7000` and type `ADD 5 3`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The lab to run.
    #[arg(value_enum)]
    lab: Lab,
    /// Port to listen on.
    #[arg(short, long, default_value_t = 7000)]
    port: u16,
    /// Address to listen on.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Where lab 5.4 appends its connection log.
    #[arg(long, default_value = "connections.log")]
    log_file: PathBuf,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log.log_format);
    let addr = SocketAddr::new(args.host, args.port);
    let listener = listen(addr, DEFAULT_BACKLOG).with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, lab = ?args.lab, "lab server listening");
    let shutdown = Shutdown::new();
    let config = ServerConfig::default();
    match args.lab {
        Lab::Stamp => serve(listener, shutdown, config, |s| {
            lab_1_stamped_echo::handle_client(s, &SystemTime::now, &|line| eprintln!("{line}"))
        })?,
        Lab::Uppercase => serve(listener, shutdown, config, lab_5_1_uppercase_echo::handle_client)?,
        Lab::Time => serve(listener, shutdown, config, |s| lab_5_2_time_server::handle_client(s, SystemTime::now()))?,
        Lab::Chat => return Ok(lab_5_3_chat_server::run(listener, shutdown)?),
        Lab::Log => {
            let log = Arc::new(
                lab_5_4_connection_log::ConnectionLog::open(&args.log_file)
                    .with_context(|| format!("cannot open {}", args.log_file.display()))?,
            );
            serve(listener, shutdown, config, move |s| lab_5_4_connection_log::handle_client(s, &log))?
        }
        Lab::Calc => serve(listener, shutdown, config, lab_2_calculator::handle_client)?,
    };
    Ok(())
}
