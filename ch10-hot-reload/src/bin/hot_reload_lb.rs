//! `hot_reload_lb`: the capstone, started from a configuration file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ch04_advanced::node::Pool;
use ch08_metrics::serve::{Extra, MetricsArgs, serve};
use ch10_hot_reload::config::{self, Config};
use ch10_hot_reload::launch::flags;
use ch10_hot_reload::reload::{Change, compare};
use clap::{CommandFactory, FromArgMatches, Parser};

/// Chapter 8's observable, rate-limited, pooled load balancer, configured
/// by a JSON or YAML file (`-c lb.yaml`, or `hot_reload_lb lb.json` as
/// the C curriculum runs it). Every flag below overrides the file.
/// `--check` validates the file and exits: 0 when it is good, 1 with
/// every problem and its line and column when it is not, as `nginx -t`
/// and `haproxy -c` do. SIGHUP (and, with --watch, a change of its
/// contents) reads the file again: one with problems changes nothing
/// (they are logged); new weights are applied at once.
///
/// Try it: `cargo run -p ch10-hot-reload -- --check -c ch10-hot-reload/configs/lb.yaml`,
/// then `cargo run -p ch10-hot-reload -- -c ch10-hot-reload/configs/lb.yaml`
/// (with nothing on 127.0.0.1:9001-9003 start backends first:
/// `cargo run -p backends -- --count 3 --base-port 9001`). With no file,
/// it is chapter 8's balancer with its zero-setup demo.
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
    /// Milliseconds between two looks at the file, with --watch.
    #[arg(short, long, value_name = "MS", default_value_t = 2000)]
    interval: u64,
    #[command(flatten)]
    metrics: MetricsArgs,
}

fn main() -> anyhow::Result<ExitCode> {
    let mut argv: Vec<String> = std::env::args().collect();
    // `hot_reload_lb lb.json`: a first argument naming a file is `--config`.
    if let Some(first) = argv.get(1).filter(|a| is_config_file(a)).cloned() {
        argv.splice(1..2, ["--config".to_string(), first]);
    }
    let args = Args::parse_from(&argv);
    let Some(path) = args.config.clone() else {
        let extra = Extra { admin_listening: Some(admin_listening), ..Extra::default() };
        serve(&args.metrics, "hot reload load balancer", Some(ch04_advanced::labs::fastest), extra)?;
        return Ok(ExitCode::SUCCESS);
    };
    let config = match config::load(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}: not valid ({} problem(s))", path.display(), e.problems.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.check {
        println!(
            "{}: ok ({} backend(s), algorithm {:?}, listening on {}:{})",
            path.display(),
            config.backends.len(),
            config.algorithm,
            config.listen.address,
            config.listen.port
        );
        return Ok(ExitCode::SUCCESS);
    }
    let backends_given = argv.iter().any(|a| a.starts_with("-b") || a.starts_with("--backend"));
    let from_file = match flags(&config, backends_given) {
        Ok(flags) => flags,
        Err(unsupported) => {
            eprintln!(
                "{}: this version of hot_reload_lb checks {} but does not apply them yet; remove them to run",
                path.display(),
                unsupported.join(" and ")
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    // The file's flags first, then the command line's: later ones win.
    let mut full = vec![argv.first().cloned().unwrap_or_default()];
    full.extend(from_file);
    full.extend(argv.into_iter().skip(1));
    let matches = Args::command().args_override_self(true).get_matches_from(full);
    let args = Args::from_arg_matches(&matches)?;
    let watch = args.watch.then(|| Duration::from_millis(args.interval.max(10)));
    let extra = reloading(path, config, backends_given, watch);
    serve(&args.metrics, "hot reload load balancer", Some(ch04_advanced::labs::fastest), extra)?;
    Ok(ExitCode::SUCCESS)
}
// ANCHOR_END: main

// ANCHOR: reloading
/// SIGHUP, and with `watch` a change of the file's contents: the file
/// read and checked again, then compared with the running configuration
/// (see `reload`).
fn reloading(path: PathBuf, running: Config, backends_given: bool, watch: Option<Duration>) -> Extra {
    let pool: Arc<OnceLock<Arc<Pool>>> = Arc::default();
    let running = Arc::new(Mutex::new(running));
    let again: Arc<dyn Fn() + Send + Sync> = {
        let (path, pool, running) = (path.clone(), Arc::clone(&pool), Arc::clone(&running));
        Arc::new(move || {
            let mut running = running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            reload(&path, &mut running, pool.get(), backends_given);
        })
    };
    let on_hup = Arc::clone(&again);
    Extra {
        on_start: Some(Box::new(move |r| {
            let _ = pool.set(Arc::clone(&r.pool));
            if let Some(every) = watch {
                let file = path.clone();
                std::thread::Builder::new().name("watch".into()).spawn(move || watching(&file, every, &*again))?;
                tracing::info!(file = %path.display(), interval_ms = every.as_millis(), "watching the configuration file");
            }
            Ok(())
        })),
        on_reload: Some(Box::new(move || on_hup())),
        admin_listening: Some(admin_listening),
    }
}

/// Looks at the file every `every`; calls `reload` when its contents
/// changed and then stayed the same for one more look. Contents, not
/// times or inodes: an editor that saves by renaming, or a symlink
/// swapped to a new file, changes them as much as a write in place.
fn watching(path: &Path, every: Duration, reload: &dyn Fn()) {
    let mut applied = std::fs::read(path).ok();
    let mut pending: Option<Option<Vec<u8>>> = None;
    loop {
        std::thread::sleep(every);
        let now = std::fs::read(path).ok();
        match &pending {
            Some(seen) if *seen == now => {
                pending = None;
                if now != applied {
                    applied = now;
                    reload();
                }
            }
            _ if now != applied => pending = Some(now),
            _ => pending = None,
        }
    }
}

fn reload(path: &Path, running: &mut Config, pool: Option<&Arc<Pool>>, backends_given: bool) {
    let file = path.display();
    let new = match config::load(path) {
        Ok(new) => new,
        Err(e) => {
            for problem in e.to_string().lines() {
                tracing::error!(problem, "configuration problem");
            }
            tracing::error!(%file, problems = e.problems.len(), "configuration refused; the running one stays");
            return;
        }
    };
    match compare(running, &new) {
        Change::None => tracing::info!(%file, "configuration unchanged"),
        Change::NeedsRestart(what) => {
            let what = what.join(", ");
            tracing::warn!(%file, changed = what, "configuration valid, but this version applies only weights while running; restart to apply it");
        }
        Change::Weights(_) if backends_given => {
            tracing::warn!(%file, "new weights not applied: --backend on the command line replaced the file's backends");
        }
        Change::Weights(weights) => {
            let Some(pool) = pool else { return };
            for (addr, weight) in &weights {
                if let Some(node) = pool.nodes.iter().find(|n| n.addr() == addr) {
                    node.set_weight(*weight);
                    tracing::info!(backend = addr, weight, "weight changed");
                }
            }
            *running = new;
            tracing::info!(%file, changed = weights.len(), "configuration reloaded: weights applied");
        }
    }
}
// ANCHOR_END: reloading

fn is_config_file(arg: &str) -> bool {
    !arg.starts_with('-') && [".json", ".yaml", ".yml"].iter().any(|ext| arg.to_ascii_lowercase().ends_with(ext))
}

/// Where the admin listener listens: logged from here, so that the line
/// carries this binary's name.
fn admin_listening(addr: std::net::SocketAddr) {
    tracing::info!(addr = %addr, "admin listening (/metrics, /lb-stats, /healthz, /readyz)");
}
