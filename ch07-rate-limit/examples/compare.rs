//! Each algorithm against the exact sliding log on generated traffic,
//! and each over one burst, for chapter 7's table and figure:
//! `cargo run --release -p ch07-rate-limit --example compare [CSV_DIR]`.
//!
//! Prints a table of disagreements (requests allowed that the log refused,
//! and refused that it allowed); with CSV_DIR, also writes `burst.csv`:
//! every algorithm's verdict on one scripted burst, one row per request.

use std::fmt::Write as _;

use ch07_rate_limit::algorithm::trace::{Disagreement, decide_all, workload};
use ch07_rate_limit::algorithm::{Algorithm, Gcra, LeakyBucket, SlidingLog, SlidingWindow, TokenBucket, Verdict};
use ch07_rate_limit::clock::{Nanos, SECOND};
use ch07_rate_limit::quota::Quota;

fn row<A: Algorithm>(alg: &A, traces: &[(String, Vec<Nanos>)], quota: &Quota) -> String {
    let mut cells = format!("| {} |", alg.name());
    let mut total = Disagreement::default();
    for (_, times) in traces {
        let d = Disagreement::against_rule(times, &decide_all(alg, times), quota.burst as usize, quota.window());
        total.add(d);
        let _ = write!(cells, " {:.2} % ({} / {}) |", d.percent(), d.wrongly_allowed, d.wrongly_limited);
    }
    let _ = write!(cells, " {:.2} % |", total.percent());
    cells
}

fn main() -> Result<(), String> {
    let quota = Quota::new(10.0, 20).map_err(|e| e.to_string())?;
    let traces = workload(quota.rate, 3600.0);
    println!(
        "quota {quota}: the exact reference allows at most {} in any {} s",
        quota.burst,
        quota.window() as f64 / 1e9
    );
    println!("one simulated hour per column; cells: decisions the exact rule, applied to the requests");
    println!("the algorithm let through so far, would have made differently (wrongly allowed / wrongly limited)\n");
    let mut header = "| algorithm |".to_string();
    let mut rule = "|---|".to_string();
    for (name, times) in &traces {
        let _ = write!(header, " {name} ({} req) |", times.len());
        rule.push_str("---|");
    }
    println!("{header} all |\n{rule}---|");
    println!("{}", row(&SlidingWindow::new(quota), &traces, &quota));
    println!("{}", row(&TokenBucket::new(quota), &traces, &quota));
    println!("{}", row(&Gcra::new(quota), &traces, &quota));
    println!("{}", row(&LeakyBucket::nodelay(quota), &traces, &quota));
    println!("{}", row(&SlidingLog::new(quota), &traces, &quota));

    let Some(dir) = std::env::args().nth(1) else { return Ok(()) };
    // One burst, the same for all: quota 1/s burst 5; 12 requests at once,
    // then one every 250 ms for 4 s, then a pause, then 6 at once.
    let q = Quota::new(1.0, 5).map_err(|e| e.to_string())?;
    let mut times: Vec<Nanos> = vec![SECOND; 12];
    times.extend((1..=16).map(|i| SECOND + i * SECOND / 4));
    times.extend(std::iter::repeat_n(9 * SECOND, 6));
    let mut csv = "t_ms,token_bucket,gcra,leaky_bucket,sliding_window,sliding_log,gcra_delay_ms\n".to_string();
    let cols = [
        decide_all(&TokenBucket::new(q), &times),
        decide_all(&Gcra::new(q), &times),
        decide_all(&LeakyBucket::nodelay(q), &times),
        decide_all(&SlidingWindow::new(q), &times),
        decide_all(&SlidingLog::new(q), &times),
    ];
    let delayed = decide_all(&Gcra::delaying(q, 0), &times);
    for (i, t) in times.iter().enumerate() {
        let _ = write!(csv, "{}", t / 1_000_000);
        for col in &cols {
            let ok = col.get(i).is_some_and(|d| d.allowed());
            let _ = write!(csv, ",{}", u8::from(ok));
        }
        let delay = match delayed.get(i).map(|d| d.verdict) {
            Some(Verdict::Allow) => "0".to_string(),
            Some(Verdict::Delay(d)) => (d / 1_000_000).to_string(),
            _ => "refused".to_string(),
        };
        let _ = writeln!(csv, ",{delay}");
    }
    let path = std::path::Path::new(&dir).join("burst.csv");
    std::fs::write(&path, csv).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}
