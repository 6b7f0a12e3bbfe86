//! `cargo xtask bench --l4`, second part: whole transfers of one size
//! through `l4_proxy`, copy against splice against the default (copy
//! first, splice past the cut-over), from 1 KiB to 16 MiB.
//!
//! iperf3 measures a few long streams; a proxy also carries many short
//! connections, where a pipe's set-up (two descriptors, three system
//! calls) may cost more than splice saves. Here a source server in this
//! process answers each connection with as many bytes as the client asks
//! for (an 8-byte size, little-endian) and closes; client threads open
//! connection after connection through the proxy for a few seconds. Each
//! row gives MB/s and the proxy's own CPU time per gigabyte (from
//! `/proc/PID/stat`): on a small machine where the clients and the source
//! share the cores with the proxy, throughput is bounded by them, and the
//! proxy's CPU per byte is what its relay costs.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::servers::{Server, free_port};

/// Transfer sizes measured.
pub const SIZES: [usize; 5] = [1 << 10, 16 << 10, 64 << 10, 1 << 20, 16 << 20];
/// The relay's cut-over (`relay::CUTOVER` in chapter 9).
const CUTOVER: usize = 64 << 10;
/// Clients at once.
const CLIENTS: usize = 4;

/// How `l4_proxy` relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Copy,
    Splice,
    Auto,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Copy => "--copy",
            Mode::Splice => "--splice",
            Mode::Auto => "default (auto)",
        }
    }

    fn flag(self) -> Option<&'static str> {
        match self {
            Mode::Copy => Some("--copy"),
            Mode::Splice => Some("--splice"),
            Mode::Auto => None,
        }
    }
}

/// One cell: throughput and the proxy's CPU per gigabyte.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cell {
    pub mb_per_sec: f64,
    pub cpu_ms_per_gb: f64,
}

/// A server that answers each connection with the number of bytes asked
/// for, then closes: threads that take turns accepting.
struct Source {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Source {
    fn start() -> Result<Source> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let chunk: Arc<Vec<u8>> =
            Arc::new((0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect());
        for _ in 0..CLIENTS {
            let (listener, stop, chunk) = (listener.try_clone()?, Arc::clone(&stop), Arc::clone(&chunk));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut conn, _)) = listener.accept() else { continue };
                    let mut size = [0u8; 8];
                    if conn.read_exact(&mut size).is_err() {
                        continue;
                    }
                    let mut left = u64::from_le_bytes(size) as usize;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if conn.write_all(chunk.get(..n).unwrap_or_default()).is_err() {
                            break;
                        }
                        left -= n;
                    }
                }
            });
        }
        Ok(Source { addr, stop })
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake every accepting thread so it sees the flag.
        for _ in 0..CLIENTS {
            let _ = TcpStream::connect(self.addr);
        }
    }
}

/// The proxy's user and system CPU time so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).context("no CPU times in /proc/PID/stat")
}

/// utime + stime: fields 14 and 15 of `/proc/PID/stat`, counted after the
/// command name's closing parenthesis (the name may hold spaces).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": field 3 (state) is index 0, so field 14 is index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Transfers of `size` bytes through `proxy` for `secs`, by `CLIENTS`
/// threads; every transfer must bring exactly `size` bytes.
fn measure(proxy: SocketAddr, pid: u32, size: usize, secs: f64) -> Result<Cell> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let bytes = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_ticks(pid)?;
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let bytes = Arc::clone(&bytes);
            thread::spawn(move || -> Result<()> {
                let mut buf = vec![0u8; 256 << 10];
                while Instant::now() < deadline {
                    let mut s = TcpStream::connect(proxy).context("connect to l4_proxy")?;
                    s.set_read_timeout(Some(Duration::from_secs(30)))?;
                    s.write_all(&(size as u64).to_le_bytes())?;
                    s.shutdown(Shutdown::Write)?;
                    let mut got = 0;
                    loop {
                        let n = s.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        got += n;
                    }
                    if got != size {
                        bail!("a transfer of {size} bytes brought {got}");
                    }
                    bytes.fetch_add(got as u64, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid)? - cpu_before) as f64 / ticks_per_sec();
    let total = bytes.load(Ordering::Relaxed) as f64;
    Ok(Cell {
        mb_per_sec: total / elapsed / 1e6,
        cpu_ms_per_gb: if total > 0.0 { cpu * 1e3 / (total / 1e9) } else { 0.0 },
    })
}

/// Measures every size in every mode; prints the table and the verdicts;
/// returns whether the targets were met.
/// With `figures`, a full run also writes `transfers.csv` and two charts
/// there (chapter 9's figures).
pub fn run(l4: &Path, tmp: &Path, quick: bool, figures: Option<&Path>) -> Result<bool> {
    let (secs, rounds) = if quick { (1.0, 1) } else { (3.0, 3) };
    let source = Source::start()?;
    let modes = [Mode::Copy, Mode::Splice, Mode::Auto];
    // cells[mode][size] = every round's measurement.
    let mut cells: Vec<Vec<Vec<Cell>>> = vec![vec![Vec::new(); SIZES.len()]; modes.len()];
    for round in 0..rounds {
        for (m, &mode) in modes.iter().enumerate() {
            let port = free_port()?;
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut args = vec!["-p".to_string(), port.to_string(), "--backend".into(), source.addr.to_string()];
            args.extend(["--health-check".to_string(), "off".into()]);
            args.extend(mode.flag().map(String::from));
            let log = tmp.join(format!("transfers-{}.log", mode.label().trim_start_matches('-').replace(' ', "-")));
            let mut server = Server::spawn(mode.label(), l4, &args, addr, log)?;
            server.wait_ready()?;
            for (i, &size) in SIZES.iter().enumerate() {
                eprintln!(
                    "[bench] round {}: l4_proxy {} with {} transfers, {secs} s",
                    round + 1,
                    mode.label(),
                    size_label(size)
                );
                let cell = measure(addr, server.pid(), size, secs)?;
                if let Some(v) = cells.get_mut(m).and_then(|row| row.get_mut(i)) {
                    v.push(cell);
                }
            }
            server.stop()?;
        }
    }
    drop(source);
    let median = |m: usize, i: usize| -> Option<Cell> {
        let mut v = cells.get(m)?.get(i)?.clone();
        v.sort_by(|a, b| a.mb_per_sec.total_cmp(&b.mb_per_sec));
        v.get(v.len() / 2).copied()
    };
    println!();
    println!("l4_proxy, whole transfers of one size, {CLIENTS} clients, {secs} s, median of {rounds} round(s)");
    println!("(MB/s through the proxy; the proxy's CPU ms per GB relayed)");
    print!("{:<10}", "transfer");
    for mode in modes {
        print!(" {:>26}", mode.label());
    }
    println!();
    for (i, &size) in SIZES.iter().enumerate() {
        print!("{:<10}", size_label(size));
        for m in 0..modes.len() {
            let text = median(m, i)
                .map_or("-".to_string(), |c| format!("{:.0} MB/s {:.0} ms/GB", c.mb_per_sec, c.cpu_ms_per_gb));
            print!(" {text:>26}");
        }
        println!();
    }
    if let Some(dir) = figures.filter(|_| !quick) {
        write_figures(dir, &modes, median, rounds)?;
    }
    println!("Targets");
    let mut pass = true;
    let mut verdict = |name: String, ratio: Option<f64>, min: f64| match ratio {
        Some(r) => {
            let ok = r >= min;
            pass &= ok;
            println!("  {name}: {} ({r:.2})", if ok { "PASS" } else { "FAIL" });
        }
        None => println!("  {name}: n/a"),
    };
    let (copy, splice, auto) = (0, 1, 2);
    for (i, &size) in SIZES.iter().enumerate() {
        let (c, s, a) = (median(copy, i), median(splice, i), median(auto, i));
        let ratio = |x: Option<Cell>, y: Option<Cell>, f: fn(&Cell) -> f64| match (x, y) {
            (Some(x), Some(y)) if f(&y) > 0.0 => Some(f(&x) / f(&y)),
            _ => None,
        };
        if size >= CUTOVER {
            verdict(
                format!("{}: splice >= 1.5 x --copy, throughput", size_label(size)),
                ratio(s, c, |c| c.mb_per_sec),
                1.5,
            );
            // CPU per byte: copy's cost over splice's.
            verdict(
                format!("{}: --copy's proxy CPU per GB >= 1.5 x splice's", size_label(size)),
                ratio(c, s, |c| c.cpu_ms_per_gb),
                1.5,
            );
        } else {
            verdict(
                format!("{}: default (auto) never slower than --copy (>= 0.95)", size_label(size)),
                ratio(a, c, |c| c.mb_per_sec),
                0.95,
            );
        }
    }
    Ok(pass)
}

/// The CSV of the medians and the two charts drawn from it.
fn write_figures(
    dir: &Path,
    modes: &[Mode],
    median: impl Fn(usize, usize) -> Option<Cell>,
    rounds: usize,
) -> Result<()> {
    use super::report::{Chart, svg};
    std::fs::create_dir_all(dir)?;
    let mut csv = String::from("transfer_bytes,mode,mb_per_sec,proxy_cpu_ms_per_gb\n");
    for (i, size) in SIZES.iter().enumerate() {
        for (m, mode) in modes.iter().enumerate() {
            if let Some(c) = median(m, i) {
                csv.push_str(&format!("{size},{},{:.1},{:.1}\n", mode.label(), c.mb_per_sec, c.cpu_ms_per_gb));
            }
        }
    }
    std::fs::write(dir.join("transfers.csv"), csv)?;
    let footnote = vec![
        format!(
            "cargo xtask bench --l4, {}: {CLIENTS} client threads and the source beside l4_proxy on",
            super::report::today()
        ),
        format!("one 2-core machine, loopback; median of {rounds} rounds. The data: transfers.csv beside this figure."),
    ];
    // Relative to --copy at each size: the sizes differ by four orders of
    // magnitude in MB/s and in CPU per GB, the ratios do not.
    let series: Vec<String> = modes.iter().map(|m| format!("l4_proxy {}", m.label())).collect();
    let copy = modes.iter().position(|&m| m == Mode::Copy).unwrap_or(0);
    let groups = |value: fn(&Cell) -> f64| -> Vec<(String, Vec<Option<f64>>)> {
        SIZES
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let base = median(copy, i).map(|c| value(&c)).filter(|&b| b > 0.0);
                let row = (0..modes.len()).map(|m| Some(median(m, i).map(|c| value(&c))? / base?)).collect();
                (size_label(size), row)
            })
            .collect()
    };
    let throughput = Chart {
        rows: "transfer size".into(),
        title: "Whole transfers through l4_proxy: throughput against --copy".into(),
        axis: "throughput as a multiple of --copy's at the same size (higher is better)".into(),
        series: series.clone(),
        groups: groups(|c| c.mb_per_sec),
        decimals: 2,
        footnote: footnote.clone(),
    };
    let cpu = Chart {
        rows: "transfer size".into(),
        title: "The proxy's own CPU per gigabyte, against --copy".into(),
        axis: "CPU time per GB relayed as a multiple of --copy's (lower is better)".into(),
        series,
        groups: groups(|c| c.cpu_ms_per_gb),
        decimals: 2,
        footnote,
    };
    std::fs::write(dir.join("transfers-throughput.svg"), svg(&throughput))?;
    std::fs::write(dir.join("transfers-cpu.svg"), svg(&cpu))?;
    eprintln!("[bench] wrote {}/transfers.csv and two charts", dir.display());
    Ok(())
}

pub fn size_label(size: usize) -> String {
    if size >= 1 << 30 {
        format!("{} GiB", size >> 30)
    } else if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else {
        format!("{} KiB", size >> 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_after_the_name() {
        let stat = "4242 (l4 proxy) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 1 0 123 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("nonsense"), None);
        assert_eq!(size_label(16 << 10), "16 KiB");
        assert_eq!(size_label(1 << 30), "1 GiB");
    }
}
