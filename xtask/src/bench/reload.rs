//! `cargo xtask bench --reload`: chapter 10's reload torture test.
//!
//! `hot_reload_lb` in front of four backends, under 64 keep-alive
//! connections (wrk, or the built-in generator) and a client that opens a
//! new connection for every request. Every 100 ms the configuration file
//! is rewritten and the balancer sent SIGHUP: valid files with different
//! backend sets, alternating with broken ones. After each valid reload a
//! probe client asks, on new connections, until an answer carries the new
//! generation (`X-LB-Config-Gen`): the time from the signal to that answer
//! is the reload's delay as a client sees it. The balancer's own figure,
//! from the signal to its loop serving with the new set, comes from its
//! `lb_config_swap_seconds`.
//!
//! The pass line: no request fails (wrk's socket errors and non-2xx
//! answers, the new-connection client's errors), every broken file is
//! refused and every good one applied, after the last good reload only
//! its backends answer, and the p99 from signal to serving is at most 5 ms.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::load::{Generator, LoadResult};
use super::report::{Chart, svg};
use super::servers::{Server, find_program, free_port, localhost};

/// Keep-alive connections of the load.
const CONNECTIONS: usize = 64;
/// Time between two reloads.
const EVERY: Duration = Duration::from_millis(100);
/// The p99 target from signal to serving.
const TARGET: Duration = Duration::from_millis(5);
/// Longest a probe waits for a reload to show.
const PROBE_LIMIT: Duration = Duration::from_secs(2);
/// Backends, named r1 to r4.
const BACKENDS: usize = 4;

/// One reload as measured.
#[derive(Debug, Clone, Copy)]
struct Reload {
    /// Seconds since the load started.
    at: f64,
    /// Whether the file was a good one.
    valid: bool,
    /// Signal to the first answer with the new generation (good files).
    seen: Option<Duration>,
}

/// A configuration of `set` (indexes into `backends`) on `port`.
fn config(port: u16, admin: u16, backends: &[SocketAddr], set: &[usize]) -> String {
    let mut text = format!("listen: {{port: {port}}}\nalgorithm: round-robin\nbackends:\n");
    for &i in set {
        if let Some(b) = backends.get(i) {
            text.push_str(&format!("  - \"{b}\"\n"));
        }
    }
    text.push_str(&format!(
        "health_check: {{enabled: false}}\npool: {{max_size: 64}}\nmetrics: {{enabled: true, port: {admin}}}\n"
    ));
    text
}

/// A file with a mistake: refused, and the running set stays.
const BROKEN: &str = "backends:\n  - host: 127.0.0.1\n    port: 0\n";

/// One GET on a new connection: the status, the generation header and
/// the body.
fn probe(addr: SocketAddr) -> Result<(u16, Option<u64>, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("no complete head")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status")?;
    let generation = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-lb-config-gen").then(|| value.trim().parse().ok())?
    });
    Ok((status, generation, body.to_string()))
}

/// A metric's value from a `/metrics` page.
fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn get_text(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

/// The percentile `q` of `values` (nearest rank).
fn percentile(values: &[Duration], q: f64) -> Option<Duration> {
    let mut v = values.to_vec();
    v.sort();
    let rank = ((v.len() as f64) * q).ceil().max(1.0) as usize;
    v.get(rank.min(v.len()).checked_sub(1)?).copied()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// One upgrade as measured.
#[derive(Debug, Clone, Copy)]
struct Upgrade {
    /// Seconds since the load started.
    at: f64,
    /// From `POST /upgrade` to its answer: the new process serves.
    answered: Duration,
    /// From the answer to the old process gone (drained and exited).
    drained: Option<Duration>,
}

/// Upgrades through the admin listener; the new process's pid and how
/// long the answer took.
fn upgrade(admin: SocketAddr) -> Result<(u32, Duration)> {
    let asked = Instant::now();
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.write_all(b"POST /upgrade HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let took = asked.elapsed();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // "upgraded: process N serves; ..."
    let pid = body.strip_prefix("upgraded: process ").and_then(|r| r.split_whitespace().next()?.parse().ok());
    let pid = pid.with_context(|| format!("the upgrade failed: {}", body.trim()))?;
    Ok((pid, took))
}

/// The larger of two figures either of which may be missing.
fn worst(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Whether process `pid` is gone (or a zombie: it has exited, not yet
/// reaped by its parent).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits (up to 40 s) for `pid` to be gone; how long it took.
fn wait_gone(pid: u32) -> Option<Duration> {
    let since = Instant::now();
    while since.elapsed() < Duration::from_secs(40) {
        if gone(pid) {
            return Some(since.elapsed());
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// What one process counted before it was upgraded away: reloads
/// applied and refused, and its swap p99 and largest.
fn counted(admin: SocketAddr) -> Result<(usize, usize, Option<f64>, Option<f64>)> {
    let page = get_text(admin, "/metrics")?;
    let applied = metric(&page, "lb_config_reloads_total{result=\"applied\"}").unwrap_or(0.0) as usize;
    let invalid = metric(&page, "lb_config_reloads_total{result=\"invalid\"}").unwrap_or(0.0) as usize;
    let swap = |p: &str| metric(&page, &format!("lb_config_swap_seconds{{percentile=\"{p}\"}}"));
    Ok((applied, invalid, swap("99"), swap("100")))
}

/// Runs the torture test for `secs`, with an upgrade every `upgrades` if
/// given and the balancer's `--workers` if given; writes its figures to
/// `figures` if given.
pub fn run(
    bin_dir: &Path,
    tmp: &Path,
    secs: u64,
    (upgrades, workers): (Option<Duration>, Option<u16>),
    figures: Option<&Path>,
) -> Result<bool> {
    let backend_bin = bin_dir.join("simple_http_backend");
    let mut backends = Vec::new();
    for i in 1..=BACKENDS {
        let port = free_port()?;
        let name = format!("r{i}");
        let args: Vec<String> = ["-p", &port.to_string(), "-n", &name].iter().map(|s| s.to_string()).collect();
        let mut server = Server::spawn(&name, &backend_bin, &args, localhost(port), tmp.join(format!("{name}.log")))?;
        server.wait_ready()?;
        backends.push(server);
    }
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    // Sets that differ at every good reload: each backend leaves and comes back.
    let sets: [&[usize]; 4] = [&[0, 1, 2], &[1, 2, 3], &[2, 3, 0], &[3, 0, 1]];
    let (port, admin_port) = (free_port()?, free_port()?);
    let file = tmp.join("reload.yaml");
    std::fs::write(&file, config(port, admin_port, &addrs, sets[0]))?;
    let mut args: Vec<String> =
        ["-c", &file.display().to_string(), "--generation-header"].iter().map(|s| s.to_string()).collect();
    if let Some(n) = workers {
        args.extend(["--workers".to_string(), n.to_string()]);
    }
    let mut lb =
        Server::spawn("hot_reload_lb", &bin_dir.join("hot_reload_lb"), &args, localhost(port), tmp.join("lb.log"))?;
    lb.wait_ready()?;
    let (addr, admin) = (lb.addr, localhost(admin_port));
    let mut pid = nix::unistd::Pid::from_raw(i32::try_from(lb.pid()).context("pid")?);

    eprintln!(
        "[bench] reload: {CONNECTIONS} keep-alive connections and a new-connection client for {secs} s, a reload every {} ms{}",
        EVERY.as_millis(),
        upgrades.map_or_else(String::new, |u| format!(", an upgrade every {} s", u.as_secs()))
    );
    let duration = Duration::from_secs(secs);
    let generator = find_program("wrk").map_or(Generator::Builtin, Generator::Wrk);
    // The lesson's comparison, with plain sockets, before the load starts.
    let compared = upgrades.map(|_| super::handover::compare(super::handover::CLIENTS)).transpose()?;
    let load = thread::spawn(move || generator.run(addr, CONNECTIONS, duration));
    let stop = Arc::new(AtomicBool::new(false));
    let (fresh_ok, fresh_failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_failure: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let fresh = {
        let (stop, ok, failed, first) =
            (Arc::clone(&stop), Arc::clone(&fresh_ok), Arc::clone(&fresh_failed), Arc::clone(&first_failure));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match probe(addr) {
                    Ok((200, _, _)) => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        let mut f = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        f.get_or_insert_with(|| format!("{other:?}"));
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        })
    };

    let start = Instant::now();
    let mut reloads = Vec::new();
    let (mut generation, mut good) = (1u64, 0usize);
    let mut last_set = sets[0];
    let mut missed = 0;
    let mut upgraded: Vec<Upgrade> = Vec::new();
    let mut drains = Vec::new();
    // What the processes upgraded away counted: applied, refused, worst swap p99.
    let mut before = (0usize, 0usize, None::<f64>, None::<f64>);
    let mut next_upgrade = upgrades.map(|every| start + every);
    // Leave a second at the end for the load to see the last set.
    while start.elapsed() + EVERY + Duration::from_secs(1) < duration {
        let slot = Instant::now();
        let valid = reloads.len() % 2 == 0;
        if valid {
            good += 1;
            last_set = sets[good % sets.len()];
            std::fs::write(&file, config(port, admin_port, &addrs, last_set))?;
        } else {
            std::fs::write(&file, BROKEN)?;
        }
        let signalled = Instant::now();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).context("SIGHUP")?;
        let mut seen = None;
        if valid {
            generation += 1;
            while signalled.elapsed() < PROBE_LIMIT {
                if let Ok((200, Some(g), _)) = probe(addr)
                    && g >= generation
                {
                    seen = Some(signalled.elapsed());
                    break;
                }
            }
            if seen.is_none() {
                missed += 1;
            }
        }
        reloads.push(Reload { at: signalled.duration_since(start).as_secs_f64(), valid, seen });
        // An upgrade right after a good file: the new process reads it.
        if valid && let Some(due) = next_upgrade.filter(|due| Instant::now() >= *due) {
            let (applied, invalid, p99, max) = counted(admin)?;
            before = (before.0 + applied, before.1 + invalid, worst(before.2, p99), worst(before.3, max));
            let old = pid.as_raw().unsigned_abs();
            let at = start.elapsed().as_secs_f64();
            let (new, answered) = upgrade(admin)?;
            pid = nix::unistd::Pid::from_raw(i32::try_from(new).context("pid")?);
            // The new process starts at generation 1 with the file as it is.
            generation = 1;
            drains.push(thread::spawn(move || wait_gone(old)));
            upgraded.push(Upgrade { at, answered, drained: None });
            next_upgrade = upgrades.map(|every| due + every);
        }
        if let Some(rest) = EVERY.checked_sub(slot.elapsed()) {
            thread::sleep(rest);
        }
    }
    let loaded: LoadResult = load.join().map_err(|_| anyhow::anyhow!("the load thread panicked"))??;
    stop.store(true, Ordering::Relaxed);
    fresh.join().map_err(|_| anyhow::anyhow!("the new-connection client panicked"))?;

    // After the last good reload, only its backends answer.
    let allowed: Vec<String> = last_set.iter().map(|i| format!("r{}", i + 1)).collect();
    let mut strays = Vec::new();
    for _ in 0..30 {
        let (_, _, body) = probe(addr)?;
        if !allowed.iter().any(|n| body.contains(n.as_str())) {
            strays.push(body.trim().to_string());
        }
    }
    let page = get_text(admin, "/metrics")?;
    let applied = before.0 + metric(&page, "lb_config_reloads_total{result=\"applied\"}").unwrap_or(0.0) as usize;
    let invalid = before.1 + metric(&page, "lb_config_reloads_total{result=\"invalid\"}").unwrap_or(0.0) as usize;
    let adopt = |p: &str| metric(&page, &format!("lb_config_swap_seconds{{percentile=\"{p}\"}}"));
    // The p99 and the largest are the worst of every process's; the p50
    // is the last one's.
    let (adopt_p50, adopt_p99, adopt_max) = (adopt("50"), worst(adopt("99"), before.2), worst(adopt("100"), before.3));
    for (u, d) in upgraded.iter_mut().zip(drains) {
        u.drained = d.join().ok().flatten();
    }
    if upgraded.is_empty() {
        lb.stop()?;
    } else {
        // The process started here was upgraded away; stop the newest.
        drop(lb);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).context("SIGTERM")?;
        wait_gone(pid.as_raw().unsigned_abs()).context("the last process did not stop")?;
    }
    for b in backends {
        b.stop()?;
    }

    let seen: Vec<Duration> = reloads.iter().filter_map(|r| r.seen).collect();
    let bad = reloads.iter().filter(|r| !r.valid).count();
    let (fresh_ok, fresh_failed) = (fresh_ok.load(Ordering::Relaxed), fresh_failed.load(Ordering::Relaxed));
    println!("cargo xtask bench --reload, {}", super::report::today());
    println!(
        "  load: {:.0} requests/s on {CONNECTIONS} keep-alive connections, p99 {}; {} errors",
        loaded.requests_per_sec,
        loaded.p99_ms.map_or("-".into(), |v| format!("{v:.2} ms")),
        loaded.errors
    );
    println!("  new connections: {fresh_ok} requests, {fresh_failed} failed");
    if let Some((same, reuse)) = compared {
        println!(
            "  {} connections queued when the old listener goes: handed over (one socket), {} served and {} lost; \
             a second socket with SO_REUSEPORT, {} served and {} lost",
            super::handover::CLIENTS,
            same.served,
            same.lost,
            reuse.served,
            reuse.lost
        );
    }
    if upgrades.is_some() {
        let show = |d: Option<Duration>| d.map_or("-".to_string(), ms);
        let answered: Vec<Duration> = upgraded.iter().map(|u| u.answered).collect();
        let drained: Vec<Duration> = upgraded.iter().filter_map(|u| u.drained).collect();
        println!(
            "  upgrades: {}; POST /upgrade to the new process serving: max {}; then the old one gone: max {}",
            upgraded.len(),
            show(answered.iter().max().copied()),
            show(drained.iter().max().copied())
        );
    }
    println!(
        "  reloads: {} ({good} good files: {applied} applied; {bad} broken: {invalid} refused); {missed} never seen",
        reloads.len()
    );
    let show = |d: Option<Duration>| d.map_or("-".to_string(), ms);
    println!(
        "  signal to a client's answer with the new generation: p50 {}, p99 {}, max {}",
        show(percentile(&seen, 0.5)),
        show(percentile(&seen, 0.99)),
        show(percentile(&seen, 1.0))
    );
    let secs_opt = |v: Option<f64>| v.map(Duration::from_secs_f64);
    println!(
        "  signal to the loop serving with it (lb_config_swap_seconds, exact): p50 {}, p99 {}, max {}",
        show(secs_opt(adopt_p50)),
        show(secs_opt(adopt_p99)),
        show(secs_opt(adopt_max))
    );
    if !strays.is_empty() {
        println!("  answers from outside the last set {allowed:?}: {strays:?}");
    }
    if let Some(first) = first_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
        println!("  first failed new-connection request: {first}");
    }
    let p99_ok = secs_opt(adopt_p99).is_some_and(|d| d <= TARGET);
    let all_upgraded = upgraded.iter().all(|u| u.drained.is_some());
    let lossless = loaded.errors == 0
        && fresh_failed == 0
        && all_upgraded
        && applied == good
        && invalid == bad
        && missed == 0
        && strays.is_empty();
    println!("Targets");
    let what = if upgrades.is_some() { ", every upgrade done" } else { "" };
    println!(
        "  {} no failed request, every reload as its file says{what}, only the last set answers",
        verdict(lossless)
    );
    println!("  {} p99 from signal to serving <= {}", verdict(p99_ok), ms(TARGET));
    let pass = lossless && p99_ok;
    if let Some(dir) = figures {
        if upgraded.is_empty() {
            write_figures(dir, &reloads, &seen, [adopt_p50, adopt_p99, adopt_max], secs)?;
        } else {
            write_upgrade_figures(dir, &upgraded, secs, reloads.len())?;
        }
    }
    Ok(pass)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

/// The CSV of every reload and the chart of the delays.
fn write_figures(dir: &Path, reloads: &[Reload], seen: &[Duration], adopt: [Option<f64>; 3], secs: u64) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut csv = String::from("at_s,file,signal_to_client_ms\n");
    for r in reloads {
        let ms = r.seen.map_or(String::new(), |d| format!("{:.3}", d.as_secs_f64() * 1e3));
        csv.push_str(&format!("{:.3},{},{ms}\n", r.at, if r.valid { "good" } else { "broken" }));
    }
    std::fs::write(dir.join("reloads.csv"), csv)?;
    let client: Vec<Option<f64>> =
        [0.5, 0.99, 1.0].iter().map(|&q| percentile(seen, q).map(|d| d.as_secs_f64() * 1e3)).collect();
    let lp: Vec<Option<f64>> = adopt.iter().map(|v| v.map(|s| s * 1e3)).collect();
    let chart = Chart {
        rows: "percentile".into(),
        title: "From SIGHUP to serving with the new backend set".into(),
        axis: "milliseconds (lower is better)".into(),
        series: vec![
            "the loop serves with it (lb_config_swap_seconds)".into(),
            "a new client's answer shows it".into(),
        ],
        groups: ["p50", "p99", "max"]
            .iter()
            .enumerate()
            .map(|(i, g)| (g.to_string(), vec![lp.get(i).copied().flatten(), client.get(i).copied().flatten()]))
            .collect(),
        decimals: 2,
        footnote: vec![
            format!(
                "cargo xtask bench --reload, {}: {} reloads in {secs} s (good and broken files alternating) under",
                super::report::today(),
                reloads.len()
            ),
            format!(
                "{CONNECTIONS} keep-alive connections and a new-connection client, on one 2-core machine. The data: reloads.csv."
            ),
        ],
    };
    std::fs::write(dir.join("reload-delay.svg"), svg(&chart))?;
    eprintln!("[bench] wrote {}/reloads.csv and reload-delay.svg", dir.display());
    Ok(())
}

/// The CSV of every upgrade and its timeline chart.
fn write_upgrade_figures(dir: &Path, upgraded: &[Upgrade], secs: u64, reloads: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut csv = String::from("at_s,post_to_new_serving_ms,then_old_gone_ms\n");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for u in upgraded {
        let drained = u.drained.map_or(String::new(), |d| format!("{:.3}", ms(d)));
        csv.push_str(&format!("{:.3},{:.3},{drained}\n", u.at, ms(u.answered)));
    }
    std::fs::write(dir.join("upgrades.csv"), csv)?;
    let chart = Chart {
        rows: "upgrade".into(),
        title: "One upgrade after another: how long each step took".into(),
        axis: "milliseconds".into(),
        series: vec![
            "POST /upgrade until the new process serves".into(),
            "then until the old process has drained and exited".into(),
        ],
        groups: upgraded
            .iter()
            .map(|u| (format!("at {:.0} s", u.at), vec![Some(ms(u.answered)), u.drained.map(ms)]))
            .collect(),
        decimals: 1,
        footnote: vec![
            format!(
                "cargo xtask bench --reload --upgrade-every, {}: {} upgrades and {reloads} reloads in {secs} s under",
                super::report::today(),
                upgraded.len()
            ),
            format!(
                "{CONNECTIONS} keep-alive connections and a new-connection client, on one 2-core machine. The data: upgrades.csv."
            ),
        ],
    };
    std::fs::write(dir.join("upgrade-timeline.svg"), svg(&chart))?;
    eprintln!("[bench] wrote {}/upgrades.csv and upgrade-timeline.svg", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&v, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn metric_values_are_read_by_series() {
        let page = "# HELP x\nlb_config_reloads_total{result=\"applied\"} 12\nlb_config_generation 13\n";
        assert_eq!(metric(page, "lb_config_reloads_total{result=\"applied\"}"), Some(12.0));
        assert_eq!(metric(page, "lb_config_generation"), Some(13.0));
        assert_eq!(metric(page, "lb_config_gen"), None);
    }

    #[test]
    fn a_config_lists_its_set() {
        let b: Vec<SocketAddr> = ["127.0.0.1:1", "127.0.0.1:2"].iter().map(|s| s.parse().unwrap()).collect();
        let text = config(80, 81, &b, &[1]);
        assert!(text.contains("- \"127.0.0.1:2\"") && !text.contains("127.0.0.1:1\""), "{text}");
    }
}
