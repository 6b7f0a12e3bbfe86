//! `cargo xtask bench`: the performance ladder of the book's load
//! balancers, measured beside nginx and HAProxy in one run.
//!
//! One run builds the release binaries, starts three backends, then runs
//! each server of the ladder alone on its own port in front of the same
//! backends: its memory per idle connection first (on a fresh process),
//! then a warm-up and one measured load run per connection count, then
//! (for the event-loop servers, nginx and HAProxy) 10,000 connections held
//! at once. It prints a table, writes a CSV and two SVG charts.
//!
//! | file | what it holds |
//! |---|---|
//! | `bench.rs` | the flags, the ladder, one server measured after another |
//! | `bench/servers.rs` | child processes, nginx and HAProxy configs, `/proc` |
//! | `bench/load.rs` | wrk and its report; the built-in generator; reading responses |
//! | `bench/checks.rs` | many connections held at once; memory per idle connection |
//! | `bench/churn.rs` | `--churn`: chapter 6's pool against backends closing idle connections |
//! | `bench/zero_copy.rs` | `--l4`: chapter 9's `l4_proxy`, splice and copy, against HAProxy's tcp mode, with iperf3 |
//! | `bench/transfers.rs` | `--l4`: whole transfers of 1 KiB to 16 MiB through `l4_proxy`, copy, splice and auto, with its CPU per GB |
//! | `bench/static_files.rs` | `--l4`: `static_server` against nginx on a 1 MiB and a 1 GiB file, with wrk |
//! | `bench/reload.rs` | `--reload`: chapter 10's `hot_reload_lb` reloaded every 100 ms under load |
//! | `bench/picks.rs` | `--picks`: chapter 4's time per pick against pool size, drawn |
//! | `bench/conn_memory.rs` | `--conn-memory`: chapter 1's memory per connection against connections, drawn |
//! | `bench/report.rs` | the table, the targets, the CSV and the SVG charts |
//!
//! The machines this runs on are small and shared, and the load generator
//! runs beside the servers: the numbers are for comparing servers within
//! one run (ratios), not for quoting.

mod checks;
mod churn;
mod conn_memory;
mod handover;
mod limiter;
mod load;
mod picks;
mod plot;
mod reload;
mod report;
mod servers;
mod spread;
mod static_files;
mod transfers;
mod zero_copy;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use load::{Generator, LoadResult};
use report::{BackendSeen, Measured};
use servers::{Server, find_program, free_port, localhost};

/// Backends every server of the ladder balances over.
const BACKENDS: usize = 3;
/// Connections of the many-connections check.
const HELD: usize = 10_000;
/// Connections of the idle-memory check.
const IDLE: usize = 5_000;
/// Backend connections pooled_lb keeps for the idle-pooled-memory check:
/// enough that their memory stands out of the allocator's noise (a few
/// hundred KiB either way between two runs).
const POOLED: usize = 5_000;
/// The chapter 5 target for memory per idle connection, in bytes.
const IDLE_TARGET: u64 = 2 * 1024;
/// Descriptors this process needs besides the connections it holds.
const FD_MARGIN: u64 = 200;
/// How long a server has to answer its first `GET /` with 200.
const FIRST_ANSWER_LIMIT: Duration = Duration::from_secs(10);

const AFTER_HELP: &str = "\
The ladder: ch03 load_balancer, ch04 advanced_lb, ch05 high_perf_lb (epoll),
ch05 tokio_lb, ch06 pooled_lb, and, when installed, nginx (one worker) and
HAProxy (one thread), each in front of the same three backends, both as
chapter 5 runs (a backend connection per request: nginx's defaults,
HAProxy's http-server-close) and as chapter 6 runs (kept backend
connections: nginx-keepalive with `keepalive 64`, haproxy-reuse with
`http-reuse always`); then `direct`: the load straight to one backend,
which shows the backends are not what limits the balancers. Each row shows
the backends' connection reuse, counted by the backends themselves.

--churn runs chapter 6's torture test instead of the ladder.

Tools: nginx, HAProxy and wrk are optional (servers that are missing are
skipped; without wrk a built-in generator makes the load). On Debian or
Ubuntu:  sudo apt-get install nginx haproxy wrk

The checks open up to 10,000 connections from this process: the open-file
limit must allow that. The bench raises its soft limit to the hard one
(with prlimit); if the hard limit is lower, run `ulimit -n 65535` first.

Example:  cargo xtask bench --quick --only ch05,nginx";

/// The servers of the ladder, in the order they are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum LbKey {
    /// Chapter 3's load_balancer: a thread per connection.
    Ch03,
    /// Chapter 4's advanced_lb: a thread per connection, health checks.
    Ch04,
    /// Chapter 5's high_perf_lb: one thread, epoll.
    Ch05,
    /// Chapter 5's tokio_lb.
    Tokio,
    /// Chapter 6's pooled_lb: chapter 5's loop with a backend connection pool.
    Pooled,
    /// Chapter 7's rate_limited_lb: pooled_lb with a limit that never
    /// triggers, to measure what checking it costs.
    Limited,
    /// Chapter 8's metrics_lb: rate_limited_lb (the same limits) with every
    /// request counted and timed, to measure what the metrics cost.
    Metrics,
    /// Chapter 10's hot_reload_lb, configured by a file as an operator
    /// runs it (pool, TCP health checks, metrics; no rate limit), one loop.
    Capstone,
    /// The same with `--workers 2`.
    Capstone2,
    /// nginx with one worker process, a backend connection per request.
    Nginx,
    /// nginx with one worker process and upstream `keepalive 64`.
    NginxKeepalive,
    /// nginx with two worker processes and upstream `keepalive 64`.
    Nginx2Keepalive,
    /// HAProxy with one thread, `option http-server-close`.
    Haproxy,
    /// HAProxy with one thread, `http-reuse always`.
    HaproxyReuse,
    /// No balancer: the load goes straight to one backend, to show the
    /// backends are not what limits the balancers.
    Direct,
}

impl LbKey {
    /// Every server, in ladder order.
    const LADDER: [LbKey; 15] = [
        LbKey::Ch03,
        LbKey::Ch04,
        LbKey::Ch05,
        LbKey::Tokio,
        LbKey::Pooled,
        LbKey::Limited,
        LbKey::Metrics,
        LbKey::Capstone,
        LbKey::Capstone2,
        LbKey::Nginx,
        LbKey::NginxKeepalive,
        LbKey::Nginx2Keepalive,
        LbKey::Haproxy,
        LbKey::HaproxyReuse,
        LbKey::Direct,
    ];

    /// The name in the table, the CSV and the charts.
    pub fn label(self) -> &'static str {
        match self {
            LbKey::Ch03 => "ch03 load_balancer",
            LbKey::Ch04 => "ch04 advanced_lb",
            LbKey::Ch05 => "ch05 high_perf_lb",
            LbKey::Tokio => "ch05 tokio_lb",
            LbKey::Pooled => "ch06 pooled_lb",
            LbKey::Limited => "ch07 rate_limited_lb",
            LbKey::Metrics => "ch08 metrics_lb",
            LbKey::Capstone => "ch10 hot_reload_lb",
            LbKey::Capstone2 => "ch10 hot_reload_lb x2",
            LbKey::Nginx => "nginx",
            LbKey::NginxKeepalive => "nginx keepalive",
            LbKey::Nginx2Keepalive => "nginx keepalive x2",
            LbKey::Haproxy => "HAProxy",
            LbKey::HaproxyReuse => "HAProxy http-reuse",
            LbKey::Direct => "direct (one backend)",
        }
    }

    /// Our package and binary; `None` for nginx and HAProxy.
    fn ours(self) -> Option<(&'static str, &'static str)> {
        match self {
            LbKey::Ch03 => Some(("ch03-load-balancer", "load_balancer")),
            LbKey::Ch04 => Some(("ch04-advanced", "advanced_lb")),
            LbKey::Ch05 => Some(("ch05-event-loop", "high_perf_lb")),
            LbKey::Tokio => Some(("ch05-event-loop", "tokio_lb")),
            LbKey::Pooled => Some(("ch06-pooling", "pooled_lb")),
            LbKey::Limited => Some(("ch07-rate-limit", "rate_limited_lb")),
            LbKey::Metrics => Some(("ch08-metrics", "metrics_lb")),
            LbKey::Capstone | LbKey::Capstone2 => Some(("ch10-hot-reload", "hot_reload_lb")),
            LbKey::Nginx
            | LbKey::NginxKeepalive
            | LbKey::Nginx2Keepalive
            | LbKey::Haproxy
            | LbKey::HaproxyReuse
            | LbKey::Direct => None,
        }
    }

    /// Whether it is nginx.
    fn is_nginx(self) -> bool {
        matches!(self, LbKey::Nginx | LbKey::NginxKeepalive | LbKey::Nginx2Keepalive)
    }

    /// Whether it keeps backend connections between requests.
    pub fn pools(self) -> bool {
        matches!(
            self,
            LbKey::Pooled
                | LbKey::Limited
                | LbKey::Metrics
                | LbKey::Capstone
                | LbKey::Capstone2
                | LbKey::NginxKeepalive
                | LbKey::Nginx2Keepalive
                | LbKey::HaproxyReuse
        )
    }

    /// Whether the many-connections check applies: the event-loop servers.
    /// ch03 and ch04 spend a thread per connection and stop at their cap.
    fn holds_many(self) -> bool {
        !matches!(self, LbKey::Ch03 | LbKey::Ch04 | LbKey::Direct)
    }

    /// The default of `--max-connections` for the thread-per-connection
    /// servers (ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS): beyond
    /// it they close new connections at once.
    pub fn connection_cap(self) -> Option<usize> {
        matches!(self, LbKey::Ch03 | LbKey::Ch04).then_some(1024)
    }

    /// Command-line arguments for one of our servers. Health checks of ch04
    /// are the cheap TCP kind; draining on SIGTERM is short, since nothing
    /// is in flight when the bench stops a server.
    fn args(self, port: u16, backends: &[SocketAddr]) -> Vec<String> {
        let mut args: Vec<String> = vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()];
        for b in backends {
            args.push("--backend".into());
            args.push(b.to_string());
        }
        let extra: &[&str] = match self {
            LbKey::Ch03 => &["--strategy", "rr"],
            // Lab 4.5's report every 100 requests is for people, not for a load run.
            LbKey::Ch04 => &["--stats-every", "0"],
            LbKey::Ch05 | LbKey::Pooled => &["--poller", "epoll"],
            // Every request is checked against a route limit and a client
            // limit (two keyed tables) and a global one (one state), none
            // of which ever refuses: what is measured is the cost of asking.
            LbKey::Limited | LbKey::Metrics => &[
                "--poller",
                "epoll",
                "--rate",
                "1000000000",
                "--burst",
                "1000000000",
                "--rate-route",
                "/=1000000000:1000000000",
                "--rate-global",
                "1000000000:1000000000",
            ],
            _ => &[],
        };
        args.extend(extra.iter().map(|s| s.to_string()));
        if self == LbKey::Metrics {
            // The admin listener on any free port (nothing scrapes it here:
            // a scrape every 15 s would not show in a 10 s run).
            args.extend(["--admin-port".to_string(), "0".to_string()]);
        }
        if matches!(self, LbKey::Ch04 | LbKey::Ch05 | LbKey::Tokio | LbKey::Pooled | LbKey::Limited | LbKey::Metrics) {
            // Shared by chapter 4 and the binaries built on it.
            let common = ["--algorithm", "rr", "--health-check", "tcp", "--drain-timeout-secs", "1"];
            args.extend(common.iter().map(|s| s.to_string()));
        }
        args
    }
}

/// `--generator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GeneratorArg {
    /// wrk (https://github.com/wg/wrk).
    Wrk,
    /// The built-in generator (threads and blocking sockets; coarser, see bench/load.rs).
    Builtin,
}

/// The flags of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct BenchArgs {
    /// Seconds of each measured load run (a short warm-up comes first).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    duration: u64,
    /// Client connection counts, comma-separated: one load run per count.
    #[arg(long, value_name = "N,N,...", value_delimiter = ',', default_value = "64,1000")]
    connections: Vec<usize>,
    /// Only these servers, comma-separated [default: all].
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', value_enum)]
    only: Vec<LbKey>,
    /// The load generator [default: wrk when installed, else builtin].
    #[arg(long, value_enum)]
    generator: Option<GeneratorArg>,
    /// Skip the 10,000-connection check.
    #[arg(long = "no-10k")]
    no_10k: bool,
    /// Skip the memory-per-idle-connection check.
    #[arg(long)]
    no_idle: bool,
    /// Where to write the CSV (relative paths start at the workspace root).
    #[arg(long, value_name = "PATH", default_value = "book/src/figures/ladder.csv")]
    csv: PathBuf,
    /// Where to write ladder.svg and ladder-p99.svg.
    #[arg(long, value_name = "DIR", default_value = "book/src/figures")]
    svg_dir: PathBuf,
    /// Rounds: the whole ladder is measured this many times, servers taking
    /// turns, and each row reports its median round (errors are summed over
    /// all rounds). A shared machine drifts; turns and medians keep one
    /// slow minute from deciding a ratio.
    #[arg(long, value_name = "N", default_value_t = 3)]
    rounds: usize,
    /// A smoke run: one round of 3 s, 64 connections only (overrides
    /// --duration, --connections and --rounds).
    #[arg(long)]
    quick: bool,
    /// Instead of the ladder, chapter 6's churn test: pooled_lb in front of
    /// backends that close idle connections every second, under GETs and
    /// POSTs; no GET may fail and no POST may reach a backend twice.
    #[arg(long)]
    churn: bool,
    /// Seconds of the churn test.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    churn_secs: u64,
    /// Instead of the ladder, chapter 7's limiter targets: the criterion
    /// benchmark of one check at 1, 1,000 and 1,000,000 keys (<= 50 ns) and
    /// the resident memory per key at a million keys (<= 64 bytes).
    #[arg(long)]
    limiter: bool,
    /// Instead of the ladder, chapter 9's targets: iperf3 through
    /// l4_proxy (splice and --copy) and HAProxy's tcp mode at 1 and 8
    /// streams; whole transfers of 1 KiB to 16 MiB (copy, splice, auto);
    /// static_server against nginx on a 1 MiB and a 1 GiB file.
    #[arg(long, alias = "zero-copy")]
    l4: bool,
    /// Instead of the ladder, chapter 10's reload torture test:
    /// hot_reload_lb under 64 keep-alive connections and new connections,
    /// a reload every 100 ms (good and broken files alternating); no
    /// request may fail, and the p99 from signal to serving is <= 5 ms.
    #[arg(long)]
    reload: bool,
    /// Seconds of the reload test.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    reload_secs: u64,
    /// With --reload, also upgrade the binary (`POST /upgrade`) every SECS
    /// seconds: chapter 10's torture test is `--reload --upgrade-every 10`.
    #[arg(long, value_name = "SECS", requires = "reload")]
    upgrade_every: Option<u64>,
    /// Instead of the ladder, chapter 10's spread of new connections over
    /// two event loops: one listening socket watched by both with
    /// EPOLLEXCLUSIVE (hot_reload_lb --workers) against a socket each with
    /// SO_REUSEPORT, under light and heavy load.
    #[arg(long)]
    spread: bool,
    /// With --reload, hot_reload_lb's --workers [default: its own, one per core].
    #[arg(long, value_name = "N", requires = "reload")]
    lb_workers: Option<u16>,
    /// Instead of the ladder, chapter 4's cost of one backend selection
    /// (criterion, every algorithm, pools of 3, 30 and 300 backends),
    /// drawn against the pool's size.
    #[arg(long)]
    picks: bool,
    /// Instead of the ladder, chapter 1's memory per connection: the
    /// thread-per-connection echo_server with 10 to 3,000 idle connections,
    /// then after 16 KiB echoed through each, drawn against the count.
    #[arg(long)]
    conn_memory: bool,
}

/// What every measurement of a run shares.
#[derive(Debug)]
struct Run {
    generator: Generator,
    duration: Duration,
    warm_up: Duration,
    connections: Vec<usize>,
    held: bool,
    idle: bool,
    tmp: PathBuf,
    backends: Vec<SocketAddr>,
    /// The hard open-file limit, for nginx's worker_rlimit_nofile.
    nofile: u64,
}

/// `cargo xtask bench`.
pub fn bench(root: &Path, args: BenchArgs) -> Result<()> {
    if args.limiter {
        return limiter::run(root, args.quick);
    }
    if args.l4 {
        return zero_copy::run(root, args.quick);
    }
    if args.churn {
        return run_churn(root, if args.quick { 10 } else { args.churn_secs.max(1) });
    }
    if args.picks {
        return picks::run(root, (!args.quick).then(|| root.join("book/src/figures/ch04")).as_deref());
    }
    if args.conn_memory {
        let counts: &[usize] = if args.quick { &[10, 100] } else { &[10, 30, 100, 300, 1000, 3000] };
        return conn_memory::run(root, counts, (!args.quick).then(|| root.join("book/src/figures/ch01")).as_deref());
    }
    if args.spread {
        println!(
            "cargo xtask bench --spread, {}: 4,000 connections over two loops, 50 us of work each",
            report::today()
        );
        print!("{}", spread::report()?);
        return Ok(());
    }
    if args.reload {
        let upgrades = args.upgrade_every.map(|s| Duration::from_secs(s.max(1)));
        let secs = if args.quick { 5 } else { args.reload_secs.max(3) };
        return run_reload(root, secs, (upgrades, args.lb_workers), !args.quick);
    }
    let (duration, connections, rounds) =
        if args.quick { (3, vec![64], 1) } else { (args.duration, args.connections.clone(), args.rounds) };
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if duration == 0 {
        bail!("--duration must be at least 1 second");
    }
    if connections.is_empty() || connections.contains(&0) {
        bail!("--connections wants counts of at least 1, e.g. 64,1000");
    }
    let generator = match (args.generator, find_program("wrk")) {
        (Some(GeneratorArg::Builtin), _) | (None, None) => Generator::Builtin,
        (Some(GeneratorArg::Wrk) | None, Some(wrk)) => Generator::Wrk(wrk),
        (Some(GeneratorArg::Wrk), None) => {
            bail!("--generator wrk: wrk is not installed (sudo apt-get install wrk), or use --generator builtin")
        }
    };
    let explicit = !args.only.is_empty();
    let mut wanted = if explicit { args.only.clone() } else { LbKey::LADDER.to_vec() };
    wanted.sort();
    wanted.dedup();
    let mut notes: Vec<String> = Vec::new();

    // Build what is needed, then find every server's program.
    let mut packages = vec!["backends"];
    for (package, _) in wanted.iter().filter_map(|k| k.ours()) {
        if !packages.contains(&package) {
            packages.push(package);
        }
    }
    build_release(root, &packages)?;
    let bin_dir = target_dir(root).join("release");
    let backend_bin = bin_dir.join("simple_http_backend");
    if !backend_bin.is_file() {
        bail!("{} is missing after the build", backend_bin.display());
    }
    let nginx_path = find_program("nginx");
    let mut ladder: Vec<(LbKey, PathBuf)> = Vec::new();
    for &key in &wanted {
        let program = match key.ours() {
            Some((package, bin)) => {
                let path = bin_dir.join(bin);
                if path.is_file() {
                    Some(path)
                } else if explicit {
                    bail!("{} is missing after building {package}", path.display());
                } else {
                    notes.push(format!(
                        "{}: skipped, {} was not built (is its chapter written yet?)",
                        key.label(),
                        bin
                    ));
                    None
                }
            }
            None if key == LbKey::Direct => Some(backend_bin.clone()),
            None => {
                let name = if key.is_nginx() { "nginx" } else { "haproxy" };
                let found = find_program(name);
                if found.is_none() {
                    notes.push(format!("{}: skipped, not installed (sudo apt-get install {name})", key.label()));
                }
                found
            }
        };
        if let Some(program) = program {
            ladder.push((key, program));
        }
    }
    if ladder.is_empty() {
        bail!("nothing to measure:\n{}", notes.join("\n"));
    }
    let nginx_absent = match (&nginx_path, wanted.contains(&LbKey::Nginx)) {
        (None, _) => Some("nginx is not installed"),
        (Some(_), false) => Some("nginx was not selected"),
        (Some(_), true) => None,
    };

    // Descriptors: the checks hold thousands of sockets in this process,
    // and the servers inherit its limit.
    servers::raise_nofile_soft_limit();
    let (soft, hard) = servers::nofile_limits().unwrap_or((1024, 1024));
    let mut held = !args.no_10k;
    if held && soft < HELD as u64 + FD_MARGIN {
        notes.push(format!(
            "10,000-connection check skipped: the open-file limit is {soft}, it needs {} (run `ulimit -n 65535` first)",
            HELD as u64 + FD_MARGIN
        ));
        held = false;
    }
    let third_party = ladder.iter().any(|(k, _)| k.is_nginx() || matches!(k, LbKey::Haproxy | LbKey::HaproxyReuse));
    if held && third_party && hard < 2 * HELD as u64 + FD_MARGIN {
        notes.push(format!(
            "open-file limit {hard}: a proxy holding 10,000 clients may also hold up to as many backend sockets; \
             nginx (worker_connections) and HAProxy (maxsock) count both sides and may drop connections at this limit"
        ));
    }
    let mut idle = !args.no_idle;
    if idle && !Path::new("/proc/self/status").exists() {
        notes.push("idle-memory check skipped: it reads /proc (Linux only)".into());
        idle = false;
    }
    if idle && soft < IDLE as u64 + FD_MARGIN {
        notes.push(format!(
            "idle-memory check skipped: the open-file limit is {soft}, it needs {}",
            IDLE as u64 + FD_MARGIN
        ));
        idle = false;
    }

    let tmp = temp_dir()?;
    eprintln!("[bench] logs and configs go to {}", tmp.display());

    // The backends, one process each on a free port.
    let mut backend_servers = Vec::new();
    for i in 1..=BACKENDS {
        let port = free_port()?;
        let name = format!("backend-{i}");
        let args: Vec<String> = vec!["-p".into(), port.to_string(), "-n".into(), name.clone()];
        let log = tmp.join(format!("{name}.log"));
        let mut server = Server::spawn(&name, &backend_bin, &args, localhost(port), log)?;
        server.wait_ready()?;
        backend_servers.push(server);
    }
    let backends: Vec<SocketAddr> = backend_servers.iter().map(|s| s.addr).collect();

    let warm_up = if args.quick { Duration::from_secs(1) } else { Duration::from_secs(2) };
    let run = Run {
        generator,
        duration: Duration::from_secs(duration),
        warm_up,
        connections,
        held,
        idle,
        tmp,
        backends,
        nofile: hard,
    };
    let started = Instant::now();
    let mut measured: Vec<Measured> = Vec::new();
    let mut failure = None;
    'rounds: for round in 1..=rounds {
        if rounds > 1 {
            eprintln!("[bench] round {round} of {rounds}");
        }
        for (i, (key, program)) in ladder.iter().enumerate() {
            // The checks of many connections run once, in the first round.
            match measure(*key, program, &run, round == 1) {
                Ok(m) if round == 1 => measured.push(m),
                Ok(m) => {
                    measured[i].runs.extend(m.runs);
                    measured[i].backend.extend(m.backend);
                }
                Err(e) => {
                    failure = Some(e);
                    break 'rounds;
                }
            }
        }
    }
    for m in &mut measured {
        m.runs = median_runs(std::mem::take(&mut m.runs));
    }
    for backend in backend_servers {
        if let Err(e) = backend.stop() {
            failure.get_or_insert(e);
        }
    }
    eprintln!("[bench] done in {:.0?}", started.elapsed());

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let date = report::today();
    let generator_text = match &run.generator {
        Generator::Wrk(_) => "wrk -t2".to_string(),
        Generator::Builtin => "the built-in generator (2 threads)".to_string(),
    };
    println!(
        "cargo xtask bench, {date}: {cores} CPU cores, load by {generator_text}, {} s per run, median of {rounds} round(s)",
        run.duration.as_secs()
    );
    print_report(&measured, &run, nginx_absent, &notes);
    if let Some(e) = failure {
        eprintln!("[bench] stopped early: above are the servers measured before the failure; no file was written");
        return Err(e);
    }

    let csv_path = if args.csv.is_absolute() { args.csv.clone() } else { root.join(&args.csv) };
    let svg_dir = if args.svg_dir.is_absolute() { args.svg_dir.clone() } else { root.join(&args.svg_dir) };
    let footnote = vec![
        format!(
            "Median of {rounds} round(s) on {cores} CPU cores, {date} (UTC); load by {generator_text}, {} s per run; servers, backends and load share the machine.",
            run.duration.as_secs()
        ),
        "nginx with one worker, HAProxy with one thread; nginx and HAProxy open a backend connection per request, nginx keepalive (keepalive 64), HAProxy http-reuse (always) and pooled_lb keep them. Compare ratios, not absolute numbers.".to_string(),
    ];
    let (rps_chart, p99_chart) = report::ladder_charts(&measured, &footnote);
    let (rps_svg, p99_svg) = (svg_dir.join("ladder.svg"), svg_dir.join("ladder-p99.svg"));
    write(&csv_path, &report::csv(&measured, run.generator.name()))?;
    write(&rps_svg, &report::svg(&rps_chart))?;
    write(&p99_svg, &report::svg(&p99_chart))?;
    println!();
    println!("Wrote {}, {} and {}", csv_path.display(), rps_svg.display(), p99_svg.display());
    Ok(())
}

/// `--churn`: builds what it needs, runs the churn test, prints the verdict.
fn run_churn(root: &Path, secs: u64) -> Result<()> {
    build_release(root, &["backends", "ch06-pooling"])?;
    let tmp = temp_dir()?;
    eprintln!("[bench] logs go to {}", tmp.display());
    let result = churn::churn(&target_dir(root).join("release"), &tmp, secs)?;
    println!("cargo xtask bench --churn, {}", report::today());
    print!("{}", result.lines(secs));
    if !result.passed() {
        bail!("the churn test failed (logs in {})", tmp.display());
    }
    Ok(())
}

/// `--reload`: builds, runs the reload torture test, writes its figures
/// (a full run only).
fn run_reload(
    root: &Path,
    secs: u64,
    (upgrades, workers): (Option<Duration>, Option<u16>),
    figures: bool,
) -> Result<()> {
    build_release(root, &["backends", "ch10-hot-reload"])?;
    let tmp = temp_dir()?;
    eprintln!("[bench] logs go to {}", tmp.display());
    let dir = root.join("book/src/figures/ch10");
    let bin_dir = target_dir(root).join("release");
    if !reload::run(&bin_dir, &tmp, secs, (upgrades, workers), figures.then_some(dir.as_path()))? {
        bail!("the reload test failed (logs in {})", tmp.display());
    }
    Ok(())
}

/// Prints the table, the checks, the targets and the notes to stdout.
fn print_report(measured: &[Measured], run: &Run, nginx_absent: Option<&str>, notes: &[String]) {
    println!();
    print!("{}", report::table(measured));
    if run.held {
        println!();
        println!("{} connections open at once, then one request on each:", report::thousands(HELD as f64));
        print!("{}", report::held_lines(measured));
    }
    if run.idle {
        println!();
        println!(
            "Memory per idle connection ({} connections that send nothing; resident memory of the serving process, kernel socket buffers not included):",
            report::thousands(IDLE as f64)
        );
        print!("{}", report::idle_lines(measured));
    }
    println!();
    println!("Targets");
    print!("{}", report::targets(measured, nginx_absent, HELD, IDLE_TARGET));
    if !notes.is_empty() {
        println!();
        println!("Notes");
        for note in notes {
            println!("  {note}");
        }
    }
}

/// Measures one server: start it, check that it answers, idle memory,
/// load runs, the many-connections check, stop it.
fn measure(key: LbKey, program: &Path, run: &Run, checks: bool) -> Result<Measured> {
    if key == LbKey::Direct {
        return measure_direct(run);
    }
    let label = key.label();
    let port = free_port()?;
    let addr = localhost(port);
    let mut server = start(key, program, port, run)?;
    server.wait_ready()?;
    first_answer(&server)?;

    let idle = (checks && run.idle).then(|| {
        eprintln!("[bench] {label}: memory per idle connection ({IDLE} connections)");
        let pid = match key {
            // The master only hands connections to its worker: measure the worker.
            LbKey::Nginx | LbKey::NginxKeepalive => {
                servers::children_of(server.pid()).first().copied().context("no nginx worker process found")
            }
            // Its connections are spread over two processes: one process's
            // memory would say nothing.
            LbKey::Nginx2Keepalive => Err(anyhow::anyhow!("two worker processes: measured with one worker instead")),
            _ => Ok(server.pid()),
        };
        pid.and_then(|pid| checks::idle_memory(addr, pid, IDLE)).map_err(|e| format!("{e:#}"))
    });

    let (mut runs, mut backend) = (Vec::new(), Vec::new());
    for &connections in &run.connections {
        eprintln!(
            "[bench] {label}: {connections} connections, {} s warm-up then {} s measured",
            run.warm_up.as_secs(),
            run.duration.as_secs()
        );
        let failed = |e: anyhow::Error| anyhow::anyhow!("{}", server.failure(&format!("could not be measured: {e:#}")));
        run.generator.run(addr, connections, run.warm_up).map_err(failed)?;
        let before = backend_totals(&run.backends);
        let result = run.generator.run(addr, connections, run.duration).map_err(failed)?;
        let after = backend_totals(&run.backends);
        let seen = before.zip(after).map(|((a0, r0), (a1, r1))| BackendSeen {
            accepted: a1.saturating_sub(a0),
            requests: r1.saturating_sub(r0),
        });
        eprintln!(
            "[bench] {label}: {:.0} req/s, p99 {} ms, {} errors{}",
            result.requests_per_sec,
            result.p99_ms.map_or_else(|| "-".to_string(), |v| format!("{v:.2}")),
            result.errors,
            seen.map_or_else(String::new, |s| format!(
                ", backends accepted {} connections for {} requests",
                s.accepted, s.requests
            ))
        );
        runs.push((connections, result));
        backend.push((connections, seen.unwrap_or_default()));
    }

    let held = (checks && run.held && key.holds_many()).then(|| {
        eprintln!("[bench] {label}: {HELD} connections at once");
        checks::hold_many(addr, HELD)
    });
    let log = server.log.clone();
    server.stop()?;
    let pooled_memory = (checks && run.idle && key == LbKey::Pooled).then(|| {
        eprintln!("[bench] {label}: memory per idle pooled backend connection ({POOLED} connections)");
        let backend = *run.backends.first().context("no backend is running")?;
        let start = |pooled: bool| -> Result<(Server, SocketAddr)> {
            let port = free_port()?;
            let mut args = vec![
                "-H".to_string(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "--backend".into(),
                backend.to_string(),
                "--health-check".into(),
                "off".into(),
            ];
            if pooled {
                let all = POOLED.to_string();
                args.extend(["--pool-max-idle".into(), all.clone(), "--pool-max-idle-total".into(), all]);
            } else {
                args.push("--no-pool".into());
            }
            let name = if pooled { "pooled_lb (pool)" } else { "pooled_lb (--no-pool)" };
            let log = run.tmp.join(if pooled { "pooled-memory.log" } else { "no-pool-memory.log" });
            let mut server = Server::spawn(name, program, &args, localhost(port), log)?;
            server.wait_ready()?;
            Ok((server, localhost(port)))
        };
        checks::pooled_memory(start, backend, POOLED)
    });
    let pooled_memory = pooled_memory.map(|r| r.map_err(|e| format!("{e:#}")));
    Ok(Measured { key, runs, held, idle, log, backend, pooled_memory })
}

/// The `direct` row: load on one backend, no balancer in between.
fn measure_direct(run: &Run) -> Result<Measured> {
    let label = LbKey::Direct.label();
    let addr = *run.backends.first().context("no backend is running")?;
    let (mut runs, mut backend) = (Vec::new(), Vec::new());
    for &connections in &run.connections {
        eprintln!("[bench] {label}: {connections} connections");
        run.generator.run(addr, connections, run.warm_up)?;
        let before = backend_totals(&run.backends);
        let result = run.generator.run(addr, connections, run.duration)?;
        let after = backend_totals(&run.backends);
        let seen = before.zip(after).map(|((a0, r0), (a1, r1))| BackendSeen {
            accepted: a1.saturating_sub(a0),
            requests: r1.saturating_sub(r0),
        });
        eprintln!("[bench] {label}: {:.0} req/s, {} errors", result.requests_per_sec, result.errors);
        runs.push((connections, result));
        backend.push((connections, seen.unwrap_or_default()));
    }
    let log = run.tmp.join("backend-1.log");
    Ok(Measured { key: LbKey::Direct, runs, held: None, idle: None, log, backend, pooled_memory: None })
}

/// Connections accepted and requests served by all the backends so far
/// (their `/stats`); `None` when one cannot be read.
fn backend_totals(backends: &[SocketAddr]) -> Option<(u64, u64)> {
    let mut total = (0, 0);
    for &b in backends {
        let c = load::backend_counters(b, Duration::from_secs(2)).ok()?;
        total.0 += c.accepted;
        total.1 += c.served;
    }
    Some(total)
}

/// One result per connection count: the round with the median request
/// rate (its latencies come with it), with the errors of every round.
fn median_runs(runs: Vec<(usize, LoadResult)>) -> Vec<(usize, LoadResult)> {
    let mut counts: Vec<usize> = Vec::new();
    for (c, _) in &runs {
        if !counts.contains(c) {
            counts.push(*c);
        }
    }
    counts
        .into_iter()
        .filter_map(|c| {
            let mut same: Vec<&LoadResult> = runs.iter().filter(|(n, _)| *n == c).map(|(_, r)| r).collect();
            same.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
            let errors = same.iter().map(|r| r.errors).sum();
            let median = same.get(same.len() / 2)?;
            Some((c, LoadResult { errors, ..**median }))
        })
        .collect()
}

/// Starts one server of the ladder on `port`.
fn start(key: LbKey, program: &Path, port: u16, run: &Run) -> Result<Server> {
    let addr = localhost(port);
    let tmp = &run.tmp;
    let log = |name: &str| tmp.join(format!("{name}.log"));
    match key {
        LbKey::Nginx | LbKey::NginxKeepalive | LbKey::Nginx2Keepalive => {
            let config = tmp.join("nginx.conf");
            fs::create_dir_all(tmp.join("nginx-temp"))?;
            let keepalive = key != LbKey::Nginx;
            let workers = if key == LbKey::Nginx2Keepalive { 2 } else { 1 };
            write(&config, &servers::nginx_config(tmp, port, &run.backends, run.nofile, keepalive, workers))?;
            let mut args = vec!["-p".to_string(), tmp.display().to_string(), "-c".into(), config.display().to_string()];
            if servers::nginx_takes_e(program) {
                args.extend(["-e".to_string(), log("nginx").display().to_string()]);
            }
            Server::spawn(key.label(), program, &args, addr, log("nginx"))
        }
        LbKey::Capstone | LbKey::Capstone2 => {
            // As an operator runs it: from a file (which turns off the
            // demo's generation header), the workers on the command line.
            let config = tmp.join("capstone.yaml");
            write(&config, &servers::capstone_config(port, free_port()?, &run.backends))?;
            let workers = if key == LbKey::Capstone2 { "2" } else { "1" };
            let args: Vec<String> =
                ["-c", &config.display().to_string(), "--workers", workers].iter().map(|s| s.to_string()).collect();
            Server::spawn(key.label(), program, &args, addr, log(if workers == "2" { "capstone2" } else { "capstone" }))
        }
        LbKey::Haproxy | LbKey::HaproxyReuse => {
            let config = tmp.join("haproxy.cfg");
            write(&config, &servers::haproxy_config(port, &run.backends, key == LbKey::HaproxyReuse))?;
            let args = vec!["-db".to_string(), "-f".into(), config.display().to_string()];
            Server::spawn(key.label(), program, &args, addr, log("haproxy"))
        }
        _ => {
            let name = program.file_name().map_or_else(|| "server".into(), |n| n.to_string_lossy().into_owned());
            Server::spawn(key.label(), program, &key.args(port, &run.backends), addr, log(&name))
        }
    }
}

/// Waits (bounded) until the server answers `GET /` with 200: proof that it
/// reaches the backends before it is measured.
fn first_answer(server: &Server) -> Result<()> {
    let started = Instant::now();
    loop {
        let last = match load::get_once(server.addr, Duration::from_secs(2)) {
            Ok(200) => return Ok(()),
            Ok(status) => format!("answered {status}"),
            Err(e) => format!("failed: {e}"),
        };
        if started.elapsed() > FIRST_ANSWER_LIMIT {
            bail!(
                "{}",
                server
                    .failure(&format!("did not answer GET / with 200 within {FIRST_ANSWER_LIMIT:?} (last try {last})"))
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cargo build --release -p ...`, its output shown on stderr.
fn build_release(root: &Path, packages: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["build", "--release"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    eprintln!("[bench] cargo build --release -p {}", packages.join(" -p "));
    let status =
        cmd.stdin(Stdio::null()).stdout(std::io::stderr()).status().context("could not run cargo build --release")?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    Ok(())
}

/// Where cargo puts its output: `CARGO_TARGET_DIR` or `target/`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// A new folder for this run's logs and configs.
fn temp_dir() -> Result<PathBuf> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("lbs-bench-{secs}-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Writes a file, creating its folder.
fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_has_a_label_and_ours_have_arguments() {
        let backends = [localhost(9001), localhost(9002)];
        for key in LbKey::LADDER {
            assert!(!key.label().is_empty());
            if key.ours().is_some() {
                let args = key.args(8080, &backends);
                assert_eq!(&args[..4], ["-H", "127.0.0.1", "-p", "8080"]);
                assert_eq!(args.iter().filter(|a| *a == "--backend").count(), 2);
            }
        }
        for key in [LbKey::Ch04, LbKey::Ch05, LbKey::Tokio] {
            assert!(key.args(1, &backends).windows(2).any(|w| w == ["--health-check", "tcp"]));
        }
        assert!(LbKey::Ch05.args(1, &backends).windows(2).any(|w| w == ["--poller", "epoll"]));
        assert!(!LbKey::Ch03.holds_many() && LbKey::Ch05.holds_many() && LbKey::Nginx.holds_many());
    }

    #[test]
    fn each_connection_count_keeps_its_median_round_and_every_error() {
        let r = |rps: f64, errors: u64| LoadResult { requests_per_sec: rps, p50_ms: Some(rps), p99_ms: None, errors };
        let runs = vec![(64, r(10.0, 0)), (1000, r(5.0, 1)), (64, r(30.0, 2)), (1000, r(7.0, 0)), (64, r(20.0, 0))];
        let merged = median_runs(runs);
        assert_eq!(merged.len(), 2);
        assert_eq!((merged[0].0, merged[0].1.requests_per_sec, merged[0].1.errors), (64, 20.0, 2));
        assert_eq!(merged[0].1.p50_ms, Some(20.0), "latencies come from the median round");
        assert_eq!((merged[1].0, merged[1].1.requests_per_sec, merged[1].1.errors), (1000, 7.0, 1));
    }
}
