//! A configuration as the balancer's command line.
//!
//! Chapter 8's balancer already has a flag for nearly every setting of
//! the file, with its checks. So the file is applied as the flags it
//! stands for, and the operator's own flags come after them: parsed with
//! later flags overriding earlier ones, "flags override the file" is then
//! simply true. Every setting the file has a value for, its own or the
//! schema's default (the C book's production values: a 10 s health
//! interval, a 5 s connect timeout), is written as a flag, so what runs is
//! what the file says, not chapter 8's defaults.

use clap::ValueEnum;

use crate::config::Config;

// ANCHOR: flags
/// The flags `config` stands for. With `backends_given`, the file's
/// backends are left out: `--backend` on the command line replaces them.
/// (Routes and backends' `max_connections` have no flags: the reloader
/// puts them in the backend set.)
pub fn flags(config: &Config, backends_given: bool) -> Vec<String> {
    let ms = |d: std::time::Duration| d.as_millis().to_string();
    let mut out: Vec<String> = Vec::new();
    let mut push = |flag: &str, value: String| out.extend([flag.to_string(), value]);
    push("--host", config.listen.address.to_string());
    push("--port", config.listen.port.to_string());
    if let Some(name) = config.algorithm.to_possible_value() {
        push("--algorithm", name.get_name().to_string());
    }
    push("--cookie-name", config.cookie_name.clone());
    if !backends_given {
        for b in &config.backends {
            push("--backend", format!("{}:{}", b.addr(), b.weight));
        }
    }
    let h = &config.health_check;
    let check = match (h.enabled, &h.path) {
        (false, _) => "off",
        (true, None) => "tcp",
        (true, Some(path)) => {
            push("--health-path", path.clone());
            "http"
        }
    };
    push("--health-check", check.to_string());
    push("--health-interval-ms", ms(h.interval));
    push("--health-timeout-ms", ms(h.timeout));
    push("--healthy-threshold", h.healthy_threshold.to_string());
    push("--unhealthy-threshold", h.unhealthy_threshold.to_string());
    push("--connect-timeout-ms", ms(config.timeouts.connect));
    push("--response-timeout-ms", ms(config.timeouts.read));
    push("--header-timeout-ms", ms(config.timeouts.read));
    // A client that leaves our bytes unread this long is cut off.
    push("--write-timeout-ms", config.timeouts.write.map_or_else(|| "0".to_string(), ms));
    if let Some(idle) = config.timeouts.idle {
        push("--idle-timeout-ms", ms(idle));
    }
    push("--drain-timeout-secs", config.drain_timeout.as_secs().to_string());
    if config.pool.max_size > 0 {
        push("--pool-max-idle", config.pool.max_size.to_string());
        push("--pool-idle-timeout-ms", ms(config.pool.ttl));
    }
    match config.rate_limit {
        Some(limit) => {
            push("--rate", limit.per_ip.to_string());
            push("--burst", limit.burst.to_string());
        }
        // No limit in the file means none, whatever chapter 7's default.
        None => push("--rate", "off".to_string()),
    }
    if let (true, Some(port)) = (config.metrics.enabled, config.metrics.port) {
        push("--admin-port", port.to_string());
    }
    if config.pool.max_size == 0 {
        out.push("--no-pool".to_string());
    }
    if !config.metrics.enabled {
        out.push("--no-admin".to_string());
    }
    out
}
// ANCHOR_END: flags
