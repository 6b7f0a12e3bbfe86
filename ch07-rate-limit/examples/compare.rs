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
    let table = [
        format!("{header} all |\n{rule}---|"),
        row(&SlidingWindow::new(quota), &traces, &quota),
        row(&TokenBucket::new(quota), &traces, &quota),
        row(&Gcra::new(quota), &traces, &quota),
        row(&LeakyBucket::nodelay(quota), &traces, &quota),
        row(&SlidingLog::new(quota), &traces, &quota),
    ]
    .join("\n");
    println!("{table}");

    let Some(dir) = std::env::args().nth(1) else { return Ok(()) };
    let dir = std::path::Path::new(&dir);
    write(&dir.join("compare.md"), &format!("{table}\n"))?;
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
    write(&dir.join("burst.csv"), &csv)?;
    write(&dir.join("burst.svg"), &svg(&times, &cols, &delayed))?;
    Ok(())
}

fn write(path: &std::path::Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// One row of dots per algorithm along a time axis: green allowed, red
/// refused; the last row is GCRA in delay mode, each request drawn where
/// it is finally sent (orange when it was held).
fn svg(
    times: &[Nanos],
    cols: &[Vec<ch07_rate_limit::algorithm::Decision>],
    delayed: &[ch07_rate_limit::algorithm::Decision],
) -> String {
    let names =
        ["token bucket", "GCRA", "leaky bucket (nginx)", "sliding window", "sliding log (exact)", "GCRA, delay mode"];
    let (left, top, row_h, width) = (170.0, 30.0, 34.0, 560.0);
    let end_ms = 14_000.0;
    let x = |ms: f64| left + ms / end_ms * width;
    let height = top + row_h * names.len() as f64 + 40.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"16\">quota 1/s, burst 5: 12 requests at 1 s, one every 250 ms to 5 s, 6 at 9 s</text>\n",
        w = left + width + 20.0
    );
    for (r, name) in names.iter().enumerate() {
        let y = top + row_h * (r as f64 + 0.5);
        let _ = writeln!(out, "<text x=\"8\" y=\"{:.1}\">{name}</text>", y + 4.0);
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>",
            left + width
        );
        // Requests at the same moment are spread upwards a little, so a
        // burst shows as a column of dots.
        let mut prev = None;
        let mut stack = 0.0;
        for (i, &t) in times.iter().enumerate() {
            stack = if prev == Some(t) { stack + 1.0 } else { 0.0 };
            prev = Some(t);
            let ms = t as f64 / 1e6;
            let (cx, color) = if let Some(col) = cols.get(r) {
                let ok = col.get(i).is_some_and(|d| d.allowed());
                (x(ms), if ok { "#2a9d2a" } else { "#d62728" })
            } else {
                match delayed.get(i).map(|d| d.verdict) {
                    Some(Verdict::Allow) => (x(ms), "#2a9d2a"),
                    Some(Verdict::Delay(d)) => (x(ms + d as f64 / 1e6), "#ff8c00"),
                    _ => (x(ms), "#d62728"),
                }
            };
            // A held request is drawn alone, where it is finally sent.
            let cy = if color == "#ff8c00" { y } else { y - stack * 2.2 };
            let _ =
                writeln!(out, "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"3\" fill=\"{color}\" fill-opacity=\"0.8\"/>");
        }
    }
    let axis_y = top + row_h * names.len() as f64 + 6.0;
    for s in 0..=14 {
        let xs = x(f64::from(s) * 1000.0);
        let _ = writeln!(out, "<text x=\"{xs:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{s}s</text>", axis_y + 10.0);
    }
    for (i, (color, label)) in
        [("#2a9d2a", "allowed"), ("#d62728", "refused"), ("#ff8c00", "held, drawn when it is sent")].iter().enumerate()
    {
        let lx = left + 110.0 * i as f64;
        let ly = axis_y + 28.0;
        let _ = writeln!(out, "<circle cx=\"{lx:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"/>", ly - 4.0);
        let _ = writeln!(out, "<text x=\"{:.1}\" y=\"{ly:.1}\">{label}</text>", lx + 8.0);
    }
    out.push_str("</svg>\n");
    out
}
