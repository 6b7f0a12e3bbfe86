//! `pooled_lb`'s own flags (the pool's sizes and limits), and its whole
//! program, which chapter 7 runs with a rate limiter plugged in.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ch05_event_loop::app::{MoreHooks, Program, ReactorArgs, WorkerHooks, serve};
use ch05_event_loop::lb::admit::Admission;
use ch05_event_loop::lb::mailbox::Mailbox;
use ch05_event_loop::lb::observe::Observe;
use ch05_event_loop::lb::reuse::{Reuse, Socket};

use crate::pool::{Pool, PoolConfig, PoolStats};

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

/// Every flag of `pooled_lb`: chapter 5's and the pool's. Chapter 7's
/// binary flattens it into its own.
#[derive(Debug, Clone, clap::Args)]
pub struct PooledArgs {
    /// Listening, backends, algorithm, health, timeouts, logging, the loop.
    #[command(flatten)]
    pub reactor: ReactorArgs,
    /// The pool's sizes and limits.
    #[command(flatten)]
    pub pool: PoolArgs,
}

impl PooledArgs {
    /// [`serve_pooled`] with these flags.
    pub fn serve(&self, program: Program<'_>) -> anyhow::Result<()> {
        serve_pooled(&self.reactor, &self.pool, program)
    }
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

// ANCHOR: serve_pooled
/// Runs chapter 5's `program` with the pool the flags describe as its
/// `Reuse` (or none, with `--no-pool`): `pooled_lb`'s whole `main`, and
/// chapter 7's with a rate limiter as the program's `admission`. The
/// pool's lines come first in the statistics report.
pub fn serve_pooled(reactor: &ReactorArgs, pool: &PoolArgs, program: Program<'_>) -> anyhow::Result<()> {
    serve_pooled_and(reactor, pool, program, |_, _| {})
}

/// [`serve_pooled`], handing the pool's counters to `seen` first (chapter
/// 8 exports them as metrics) with the mailbox its new settings can be
/// posted to (chapter 10 reloads them); with `--no-pool`, `seen` is not
/// called.
pub fn serve_pooled_and(
    reactor: &ReactorArgs,
    pool: &PoolArgs,
    program: Program<'_>,
    seen: impl FnOnce(&Arc<PoolStats>, Arc<Mailbox<PoolConfig>>),
) -> anyhow::Result<()> {
    let Some(config) = pool.config() else {
        return serve(reactor, program);
    };
    let mut pool: Pool<Socket> = Pool::new(config);
    let stats = pool.shared_stats();
    seen(&stats, pool.retuner());
    let Program {
        name,
        admission,
        observe,
        on_start,
        on_reload,
        report,
        fastest,
        generation_header,
        listener,
        workers,
        more,
        ..
    } = program;
    // Each other loop gets a pool of its own beside this one (same
    // settings and mailbox, shared counters), with the program's hooks.
    let mut more = more;
    let mut others: Vec<Pool<Socket>> = (1..workers).map(|_| Pool::beside(&mut pool)).collect();
    let more: Option<MoreHooks<'_>> = Some(Box::new(move |index| {
        let mut hooks = match more.as_mut() {
            Some(make) => make(index)?,
            None => WorkerHooks::default(),
        };
        let pool = others.pop().context("no pool was made for this worker")?;
        hooks.reuse = Some(Box::new(pool));
        Ok(hooks)
    }));
    let report = Box::new(move || stats.snapshot().report() + &report());
    let reuse = Some(&mut pool as &mut dyn Reuse);
    // The hooks' lifetimes shortened to the pool's.
    let admission = admission.map(|a| a as &mut dyn Admission);
    let observe = observe.map(|o| o as &mut dyn Observe);
    let program = Program {
        name,
        reuse,
        admission,
        observe,
        on_start,
        on_reload,
        report,
        fastest,
        generation_header,
        listener,
        workers,
        more,
    };
    serve(reactor, program)
}
// ANCHOR_END: serve_pooled
