//! `cargo xtask bench --picks`: chapter 4's cost of one backend selection
//! against the pool's size, as a chart.
//!
//! Runs the criterion benchmark `ch04-advanced/benches/select.rs` (every
//! algorithm, pools of 3, 30 and 300 backends), reads the median time per
//! pick of each, writes `book/src/figures/ch04/picks.csv` and draws
//! `picks.svg`: time per pick against pool size, both on logarithmic axes,
//! one line per algorithm, so "flat" (constant time) and "rising with
//! slope 1" (linear in the pool) can be told apart at a glance.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use super::limiter::{output, parse_criterion};
use super::plot::{self, Frame, LineChart, Series};

/// Pool sizes the benchmark measures.
const SIZES: [u32; 3] = [3, 30, 300];
/// Line colours, one per algorithm.
const COLOURS: [&str; 8] = ["#1d4ed8", "#c2410c", "#15803d", "#7c3aed", "#0e7490", "#b91c1c", "#64748b", "#a16207"];

/// Runs the benchmark and writes the figures into `figures` (if given).
pub fn run(root: &Path, figures: Option<&Path>) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut bench = Command::new(&cargo);
    bench.current_dir(root).args([
        "bench",
        "-q",
        "-p",
        "ch04-advanced",
        "--bench",
        "select",
        "--",
        "--noplot",
        "--warm-up-time",
        "0.5",
        "--measurement-time",
        "1",
    ]);
    eprintln!("[bench] cargo bench -p ch04-advanced --bench select");
    let text = output(&mut bench)?;
    let picks = parse_picks(&parse_criterion(&text));
    if picks.is_empty() {
        bail!("no pick/<algorithm>/<size> results in:\n{text}");
    }
    println!("cargo xtask bench --picks, {}", super::report::today());
    println!("Time per pick (criterion, median), by pool size:");
    for (alg, times) in &picks {
        let cells: Vec<String> = times.iter().map(|t| t.map_or("-".into(), ns_text)).collect();
        println!("  {alg:<8} {}", cells.join("  "));
    }
    if let Some(dir) = figures {
        std::fs::create_dir_all(dir)?;
        let mut csv = String::from("algorithm,backends,ns_per_pick\n");
        for (alg, times) in &picks {
            for (size, t) in SIZES.iter().zip(times) {
                if let Some(t) = t {
                    let _ = writeln!(csv, "{alg},{size},{t:.1}");
                }
            }
        }
        std::fs::write(dir.join("picks.csv"), csv)?;
        std::fs::write(dir.join("picks.svg"), chart(&picks))?;
        eprintln!("[bench] wrote {}/picks.csv and picks.svg", dir.display());
    }
    Ok(())
}

/// `pick/ALG/SIZE` results by algorithm, in the benchmark's order, with a
/// time for each of [`SIZES`].
fn parse_picks(results: &[(String, f64)]) -> Vec<(String, [Option<f64>; 3])> {
    let mut out: Vec<(String, [Option<f64>; 3])> = Vec::new();
    for (id, ns) in results {
        let mut parts = id.split('/');
        let (Some("pick"), Some(alg), Some(size)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Some(i) = size.parse::<u32>().ok().and_then(|s| SIZES.iter().position(|&x| x == s)) else { continue };
        let at = match out.iter().position(|(a, _)| a == alg) {
            Some(at) => at,
            None => {
                out.push((alg.to_string(), [None; 3]));
                out.len() - 1
            }
        };
        if let Some(slot) = out.get_mut(at).and_then(|(_, t)| t.get_mut(i)) {
            *slot = Some(*ns);
        }
    }
    out
}

fn ns_text(ns: f64) -> String {
    if ns >= 1000.0 { format!("{:.1} µs", ns / 1000.0) } else { format!("{ns:.0} ns") }
}

/// The log-log chart.
fn chart(picks: &[(String, [Option<f64>; 3])]) -> String {
    let frame = Frame { width: 880.0, height: 480.0, left: 90.0, right: 180.0, top: 60.0, bottom: 70.0 };
    let (plot_w, plot_h) = frame.plot();
    // Decades of nanoseconds that hold every value.
    let all: Vec<f64> = picks.iter().flat_map(|(_, t)| t.iter().flatten().copied()).filter(|v| *v > 0.0).collect();
    let lo = all.iter().copied().fold(f64::MAX, f64::min).log10().floor();
    let hi = all.iter().copied().fold(f64::MIN, f64::max).log10().ceil().max(lo + 1.0);
    let x = |size: u32| frame.left + plot_w * (f64::from(size) / 3.0).log10() / 2.0;
    let y = |ns: f64| frame.top + plot_h * (1.0 - (ns.log10() - lo) / (hi - lo));
    let y_ticks = ((lo as i32)..=(hi as i32)).map(|d| 10f64.powi(d)).map(|v| (y(v), ns_text(v))).collect();
    let x_ticks = SIZES.iter().map(|&size| (x(size), size.to_string())).collect();
    let series = picks
        .iter()
        .enumerate()
        .map(|(i, (alg, times))| Series {
            name: alg.as_str(),
            colour: COLOURS.get(i % COLOURS.len()).copied().unwrap_or("#111827"),
            points: SIZES
                .iter()
                .zip(times)
                .filter_map(|(&n, t)| Some((x(n), y((*t)?.max(f64::MIN_POSITIVE)))))
                .collect(),
        })
        .collect();
    plot::svg(&LineChart {
        frame,
        title: "Time per pick against pool size (both axes logarithmic)",
        x_label: "backends in the pool",
        y_label: "time per pick (lower is better)",
        x_ticks,
        y_ticks,
        series,
        footer: format!(
            "cargo xtask bench --picks, {}: criterion medians of benches/select.rs (release, one thread) on a shared 2-core machine. Data: picks.csv.",
            super::report::today()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_grouped_by_algorithm_and_size() {
        let results = vec![
            ("pick/rr/3".to_string(), 13.0),
            ("pick/wrr/3".to_string(), 50.0),
            ("pick/rr/300".to_string(), 10.0),
            ("other/x/3".to_string(), 1.0),
            ("pick/rr/7".to_string(), 1.0),
        ];
        let picks = parse_picks(&results);
        assert_eq!(
            picks,
            vec![("rr".to_string(), [Some(13.0), None, Some(10.0)]), ("wrr".to_string(), [Some(50.0), None, None])]
        );
        let svg = chart(&picks);
        assert!(svg.starts_with("<svg") && svg.contains(">rr</text>") && svg.contains(">wrr</text>"), "{svg}");
    }
}
