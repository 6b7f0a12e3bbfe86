//! `cargo xtask bench --l4`: chapter 9's targets in one run: streams
//! with iperf3 (here), whole transfers of each size
//! ([`transfers`](super::transfers)) and static files against nginx
//! ([`static_files`](super::static_files)).
//!
//! One iperf3 server; in front of it, in turns: nothing (`direct`, the
//! ceiling), `l4_proxy` relaying with splice, `l4_proxy --copy`, and
//! HAProxy in tcp mode with one thread and `option splice-auto` (when
//! installed). Each is measured at 1 and 8 parallel streams; rounds take
//! turns and each row reports its median round. The targets: `l4_proxy`
//! at least 1.2 × HAProxy at both stream counts, and splice at least
//! 1.5 × `--copy` (iperf3's streams are bulk transfers, far above the
//! 64 KiB the target starts at).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::servers::{Server, find_program, free_port};

const STREAMS: [u32; 2] = [1, 8];

/// One server in front of iperf3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    Direct,
    Splice,
    Copy,
    Haproxy,
}

impl Relay {
    fn label(self) -> &'static str {
        match self {
            Relay::Direct => "direct (no proxy)",
            Relay::Splice => "l4_proxy (splice)",
            Relay::Copy => "l4_proxy --copy",
            Relay::Haproxy => "HAProxy tcp splice-auto",
        }
    }
}

/// Runs the L4 measurements and prints them with their verdicts.
pub fn run(root: &Path, quick: bool) -> Result<()> {
    let Some(iperf3) = find_program("iperf3") else {
        bail!("iperf3 is not installed (sudo apt-get install iperf3): the L4 bench measures with it");
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("[bench] cargo build --release -p ch09-zero-copy --bins");
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--release", "-q", "-p", "ch09-zero-copy", "--bins"])
        .status()
        .context("could not run cargo")?;
    if !status.success() {
        bail!("building chapter 9's binaries failed");
    }
    let l4 = root.join("target/release/l4_proxy");
    let tmp = root.join("target/bench-l4");
    std::fs::create_dir_all(&tmp)?;
    let mut pass = streams(&iperf3, &l4, &tmp, quick)?;
    let figures = root.join("book/src/figures/ch09");
    pass &= super::transfers::run(&l4, &tmp, quick, Some(&figures))?;
    pass &= super::static_files::run(&root.join("target/release/static_server"), &tmp, quick)?;
    if !pass {
        bail!("a chapter 9 target was missed (above)");
    }
    Ok(())
}

/// iperf3 through each relay; prints the table and the verdicts.
fn streams(iperf3: &Path, l4: &Path, tmp: &Path, quick: bool) -> Result<bool> {
    let (secs, rounds) = if quick { (3, 1) } else { (10, 3) };

    let sink_port = free_port()?;
    let sink_addr = ([127, 0, 0, 1], sink_port).into();
    let sink_args = vec!["-s".to_string(), "-p".to_string(), sink_port.to_string()];
    let mut sink = Server::spawn("iperf3 -s", iperf3, &sink_args, sink_addr, tmp.join("iperf3-server.log"))?;
    sink.wait_ready()?;
    let haproxy = find_program("haproxy");
    let mut relays = vec![Relay::Direct, Relay::Splice, Relay::Copy];
    if haproxy.is_some() {
        relays.push(Relay::Haproxy);
    } else {
        eprintln!("[bench] HAProxy is not installed: its row is skipped");
    }

    // results[relay][stream index] = Gbit/s of each round.
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); STREAMS.len()]; relays.len()];
    for round in 0..rounds {
        for (r, &relay) in relays.iter().enumerate() {
            let port = match relay {
                Relay::Direct => sink_port,
                _ => free_port()?,
            };
            let addr = ([127, 0, 0, 1], port).into();
            let log = tmp.join(format!("{relay:?}.log").to_lowercase());
            let server = match relay {
                Relay::Direct => None,
                Relay::Splice | Relay::Copy => {
                    let mut args: Vec<String> =
                        ["-p", &port.to_string(), "--backend", &format!("127.0.0.1:{sink_port}")]
                            .map(String::from)
                            .into();
                    // iperf3's control connection takes probes as tests.
                    args.extend(["--health-check".to_string(), "off".into()]);
                    args.push(if relay == Relay::Copy { "--copy" } else { "--splice" }.to_string());
                    Some(Server::spawn(relay.label(), l4, &args, addr, log)?)
                }
                Relay::Haproxy => {
                    let cfg = tmp.join("haproxy-l4.cfg");
                    std::fs::write(&cfg, haproxy_tcp_config(port, sink_port))?;
                    let args = vec!["-db".to_string(), "-f".to_string(), cfg.display().to_string()];
                    let program = haproxy.as_deref().unwrap_or(Path::new("haproxy"));
                    Some(Server::spawn(relay.label(), program, &args, addr, log)?)
                }
            };
            let mut server = server;
            if let Some(s) = server.as_mut() {
                s.wait_ready()?;
            }
            for (i, &streams) in STREAMS.iter().enumerate() {
                eprintln!("[bench] round {}: {} with {streams} stream(s), {secs} s", round + 1, relay.label());
                let gbits = iperf3_gbits(iperf3, port, streams, secs)?;
                if let Some(cell) = results.get_mut(r).and_then(|row| row.get_mut(i)) {
                    cell.push(gbits);
                }
            }
            if let Some(s) = server {
                s.stop()?;
            }
        }
    }
    sink.stop()?;

    let median = |r: usize, i: usize| -> Option<f64> {
        let mut v = results.get(r)?.get(i)?.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    println!("cargo xtask bench --l4, {}, iperf3, {secs} s, median of {rounds} round(s)", super::report::today());
    println!("{:<26} {:>14} {:>14}", "relay", "1 stream", "8 streams");
    for (r, relay) in relays.iter().enumerate() {
        let cell = |i| median(r, i).map_or("-".to_string(), |g| format!("{g:.2} Gbit/s"));
        println!("{:<26} {:>14} {:>14}", relay.label(), cell(0), cell(1));
    }
    println!("Targets");
    let at = |relay: Relay, i: usize| relays.iter().position(|&x| x == relay).and_then(|r| median(r, i));
    let mut pass = true;
    for (i, streams) in STREAMS.iter().enumerate() {
        let mut verdict = |name: String, ours: Option<f64>, theirs: Option<f64>, min: f64| match (ours, theirs) {
            (Some(a), Some(b)) if b > 0.0 => {
                let ok = a / b >= min;
                pass &= ok;
                println!("  {name}: {} ({:.2})", if ok { "PASS" } else { "FAIL" }, a / b);
            }
            _ => println!("  {name}: n/a"),
        };
        verdict(
            format!("l4_proxy >= 1.2 x HAProxy tcp at {streams} stream(s)"),
            at(Relay::Splice, i),
            at(Relay::Haproxy, i),
            1.2,
        );
        verdict(
            format!("splice >= 1.5 x --copy at {streams} stream(s)"),
            at(Relay::Splice, i),
            at(Relay::Copy, i),
            1.5,
        );
    }
    Ok(pass)
}

/// HAProxy as an L4 proxy: tcp mode, one thread, splice where it helps.
fn haproxy_tcp_config(port: u16, backend: u16) -> String {
    format!(
        "# Written by `cargo xtask bench --l4`: HAProxy in tcp mode with one thread.\n\
         global\n\
         \x20   nbthread 1\n\
         \x20   maxconn 4000\n\
         \x20   no strict-limits\n\
         defaults\n\
         \x20   mode tcp\n\
         \x20   timeout connect 5s\n\
         \x20   timeout client 60s\n\
         \x20   timeout server 60s\n\
         \x20   option splice-auto\n\
         frontend l4\n\
         \x20   bind 127.0.0.1:{port}\n\
         \x20   default_backend sink\n\
         backend sink\n\
         \x20   server iperf3 127.0.0.1:{backend}\n"
    )
}

/// One iperf3 run through `port`: the receiver's Gbit/s. iperf3's server
/// takes one test at a time and is now and then still closing the last one
/// when the next arrives ("unable to receive control message"): such a run
/// is tried again, up to three times.
fn iperf3_gbits(iperf3: &Path, port: u16, streams: u32, secs: u64) -> Result<f64> {
    let mut last = None;
    for _ in 0..3 {
        match iperf3_once(iperf3, port, streams, secs) {
            Ok(g) => return Ok(g),
            Err(e) => {
                eprintln!("[bench] iperf3 failed, trying again: {}", e.to_string().lines().next().unwrap_or(""));
                last = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("iperf3 gave no result")))
}

fn iperf3_once(iperf3: &Path, port: u16, streams: u32, secs: u64) -> Result<f64> {
    let out = Command::new(iperf3)
        .args(["-c", "127.0.0.1", "-p", &port.to_string(), "-P", &streams.to_string(), "-t", &secs.to_string(), "-J"])
        .stdin(Stdio::null())
        .output()
        .context("could not run iperf3")?;
    let json = String::from_utf8_lossy(&out.stdout);
    received_bits_per_second(&json)
        .map(|b| b / 1e9)
        .with_context(|| format!("iperf3 gave no result ({}):\n{}", out.status, crate::cargo::tail(&json, 10)))
}

/// `end.sum_received.bits_per_second` from iperf3's JSON, found by hand
/// (xtask parses no JSON otherwise).
fn received_bits_per_second(json: &str) -> Option<f64> {
    let end = json.rfind("\"sum_received\"")?;
    let rest = json.get(end..)?;
    let at = rest.find("\"bits_per_second\"")?;
    let value = rest.get(at + "\"bits_per_second\"".len()..)?.trim_start().strip_prefix(':')?.trim_start();
    let number: String =
        value.chars().take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')).collect();
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf3_json_is_read() {
        let json = r#"{"end": {"sum_sent": {"bits_per_second": 1.0}, "sum_received": {"seconds": 5, "bytes": 10, "bits_per_second": 1.2345e+10, "sender": true}}}"#;
        assert_eq!(received_bits_per_second(json), Some(1.2345e10));
        assert_eq!(received_bits_per_second("{}"), None);
        assert!(haproxy_tcp_config(1, 2).contains("mode tcp"));
    }
}
