//! Command-line pieces every server binary in the book shares.
//!
//! Each is a clap argument group that a binary flattens into its own
//! arguments (`#[command(flatten)]`), so a flag means the same thing, has
//! the same default and the same help text in every chapter.

use std::net::{IpAddr, SocketAddr};

use crate::logging::LogFormat;

/// The port every server listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 8080;

// ANCHOR: listen_args
/// Where a server listens: `-H/--host` and `-p/--port`, or the port as the
/// first positional argument, as in the C book (`load_balancer 8080`).
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// Port to listen on (the same as --port; give one or the other).
    #[arg(value_name = "PORT")]
    pub port_positional: Option<u16>,
    /// Port to listen on [default: 8080].
    #[arg(short, long)]
    pub port: Option<u16>,
    /// Address to listen on; 0.0.0.0 accepts connections from other machines.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    pub host: IpAddr,
}

impl ListenArgs {
    /// The address to bind, on `default_port` when no port was given. Two
    /// different ports (one positional, one `--port`) are an error that
    /// says so.
    pub fn addr(&self, default_port: u16) -> Result<SocketAddr, String> {
        let port = match (self.port_positional, self.port) {
            (Some(p), Some(q)) if p != q => {
                return Err(format!("two different ports given ({p} and --port {q}); give one"));
            }
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => default_port,
        };
        Ok(SocketAddr::new(self.host, port))
    }
}
// ANCHOR_END: listen_args

/// How a server logs: `--log-format` (RUST_LOG chooses the level).
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log line format (RUST_LOG chooses the level).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        listen: ListenArgs,
    }

    fn addr(args: &[&str]) -> Result<SocketAddr, String> {
        let all: Vec<&str> = std::iter::once("prog").chain(args.iter().copied()).collect();
        Args::try_parse_from(all).map_err(|e| e.to_string())?.listen.addr(DEFAULT_PORT)
    }

    #[test]
    fn the_port_comes_from_the_flag_or_the_position_and_defaults_to_8080() {
        assert_eq!(addr(&[]).unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(addr(&["9000"]).unwrap(), "127.0.0.1:9000".parse().unwrap());
        assert_eq!(addr(&["-p", "9000", "-H", "0.0.0.0"]).unwrap(), "0.0.0.0:9000".parse().unwrap());
        assert_eq!(addr(&["9000", "--port", "9000"]).unwrap().port(), 9000);
        assert!(addr(&["9000", "--port", "9001"]).unwrap_err().contains("two different ports"));
        assert!(addr(&["port"]).is_err());
    }
}
