//! `metrics_lb`: `rate_limited_lb` with metrics and an admin listener.

use std::sync::Arc;

use anyhow::Context;
use ch05_event_loop::app::{Program, Running};
use ch05_event_loop::lb::admit::Admission;
use ch05_event_loop::lb::observe::Observe;
use ch06_pooling::cli::serve_pooled_and;
use ch07_rate_limit::cli::LimitedArgs;
use ch08_metrics::access::AccessLog;
use ch08_metrics::admin;
use ch08_metrics::balancer::{Metrics, Recorder};
use ch08_metrics::cli::AdminArgs;
use clap::Parser;

/// Chapter 7's rate-limited, pooled load balancer, observable: every
/// request is counted by backend and status and timed into a histogram,
/// and an admin listener (127.0.0.1:8081 beside 8080 by default) serves /metrics in
/// the Prometheus text format, /lb-stats as JSON, /healthz and /readyz.
///
/// Try it: `cargo run -p ch08-metrics`, then `curl localhost:8080/` a few
/// times and `curl localhost:8081/metrics` (with nothing on
/// 127.0.0.1:9001-9003 it starts three demo backends and says so).
// ANCHOR: main
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    limited: LimitedArgs,
    #[command(flatten)]
    admin: AdminArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut limiter = args.limited.limiter().map_err(anyhow::Error::msg)?;
    let reactor = &args.limited.pooled.reactor;
    let limiter_stats = limiter.shared_stats();
    let metrics = Metrics::new(env!("CARGO_PKG_VERSION"))?;
    metrics.watch_limiter(&limiter_stats)?;
    let mut recorder = Recorder::new(Arc::clone(&metrics));
    let mut reopen = None;
    match &args.admin.access_log {
        Some(path) if path.as_os_str() == "-" => recorder = recorder.with_access_log(AccessLog::to_log()),
        Some(path) => {
            let (log, handle, dropped) = AccessLog::to_file(path, reactor.lb.log.log_format)
                .with_context(|| format!("cannot open the access log {}", path.display()))?;
            metrics.watch_access_log(&dropped)?;
            recorder = recorder.with_access_log(log);
            reopen = Some(handle);
        }
        None => {}
    }
    let algorithm = clap::ValueEnum::to_possible_value(&reactor.lb.algorithm.algorithm)
        .map_or_else(String::new, |v| v.get_name().to_string());
    let listen_port = reactor.lb.listen.addr(8080).map_err(anyhow::Error::msg)?.port();
    let (admin_addr, watched) = (args.admin.addr(listen_port), Arc::clone(&metrics));
    // Once the balancer listens: watch it, then open the admin port.
    let on_start = move |running: &Running| -> anyhow::Result<()> {
        watched.watch_balancer(running, &algorithm)?;
        if let Some(addr) = admin_addr {
            let bound = admin::start(addr, Arc::clone(&watched))
                .with_context(|| format!("cannot listen for admin requests on {addr} (see --admin-port)"))?;
            tracing::info!(addr = %bound, "admin listening (/metrics, /lb-stats, /healthz, /readyz)");
        }
        Ok(())
    };
    let program = Program {
        admission: Some(&mut limiter as &mut dyn Admission),
        observe: Some(&mut recorder as &mut dyn Observe),
        on_start: Some(Box::new(on_start)),
        // SIGHUP reopens the access log file (after logrotate moved it).
        on_reload: reopen.map(|r| Box::new(move || r.reopen()) as Box<dyn Fn() + Send + Sync>),
        report: Box::new(move || limiter_stats.report()),
        // `--algorithm fastest` is chapter 4's lab 7.2.
        fastest: Some(ch04_advanced::labs::fastest),
        ..Program::new("metrics load balancer")
    };
    // The pool's counters are exported too, when there is a pool.
    let pool_metrics = Arc::clone(&metrics);
    serve_pooled_and(reactor, &args.limited.pooled.pool, program, move |stats| {
        if let Err(e) = pool_metrics.watch_pool(stats) {
            tracing::warn!(error = %e, "the pool's metrics are not exported");
        }
    })
}
// ANCHOR_END: main
