//! `hot_reload_lb`: the capstone, started from a configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ch01_fundamentals::cli::DEFAULT_PORT;
use ch01_fundamentals::logging::{self, LogFile};
use ch04_advanced::node::Backend;
use ch05_event_loop::lb::backends::Current;
use ch05_event_loop::lb::mailbox::Mailbox;
use ch08_metrics::admin::{Answer, Routes, Then};
use ch08_metrics::balancer::Metrics;
use ch08_metrics::scraped::Scraped;
use ch08_metrics::serve::{Extra, Handles, MetricsArgs, serve};
use ch10_hot_reload::config::{self, Config, Mode};
use ch10_hot_reload::launch::flags;
#[cfg(unix)]
use ch10_hot_reload::layer4;
use ch10_hot_reload::reload::{Derive, Derived, Outcome, Reloader, Tuning};
#[cfg(target_os = "linux")]
use ch10_hot_reload::upgrade;
use ch10_hot_reload::watch::watching;
use clap::builder::TypedValueParser;
use clap::{CommandFactory, FromArgMatches, Parser};

/// Chapter 8's observable, rate-limited, pooled load balancer, configured
/// by a JSON or YAML file (`-c lb.yaml`, or `hot_reload_lb lb.json` as
/// the C curriculum runs it). Every flag below overrides the file.
/// `--check` validates the file and exits: 0 when it is good, 1 with
/// every problem and its line and column when it is not, as `nginx -t`
/// and `haproxy -c` do. SIGHUP, `curl -X POST localhost:8081/reload` on
/// the admin port (the listening port plus one unless --admin-port says
/// otherwise), and with --watch a change of the file, read the file
/// again: one with problems changes nothing (they are logged); a new
/// backend set, new weights, another algorithm or another port are
/// swapped in between two requests, and requests under way finish on
/// the set they started with; new rate limits and pool sizes apply from
/// the next request. Only moving the admin listener needs a restart.
/// SIGUSR2, or `curl -X POST localhost:8081/upgrade`, upgrades the
/// binary in place (Linux): the running process starts the binary again
/// with the same arguments, hands it the listening sockets, and drains
/// once the new one serves; if the new one fails to start, the old one
/// serves on and says why. `GET /config` on the admin port shows the
/// generation in use, the file's hash and how the last reload went.
/// `--workers` loops (one per core by default) share the work. With
/// `mode: tcp` in the file, each TCP connection is relayed whole to a
/// backend instead (layer 4, chapter 9's relay), with the same loops,
/// reloads, admin listener and upgrade.
///
/// Try it: `cargo run -p ch10-hot-reload -- --check -c ch10-hot-reload/configs/lb.yaml`,
/// then `cargo run -p ch10-hot-reload -- -c ch10-hot-reload/configs/lb.yaml`
/// (with nothing on 127.0.0.1:9001-9003 start backends first:
/// `cargo run -p backends -- --count 3 --base-port 9001`). With no file,
/// it is chapter 8's balancer with its zero-setup demo, each response
/// naming its configuration generation (`X-LB-Config-Gen`).
// ANCHOR: main
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The configuration file: JSON (`.json`) or YAML (`.yaml`, `.yml`).
    /// It may also be given alone, as the first argument.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration and exit (0: good; 1: every problem, placed).
    #[arg(long, requires = "config")]
    check: bool,
    /// Also read the file again when its contents change (checked every
    /// --interval; a change is applied once it has stayed the same for one
    /// more interval, so a file caught half-written is not read).
    #[arg(short, long, requires = "config")]
    watch: bool,
    /// Milliseconds between two looks at the file, with --watch. On Linux
    /// a change is noticed at once (inotify on the file's directory); the
    /// interval is then only a safety net.
    #[arg(short, long, value_name = "MS", default_value_t = 2000)]
    interval: u64,
    /// Write the log to FILE (appending) instead of standard error; with no
    /// FILE, to `hot_reload_lb-YYYYMMDD-HHMMSS.log` in the current
    /// directory. SIGHUP opens it again, after logrotate has moved it.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "",
        value_parser = clap::builder::OsStringValueParser::new().map(PathBuf::from))]
    log_file: Option<PathBuf>,
    /// Name the configuration generation that served each response in an
    /// `X-LB-Config-Gen` header (always on in the demo, with no file).
    #[arg(long)]
    generation_header: bool,
    /// Event loops to run, one per thread. They share the listening
    /// socket, the backends and their health, the counters and the rate
    /// limits; each has its own connections and pool. Default: one per
    /// core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,
    #[command(flatten)]
    metrics: MetricsArgs,
}

fn main() -> anyhow::Result<ExitCode> {
    let mut argv: Vec<String> = std::env::args().collect();
    // Started by an old process for an upgrade: its sockets, and SIGUSR2
    // to upgrade again (both before any thread starts).
    #[cfg(target_os = "linux")]
    let (handover, sockets, upgrader) = {
        let handover = match upgrade::inherited() {
            Ok(h) => h,
            Err(why) => {
                eprintln!("hot_reload_lb: cannot take over from the old process: {why}");
                return Ok(ExitCode::FAILURE);
            }
        };
        let sockets = Arc::new(upgrade::Sockets::default());
        let upgrader = Arc::new(upgrade::Upgrader::new(argv.clone(), Arc::clone(&sockets)));
        upgrade::on_sigusr2(Arc::clone(&upgrader))?;
        (handover, sockets, upgrader)
    };
    #[cfg(target_os = "linux")]
    let upgrading: Upgrading = Some(upgrader);
    #[cfg(not(target_os = "linux"))]
    let upgrading: Upgrading = None;
    // `hot_reload_lb lb.json`: a first argument naming a file is `--config`.
    if let Some(first) = argv.get(1).filter(|a| is_config_file(a)).cloned() {
        argv.splice(1..2, ["--config".to_string(), first]);
    }
    let args = Args::parse_from(&argv);
    let Some(path) = args.config.clone() else {
        let log = log_to_file(&args)?;
        let on_reload: Option<Box<dyn Fn() + Send + Sync>> = log.map(|log| Box::new(move || reopen(&log)) as _);
        let extra = Extra {
            admin_listening: Some(admin_listening),
            generation_header: true,
            on_reload,
            workers: workers(&args),
            ..Extra::default()
        };
        serve(&args.metrics, "hot reload load balancer", Some(ch04_advanced::labs::fastest), extra)?;
        return Ok(ExitCode::SUCCESS);
    };
    let (config, hash) = match config::read(&path) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}: not valid ({} problem(s))", path.display(), e.problems.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let backends_given = argv.iter().any(|a| a.starts_with("-b") || a.starts_with("--backend"));
    if args.check {
        println!(
            "{}: ok ({}{} backend(s), algorithm {:?}, listening on {}:{})",
            path.display(),
            if config.mode == Mode::Tcp { "mode tcp, " } else { "" },
            config.backends.len(),
            config.algorithm,
            config.listen.address,
            config.listen.port
        );
        return Ok(ExitCode::SUCCESS);
    }
    // What a configuration makes of the command line: the file's flags
    // first, then the operator's, later ones winning. Start-up and every
    // reload go through it, so flags override every version of the file.
    let command_line = CommandLine { argv, backends_given };
    let args = match command_line.args(&config) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let generation_header = args.generation_header;
    let tcp = config.mode == Mode::Tcp;
    let derive: Derive = Box::new(move |config| {
        let args = command_line.args(config).map_err(|e| e.to_string())?;
        let reactor = &args.metrics.limited.pooled.reactor;
        let setup = reactor.lb.setup().map_err(|e| format!("{e:#}"))?;
        let loop_config = ch05_event_loop::app::config_of(reactor, &setup, generation_header);
        let limited = &args.metrics.limited;
        let limits = limited.rate.settings(reactor.lb.algorithm.trusted_proxies.len())?;
        let tuning = Tuning { loop_config, limits, pool: limited.pooled.pool.config() };
        let mut derived = derived(&args)?;
        // Limits come from the file's backends; `-b` replaces those, limits and all.
        if !command_line.backends_given {
            derived.max_connections =
                config.backends.iter().filter_map(|b| Some((b.addr(), b.max_connections?))).collect();
        }
        // Routes name backends: with `-b`, those must be among the command line's.
        for route in &config.routes {
            if let Some(missing) = route.backends.iter().find(|b| !derived.backends.iter().any(|(a, _)| a == *b)) {
                return Err(format!(
                    "route {} sends requests to {missing}, which is not a backend (--backend replaced the file's backends)",
                    route.prefix
                ));
            }
        }
        derived.routes = config.routes.iter().map(|r| (r.prefix.clone(), r.backends.clone())).collect();
        // A relay has no pool to tune (the schema refuses `pool` there).
        let tuning = if tcp { Tuning { pool: None, ..tuning } } else { tuning };
        Ok((derived, tuning))
    });
    let listen = derived(&args).map_err(anyhow::Error::msg)?.listen;
    let reloader = Arc::new(Reloader::new(&path, config, hash, derive).map_err(anyhow::Error::msg)?);
    let watch = args.watch.then(|| Duration::from_millis(args.interval.max(10)));
    let log = log_to_file(&args)?;
    if tcp {
        #[cfg(target_os = "linux")]
        let upgrade = Some((handover, sockets));
        #[cfg(not(target_os = "linux"))]
        let upgrade = None;
        let tcp = Tcp { args: &args, reloader, path, watch, log, upgrading, upgrade };
        return serve_tcp(tcp).map(|()| ExitCode::SUCCESS);
    }
    #[allow(unused_mut)]
    let mut extra = reloading(&reloader, path, watch, args.generation_header, log, upgrading);
    extra.workers = workers(&args);
    #[cfg(target_os = "linux")]
    {
        let moved = Arc::clone(&sockets);
        reloader.on_new_listener(Box::new(move |listener| moved.moved(listener)));
        take_over(&mut extra, handover, sockets, listen);
    }
    serve(&args.metrics, "hot reload load balancer", Some(ch04_advanced::labs::fastest), extra)?;
    Ok(ExitCode::SUCCESS)
}
// ANCHOR_END: main

// ANCHOR: reloading
/// The operator's command line, to read again with each file.
struct CommandLine {
    argv: Vec<String>,
    backends_given: bool,
}

impl CommandLine {
    /// The flags `config` stands for, then the operator's.
    fn args(&self, config: &Config) -> Result<Args, clap::Error> {
        let from_file = flags(config, self.backends_given);
        let mut full = vec![self.argv.first().cloned().unwrap_or_default()];
        full.extend(from_file);
        full.extend(self.argv.iter().skip(1).cloned());
        let matches = Args::command().args_override_self(true).try_get_matches_from(full)?;
        Args::from_arg_matches(&matches)
    }
}

/// What runs, from the flags: the part a reload can change.
fn derived(args: &Args) -> Result<Derived, String> {
    let lb = &args.metrics.limited.pooled.reactor.lb;
    let listen = lb.listen.addr(DEFAULT_PORT)?;
    let backends = lb
        .backends
        .backends
        .iter()
        .map(|spec| Backend::parse(spec.trim()).map(|b| (b.addr.clone(), b.weight)).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let (kind, cookie_name) = (lb.algorithm.algorithm, lb.algorithm.cookie_name.clone());
    Ok(Derived { backends, max_connections: Vec::new(), routes: Vec::new(), kind, cookie_name, listen })
}

/// Every way to reload: SIGHUP, `POST /reload` on the admin listener,
/// and with `watch` a change of the file (see `ch10_hot_reload::watch`).
fn reloading(
    reloader: &Arc<Reloader>,
    path: PathBuf,
    watch: Option<Duration>,
    generation_header: bool,
    log: Option<LogFile>,
    upgrading: Upgrading,
) -> Extra {
    let (on_hup, on_start) = (Arc::clone(reloader), Arc::clone(reloader));
    Extra {
        on_start: Some(Box::new(move |running, metrics, handles| {
            on_start.attach(Arc::clone(&running.current), running.config.algorithm.clone(), handles);
            export(&on_start, &running.current, metrics)?;
            let admin = Arc::clone(&on_start);
            // Once a new process serves, admin clients go to it alone.
            #[cfg(target_os = "linux")]
            if let Some(upgrader) = &upgrading {
                let metrics = Arc::clone(metrics);
                upgrader.on_handed_over(upgrade::HandedOver(Box::new(move || {
                    metrics.stop_admin();
                })));
            }
            metrics.add_admin_routes(Routes(Arc::new(move |method, target| {
                admin_route(&admin, &upgrading, method, target)
            })));
            if let Some(every) = watch {
                let (file, reloader) = (path, on_start);
                std::thread::Builder::new().name("watch".into()).spawn(move || {
                    watching(&file, every, &|| {
                        reloader.reload(Instant::now());
                    });
                })?;
            }
            Ok(())
        })),
        on_reload: Some(Box::new(move || {
            let asked = Instant::now();
            if let Some(log) = &log {
                reopen(log);
            }
            on_hup.reload(asked);
        })),
        generation_header,
        admin_listening: Some(admin_listening),
        listener: None,
        admin_listener: None,
        workers: 1,
    }
}

/// `--workers`, or one loop per core.
fn workers(args: &Args) -> usize {
    args.workers.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from)
}

/// What `POST /upgrade` upgrades with (Linux only).
#[cfg(target_os = "linux")]
type Upgrading = Option<Arc<upgrade::Upgrader>>;
#[cfg(not(target_os = "linux"))]
type Upgrading = Option<std::convert::Infallible>;

/// `POST /reload` reloads and answers how it went; `POST /upgrade`
/// upgrades the binary and answers once the new process serves; `GET
/// /config` shows the generation in use, the file's hash and the reloads
/// so far.
fn admin_route(reloader: &Reloader, upgrading: &Upgrading, method: &str, target: &str) -> Option<Answer> {
    match (method, target) {
        ("POST", "/upgrade") => Some(upgrade_now(upgrading)),
        (_, "/upgrade") => Some(Answer { allow: Some("POST"), ..Answer::text(405, "POST /upgrade upgrades\n") }),
        ("POST", "/reload") => {
            let outcome = reloader.reload(Instant::now());
            let status = match outcome {
                Outcome::Applied { .. } | Outcome::Unchanged => 200,
                Outcome::Invalid(_) => 422,
                Outcome::NeedsRestart(_) => 409,
                Outcome::Failed(_) => 500,
            };
            Some(Answer::text(status, outcome.describe() + "\n"))
        }
        (_, "/reload") => Some(Answer { allow: Some("POST"), ..Answer::text(405, "POST /reload reloads\n") }),
        ("GET" | "HEAD", "/config") => {
            let body = serde_json::to_string_pretty(&reloader.status()).unwrap_or_default() + "\n";
            Some(Answer { status: 200, content_type: "application/json", body, allow: None, then: None })
        }
        _ => None,
    }
}

// ANCHOR: upgrade_now
/// Upgrades, and answers once the new process serves. This process stops
/// only after the answer is written (`then`): stopping first could end
/// the process before the client heard how it went.
fn upgrade_now(upgrading: &Upgrading) -> Answer {
    #[cfg(target_os = "linux")]
    if let Some(upgrader) = upgrading {
        return match upgrader.upgrade("POST /upgrade") {
            Ok(pid) => {
                let stop = Arc::clone(upgrader);
                let text = format!("upgraded: process {pid} serves; this one ({}) drains\n", std::process::id());
                Answer { then: Some(Then(Arc::new(move || stop.stop_this()))), ..Answer::text(200, text) }
            }
            Err(why) => Answer::text(500, format!("upgrade failed; this process serves on: {why}\n")),
        };
    }
    let _ = upgrading;
    Answer::text(501, "upgrading the binary in place needs Linux (SCM_RIGHTS hand-over)\n")
}
// ANCHOR_END: upgrade_now

/// The reloads as metrics: by outcome, the generation in use, and how
/// long swaps took to serve.
fn export(reloader: &Arc<Reloader>, current: &Arc<Current>, metrics: &Metrics) -> anyhow::Result<()> {
    let r = Arc::clone(reloader);
    let counts = Scraped::counter(
        "lb_config_reloads_total",
        "Configuration reloads, by how they ended: applied, unchanged, invalid (the file has problems), restart_needed (it changes what cannot change while running), failed.",
        &["result"],
        move |out| out.extend(r.counts().into_iter().map(|(label, n)| (vec![label.to_string()], n as f64))),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let r = Arc::clone(reloader);
    let generation = Scraped::gauge(
        "lb_config_generation",
        "The configuration generation serving new requests (1 at start, one more at each applied reload).",
        &[],
        move |out| out.push((vec![], r.version().0 as f64)),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let current = Arc::clone(current);
    let swaps = Scraped::gauge(
        "lb_config_swap_seconds",
        "From a reload being asked for to the loop serving with the new backend set: the 50th and 99th percentiles and the largest, exact, over the newest 4096 swaps of every loop.",
        &["percentile"],
        move |out| {
            for (label, q) in [("50", 0.5), ("99", 0.99), ("100", 1.0)] {
                if let Some(took) = current.swap_latency.quantile(q) {
                    out.push((vec![label.to_string()], took.as_secs_f64()));
                }
            }
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    for family in [counts, generation, swaps] {
        metrics.registry.add(Arc::new(family));
    }
    Ok(())
}
// ANCHOR_END: reloading

/// Serves on the sockets the old process handed over (if this process was
/// started for an upgrade), keeps this process's own sockets for the next
/// upgrade, and tells the old process once this one serves.
#[cfg(target_os = "linux")]
fn take_over(
    extra: &mut Extra,
    handover: Option<upgrade::Handover>,
    sockets: Arc<upgrade::Sockets>,
    listen: SocketAddr,
) {
    let mut ready = None;
    if let Some(h) = handover {
        let (listener, admin, told) = h.take(listen);
        (extra.listener, extra.admin_listener, ready) = (listener, admin, Some(told));
    }
    let Some(then) = extra.on_start.take() else { return };
    extra.on_start = Some(Box::new(move |running, metrics, handles| {
        if let Some(listener) = &running.listener {
            sockets.set(Arc::clone(listener), handles.admin.clone());
        }
        let held = Arc::clone(&sockets);
        running.shutdown.on_trigger(move || held.clear());
        then(running, metrics, handles)?;
        if let Some(ready) = ready {
            ready.send().context("cannot tell the old process that this one serves")?;
            tracing::info!("upgrade: serving on the sockets handed over; the old process drains");
        }
        Ok(())
    }));
}

// ANCHOR: serve_tcp
/// What layer 4 mode starts from.
struct Tcp<'a> {
    args: &'a Args,
    reloader: Arc<Reloader>,
    path: PathBuf,
    watch: Option<Duration>,
    log: Option<LogFile>,
    upgrading: Upgrading,
    /// The sockets handed over by an old process, and where this one's
    /// go for the next upgrade (Linux).
    #[cfg(target_os = "linux")]
    upgrade: Option<(Option<upgrade::Handover>, Arc<upgrade::Sockets>)>,
    #[cfg(not(target_os = "linux"))]
    upgrade: Option<std::convert::Infallible>,
}

/// `mode: tcp`: chapter 9's relay over the file's backends, with the same
/// reloads (SIGHUP, `POST /reload`, `--watch`), the same admin listener
/// and the same upgrade as the HTTP balancer, on `--workers` loops that
/// share the listening socket and spread new clients with chapter 5's
/// hand-off.
fn serve_tcp(tcp: Tcp<'_>) -> anyhow::Result<()> {
    let Tcp { args, reloader, path, watch, log, upgrading, upgrade } = tcp;
    let reactor = &args.metrics.limited.pooled.reactor;
    // The HTTP balancer installs the log as it starts; `--log-file` did already.
    if log.is_none() {
        logging::init(reactor.lb.log.log_format);
    }
    let setup = reactor.lb.setup()?;
    let settings = ch05_event_loop::app::config_of(reactor, &setup, false);
    // Two descriptors a connection: the default soft limit (1,024) would
    // stop the relay near 500 connections.
    let fds = ch01_fundamentals::net::raise_fd_limit().context("cannot raise the open-files limit")?;
    let d = derived(args).map_err(anyhow::Error::msg)?;
    let backends = d.backends.iter().map(|(addr, weight)| Backend::new(addr.clone(), *weight)).collect();
    let current = Arc::new(Current::new(backends, d.kind, &settings)?);
    let loops = workers(args);
    current.expect_loops(loops);
    let handoff = Arc::new(ch05_event_loop::lb::handoff::Handoff::default());
    let shutdown = ch01_fundamentals::server::Shutdown::new();
    let stats = Arc::new(ch09_zero_copy::l4::L4Stats::default());
    // The signal thread first, so that every later thread is born with
    // the signals blocked: SIGHUP reloads, SIGUSR1 reports, SIGINT and
    // SIGTERM stop accepting and drain.
    let (report_current, report_stats, on_hup) = (Arc::clone(&current), Arc::clone(&stats), Arc::clone(&reloader));
    ch01_fundamentals::signals::on_signals(
        shutdown.clone(),
        ch01_fundamentals::signals::Stopping::Draining,
        move || eprint!("{}", report_stats.report("hot_reload_lb", shown_nodes(&report_current.load()))),
        move || {
            if let Some(log) = &log {
                reopen(log);
            }
            on_hup.reload(Instant::now());
        },
    )?;
    // The listening socket: the old process's, after an upgrade.
    #[allow(unused_mut)]
    let (mut inherited, mut inherited_admin, mut ready) = (None, None, None);
    #[cfg(target_os = "linux")]
    let sockets = upgrade.map(|(handover, sockets)| {
        if let Some(h) = handover {
            let (listener, admin, told) = h.take(d.listen);
            (inherited, inherited_admin, ready) = (listener, admin, Some(told));
        }
        sockets
    });
    #[cfg(not(target_os = "linux"))]
    let _ = upgrade;
    let listener = match inherited {
        Some(l) => l,
        None => {
            ch01_fundamentals::net::listen(d.listen, 4096).with_context(|| format!("cannot listen on {}", d.listen))?
        }
    };
    let local = listener.local_addr()?;
    // The admin listener, with the reload's and the relay's paths. Its
    // port follows the port asked for, not the one bound: with port 0,
    // any free port too, not the bound port plus one (which may be taken).
    let metrics = Metrics::new(env!("CARGO_PKG_VERSION"))?;
    let admin_socket = ch08_metrics::serve::admin_socket(args.metrics.admin.addr(d.listen.port()), inherited_admin)?;
    let admin_copy = admin_socket.as_ref().map(std::net::TcpListener::try_clone).transpose()?.map(Arc::new);
    let handles = Handles { limits: Mailbox::shared(), pool: None, admin: admin_copy.clone() };
    reloader.attach(Arc::clone(&current), settings.algorithm.clone(), handles);
    export(&reloader, &current, &metrics)?;
    layer4::export(&current, &stats, &metrics).map_err(anyhow::Error::msg)?;
    // Once a new process serves, admin clients go to it alone.
    #[cfg(target_os = "linux")]
    if let Some(upgrader) = &upgrading {
        let metrics = Arc::clone(&metrics);
        upgrader.on_handed_over(upgrade::HandedOver(Box::new(move || {
            metrics.stop_admin();
        })));
    }
    let (admin, admin_current, admin_stats) = (Arc::clone(&reloader), Arc::clone(&current), Arc::clone(&stats));
    let admin_handoff = Arc::clone(&handoff);
    metrics.add_admin_routes(Routes(Arc::new(move |method, target| match (method, target) {
        ("GET" | "HEAD", "/readyz") => Some(ch08_metrics::admin::readiness_of(&admin_current)),
        ("GET" | "HEAD", "/lb-stats") => Some(layer4::stats(&admin_current, &admin_stats, &admin_handoff)),
        _ => admin_route(&admin, &upgrading, method, target),
    })));
    #[cfg(target_os = "linux")]
    if let Some(sockets) = sockets {
        sockets.set(Arc::new(listener.try_clone()?), admin_copy);
        // Stopping: new clients are refused at once, not queued until the drain ends.
        let held = Arc::clone(&sockets);
        shutdown.on_trigger(move || held.clear());
        let moved = Arc::clone(&sockets);
        reloader.on_new_listener(Box::new(move |listener| moved.moved(listener)));
    }
    layer4::probe_current(Arc::clone(&current), shutdown.clone())?;
    if let Some(every) = watch {
        let reloader = Arc::clone(&reloader);
        std::thread::Builder::new().name("watch".into()).spawn(move || {
            watching(&path, every, &|| {
                reloader.reload(Instant::now());
            });
        })?;
    }
    tracing::info!(addr = %local, mode = "tcp", backends = d.backends.len(), algorithm = ?d.kind, loops, fd_limit = fds,
        "hot reload load balancer listening");
    if let Some(socket) = admin_socket {
        admin_listening(ch08_metrics::admin::start_on(socket, Arc::clone(&metrics))?);
    }
    if let Some(ready) = ready.take() {
        ready.send().context("cannot tell the old process that this one serves")?;
        tracing::info!("upgrade: serving on the sockets handed over; the old process drains");
    }
    let config = ch09_zero_copy::l4::L4Config {
        max_connections: settings.max_connections,
        poller: settings.poller,
        ..Default::default()
    };
    // Loops 1 to N-1 on threads of their own, loop 0 on this one; one
    // that cannot start stops them all.
    let mut others = Vec::new();
    for index in 1..loops {
        let (listener, current, stats) = (listener.try_clone()?, Arc::clone(&current), Arc::clone(&stats));
        let (shutdown, handoff, config) = (shutdown.clone(), Arc::clone(&handoff), config.clone());
        let relay = move || {
            let worker = ch09_zero_copy::l4::Worker { index, count: loops, handoff: &handoff };
            let ran =
                ch09_zero_copy::l4::run_worker(listener, &current, &config, &stats, shutdown.clone(), Some(worker));
            if let Err(e) = &ran {
                tracing::error!(index, error = %e, "relay loop failed; stopping");
                shutdown.trigger();
            }
        };
        others.push(std::thread::Builder::new().name(format!("relay-{index}")).spawn(relay)?);
    }
    let worker = (loops > 1).then_some(ch09_zero_copy::l4::Worker { index: 0, count: loops, handoff: &handoff });
    let ran = ch09_zero_copy::l4::run_worker(listener, &current, &config, &stats, shutdown.clone(), worker);
    if ran.is_err() {
        shutdown.trigger();
    }
    for other in others {
        let _ = other.join();
    }
    ran?;
    eprint!("{}", stats.report("hot_reload_lb", shown_nodes(&current.load())));
    Ok(())
}
// ANCHOR_END: serve_tcp

/// The nodes layer 4's report has a line for (see `layer4::shown`).
#[cfg(unix)]
fn shown_nodes(set: &ch05_event_loop::lb::backends::Backends) -> Vec<&Arc<ch04_advanced::node::Node>> {
    layer4::shown(set).into_iter().map(|(n, _)| n).collect()
}

/// With `--log-file`, sends the log there; the file, to reopen on SIGHUP.
fn log_to_file(args: &Args) -> anyhow::Result<Option<LogFile>> {
    let Some(path) = &args.log_file else { return Ok(None) };
    let path = if path.as_os_str().is_empty() { default_log_name(std::time::SystemTime::now()) } else { path.clone() };
    let file = LogFile::open(&path).with_context(|| format!("cannot open the log file {}", path.display()))?;
    logging::init_to_file(args.metrics.limited.pooled.reactor.lb.log.log_format, file.clone());
    eprintln!("hot_reload_lb: logging to {}", path.display());
    Ok(Some(file))
}

/// `hot_reload_lb-YYYYMMDD-HHMMSS.log`, in UTC.
fn default_log_name(now: std::time::SystemTime) -> PathBuf {
    let secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = ch01_fundamentals::date::civil_from_days(days);
    PathBuf::from(format!(
        "hot_reload_lb-{y:04}{m:02}{d:02}-{:02}{:02}{:02}.log",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    ))
}

fn reopen(log: &LogFile) {
    if let Err(e) = log.reopen() {
        tracing::warn!(file = %log.path().display(), error = %e, "cannot open the log file again; writing to the old one");
    }
}

fn is_config_file(arg: &str) -> bool {
    !arg.starts_with('-') && [".json", ".yaml", ".yml"].iter().any(|ext| arg.to_ascii_lowercase().ends_with(ext))
}

/// Where the admin listener listens: logged from here, so that the line
/// carries this binary's name.
fn admin_listening(addr: std::net::SocketAddr) {
    tracing::info!(addr = %addr, "admin listening (/metrics, /lb-stats, /healthz, /readyz, /config, /reload, /upgrade)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_log_name_carries_the_utc_time() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_796_330_712); // 2026-12-03 20:45:12 UTC
        assert_eq!(default_log_name(at), PathBuf::from("hot_reload_lb-20261203-204512.log"));
    }

    #[test]
    fn a_config_file_is_told_by_its_extension() {
        assert!(is_config_file("lb.json") && is_config_file("LB.YAML") && is_config_file("x.yml"));
        assert!(!is_config_file("--config") && !is_config_file("lb.toml"));
    }
}
