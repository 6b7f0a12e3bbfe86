//! `cargo xtask fuzz`: runs the coverage-guided fuzz targets in `fuzz/`
//! (cargo-fuzz, libFuzzer) for a fixed time each, and fails on a crash.
//!
//! Each target starts from its committed seeds (`fuzz/seeds/TARGET`) and
//! the corpus grown by earlier runs (`fuzz/corpus/TARGET`, not committed),
//! with its dictionary (`fuzz/dicts/`). libFuzzer's output goes to
//! `fuzz/target/logs/TARGET.log`; a crashing input to
//! `fuzz/artifacts/TARGET/`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Arguments of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// Seconds to fuzz each target.
    #[arg(long, value_name = "N", default_value_t = 30)]
    secs: u64,
    /// Only these targets [default: every target in fuzz/Cargo.toml].
    targets: Vec<String>,
}

/// How to call cargo-fuzz: the nightly toolchain if there is one, else the
/// default toolchain with `RUSTC_BOOTSTRAP=1` (cargo-fuzz needs nightly
/// flags such as `-Zsanitizer`; a machine may have only stable).
#[derive(Debug, Clone)]
struct Toolchain {
    plus: Option<&'static str>,
}

impl Toolchain {
    fn find() -> Self {
        let nightly = Command::new("cargo")
            .args(["+nightly", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Self { plus: nightly.then_some("+nightly") }
    }

    fn cargo_fuzz(&self) -> Command {
        let mut cmd = Command::new("cargo");
        match self.plus {
            Some(plus) => {
                cmd.arg(plus);
            }
            None => {
                cmd.env("RUSTC_BOOTSTRAP", "1");
            }
        }
        cmd.arg("fuzz");
        cmd
    }

    fn describe(&self) -> &'static str {
        match self.plus {
            Some(_) => "cargo +nightly fuzz",
            None => "cargo fuzz (no nightly toolchain: stable with RUSTC_BOOTSTRAP=1)",
        }
    }
}

/// The fuzz targets, from the `[[bin]]` sections of `fuzz/Cargo.toml`.
pub fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let manifest = fuzz_dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    Ok(bin_names(&text))
}

/// The `name` of every `[[bin]]` section of a manifest.
fn bin_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            names.push(value.trim().trim_matches('"').to_string());
        }
    }
    names
}

/// What one target's run gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStats {
    /// Inputs executed.
    pub runs: Option<u64>,
    /// Seconds libFuzzer reports having run.
    pub secs: Option<u64>,
    /// The crashing input libFuzzer wrote, if any.
    pub artifact: Option<String>,
}

/// Reads libFuzzer's output: `Done N runs in S second(s)`, or
/// `stat::number_of_executed_units: N` (printed on a crash too), and
/// `Test unit written to PATH`.
pub fn parse_libfuzzer(output: &str) -> RunStats {
    let mut stats = RunStats { runs: None, secs: None, artifact: None };
    for line in output.lines() {
        if let Some(rest) = line.trim().strip_prefix("Done ") {
            let mut words = rest.split_whitespace();
            stats.runs = words.next().and_then(|n| n.parse().ok()).or(stats.runs);
            // "N runs in S second(s)"
            stats.secs = words.nth(2).and_then(|s| s.parse().ok()).or(stats.secs);
        } else if let Some(n) = line.trim().strip_prefix("stat::number_of_executed_units:") {
            stats.runs = n.trim().parse().ok().or(stats.runs);
        } else if let Some(at) = line.find("Test unit written to ") {
            let path = line.get(at + "Test unit written to ".len()..).unwrap_or("").trim();
            stats.artifact = Some(path.to_string());
        }
    }
    stats
}

/// What a failure's log says about it: the panic message (or sanitizer
/// report) without its backtrace, else the log's last lines.
pub fn failure_excerpt(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.iter().position(|l| {
        l.contains("panicked at") || l.contains("ERROR: AddressSanitizer") || l.contains("ERROR: libFuzzer")
    });
    let Some(start) = start else { return crate::cargo::tail(log, 40) };
    lines
        .iter()
        .skip(start)
        .take_while(|l| !l.starts_with("stack backtrace:") && !l.trim_start().starts_with("#0 "))
        .take(12)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line of the summary.
struct Outcome {
    target: String,
    stats: RunStats,
    wall: Duration,
    ok: bool,
    log: PathBuf,
}

/// Runs `cargo xtask fuzz`.
pub fn fuzz(root: &Path, args: FuzzArgs) -> Result<()> {
    if args.secs == 0 {
        bail!("--secs must be at least 1");
    }
    let fuzz_dir = root.join("fuzz");
    let all = targets(&fuzz_dir)?;
    let chosen = if args.targets.is_empty() { all.clone() } else { args.targets.clone() };
    if let Some(unknown) = chosen.iter().find(|t| !all.contains(t)) {
        bail!("no fuzz target {unknown:?}; the targets are: {}", all.join(", "));
    }
    let toolchain = Toolchain::find();
    let available = toolchain
        .cargo_fuzz()
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        bail!("cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked`, then `cargo xtask fuzz` again");
    }

    // One build serves every target; `cargo fuzz run` then finds it built.
    eprintln!("==> building the fuzz targets with {}", toolchain.describe());
    let started = Instant::now();
    let status = toolchain.cargo_fuzz().arg("build").current_dir(root).status().context("running cargo fuzz build")?;
    if !status.success() {
        bail!("`cargo fuzz build` failed");
    }
    eprintln!("==> built in {:.0?}", started.elapsed());

    let logs = fuzz_dir.join("target").join("logs");
    fs::create_dir_all(&logs)?;
    let mut outcomes = Vec::new();
    for target in &chosen {
        eprintln!("==> fuzzing {target} for {} s", args.secs);
        outcomes.push(run_target(root, &toolchain, target, args.secs, &logs)?);
    }

    println!("\n{:<16} {:>12} {:>6} {:>9}  result", "target", "runs", "secs", "runs/s");
    for o in &outcomes {
        let secs = o.stats.secs.unwrap_or(o.wall.as_secs());
        let runs = o.stats.runs.map_or("?".to_string(), |r| r.to_string());
        let rate = o.stats.runs.map_or("?".to_string(), |r| (r / secs.max(1)).to_string());
        let result = match (&o.stats.artifact, o.ok) {
            (Some(artifact), _) => format!("CRASH: {artifact}"),
            (None, true) => "ok".to_string(),
            (None, false) => format!("FAILED (see {})", o.log.display()),
        };
        println!("{:<16} {runs:>12} {secs:>6} {rate:>9}  {result}", o.target);
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok).collect();
    if failed.is_empty() {
        return Ok(());
    }
    for o in &failed {
        eprintln!("\n--- {} (full log: {}) ---", o.target, o.log.display());
        let text = fs::read_to_string(&o.log).unwrap_or_default();
        eprintln!("{}", failure_excerpt(&text));
        if let Some(artifact) = &o.stats.artifact {
            eprintln!(
                "reproduce: cargo +nightly fuzz run {} {artifact}\nminimise:  cargo +nightly fuzz tmin {} {artifact}",
                o.target, o.target
            );
        }
    }
    let names: Vec<String> = failed
        .iter()
        .map(|o| match &o.stats.artifact {
            Some(a) => format!("{} (crashing input: {a})", o.target),
            None => o.target.clone(),
        })
        .collect();
    bail!("fuzzing found a failure in {}", names.join(", "))
}

/// Fuzzes one target for `secs` seconds; libFuzzer's output goes to a log.
fn run_target(root: &Path, toolchain: &Toolchain, target: &str, secs: u64, logs: &Path) -> Result<Outcome> {
    let fuzz_dir = root.join("fuzz");
    let corpus = fuzz_dir.join("corpus").join(target);
    let seeds = fuzz_dir.join("seeds").join(target);
    fs::create_dir_all(&corpus)?;
    fs::create_dir_all(&seeds)?;
    let dicts = fuzz_dir.join("dicts");
    let dict = [dicts.join(format!("{target}.dict")), dicts.join("http.dict")].into_iter().find(|d| d.is_file());
    let log = logs.join(format!("{target}.log"));
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = toolchain.cargo_fuzz();
    cmd.current_dir(root).arg("run").arg(target).arg(&corpus).arg(&seeds).arg("--");
    cmd.arg(format!("-max_total_time={secs}"));
    // A single input running this long is a hang: report it as a failure.
    cmd.arg("-timeout=10").arg("-print_final_stats=1");
    if let Some(dict) = dict {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    cmd.stdout(out.try_clone()?).stderr(out);
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting cargo fuzz run")?;
    // libFuzzer stops itself after max_total_time; loading a large corpus
    // first can take a while, but not this long.
    let limit = Duration::from_secs(secs + 600);
    let Some(status) = crate::process::wait_bounded(&mut child, limit)? else {
        bail!("fuzzing {target} did not stop after {limit:?}; see {}", log.display());
    };
    let wall = started.elapsed();
    let stats = parse_libfuzzer(&fs::read_to_string(&log).unwrap_or_default());
    let ok = status.success() && stats.artifact.is_none();
    let runs = stats.runs.map_or("?".to_string(), |r| r.to_string());
    eprintln!("    {target}: {runs} runs in {wall:.0?}: {}", if ok { "ok" } else { "FAILED" });
    Ok(Outcome { target: target.to_string(), stats, wall, ok, log })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_bin_names() {
        let manifest = "[package]\nname = \"lbs-fuzz\"\n\n[[bin]]\nname = \"a\"\npath = \"x.rs\"\n\n[[bin]]\nname = \"b\"\n[dependencies]\nname = \"no\"\n";
        assert_eq!(bin_names(manifest), ["a", "b"]);
    }

    #[test]
    fn reads_libfuzzer_output() {
        let done =
            "#65536\tpulse  cov: 10\nDone 1234567 runs in 31 second(s)\nstat::number_of_executed_units: 1234567\n";
        assert_eq!(parse_libfuzzer(done), RunStats { runs: Some(1_234_567), secs: Some(31), artifact: None });
        let crash = "==9== ERROR: libFuzzer: deadly signal\nstat::number_of_executed_units: 42\n\
                     artifact_prefix='fuzz/artifacts/x/'; Test unit written to fuzz/artifacts/x/crash-ab12\n";
        let s = parse_libfuzzer(crash);
        assert_eq!(s.runs, Some(42));
        assert_eq!(s.artifact.as_deref(), Some("fuzz/artifacts/x/crash-ab12"));
    }

    #[test]
    fn a_failure_is_shown_by_its_panic_message() {
        let log = "INFO: seed\nthread '<unnamed>' panicked at src/lib.rs:1:2:\nboom\nstack backtrace:\n   0: x\n";
        assert_eq!(failure_excerpt(log), "thread '<unnamed>' panicked at src/lib.rs:1:2:\nboom");
        assert_eq!(failure_excerpt("a\nb"), "a\nb");
    }
}
