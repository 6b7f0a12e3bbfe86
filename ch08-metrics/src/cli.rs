//! `metrics_lb`'s own flags: where the admin listener listens, and where
//! the access log goes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

// ANCHOR: admin_args
/// The admin listener's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Port of the admin listener (/metrics, /lb-stats, /healthz, /readyz)
    /// [default: the listening port + 1, so 8081 beside 8080; any free
    /// port, named in the log, when listening on port 0].
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// Address of the admin listener. Loopback by default: metrics show
    /// the backends and the traffic, which is nobody else's business.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub admin_addr: IpAddr,
    /// No admin listener (requests are still counted).
    #[arg(long)]
    pub no_admin: bool,
    /// Write a line per request (id, client, backend, status, bytes,
    /// timings) to FILE, in the --log-format; `-` writes them to the log
    /// instead (target `access`). SIGHUP reopens FILE (for logrotate).
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
}

impl AdminArgs {
    /// The address to bind for a balancer asked to listen on port
    /// `listen_port`, or `None` with `--no-admin`.
    pub fn addr(&self, listen_port: u16) -> Option<SocketAddr> {
        let port =
            self.admin_port.unwrap_or_else(|| listen_port.checked_add(1).filter(|_| listen_port != 0).unwrap_or(0));
        (!self.no_admin).then_some(SocketAddr::new(self.admin_addr, port))
    }
}
// ANCHOR_END: admin_args

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        admin: AdminArgs,
    }

    fn admin(args: &[&str]) -> AdminArgs {
        Args::try_parse_from(std::iter::once("metrics_lb").chain(args.iter().copied())).unwrap().admin
    }

    #[test]
    fn the_admin_port_is_beside_the_listening_port_unless_given() {
        assert_eq!(admin(&[]).addr(8080), Some("127.0.0.1:8081".parse().unwrap()));
        assert_eq!(admin(&[]).addr(0), Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(admin(&[]).addr(65535), Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(admin(&["--admin-port", "9901"]).addr(8080), Some("127.0.0.1:9901".parse().unwrap()));
        assert_eq!(admin(&["--admin-addr", "0.0.0.0"]).addr(80), Some("0.0.0.0:81".parse().unwrap()));
        assert_eq!(admin(&["--no-admin"]).addr(8080), None);
    }
}
