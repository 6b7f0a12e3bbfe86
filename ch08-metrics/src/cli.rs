//! `metrics_lb`'s own flags: where the admin listener listens.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The admin listener's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Port of the admin listener (/metrics, /lb-stats, /healthz,
    /// /readyz); 0 picks a free one, named in the log.
    #[arg(long, default_value_t = 8081)]
    pub admin_port: u16,
    /// Address of the admin listener. Loopback by default: metrics show
    /// the backends and traffic, which is nobody else's business.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub admin_addr: IpAddr,
    /// No admin listener (metrics are still kept).
    #[arg(long)]
    pub no_admin: bool,
}

impl AdminArgs {
    /// The address to bind, or `None` with `--no-admin`.
    pub fn addr(&self) -> Option<SocketAddr> {
        (!self.no_admin).then_some(SocketAddr::new(self.admin_addr, self.admin_port))
    }
}
