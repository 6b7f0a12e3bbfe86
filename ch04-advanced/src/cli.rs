//! The flags every chapter 4 and later balancer shares: how a backend is
//! chosen, and how health is checked.

use std::time::Duration;

use crate::algorithm::Kind;
use crate::health::{HealthConfig, Probe};

/// Active health-check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckArg {
    /// Passive checks only (failed requests).
    Off,
    /// A TCP connection must succeed.
    Tcp,
    /// GET --health-path must answer 2xx.
    Http,
}

// ANCHOR: algorithm_args
/// How a backend is chosen.
#[derive(Debug, Clone, clap::Args)]
pub struct AlgorithmArgs {
    /// How to choose a backend (also -s/--strategy). The names the C
    /// curriculum and the Zig and Pingora examples use work too: round-robin, weighted, weighted-round-robin, least-conn,
    /// least-connections, ip-hash, weighted-random, consistent-hash.
    #[arg(short, long, value_enum, default_value_t = Kind::Rr, alias = "strategy", short_alias = 's')]
    pub algorithm: Kind,
    /// Cookie name for --algorithm sticky.
    #[arg(long, default_value = "lbs_backend")]
    pub cookie_name: String,
    /// Peers whose X-Forwarded-For is believed, as CIDR blocks such as
    /// 10.0.0.0/8 (repeatable): behind them, IP hashing uses the client
    /// address they forward.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<crate::headers::Cidr>,
}
// ANCHOR_END: algorithm_args

// ANCHOR: health_args
/// Active and passive health checking.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// Active health check.
    #[arg(long, value_enum, default_value_t = CheckArg::Http)]
    pub health_check: CheckArg,
    /// Path probed by --health-check http.
    #[arg(long, default_value = "/health")]
    pub health_path: String,
    /// Milliseconds between health-check rounds.
    #[arg(long, default_value_t = 2_000)]
    pub health_interval_ms: u64,
    /// Milliseconds a probe may take.
    #[arg(long, default_value_t = 1_000)]
    pub health_timeout_ms: u64,
    /// Successful probes in a row that bring a backend back.
    #[arg(long, default_value_t = 2)]
    pub healthy_threshold: u32,
    /// Failed probes in a row that take a backend down.
    #[arg(long, default_value_t = 3)]
    pub unhealthy_threshold: u32,
    /// Failed requests in a row that take a backend down (passive check).
    #[arg(long, default_value_t = 3)]
    pub max_fails: u32,
    /// With --health-check off: seconds before a down backend is retried.
    #[arg(long, default_value_t = 10)]
    pub fail_timeout_secs: u64,
}
// ANCHOR_END: health_args

impl HealthArgs {
    /// The health configuration the flags describe.
    pub fn config(&self) -> HealthConfig {
        let ms = Duration::from_millis;
        HealthConfig {
            probe: match self.health_check {
                CheckArg::Off => Probe::Off,
                CheckArg::Tcp => Probe::Tcp,
                CheckArg::Http => Probe::Http(self.health_path.clone()),
            },
            interval: ms(self.health_interval_ms.max(10)),
            timeout: ms(self.health_timeout_ms.max(1)),
            rise: self.healthy_threshold.max(1),
            fall: self.unhealthy_threshold.max(1),
            max_fails: self.max_fails.max(1),
            fail_timeout: Duration::from_secs(self.fail_timeout_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        algorithm: AlgorithmArgs,
    }

    fn kind(args: &[&str]) -> Kind {
        let all: Vec<&str> = std::iter::once("prog").chain(args.iter().copied()).collect();
        Args::try_parse_from(all).unwrap().algorithm.algorithm
    }

    #[test]
    fn the_seeds_names_and_flags_choose_the_same_algorithms() {
        assert_eq!(kind(&[]), Kind::Rr);
        for (name, want) in [
            ("round-robin", Kind::Rr),
            ("weighted", Kind::Wrr),
            ("weighted-round-robin", Kind::Wrr),
            ("weighted_round_robin", Kind::Wrr),
            ("least-conn", Kind::Lc),
            ("least-connections", Kind::Lc),
            ("ip-hash", Kind::Iphash),
            ("weighted-random", Kind::Wrandom),
            ("consistent-hash", Kind::Hash),
            ("sticky", Kind::Sticky),
        ] {
            assert_eq!(kind(&["--algorithm", name]), want, "{name}");
            assert_eq!(kind(&["--strategy", name]), want, "{name}");
            assert_eq!(kind(&["-s", name]), want, "{name}");
            assert_eq!(kind(&["-a", name]), want, "{name}");
        }
    }
}
