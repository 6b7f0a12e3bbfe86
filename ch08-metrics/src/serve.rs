//! `metrics_lb` as a function: chapter 7's flags and the admin listener's,
//! and the balancer they describe, observed. Chapter 10's `hot_reload_lb`
//! starts the same balancer from a configuration file.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use ch04_advanced::algorithm::MakeAlgorithm;
use ch05_event_loop::app::{Program, Running, WorkerHooks};
use ch05_event_loop::lb::admit::{Admission, Shared};
use ch05_event_loop::lb::mailbox::Mailbox;
use ch05_event_loop::lb::observe::Observe;
use ch06_pooling::cli::serve_pooled_and;
use ch06_pooling::pool::PoolConfig;
use ch07_rate_limit::cli::LimitedArgs;
use ch07_rate_limit::limiter::Settings as Limits;

use crate::access::AccessLog;
use crate::admin;
use crate::balancer::{Metrics, Recorder};
use crate::cli::AdminArgs;

/// Called once with the running balancer, its metrics (to add families
/// and admin paths to) and the handles a program can keep.
pub type Started = Box<dyn FnOnce(&Running, &Arc<Metrics>, Handles) -> anyhow::Result<()>>;

/// What a program built on [`serve`] can keep of the running balancer:
/// where another thread posts new settings for the loop's hooks (the
/// limiter takes them before its next decision, the pool at its next
/// use), and the admin listener's socket.
#[derive(Debug, Clone)]
pub struct Handles {
    /// The rate limits.
    pub limits: Arc<Mailbox<Limits>>,
    /// The pool's sizes and idle timeout; `None` when it runs without one
    /// (`--no-pool`).
    pub pool: Option<Arc<Mailbox<PoolConfig>>>,
    /// A second descriptor for the admin listener's socket, if there is
    /// one (chapter 10 hands it to a new process on upgrade).
    pub admin: Option<Arc<TcpListener>>,
}

/// What a program built on [`serve`] adds to it (chapter 10's reload).
#[derive(Default)]
pub struct Extra {
    /// Called once the balancer listens, before the admin listener starts.
    pub on_start: Option<Started>,
    /// Called on SIGHUP, after the access log file is reopened.
    pub on_reload: Option<Box<dyn Fn() + Send + Sync>>,
    /// Whether each response names the backend set that served it
    /// (`X-LB-Config-Gen`).
    pub generation_header: bool,
    /// Logs where the admin listener listens. The binary passes its own
    /// function, so that the line carries the binary's name as its target,
    /// as every other line of its start-up does.
    pub admin_listening: Option<fn(SocketAddr)>,
    /// Sockets already listening, to serve on instead of binding: the
    /// balancer's and the admin listener's (chapter 10's upgrade).
    pub listener: Option<TcpListener>,
    /// See `listener`.
    pub admin_listener: Option<TcpListener>,
    /// How many loops serve, one per thread (0 or 1: one).
    pub workers: usize,
}

impl std::fmt::Debug for Extra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extra")
            .field("on_start", &self.on_start.is_some())
            .field("on_reload", &self.on_reload.is_some())
            .field("generation_header", &self.generation_header)
            .field("admin_listening", &self.admin_listening.is_some())
            .finish()
    }
}

/// Every flag of `metrics_lb`.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Chapter 7's: listening, backends, algorithm, health, timeouts, pool, limits.
    #[command(flatten)]
    pub limited: LimitedArgs,
    /// The admin listener and the access log.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// The admin listener's socket: none without an address (`--no-admin`),
/// else the one a previous process handed over (chapter 10's upgrade), or
/// one bound at `addr`.
pub fn admin_socket(addr: Option<SocketAddr>, inherited: Option<TcpListener>) -> anyhow::Result<Option<TcpListener>> {
    match (addr, inherited) {
        (None, _) => Ok(None),
        (Some(_), Some(inherited)) => Ok(Some(inherited)),
        (Some(addr), None) => TcpListener::bind(addr)
            .map(Some)
            .with_context(|| format!("cannot listen for admin requests on {addr} (see --admin-port)")),
    }
}

// ANCHOR: serve
/// Runs the balancer `args` describe until SIGINT or SIGTERM: rate
/// limited, pooled, every request counted and timed, an admin listener
/// beside it. `name` is what its log calls it; `fastest` makes chapter
/// 4's `fastest` algorithm (lab 7.2: the binary plugs it in); `extra` is
/// what a program built on this one adds.
pub fn serve(
    args: &MetricsArgs,
    name: &'static str,
    fastest: Option<MakeAlgorithm>,
    extra: Extra,
) -> anyhow::Result<()> {
    let mut limiter = args.limited.limiter().map_err(anyhow::Error::msg)?;
    let limits = limiter.retuner();
    // Set before the loop starts, if there is a pool; read once it listens.
    let pool_tuner: Arc<OnceLock<Arc<Mailbox<PoolConfig>>>> = Arc::default();
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
    let announce = extra.admin_listening;
    let pool_tuned = Arc::clone(&pool_tuner);
    let inherited_admin = extra.admin_listener;
    // Once the balancer listens: watch it, then open the admin port.
    let on_start = move |running: &Running| -> anyhow::Result<()> {
        watched.watch_balancer(running, &algorithm)?;
        let admin_socket = admin_socket(admin_addr, inherited_admin)?;
        let admin_copy = match &admin_socket {
            Some(socket) => Some(Arc::new(socket.try_clone().context("cannot duplicate the admin socket")?)),
            None => None,
        };
        // What the program adds comes first: its admin paths and metrics
        // exist before the admin listener answers anyone.
        if let Some(then) = extra.on_start {
            then(running, &watched, Handles { limits, pool: pool_tuned.get().cloned(), admin: admin_copy })?;
        }
        if let Some(socket) = admin_socket {
            let bound = admin::start_on(socket, Arc::clone(&watched)).context("cannot serve the admin listener")?;
            match announce {
                Some(announce) => announce(bound),
                None => tracing::info!(addr = %bound, "admin listening"),
            }
        }
        Ok(())
    };
    // SIGHUP reopens the access log file (after logrotate moved it), then
    // does what the program adds.
    let on_reload: Option<Box<dyn Fn() + Send + Sync>> = match (reopen, extra.on_reload) {
        (None, None) => None,
        (reopen, then) => Some(Box::new(move || {
            if let Some(r) = &reopen {
                r.reopen();
            }
            if let Some(then) = &then {
                then();
            }
        })),
    };
    // With several loops: one limiter for all, a recorder each.
    // One loop asks the limiter itself, as chapter 7 does; several share it
    // behind a lock.
    let workers = extra.workers.max(1);
    let (mut alone, mut shared) = if workers > 1 { (None, Some(Shared::new(limiter))) } else { (Some(limiter), None) };
    let mut recorders: Vec<Recorder> = (1..workers).map(|i| recorder.for_worker(i)).collect();
    let for_others = shared.clone();
    let more = Box::new(move |_| {
        Ok(WorkerHooks {
            admission: for_others.clone().map(|s| Box::new(s) as Box<dyn Admission + Send>),
            observe: recorders.pop().map(|r| Box::new(r) as Box<dyn Observe + Send>),
            reuse: None,
        })
    });
    let admission: Option<&mut dyn Admission> = match (alone.as_mut(), shared.as_mut()) {
        (Some(limiter), _) => Some(limiter),
        (None, shared) => shared.map(|s| s as &mut dyn Admission),
    };
    let program = Program {
        admission,
        observe: Some(&mut recorder as &mut dyn Observe),
        workers,
        more: Some(more),
        on_start: Some(Box::new(on_start)),
        on_reload,
        report: Box::new(move || limiter_stats.report()),
        fastest,
        generation_header: extra.generation_header,
        listener: extra.listener,
        ..Program::new(name)
    };
    // The pool's counters are exported too, when there is a pool.
    let pool_metrics = Arc::clone(&metrics);
    serve_pooled_and(reactor, &args.limited.pooled.pool, program, move |stats, tuner| {
        if let Err(e) = pool_metrics.watch_pool(stats) {
            tracing::warn!(error = %e, "the pool's metrics are not exported");
        }
        let _ = pool_tuner.set(tuner);
    })
}
// ANCHOR_END: serve
