//! `hot_reload_lb`: the capstone, started from a configuration file.

use std::path::PathBuf;
use std::process::ExitCode;

use ch08_metrics::serve::{MetricsArgs, serve};
use ch10_hot_reload::config;
use ch10_hot_reload::launch::flags;
use clap::{CommandFactory, FromArgMatches, Parser};

/// Chapter 8's observable, rate-limited, pooled load balancer, configured
/// by a JSON or YAML file (`-c lb.yaml`, or `hot_reload_lb lb.json` as
/// the C curriculum runs it). Every flag below overrides the file.
/// `--check` validates the file and exits: 0 when it is good, 1 with
/// every problem and its line and column when it is not, as `nginx -t`
/// and `haproxy -c` do.
///
/// Try it: `cargo run -p ch10-hot-reload -- --check -c ch10-hot-reload/examples/lb.yaml`,
/// then `cargo run -p ch10-hot-reload -- -c ch10-hot-reload/examples/lb.yaml`
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
        serve(&args.metrics, "hot reload load balancer", Some(ch04_advanced::labs::fastest))?;
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
    let backends_given = argv.iter().any(|a| a == "-b" || a.starts_with("--backend"));
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
    serve(&args.metrics, "hot reload load balancer", Some(ch04_advanced::labs::fastest))?;
    Ok(ExitCode::SUCCESS)
}
// ANCHOR_END: main

fn is_config_file(arg: &str) -> bool {
    !arg.starts_with('-') && [".json", ".yaml", ".yml"].iter().any(|ext| arg.to_ascii_lowercase().ends_with(ext))
}
