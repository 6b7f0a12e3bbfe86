//! What the bench prints and writes: the side-by-side table, the check
//! lines, the targets, the CSV, and hand-written SVG bar charts.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::LbKey;
use super::checks::{HeldResult, IdleResult, PooledMemory};
use super::load::LoadResult;

/// Everything measured for one server of the ladder.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Which server.
    pub key: LbKey,
    /// One load run per connection count, in the order they ran.
    pub runs: Vec<(usize, LoadResult)>,
    /// The many-connections check, when it ran.
    pub held: Option<HeldResult>,
    /// The idle-memory check, when it ran (an error says why it could not).
    pub idle: Option<Result<IdleResult, String>>,
    /// The server's log, named when something failed.
    pub log: PathBuf,
    /// What the backends saw during each measured run (summed over rounds).
    pub backend: Vec<(usize, BackendSeen)>,
    /// For pooled_lb: memory per idle pooled backend connection.
    pub pooled_memory: Option<Result<PooledMemory, String>>,
}

/// What the backends saw during a measured run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendSeen {
    /// Connections they accepted.
    pub accepted: u64,
    /// Requests they served.
    pub requests: u64,
}

impl Measured {
    /// Backend connection reuse at `connections` client connections:
    /// 1 − accepted/requests, over every round (`None`: nothing served).
    pub fn reuse(&self, connections: usize) -> Option<f64> {
        let (accepted, requests) = self
            .backend
            .iter()
            .filter(|(c, _)| *c == connections)
            .fold((0, 0), |(a, r), (_, s)| (a + s.accepted, r + s.requests));
        (requests > 0).then(|| 1.0 - accepted as f64 / requests as f64)
    }

    fn run_at(&self, connections: usize) -> Option<&LoadResult> {
        self.runs.iter().find(|(c, _)| *c == connections).map(|(_, r)| r)
    }
}

/// The table's baseline: nginx with one worker.
const BASELINE: LbKey = LbKey::Nginx;

fn baseline_rps(all: &[Measured], connections: usize) -> Option<f64> {
    let nginx = all.iter().find(|m| m.key == BASELINE)?;
    nginx.runs.iter().find(|(c, _)| *c == connections).map(|(_, r)| r.requests_per_sec)
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

/// The side-by-side table: one row per server and connection count.
pub fn table(all: &[Measured]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>6} {:>11} {:>9} {:>9} {:>8} {:>9} {:>9}",
        "lb", "conns", "req/s", "p50 ms", "p99 ms", "errors", "vs nginx", "reuse %"
    );
    for m in all {
        for (connections, r) in &m.runs {
            let ratio = baseline_rps(all, *connections)
                .filter(|b| *b > 0.0)
                .map_or_else(|| "-".to_string(), |b| format!("{:.2}", r.requests_per_sec / b));
            // Health probes are connections with no request: without a
            // pool they push accepted a hair above requests. Shown as 0.
            let reuse = m.reuse(*connections).map_or_else(|| "-".to_string(), |v| format!("{:.2}", v.max(0.0) * 100.0));
            let _ = writeln!(
                out,
                "{:<22} {:>6} {:>11.0} {:>9} {:>9} {:>8} {:>9} {:>9}",
                m.key.label(),
                connections,
                r.requests_per_sec,
                opt_ms(r.p50_ms),
                opt_ms(r.p99_ms),
                r.errors,
                ratio,
                reuse
            );
        }
    }
    out
}

/// `N connections held, N answered 200, N errors` for every server checked.
pub fn held_lines(all: &[Measured]) -> String {
    let mut out = String::new();
    for m in all {
        let Some(h) = &m.held else { continue };
        let _ = write!(
            out,
            "{:<22} {} connections held, {} answered 200, {} errors (all open after {:.1} s)",
            m.key.label(),
            h.held,
            h.ok,
            h.errors,
            h.open_time.as_secs_f64()
        );
        if h.held < h.target {
            let _ = write!(out, " ({} asked for)", h.target);
        }
        if let Some(e) = &h.first_error {
            let _ = write!(out, "; first error: {e}; see {}", m.log.display());
        }
        out.push('\n');
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One line per server: resident memory before and after, per connection.
pub fn idle_lines(all: &[Measured]) -> String {
    let mut out = String::new();
    for m in all {
        let Some(idle) = &m.idle else { continue };
        let _ = write!(out, "{:<22} ", m.key.label());
        match idle {
            Err(e) => {
                let _ = write!(out, "not measured: {e}");
            }
            Ok(i) => {
                let per = i.per_connection().map_or_else(|| "-".to_string(), |b| format!("{b} bytes"));
                let _ = write!(
                    out,
                    "{per} per idle connection ({} held of {} opened; RSS {} -> {}; {:.1} s)",
                    i.held,
                    i.opened,
                    mib(i.before),
                    mib(i.after),
                    i.took.as_secs_f64()
                );
                if let Some(cap) = m.key.connection_cap() {
                    if i.held < i.opened {
                        let _ = write!(
                            out,
                            "; thread per connection, --max-connections defaults to {cap}: the rest were closed"
                        );
                    }
                } else if i.held < i.opened {
                    let _ = write!(out, "; the server closed {} of them, see {}", i.opened - i.held, m.log.display());
                }
            }
        }
        out.push('\n');
    }
    for m in all {
        let Some(pm) = &m.pooled_memory else { continue };
        let _ = write!(out, "{:<22} ", m.key.label());
        let _ = match pm {
            Err(e) => writeln!(out, "idle pooled backend connection: not measured: {e}"),
            Ok(p) => writeln!(
                out,
                "{} per idle pooled backend connection ({} kept; RSS {} with the pool, {} without, same clients)",
                p.per_connection().map_or_else(|| "-".to_string(), |b| format!("{b} bytes")),
                p.kept,
                mib(p.with_pool),
                mib(p.without_pool)
            ),
        };
    }
    out
}

/// Why a target could not be judged, or its verdict.
fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

/// The chapter 5 targets, judged from this run.
pub fn targets(all: &[Measured], nginx_absent: Option<&str>, held_target: usize, idle_limit: u64) -> String {
    let hp = all.iter().find(|m| m.key == LbKey::Ch05);
    let mut out = String::new();

    let name = "high_perf_lb req/s at 64 conns >= 0.9 x nginx (one worker)";
    let line = match (hp, nginx_absent) {
        (None, _) => "n/a (high_perf_lb was not measured)".to_string(),
        (_, Some(why)) => format!("n/a ({why})"),
        (Some(hp), None) => match (hp.runs.iter().find(|(c, _)| *c == 64), baseline_rps(all, 64)) {
            (Some((_, r)), Some(base)) if base > 0.0 => {
                let ratio = r.requests_per_sec / base;
                format!("{} ({ratio:.2})", verdict(ratio >= 0.9))
            }
            _ => "n/a (no run at 64 connections for both)".to_string(),
        },
    };
    let _ = writeln!(out, "  {name}: {line}");

    let name = format!("high_perf_lb {} concurrent connections without errors", thousands(held_target as f64));
    let line = match hp.map(|m| &m.held) {
        None => "n/a (high_perf_lb was not measured)".to_string(),
        Some(None) => "n/a (check skipped)".to_string(),
        Some(Some(h)) => {
            let pass = h.held == h.target && h.ok == h.target && h.errors == 0;
            format!("{} ({} held, {} answered 200, {} errors)", verdict(pass), h.held, h.ok, h.errors)
        }
    };
    let _ = writeln!(out, "  {name}: {line}");

    let name = format!("high_perf_lb idle memory <= {} KiB per connection", idle_limit / 1024);
    let line = match hp.map(|m| &m.idle) {
        None => "n/a (high_perf_lb was not measured)".to_string(),
        Some(None) => "n/a (check skipped)".to_string(),
        Some(Some(Err(e))) => format!("n/a ({e})"),
        Some(Some(Ok(i))) => match i.per_connection() {
            Some(b) => format!("{} ({b} bytes)", verdict(b <= idle_limit)),
            None => "FAIL (no connection was held)".to_string(),
        },
    };
    let _ = writeln!(out, "  {name}: {line}");
    out.push_str(&pooled_targets(all));
    out.push_str(&limited_targets(all));
    out.push_str(&capstone_targets(all));
    out
}

/// Chapter 10's targets: hot_reload_lb at least 1.10 x nginx keepalive
/// with as many workers (one, and two), p99 no worse; its memory per idle
/// connection no more than nginx's.
pub fn capstone_targets(all: &[Measured]) -> String {
    let mut out = faster_than(all, (LbKey::Capstone, LbKey::NginxKeepalive), 1.10);
    out.push_str(&faster_than(all, (LbKey::Capstone2, LbKey::Nginx2Keepalive), 1.10));
    let idle = |key| all.iter().find(|m| m.key == key).and_then(|m| m.idle.as_ref()?.as_ref().ok()?.per_connection());
    let ours = idle(LbKey::Capstone);
    let theirs = idle(LbKey::NginxKeepalive).or_else(|| idle(LbKey::Nginx));
    let line = match (ours, theirs) {
        (Some(o), Some(n)) => format!("{} ({o} vs {n} bytes)", verdict(o <= n)),
        _ => "n/a (hot_reload_lb and nginx were not both measured)".to_string(),
    };
    let _ = writeln!(out, "  hot_reload_lb idle memory per connection <= nginx's: {line}");
    out
}

/// At each connection count `ours` ran at: its req/s at least `min` x
/// `base`'s, and its p99 no worse.
fn faster_than(all: &[Measured], (ours, base): (LbKey, LbKey), min: f64) -> String {
    let mut out = String::new();
    let find = |key| all.iter().find(|m| m.key == key);
    let (ours_m, base_m) = (find(ours), find(base));
    let mut counts: Vec<usize> = ours_m.map(|m| m.runs.iter().map(|(c, _)| *c).collect()).unwrap_or_default();
    counts.dedup();
    for c in &counts {
        let name = format!("{} req/s at {c} conns >= {min:.2} x {}, p99 no worse", ours.label(), base.label());
        let line = match (ours_m.and_then(|m| m.run_at(*c)), base_m.and_then(|m| m.run_at(*c))) {
            (Some(p), Some(n)) if n.requests_per_sec > 0.0 => {
                let ratio = p.requests_per_sec / n.requests_per_sec;
                let p99_ok = match (p.p99_ms, n.p99_ms) {
                    (Some(a), Some(b)) => a <= b,
                    _ => false,
                };
                let p99 = format!("p99 {} vs {} ms", opt_ms(p.p99_ms), opt_ms(n.p99_ms));
                format!("{} ({ratio:.2}; {p99})", verdict(ratio >= min && p99_ok))
            }
            _ => format!("n/a ({} and {} were not both measured)", ours.label(), base.label()),
        };
        let _ = writeln!(out, "  {name}: {line}");
    }
    if counts.is_empty() {
        let _ = writeln!(out, "  {} vs {}: n/a ({} was not measured)", ours.label(), base.label(), ours.label());
    }
    out
}

/// Chapter 7's target: a limit that never refuses costs at most 5 % of
/// pooled_lb's requests per second; and chapter 8's: counting and timing
/// every request costs at most 3 % of rate_limited_lb's.
pub fn limited_targets(all: &[Measured]) -> String {
    let mut out = ratio_targets(all, (LbKey::Limited, LbKey::Pooled), 0.95, "a limit that never refuses");
    out.push_str(&ratio_targets(all, (LbKey::Metrics, LbKey::Limited), 0.97, "every request counted and timed"));
    out
}

/// At each connection count `ours` was run at: its req/s at least `min` ×
/// those of `base`.
fn ratio_targets(all: &[Measured], (ours, base): (LbKey, LbKey), min: f64, what: &str) -> String {
    let mut out = String::new();
    let find = |key| all.iter().find(|m| m.key == key);
    let (ours_m, base_m) = (find(ours), find(base));
    let name_of = |k: LbKey| k.label().split_once(' ').map_or(k.label(), |(_, bin)| bin);
    let counts: Vec<usize> = ours_m.map(|m| m.runs.iter().map(|(c, _)| *c).collect()).unwrap_or_default();
    for c in &counts {
        let name = format!("{} req/s at {c} conns >= {min} x {} ({what})", name_of(ours), name_of(base));
        let line = match (ours_m.and_then(|m| m.run_at(*c)), base_m.and_then(|m| m.run_at(*c))) {
            (Some(o), Some(b)) if b.requests_per_sec > 0.0 => {
                let ratio = o.requests_per_sec / b.requests_per_sec;
                format!("{} ({ratio:.3})", verdict(ratio >= min))
            }
            _ => format!("n/a ({} and {} were not both measured)", name_of(ours), name_of(base)),
        };
        let _ = writeln!(out, "  {name}: {line}");
    }
    out
}

/// Chapter 6's targets: pooled_lb against nginx with upstream keep-alive,
/// its backend connection reuse, and the direct row's headroom.
pub fn pooled_targets(all: &[Measured]) -> String {
    let mut out = String::new();
    let find = |key| all.iter().find(|m| m.key == key);
    let pooled = find(LbKey::Pooled);
    let mut counts: Vec<usize> = pooled.map(|m| m.runs.iter().map(|(c, _)| *c).collect()).unwrap_or_default();
    counts.dedup();
    out.push_str(&faster_than(all, (LbKey::Pooled, LbKey::NginxKeepalive), 1.0));
    for c in &counts {
        let name = format!("pooled_lb backend connection reuse at {c} conns >= 99.9 %");
        let line = match pooled.and_then(|m| m.reuse(*c)) {
            Some(r) => format!("{} ({:.3} %)", verdict(r >= 0.999), r * 100.0),
            None => "n/a (the backends' counters could not be read)".to_string(),
        };
        let _ = writeln!(out, "  {name}: {line}");
    }
    for m in all.iter().filter(|m| m.key.pools() && m.key != LbKey::Pooled) {
        let reuse: Vec<String> =
            m.runs.iter().filter_map(|(c, _)| m.reuse(*c).map(|r| format!("{:.3} % at {c}", r * 100.0))).collect();
        if !reuse.is_empty() {
            let _ =
                writeln!(out, "  {} backend connection reuse (for comparison): {}", m.key.label(), reuse.join(", "));
        }
    }
    if let Some(direct) = find(LbKey::Direct) {
        let best = all
            .iter()
            .filter(|m| m.key != LbKey::Direct)
            .flat_map(|m| m.runs.iter().map(move |(_, r)| (m.key, r.requests_per_sec)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let top = direct.runs.iter().map(|(_, r)| r.requests_per_sec).fold(0.0, f64::max);
        let line = match best {
            Some((key, rps)) if rps > 0.0 => {
                let ratio = top / rps;
                format!("{} ({ratio:.2} x {}'s best)", verdict(ratio >= 2.0), key.label())
            }
            _ => "n/a (no balancer was measured)".to_string(),
        };
        let _ = writeln!(out, "  direct (one backend, no balancer) >= 2 x the best balancer: {line}");
    }
    out
}

/// The CSV the book's plots are made from.
pub fn csv(all: &[Measured], generator: &str) -> String {
    let mut out = String::from("lb,connections,requests_per_sec,p50_ms,p99_ms,errors,generator,backend_reuse\n");
    let opt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.3}"));
    for m in all {
        for (connections, r) in &m.runs {
            let _ = writeln!(
                out,
                "{},{connections},{:.1},{},{},{},{},{}",
                csv_field(m.key.label()),
                r.requests_per_sec,
                opt(r.p50_ms),
                opt(r.p99_ms),
                r.errors,
                csv_field(generator),
                m.reuse(*connections).map_or_else(String::new, |v| format!("{v:.5}"))
            );
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// `12345.6` as `12,346`.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 && digits != "0" { format!("-{out}") } else { out }
}

/// A grouped horizontal bar chart: one group per server, one bar per
/// connection count.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Printed at the top.
    pub title: String,
    /// Under the value axis.
    pub axis: String,
    /// What the groups are (the label of the axis they stand on).
    pub rows: String,
    /// The legend: one name per bar of a group.
    pub series: Vec<String>,
    /// Group label and one value per series (`None`: not measured).
    pub groups: Vec<(String, Vec<Option<f64>>)>,
    /// Decimals of the values printed on the bars.
    pub decimals: usize,
    /// Small print under the chart.
    pub footnote: Vec<String>,
}

/// Bar colours (the book's figure palette), one per series.
const COLOURS: [&str; 5] = ["#1d4ed8", "#c2410c", "#15803d", "#7c3aed", "#0e7490"];

/// The two charts of a run: requests per second and p99 latency.
pub fn ladder_charts(all: &[Measured], footnote: &[String]) -> (Chart, Chart) {
    let mut series: Vec<usize> = Vec::new();
    for m in all {
        for (c, _) in &m.runs {
            if !series.contains(c) {
                series.push(*c);
            }
        }
    }
    let groups = |value: fn(&LoadResult) -> Option<f64>| -> Vec<(String, Vec<Option<f64>>)> {
        all.iter()
            .map(|m| {
                let values =
                    series.iter().map(|c| m.runs.iter().find(|(rc, _)| rc == c).and_then(|(_, r)| value(r))).collect();
                (m.key.label().to_string(), values)
            })
            .collect()
    };
    let legend: Vec<String> = series.iter().map(|c| format!("{} connections", thousands(*c as f64))).collect();
    let rps = Chart {
        rows: "server".into(),
        title: "Requests per second, one run of cargo xtask bench".into(),
        axis: "requests per second (higher is better)".into(),
        series: legend.clone(),
        groups: groups(|r| Some(r.requests_per_sec)),
        decimals: 0,
        footnote: footnote.to_vec(),
    };
    let p99 = Chart {
        rows: "server".into(),
        title: "p99 latency, one run of cargo xtask bench".into(),
        axis: "99th percentile latency in milliseconds (lower is better)".into(),
        series: legend,
        groups: groups(|r| r.p99_ms),
        decimals: 2,
        footnote: footnote.to_vec(),
    };
    (rps, p99)
}

/// Escapes text for SVG.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A value with `decimals` decimals and thousands separators.
fn number(v: f64, decimals: usize) -> String {
    if decimals == 0 {
        return thousands(v);
    }
    let whole = v.trunc();
    let text = format!("{:.*}", decimals, v.abs().fract());
    // "0.25" -> ".25"; a fraction that rounds up to "1.00" carries.
    let (whole, frac) = match text.strip_prefix("1.") {
        Some(f) => (whole + v.signum(), f.to_string()),
        None => (whole, text.trim_start_matches('0').trim_start_matches('.').to_string()),
    };
    format!("{}.{frac}", thousands(whole))
}

/// A round step for about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// The chart as SVG text, for the mdBook light theme (a white background,
/// so it stays readable in the dark themes too).
pub fn svg(chart: &Chart) -> String {
    const WIDTH: f64 = 880.0;
    const LEFT: f64 = 190.0;
    const RIGHT: f64 = 110.0;
    const TOP: f64 = 78.0;
    const BAR: f64 = 20.0;
    const BAR_GAP: f64 = 4.0;
    const GROUP_GAP: f64 = 18.0;
    const PAD: f64 = 10.0;

    let series = chart.series.len().max(1) as f64;
    let groups = chart.groups.len().max(1) as f64;
    let group_h = series * BAR + (series - 1.0) * BAR_GAP;
    let plot_h = groups * group_h + (groups - 1.0) * GROUP_GAP + 2.0 * PAD;
    let plot_w = WIDTH - LEFT - RIGHT;
    let axis_y = TOP + plot_h;
    let height = axis_y + 56.0 + 16.0 * chart.footnote.len() as f64;

    let max = chart.groups.iter().flat_map(|(_, v)| v.iter().flatten()).fold(0.0f64, |a, &b| a.max(b));
    let (step, top) = if max > 0.0 && max.is_finite() {
        let step = tick_step(max);
        (step, (max / step).ceil() * step)
    } else {
        (1.0, 1.0)
    };
    let tick_decimals = if step >= 1.0 { 0 } else { (-step.log10()).ceil() as usize };
    let x = |v: f64| LEFT + plot_w * (v / top).clamp(0.0, 1.0);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, "  <title>{}</title>", xml(&chart.title));
    let _ = writeln!(s, r##"  <rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"  <text x="{}" y="28" text-anchor="middle" font-size="17" font-weight="bold" fill="#111827">{}</text>"##,
        WIDTH / 2.0,
        xml(&chart.title)
    );
    // Legend: each name after the one before, by its length (about 7 px a character).
    let mut lx = LEFT;
    for (i, name) in chart.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(s, r#"  <rect x="{lx}" y="44" width="14" height="14" fill="{colour}"/>"#);
        let _ = writeln!(s, r##"  <text x="{}" y="56" fill="#111827">{}</text>"##, lx + 20.0, xml(name));
        lx += (20.0 + 7.0 * name.chars().count() as f64 + 24.0).max(180.0);
    }
    // Grid and ticks.
    let ticks = (top / step).round() as usize;
    for t in 0..=ticks {
        let v = step * t as f64;
        let tx = x(v);
        let _ = writeln!(
            s,
            r##"  <line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{axis_y}" stroke="#e5e7eb" stroke-width="1"/>"##
        );
        let _ = writeln!(
            s,
            r##"  <text x="{tx:.1}" y="{}" text-anchor="middle" font-size="12" fill="#4b5563">{}</text>"##,
            axis_y + 18.0,
            number(v, tick_decimals)
        );
    }
    let _ = writeln!(
        s,
        r##"  <line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{axis_y}" stroke="#111827" stroke-width="1.5"/>"##
    );
    let _ = writeln!(
        s,
        r##"  <line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#111827" stroke-width="1.5"/>"##,
        LEFT + plot_w
    );
    // Axis labels.
    let _ = writeln!(
        s,
        r##"  <text x="{}" y="{}" text-anchor="middle" fill="#111827">{}</text>"##,
        LEFT + plot_w / 2.0,
        axis_y + 40.0,
        xml(&chart.axis)
    );
    let _ = writeln!(
        s,
        r##"  <text transform="rotate(-90)" x="{}" y="18" text-anchor="middle" fill="#111827">{}</text>"##,
        -(TOP + plot_h / 2.0),
        xml(&chart.rows)
    );
    // Bars.
    for (g, (label, values)) in chart.groups.iter().enumerate() {
        let gy = TOP + PAD + g as f64 * (group_h + GROUP_GAP);
        let _ = writeln!(
            s,
            r##"  <text x="{}" y="{:.1}" text-anchor="end" font-weight="bold" fill="#111827">{}</text>"##,
            LEFT - 10.0,
            gy + group_h / 2.0 + 5.0,
            xml(label)
        );
        for (i, value) in values.iter().enumerate() {
            let by = gy + i as f64 * (BAR + BAR_GAP);
            let colour = COLOURS[i % COLOURS.len()];
            match value {
                Some(v) => {
                    let w = (x(*v) - LEFT).max(1.0);
                    let _ = writeln!(
                        s,
                        r#"  <rect x="{LEFT}" y="{by:.1}" width="{w:.1}" height="{BAR}" fill="{colour}"/>"#
                    );
                    let _ = writeln!(
                        s,
                        r##"  <text x="{:.1}" y="{:.1}" font-size="12" fill="#111827">{}</text>"##,
                        LEFT + w + 6.0,
                        by + BAR / 2.0 + 4.0,
                        number(*v, chart.decimals)
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        r##"  <text x="{:.1}" y="{:.1}" font-size="12" fill="#4b5563">n/a</text>"##,
                        LEFT + 6.0,
                        by + BAR / 2.0 + 4.0
                    );
                }
            }
        }
    }
    // Footnote.
    for (i, line) in chart.footnote.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"  <text x="12" y="{:.1}" font-size="11" fill="#4b5563">{}</text>"##,
            axis_y + 62.0 + 16.0 * i as f64,
            xml(line)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
pub fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    date_from_unix(secs)
}

/// A Unix time's date (UTC) as `YYYY-MM-DD` (chapter 1's `date`).
pub fn date_from_unix(secs: u64) -> String {
    let (year, month, day) = ch01_fundamentals::date::civil_from_days((secs / 86_400) as i64);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn result(rps: f64, p99: Option<f64>, errors: u64) -> LoadResult {
        LoadResult { requests_per_sec: rps, p50_ms: p99.map(|p| p / 2.0), p99_ms: p99, errors }
    }

    fn sample() -> Vec<Measured> {
        vec![
            Measured {
                key: LbKey::Ch03,
                runs: vec![(64, result(9_000.0, Some(12.5), 0)), (1000, result(7_000.0, Some(250.0), 3))],
                held: None,
                idle: Some(Ok(IdleResult {
                    opened: 5000,
                    held: 1024,
                    before: 4 << 20,
                    after: 24 << 20,
                    took: Duration::from_secs(3),
                })),
                log: PathBuf::from("/tmp/x/load_balancer.log"),
                backend: Vec::new(),
                pooled_memory: None,
            },
            Measured {
                key: LbKey::Ch05,
                runs: vec![(64, result(19_000.0, Some(4.25), 0)), (1000, result(18_000.0, None, 0))],
                held: Some(HeldResult {
                    target: 10_000,
                    held: 10_000,
                    ok: 10_000,
                    errors: 0,
                    first_error: None,
                    open_time: Duration::from_millis(1500),
                }),
                idle: Some(Ok(IdleResult {
                    opened: 5000,
                    held: 5000,
                    before: 2 << 20,
                    after: (2 << 20) + 5000 * 900,
                    took: Duration::from_secs(2),
                })),
                log: PathBuf::from("/tmp/x/high_perf_lb.log"),
                backend: vec![(64, BackendSeen { accepted: 190_000, requests: 190_000 })],
                pooled_memory: None,
            },
            Measured {
                key: LbKey::Nginx,
                runs: vec![(64, result(20_000.0, Some(3.0), 0)), (1000, result(20_000.0, Some(40.0), 0))],
                held: Some(HeldResult {
                    target: 10_000,
                    held: 10_000,
                    ok: 9_000,
                    errors: 1_000,
                    first_error: Some("read: reset".into()),
                    open_time: Duration::from_secs(2),
                }),
                idle: Some(Err("no worker process found".into())),
                log: PathBuf::from("/tmp/x/nginx.log"),
                backend: Vec::new(),
                pooled_memory: Some(Ok(PooledMemory { kept: 1000, with_pool: 10 << 20, without_pool: 9 << 20 })),
            },
        ]
    }

    #[test]
    fn table_and_lines_show_ratios_and_checks() {
        let all = sample();
        let t = table(&all);
        assert!(t.lines().next().unwrap().contains("vs nginx"));
        let ch05 = t.lines().find(|l| l.starts_with("ch05 high_perf_lb") && l.contains(" 64 ")).unwrap();
        assert!(ch05.trim_end().ends_with(" 0.95      0.00"), "vs nginx, then the backends' reuse: {ch05}");
        let held = held_lines(&all);
        assert!(
            held.contains("10000 connections held, 10000 answered 200, 0 errors (all open after 1.5 s)\n"),
            "{held}"
        );
        assert!(
            held.contains("1000 errors (all open after 2.0 s); first error: read: reset; see /tmp/x/nginx.log"),
            "{held}"
        );
        let idle = idle_lines(&all);
        assert!(idle.contains("900 bytes per idle connection"), "{idle}");
        assert!(idle.contains("1048 bytes per idle pooled backend connection (1000 kept; RSS"), "{idle}");
        assert!(idle.contains("--max-connections defaults to 1024"), "{idle}");
        assert!(idle.contains("not measured: no worker process found"), "{idle}");
        let targets = targets(&all, None, 10_000, 2048);
        assert!(targets.contains(">= 0.9 x nginx (one worker): PASS (0.95)"), "{targets}");
        assert!(targets.contains("10,000 concurrent connections without errors: PASS"), "{targets}");
        assert!(targets.contains("<= 2 KiB per connection: PASS (900 bytes)"), "{targets}");
        let absent = super::targets(&all[..2], Some("nginx is not installed"), 10_000, 2048);
        assert!(absent.contains("n/a (nginx is not installed)"), "{absent}");
    }

    #[test]
    fn pooled_targets_compare_with_nginx_keepalive_and_report_reuse() {
        let run = |rps, p99| vec![(64, result(rps, Some(p99), 0))];
        let seen = |accepted, requests| vec![(64, BackendSeen { accepted, requests })];
        let m = |key, runs, backend| Measured {
            key,
            runs,
            held: None,
            idle: None,
            log: PathBuf::new(),
            backend,
            pooled_memory: None,
        };
        let all = vec![
            m(LbKey::Pooled, run(90_000.0, 2.0), seen(30, 900_000)),
            m(LbKey::NginxKeepalive, run(80_000.0, 3.0), seen(800, 800_000)),
            m(LbKey::Direct, run(200_000.0, 1.0), seen(64, 2_000_000)),
        ];
        let t = pooled_targets(&all);
        assert!(t.contains(">= 1.00 x nginx keepalive, p99 no worse: PASS (1.12; p99 2.00 vs 3.00 ms)"), "{t}");
        assert!(t.contains("reuse at 64 conns >= 99.9 %: PASS (99.997 %)"), "{t}");
        assert!(t.contains("nginx keepalive backend connection reuse (for comparison): 99.900 % at 64"), "{t}");
        assert!(t.contains("2 x the best balancer: PASS (2.22 x ch06 pooled_lb's best)"), "{t}");
        let slower = vec![m(LbKey::Pooled, run(70_000.0, 2.0), seen(2_000, 700_000)), all[1].clone()];
        let t = pooled_targets(&slower);
        assert!(t.contains("FAIL (0.88; p99 2.00 vs 3.00 ms)") && t.contains("FAIL (99.714 %)"), "{t}");
    }

    #[test]
    fn capstone_targets_compare_each_worker_count_with_nginx_and_memory() {
        let run = |rps, p99| vec![(64, result(rps, Some(p99), 0))];
        let idle = |after| Some(Ok(IdleResult { opened: 1000, held: 1000, before: 0, after, took: Duration::ZERO }));
        let m = |key, runs, idle| Measured {
            key,
            runs,
            held: None,
            idle,
            log: PathBuf::new(),
            backend: Vec::new(),
            pooled_memory: None,
        };
        let all = vec![
            m(LbKey::Capstone, run(90_000.0, 2.0), idle(500_000)),
            m(LbKey::Capstone2, run(100_000.0, 4.0), None),
            m(LbKey::NginxKeepalive, run(80_000.0, 3.0), idle(600_000)),
            m(LbKey::Nginx2Keepalive, run(95_000.0, 3.0), None),
        ];
        let t = capstone_targets(&all);
        assert!(
            t.contains("ch10 hot_reload_lb req/s at 64 conns >= 1.10 x nginx keepalive, p99 no worse: PASS (1.12;"),
            "{t}"
        );
        assert!(
            t.contains(
                "ch10 hot_reload_lb x2 req/s at 64 conns >= 1.10 x nginx keepalive x2, p99 no worse: FAIL (1.05;"
            ),
            "{t}"
        );
        assert!(t.contains("idle memory per connection <= nginx's: PASS (500 vs 600 bytes)"), "{t}");
    }

    #[test]
    fn csv_has_a_header_and_a_row_per_run() {
        let text = csv(&sample(), "wrk");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "lb,connections,requests_per_sec,p50_ms,p99_ms,errors,generator,backend_reuse");
        assert_eq!(lines.len(), 1 + 6);
        assert_eq!(lines[1], "ch03 load_balancer,64,9000.0,6.250,12.500,0,wrk,");
        assert_eq!(lines[3], "ch05 high_perf_lb,64,19000.0,2.125,4.250,0,wrk,0.00000");
        assert_eq!(lines[4], "ch05 high_perf_lb,1000,18000.0,,,0,wrk,");
        assert!(lines.iter().all(|l| l.split(',').count() == 8));
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn svg_is_well_formed_and_names_everything() {
        let all = sample();
        let footnote = vec!["2 CPU cores, 2026-01-02".to_string()];
        let (rps, p99) = ladder_charts(&all, &footnote);
        for chart in [&rps, &p99] {
            let text = svg(chart);
            assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
            assert!(text.trim_end().ends_with("</svg>"));
            for m in &all {
                assert!(text.contains(&format!(">{}</text>", m.key.label())), "{}", m.key.label());
            }
            assert!(text.contains("64 connections") && text.contains("1,000 connections"));
            assert!(text.contains("2 CPU cores, 2026-01-02"));
            // Every element opened is closed: tags balance.
            let opened = text.matches("<text").count();
            assert_eq!(opened, text.matches("</text>").count());
            assert_eq!(text.matches('<').count(), text.matches('>').count());
        }
        let rps = svg(&rps);
        assert!(rps.contains("Requests per second, one run of cargo xtask bench"));
        assert!(rps.contains(">19,000</text>"));
        assert!(svg(&p99).contains(">n/a</text>"));
        assert!(xml("a<b&\"c\"") == "a&lt;b&amp;&quot;c&quot;");
    }

    #[test]
    fn numbers_ticks_and_dates() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.0), "0");
        assert_eq!(number(1234.567, 2), "1,234.57");
        assert_eq!(number(0.25, 2), "0.25");
        assert_eq!(number(2.999, 2), "3.00");
        for (max, step) in [(19_000.0, 5_000.0), (250.0, 50.0), (0.9, 0.2), (7.0, 2.0)] {
            assert!((tick_step(max) - step).abs() < 1e-9 * step, "{max} -> {}", tick_step(max));
        }
        assert_eq!(date_from_unix(0), "1970-01-01");
        assert_eq!(date_from_unix(951_782_400), "2000-02-29");
        assert_eq!(date_from_unix(1_700_000_000), "2023-11-14");
        assert_eq!(date_from_unix(4_102_444_800), "2100-01-01");
    }
}
