//! `high_perf_lb`'s program around the loop: its flags, signals, start-up
//! and report. Chapter 6's `pooled_lb` is the same program with a pool
//! plugged in, so both call [`serve`].

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use anyhow::Context;
use ch01_fundamentals::logging;
use ch01_fundamentals::net::{listen, raise_fd_limit};
use ch01_fundamentals::server::Shutdown;
use ch01_fundamentals::signals::{Stopping, for_server};
use ch04_advanced::algorithm::MakeAlgorithm;
use ch04_advanced::node::Pool;
use ch04_advanced::stats::report_pools;

use crate::cli::LbArgs;
use crate::lb::admit::Admission;
use crate::lb::backends::Current;
use crate::lb::observe::Observe;
use crate::lb::reuse::Reuse;
use crate::lb::{Config, Hooks, Lb, Stats, Worker, prepare, run_prepared};
use crate::poller;

/// The flags of the event-loop balancer: chapter 5's shared ones, and
/// the loop's own.
#[derive(Debug, Clone, clap::Args)]
pub struct ReactorArgs {
    /// Listening, backends, algorithm, health, timeouts, logging.
    #[command(flatten)]
    pub lb: LbArgs,
    /// Which system call waits for readiness: epoll (Linux), kqueue (BSD,
    /// macOS) or poll (everywhere).
    #[arg(long, default_value_t = poller::Mechanism::best(), value_parser = parse_poller)]
    pub poller: poller::Mechanism,
    /// Client connections held at once (more get 503).
    #[arg(long, default_value_t = 50_000)]
    pub max_connections: usize,
    /// KiB buffered per direction per connection (backpressure above).
    #[arg(long, default_value_t = 16)]
    pub buffer_kib: usize,
    /// Milliseconds a client may leave our bytes unread before its
    /// connection is closed (0: no such limit; the idle timeout still
    /// applies to a stalled body).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub write_timeout_ms: u64,
}

/// `--poller`'s value parser, for every binary that takes the flag.
pub fn parse_poller(s: &str) -> Result<poller::Mechanism, String> {
    s.parse::<poller::Mechanism>().map_err(|e| e.to_string())
}

// ANCHOR: program
/// What differs between the programs built on the loop.
pub struct Program<'a> {
    /// The name in the log ("`{name} listening`") and the report's title.
    pub name: &'static str,
    /// Backend connections kept between requests (chapter 6), if any.
    pub reuse: Option<&'a mut dyn Reuse>,
    /// Decides which requests may reach a backend (chapter 7), if anything.
    pub admission: Option<&'a mut dyn Admission>,
    /// Hears about every request when it ends (chapter 8), if anything.
    pub observe: Option<&'a mut dyn Observe>,
    /// Runs once the balancer is set up and listening, before the loop
    /// starts (chapter 8 starts its admin listener); an error stops the
    /// program.
    pub on_start: Option<OnStart<'a>>,
    /// What SIGHUP does (chapter 8 reopens its access log); without it,
    /// SIGHUP is logged as having nothing to reload.
    pub on_reload: Option<Box<dyn Fn() + Send + Sync>>,
    /// More lines for the statistics report (the pool's).
    pub report: Box<dyn Fn() -> String + Send + Sync>,
    /// Makes `--algorithm fastest` (the binaries plug in chapter 4's lab 7.2).
    pub fastest: Option<MakeAlgorithm>,
    /// Whether each response names the backend set that served it
    /// (`X-LB-Config-Gen`; chapter 10 turns it on).
    pub generation_header: bool,
    /// A listening socket to serve on instead of binding one (chapter
    /// 10's upgrade: the old process hands its socket to the new one).
    pub listener: Option<TcpListener>,
    /// How many loops to run, one per thread (chapter 10's `--workers`;
    /// 1 before). The hooks above are the first loop's; each other loop
    /// gets its own from [`more`](Self::more).
    pub workers: usize,
    /// Makes the hooks of loop `i` (from 1) when there are several: a
    /// program with hooks must say how to make them for another loop, or
    /// it runs one.
    pub more: Option<MoreHooks<'a>>,
}

/// What [`Program::on_start`] is: called once, with the running balancer.
pub type OnStart<'a> = Box<dyn FnOnce(&Running) -> anyhow::Result<()> + 'a>;

/// What [`Program::more`] is: called on the main thread for each loop
/// after the first, with its index.
pub type MoreHooks<'a> = Box<dyn FnMut(usize) -> anyhow::Result<WorkerHooks> + 'a>;

/// The hooks of a loop after the first: owned, since each goes to its
/// own thread. A pool is a loop's own (its sockets are in that loop's
/// poller); a limiter is shared, so that a client's limit is one limit
/// whichever loop serves it.
#[derive(Debug, Default)]
pub struct WorkerHooks {
    /// This loop's own kept connections.
    pub reuse: Option<Box<dyn Reuse + Send>>,
    /// Asked about each request this loop serves.
    pub admission: Option<Box<dyn Admission + Send>>,
    /// Told about each request this loop serves.
    pub observe: Option<Box<dyn Observe + Send>>,
}

/// A balancer that has started: what a program can watch while it runs.
#[derive(Debug, Clone)]
pub struct Running {
    /// The address clients connect to.
    pub addr: SocketAddr,
    /// The backend set in use (with each backend's health and counters),
    /// which a reload may replace whole.
    pub current: Arc<Current>,
    /// The settings the balancer started with; a reload builds its new
    /// backend sets with the same algorithm options and slow start.
    pub config: Config,
    /// The loop's counters.
    pub stats: Arc<Stats>,
    /// When the program started.
    pub started: Instant,
    /// Fires when the program stops (SIGINT, SIGTERM): what a program
    /// holds that keeps the listening socket open (chapter 10's copy of it
    /// for an upgrade) must be let go then (`Shutdown::on_trigger`), or the
    /// kernel goes on queueing clients that no loop will accept, and the
    /// drain ends by resetting them.
    pub shutdown: Shutdown,
    /// A second descriptor for the listening socket, for chapter 10 to
    /// hand to a new process on upgrade. Whoever keeps a copy of this
    /// value keeps the socket open, even after a reload moves the loop to
    /// another: keep it only while starting, or keep a copy without it.
    pub listener: Option<Arc<TcpListener>>,
}
// ANCHOR_END: program

impl Program<'_> {
    /// A program called `name` that plugs in nothing: chapter 5's.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            reuse: None,
            admission: None,
            observe: None,
            on_start: None,
            on_reload: None,
            report: Box::new(String::new),
            fastest: None,
            generation_header: false,
            listener: None,
            workers: 1,
            more: None,
        }
    }
}

impl std::fmt::Debug for Program<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("reuse", &self.reuse)
            .field("admission", &self.admission)
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

fn report(name: &str, pool: &Pool, stats: &Stats, started: Instant, extra: &str) -> String {
    let total = stats.requests.load(Ordering::Relaxed);
    let mut out = report_pools(name, started.elapsed(), total, [("default", pool)].into_iter());
    out.push_str(extra);
    let resent = stats.stale_retries.load(Ordering::Relaxed);
    if resent > 0 {
        out.push_str(&format!("requests resent on a fresh connection after a kept one closed under them: {resent}\n"));
    }
    // Zero on a healthy day; anything else is a bug the log explains.
    let panics = stats.panics.load(Ordering::Relaxed);
    if panics > 0 {
        out.push_str(&format!("connections closed by a bug (a caught panic; see the log): {panics}\n"));
    }
    out
}

/// The loop's settings that `args` (checked into `setup`) describe.
/// Chapter 10 makes them again from a reloaded file.
pub fn config_of(args: &ReactorArgs, setup: &crate::cli::Setup, generation_header: bool) -> Config {
    Config {
        limits: setup.limits,
        timeouts: setup.timeouts,
        health: setup.health.clone(),
        max_connections: args.max_connections.max(1),
        buffer_size: args.buffer_kib.max(1) * 1024,
        drain_timeout: args.lb.drain_timeout(),
        poller: args.poller,
        algorithm: setup.algorithm.clone(),
        trusted_proxies: args.lb.algorithm.trusted_proxies.clone(),
        generation_header,
        write_timeout: (args.write_timeout_ms > 0).then(|| std::time::Duration::from_millis(args.write_timeout_ms)),
    }
}

/// Runs the balancer the flags describe until SIGTERM or Ctrl-C, then
/// drains and prints the statistics (also printed on SIGUSR1).
pub fn serve(args: &ReactorArgs, program: Program<'_>) -> anyhow::Result<()> {
    let Program {
        name,
        reuse,
        admission,
        observe,
        on_start,
        on_reload,
        report: extra,
        fastest,
        generation_header,
        listener: inherited,
        workers,
        more: mut make_hooks,
    } = program;
    logging::init(args.lb.log.log_format);
    let shutdown = Shutdown::new();
    let started = Instant::now();
    let extra: Arc<dyn Fn() -> String + Send + Sync> = Arc::from(extra);

    // Signals first: the mask that routes them to the signal thread is
    // inherited only by threads started later (the demo backends').
    let more = Arc::clone(&extra);
    let on_report = move |(current, stats): &(Arc<Current>, Arc<Stats>)| {
        report(name, &current.load().pool, stats, started, &more())
    };
    let on_hup = move |_: &(Arc<Current>, Arc<Stats>)| match &on_reload {
        Some(reload) => reload(),
        None => tracing::warn!("SIGHUP: nothing to reload in this chapter"),
    };
    let slot = for_server(&shutdown, Stopping::Draining, on_report, on_hup)?;

    let mut setup = args.lb.setup()?;
    setup.algorithm.fastest = fastest;
    let config = config_of(args, &setup, generation_header);
    let lb = Lb::new(std::mem::take(&mut setup.backends), args.lb.algorithm.algorithm, config)?;
    let _ = slot.set((Arc::clone(&lb.current), Arc::clone(&lb.stats)));

    // Every connection is a file descriptor; the default soft limit (often
    // 1024) would cap us long before memory or CPU.
    let fds = raise_fd_limit().context("cannot raise the open-files limit")?;
    let listener = match inherited {
        Some(listener) => listener,
        None => listen(setup.listen, 4096).with_context(|| format!("cannot listen on {}", setup.listen))?,
    };
    let local = listener.local_addr()?;
    let pooled = reuse.is_some();
    tracing::info!(addr = %local, backends = setup.addrs.len(), algorithm = ?args.lb.algorithm.algorithm,
        poller = %args.poller, fd_limit = fds, pooled, "{name} listening");
    setup.chosen.announce(local.port());
    // ANCHOR: workers
    let hooked = reuse.is_some() || admission.is_some() || observe.is_some();
    let workers = if hooked && make_hooks.is_none() && workers > 1 {
        tracing::warn!(workers, "{name} runs one loop: it cannot make its hooks for another");
        1
    } else {
        workers.max(1)
    };
    // A reload waits until every loop serves what it brought; the loops
    // are counted before the first reload can come (the start hook).
    lb.current.expect_loops(workers);
    // ANCHOR_END: workers
    if let Some(on_start) = on_start {
        let running = Running {
            addr: local,
            current: Arc::clone(&lb.current),
            config: lb.config.clone(),
            stats: Arc::clone(&lb.stats),
            started,
            shutdown: shutdown.clone(),
            listener: Some(Arc::new(listener.try_clone().context("cannot duplicate the listening socket")?)),
        };
        on_start(&running)?;
    }
    // ANCHOR: loops
    // Every loop makes its descriptors (poller, wake-up socket) on its own
    // thread, then waits until all have: once one loop accepts, clients
    // can take every descriptor the process may open, and a loop that
    // failed then would stop the program while it serves. Made first, a
    // failure stops it before it has a client.
    let mut others = Vec::with_capacity(workers - 1);
    for index in 1..workers {
        let hooks = match make_hooks.as_mut() {
            Some(make) => make(index)?,
            None => crate::app::WorkerHooks::default(),
        };
        let copy = listener.try_clone().context("cannot duplicate the listening socket for a worker")?;
        others.push((Worker { index, count: workers }, hooks, copy));
    }
    if workers > 1 {
        tracing::info!(workers, "one loop per thread, all accepting from the one listening socket");
    }
    let lb = &lb;
    let gate = Gate::new(workers);
    // Prepares loop `worker`, waits for the others, and serves only if
    // every loop could be prepared (the one that failed reports why).
    let start = |listener, worker: Worker, hooks: Hooks<'_>| -> anyhow::Result<()> {
        let prepared = prepare(listener, lb, worker);
        let all_ready = gate.arrive(prepared.is_ok());
        let prepared = prepared.with_context(|| format!("cannot make loop {}'s poller", worker.index))?;
        if !all_ready {
            return Ok(());
        }
        let result = run_prepared(prepared, lb, shutdown.clone(), hooks);
        // One loop failing stops them all.
        if result.is_err() {
            shutdown.trigger();
        }
        Ok(result?)
    };
    let start = &start;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut threads = Vec::with_capacity(others.len());
        for (worker, mut hooks, copy) in others {
            let thread =
                std::thread::Builder::new().name(format!("worker-{}", worker.index)).spawn_scoped(scope, move || {
                    let hooks = Hooks {
                        reuse: hooks.reuse.as_deref_mut().map(|r| r as &mut dyn Reuse),
                        admission: hooks.admission.as_deref_mut().map(|a| a as &mut dyn Admission),
                        observe: hooks.observe.as_deref_mut().map(|o| o as &mut dyn Observe),
                    };
                    start(copy, worker, hooks)
                });
            match thread {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    // The loops already started must not wait for this one.
                    gate.arrive(false);
                    return Err(e).context("cannot start a worker's thread");
                }
            }
        }
        let first = start(listener, Worker { index: 0, count: workers }, Hooks { reuse, admission, observe });
        for thread in threads {
            match thread.join() {
                Ok(result) => result?,
                Err(_) => anyhow::bail!("a worker's thread panicked"),
            }
        }
        first
    })?;
    // ANCHOR_END: loops
    eprint!("{}", report(name, &lb.backends().pool, &lb.stats, started, &extra()));
    Ok(())
}

// ANCHOR: gate
/// Where the loops wait until every one has made its descriptors: the
/// last to arrive lets all go; one that failed sends all home at once.
struct Gate {
    /// Loops yet to arrive, and whether one failed.
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Gate {
    fn new(loops: usize) -> Self {
        Self { state: Mutex::new((loops, false)), changed: Condvar::new() }
    }

    /// Arrives (`ok`: this loop is ready) and waits; true when every loop
    /// was ready, false as soon as one was not.
    fn arrive(&self, ok: bool) -> bool {
        let mut state = crate::lb::backends::lock(&self.state);
        state.0 = state.0.saturating_sub(1);
        state.1 |= !ok;
        self.changed.notify_all();
        while state.0 > 0 && !state.1 {
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        !state.1
    }
}
// ANCHOR_END: gate

#[cfg(test)]
mod tests {
    use super::Gate;

    #[test]
    fn the_gate_opens_when_every_loop_is_ready_and_at_once_when_one_is_not() {
        let gate = Gate::new(3);
        std::thread::scope(|s| {
            let others: Vec<_> = (0..2).map(|_| s.spawn(|| gate.arrive(true))).collect();
            assert!(gate.arrive(true));
            assert!(others.into_iter().all(|t| t.join().unwrap()));
        });
        // Three loops, one ready and waiting, one failing: both go home
        // without waiting for the third.
        let gate = Gate::new(3);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| gate.arrive(true));
            assert!(!gate.arrive(false));
            assert!(!waiting.join().unwrap());
        });
    }
}
