//! `rate_limited_lb`'s own flags: the limits, the key, the mode.

use std::time::Duration;

use ch06_pooling::cli::PooledArgs;

use crate::limiter::{KeyBy, Mode, RateLimiter, RouteLimit, Settings};
use crate::quota::{Quota, Rate};

/// `--rate`: a rate, or `off`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PerClient {
    /// No per-client limit.
    Off,
    /// This many a second.
    Rate(Rate),
}

/// How requests are limited.
#[derive(Debug, Clone, clap::Args)]
pub struct RateArgs {
    /// Requests per second allowed per client, on average: `10`, `10/s`,
    /// `600/m` (nginx's `600r/m` works too), `0.5`; `off` for no per-client
    /// limit.
    #[arg(long, default_value = "5", value_parser = parse_rate_or_off)]
    pub rate: PerClient,
    /// Requests a client may send at once, after a quiet spell.
    #[arg(long, default_value_t = 10)]
    pub burst: u32,
    /// What a client is: `ip` (the connection's address), `xff` (the
    /// client behind `--trusted-proxy` proxies, from X-Forwarded-For),
    /// `header:NAME` (that header's value; the address when it is absent),
    /// or `route` (every client of a route shares one allowance).
    #[arg(long, default_value = "ip", value_parser = parse_key)]
    pub rate_key: KeyBy,
    /// A limit for all clients together: `RATE[:BURST]` (burst defaults to
    /// one second's worth).
    #[arg(long, value_name = "RATE[:BURST]", value_parser = parse_quota)]
    pub rate_global: Option<Quota>,
    /// A limit per client for paths starting with PREFIX, in addition to
    /// `--rate`: `PREFIX=RATE[:BURST]` (repeatable; the longest matching
    /// prefix applies).
    #[arg(long, value_name = "PREFIX=RATE[:BURST]", value_parser = parse_route)]
    pub rate_route: Vec<RouteLimit>,
    /// `reject`: answer 429 at once. `delay`: within the burst, hold the
    /// request until its turn (nginx without `nodelay`); beyond it, 429.
    #[arg(long, default_value = "reject", value_parser = parse_mode)]
    pub rate_mode: Mode,
    /// Limit nothing; count and log what would have been limited.
    #[arg(long)]
    pub dry_run: bool,
    /// Clients remembered per limit (memory is allocated for this many at
    /// start-up, 20 bytes each, and never grows).
    #[arg(long, default_value_t = 100_000)]
    pub rate_max_keys: usize,
    /// Seconds between the log's summaries of refused requests.
    #[arg(long, default_value_t = 10)]
    pub rate_log_interval_secs: u64,
}

/// Every flag of `rate_limited_lb`: chapter 6's and the limiter's.
/// Chapter 8's binary flattens it into its own.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitedArgs {
    /// Chapter 6's flags: the loop, the backends, the pool.
    #[command(flatten)]
    pub pooled: PooledArgs,
    /// The limits.
    #[command(flatten)]
    pub rate: RateArgs,
}

impl LimitedArgs {
    /// The limiter the flags describe (see [`RateArgs::limiter`]), keyed
    /// behind the `--trusted-proxy` proxies when there are any.
    pub fn limiter(&self) -> Result<RateLimiter, String> {
        self.rate.limiter(self.pooled.reactor.lb.algorithm.trusted_proxies.len())
    }
}

impl RateArgs {
    // ANCHOR: limiter
    /// The limiter the flags describe, its limits announced on standard
    /// error before the loop starts (as the demo backends are).
    pub fn limiter(&self, trusted_proxies: usize) -> Result<RateLimiter, String> {
        let settings = self.settings(trusted_proxies)?;
        let limiter = RateLimiter::new(&settings);
        let limits = limiter.describe();
        let kib = limiter.memory_bytes() / 1024;
        let mode = if settings.dry_run { "dry run: nothing is limited, only counted" } else { "enforced" };
        eprintln!("rate limits ({mode}, {kib} KiB of tables):");
        for line in &limits {
            eprintln!("  {line}");
        }
        if limits.is_empty() {
            eprintln!("  none: every request passes (see --rate, --rate-global, --rate-route)");
        }
        Ok(limiter)
    }
    // ANCHOR_END: limiter

    /// The limiter's settings; an error says which flag is wrong.
    pub fn settings(&self, trusted_proxies: usize) -> Result<Settings, String> {
        if self.rate_key == KeyBy::Xff && trusted_proxies == 0 {
            return Err("--rate-key xff needs --trusted-proxy CIDR: without a trusted proxy, \
                X-Forwarded-For is the client's own claim and every client could pick its key"
                .into());
        }
        if self.burst == 0 {
            return Err("--burst must be at least 1 (one request at a time)".into());
        }
        if self.rate_max_keys == 0 {
            return Err("--rate-max-keys must be at least 1".into());
        }
        let per_key = match self.rate {
            PerClient::Rate(Rate(r)) => Some(Quota::new(r, self.burst).map_err(|e| format!("--rate: {e}"))?),
            PerClient::Off => None,
        };
        Ok(Settings {
            per_key,
            global: self.rate_global,
            routes: self.rate_route.clone(),
            key: self.rate_key.clone(),
            mode: self.rate_mode,
            dry_run: self.dry_run,
            max_keys: self.rate_max_keys,
            log_interval: Duration::from_secs(self.rate_log_interval_secs.max(1)),
        })
    }
}

fn parse_rate_or_off(s: &str) -> Result<PerClient, String> {
    if matches!(s.trim(), "off" | "none") {
        return Ok(PerClient::Off);
    }
    s.parse::<Rate>().map(PerClient::Rate).map_err(|e| e.to_string())
}

fn parse_key(s: &str) -> Result<KeyBy, String> {
    match s.trim() {
        "ip" => Ok(KeyBy::Ip),
        "xff" => Ok(KeyBy::Xff),
        "route" => Ok(KeyBy::Route),
        other => match other.strip_prefix("header:") {
            Some(name) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':') => {
                Ok(KeyBy::Header(name.to_ascii_lowercase()))
            }
            _ => Err(format!("{other:?}: use ip, xff, route or header:NAME")),
        },
    }
}

/// `RATE[:BURST]`; without a burst, one second's worth (at least 1).
fn parse_quota(s: &str) -> Result<Quota, String> {
    let (rate, burst) = match s.split_once(':') {
        Some((r, b)) => {
            (r, Some(b.trim().parse::<u32>().map_err(|_| format!("{b:?} is not a burst (a whole number)"))?))
        }
        None => (s, None),
    };
    let Rate(r) = rate.parse::<Rate>().map_err(|e| e.to_string())?;
    let burst = burst.unwrap_or(r.ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
    if burst == 0 {
        return Err("the burst must be at least 1".into());
    }
    Quota::new(r, burst).map_err(|e| e.to_string())
}

fn parse_route(s: &str) -> Result<RouteLimit, String> {
    let (prefix, quota) =
        s.split_once('=').ok_or_else(|| format!("{s:?}: write PREFIX=RATE[:BURST], like /api=10:20"))?;
    if !prefix.starts_with('/') {
        return Err(format!("{prefix:?}: a route prefix starts with /"));
    }
    Ok(RouteLimit { prefix: prefix.to_string(), quota: parse_quota(quota)? })
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.trim() {
        "reject" => Ok(Mode::Reject),
        "delay" => Ok(Mode::Delay),
        other => Err(format!("{other:?}: use reject or delay")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_explain_mistakes() {
        assert_eq!(parse_key("header:X-Api-Key"), Ok(KeyBy::Header("x-api-key".into())));
        assert!(parse_key("header:").is_err());
        assert!(parse_key("cookie").is_err());
        let q = parse_quota("100:20").unwrap();
        assert_eq!((q.rate, q.burst), (100.0, 20));
        assert_eq!(parse_quota("600/m").unwrap().burst, 10);
        assert_eq!(parse_quota("0.5").unwrap().burst, 1);
        assert!(parse_quota("10:0").is_err());
        assert!(parse_quota("10:x").is_err());
        let r = parse_route("/api=10:20").unwrap();
        assert_eq!((r.prefix.as_str(), r.quota.burst), ("/api", 20));
        assert!(parse_route("api=10").is_err());
        assert!(parse_route("/api").is_err());
        assert_eq!(parse_rate_or_off("off"), Ok(PerClient::Off));
        assert!(parse_mode("slow").is_err());
    }
}
