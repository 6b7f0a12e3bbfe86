//! `pooled_lb`'s own flags: the pool's sizes and limits.

use std::time::Duration;

use crate::pool::PoolConfig;

/// How many backend connections to keep, and for how long.
#[derive(Debug, Clone, clap::Args)]
pub struct PoolArgs {
    /// Idle connections kept per backend (nginx: `keepalive N`).
    #[arg(long, default_value_t = PoolConfig::default().max_idle)]
    pub pool_max_idle: usize,
    /// Idle connections kept across all backends; past it the least
    /// recently used is closed.
    #[arg(long, default_value_t = PoolConfig::default().max_idle_total)]
    pub pool_max_idle_total: usize,
    /// Milliseconds a connection may stay idle before it is closed (a
    /// backend's `Keep-Alive: timeout=N` shortens it).
    #[arg(long, default_value_t = PoolConfig::default().idle_timeout.as_millis() as u64)]
    pub pool_idle_timeout_ms: u64,
    /// Requests one connection carries before it is retired (0: no limit).
    #[arg(long, default_value_t = PoolConfig::default().max_requests)]
    pub pool_max_requests: u32,
    /// Keep nothing: a connection per request, as high_perf_lb does (for
    /// comparison).
    #[arg(long)]
    pub no_pool: bool,
}

impl PoolArgs {
    /// The pool's settings, or `None` with `--no-pool`.
    pub fn config(&self) -> Option<PoolConfig> {
        (!self.no_pool).then(|| PoolConfig {
            max_idle: self.pool_max_idle,
            max_idle_total: self.pool_max_idle_total,
            idle_timeout: Duration::from_millis(self.pool_idle_timeout_ms),
            max_requests: self.pool_max_requests,
        })
    }
}
