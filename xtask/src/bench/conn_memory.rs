//! `cargo xtask bench --conn-memory`: what a connection costs chapter 1's
//! thread-per-connection `echo_server`, against how many there are.
//!
//! For each count N it starts a fresh `echo_server` (the debug build, as
//! chapter 1's *Measure it* page runs it), reads its resident memory
//! (`VmRSS`), opens N idle connections, reads it again once it settles,
//! then echoes 16 KiB through every connection and reads it a third time.
//! The growth over the fresh process, divided by N, is the cost of one
//! connection; with the server's thread count, which must be N + 2 (the
//! accept loop and the signal thread). It writes
//! `book/src/figures/ch01/memory-per-connection.csv` and draws
//! `memory-per-connection.svg`: KiB per connection against connections,
//! idle and after the echo, on a logarithmic axis of connections.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::checks::settled_rss;
use super::plot::{self, Frame, LineChart, Series};
use super::servers::{Server, free_port, localhost, raise_nofile_soft_limit};

/// Bytes echoed through each connection in the second step.
const ECHO: usize = 16 * 1024;
/// How long one connect, write or read may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One count's measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Connections open.
    pub connections: usize,
    /// The server's threads with them open.
    pub threads: u64,
    /// Resident bytes of the fresh server.
    pub fresh: u64,
    /// Resident bytes with every connection idle.
    pub idle: u64,
    /// Resident bytes after 16 KiB went through every connection.
    pub echoed: u64,
}

impl Point {
    /// KiB per connection over the fresh server, idle and after the echo.
    pub fn per_connection_kib(&self) -> (f64, f64) {
        let n = self.connections.max(1) as f64;
        let per = |rss: u64| rss.saturating_sub(self.fresh) as f64 / 1024.0 / n;
        (per(self.idle), per(self.echoed))
    }
}

/// Runs the measurement and writes the figures into `figures` (if given).
pub fn run(root: &Path, counts: &[usize], figures: Option<&Path>) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("[bench] cargo build -p ch01-fundamentals --bin echo_server");
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "-p", "ch01-fundamentals", "--bin", "echo_server"])
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .context("could not run cargo build")?;
    if !status.success() {
        bail!("cargo build -p ch01-fundamentals failed ({status})");
    }
    let program = super::target_dir(root).join("debug/echo_server");
    raise_nofile_soft_limit();
    let tmp = super::temp_dir()?;
    let mut points = Vec::new();
    for &n in counts {
        let port = free_port()?;
        let addr = localhost(port);
        // Above the default cap of 1,024 clients, which would close the rest.
        let args = vec!["-p".to_string(), port.to_string(), "--max-connections".to_string(), (n + 16).to_string()];
        let mut server = Server::spawn("echo_server", &program, &args, addr, tmp.join(format!("echo-{n}.log")))?;
        server.wait_ready()?;
        let point =
            measure(addr, server.pid(), n).with_context(|| server.failure(&format!("failed at {n} connections")));
        server.stop()?;
        let point = point?;
        let (idle, echoed) = point.per_connection_kib();
        eprintln!(
            "[bench] {n:>5} connections: {} threads, VmRSS {} -> {} -> {} KiB; {idle:.1} KiB idle, {echoed:.1} KiB after the echo, per connection",
            point.threads,
            point.fresh / 1024,
            point.idle / 1024,
            point.echoed / 1024
        );
        points.push(point);
    }
    println!("cargo xtask bench --conn-memory, {}", super::report::today());
    println!("{}", table(&points));
    if let Some(dir) = figures {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("memory-per-connection.csv"), csv(&points))?;
        std::fs::write(dir.join("memory-per-connection.svg"), chart(&points))?;
        eprintln!("[bench] wrote {}/memory-per-connection.csv and .svg", dir.display());
    }
    Ok(())
}

/// One fresh server at `pid`: its memory, then with `n` idle connections,
/// then after echoing through each.
fn measure(addr: SocketAddr, pid: u32, n: usize) -> Result<Point> {
    let fresh = settled_rss(pid)?;
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).with_context(|| format!("connection {i} of {n}"))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        streams.push(s);
    }
    // Every connection has its thread once the count is right.
    let threads = wait_for_threads(pid, n as u64 + 2)?;
    let idle = settled_rss(pid)?;
    let message = vec![b'x'; ECHO];
    let mut back = vec![0u8; ECHO];
    for (i, s) in streams.iter_mut().enumerate() {
        s.write_all(&message).with_context(|| format!("writing to connection {i}"))?;
        s.read_exact(&mut back).with_context(|| format!("reading the echo of connection {i}"))?;
        if back != message {
            bail!("connection {i} echoed other bytes");
        }
    }
    let echoed = settled_rss(pid)?;
    drop(streams);
    Ok(Point { connections: n, threads, fresh, idle, echoed })
}

/// `pid`'s thread count once it reaches `want` (within 20 s).
fn wait_for_threads(pid: u32, want: u64) -> Result<u64> {
    let started = Instant::now();
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let threads = parse_threads(&status).context("no Threads line")?;
        if threads >= want || started.elapsed() > Duration::from_secs(20) {
            return Ok(threads);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The `Threads:  12` line of `/proc/PID/status`.
fn parse_threads(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("Threads:"))?.trim().parse().ok()
}

/// One point's columns: connections, threads, VmRSS fresh, idle and after
/// the echo (KiB), and KiB per connection idle and after the echo.
type Row = (usize, u64, u64, u64, u64, f64, f64);

fn rows(points: &[Point]) -> impl Iterator<Item = Row> + '_ {
    points.iter().map(|p| {
        let (idle, echoed) = p.per_connection_kib();
        (p.connections, p.threads, p.fresh / 1024, p.idle / 1024, p.echoed / 1024, idle, echoed)
    })
}

/// The printed table.
fn table(points: &[Point]) -> String {
    let mut s =
        String::from("connections  threads  VmRSS fresh  idle      after echo  KiB/conn idle  KiB/conn echoed\n");
    for (n, threads, fresh, idle_rss, echoed_rss, idle, echoed) in rows(points) {
        let _ = writeln!(
            s,
            "{n:>11}  {threads:>7}  {fresh:>8} KiB  {idle_rss:>6} KiB  {echoed_rss:>6} KiB  {idle:>13.1}  {echoed:>15.1}"
        );
    }
    s
}

fn csv(points: &[Point]) -> String {
    let mut s = String::from(
        "connections,threads,rss_fresh_kib,rss_idle_kib,rss_echoed_kib,kib_per_conn_idle,kib_per_conn_echoed\n",
    );
    for (n, threads, fresh, idle_rss, echoed_rss, idle, echoed) in rows(points) {
        let _ = writeln!(s, "{n},{threads},{fresh},{idle_rss},{echoed_rss},{idle:.2},{echoed:.2}");
    }
    s
}

/// KiB per connection against connections (logarithmic), idle and echoed.
fn chart(points: &[Point]) -> String {
    let frame = Frame { width: 820.0, height: 460.0, left: 80.0, right: 170.0, top: 60.0, bottom: 70.0 };
    let (plot_w, plot_h) = frame.plot();
    let per: Vec<(usize, f64, f64)> = points
        .iter()
        .map(|p| {
            let (i, e) = p.per_connection_kib();
            (p.connections.max(1), i, e)
        })
        .collect();
    let top_value = per.iter().map(|&(_, i, e)| i.max(e)).fold(0.0, f64::max);
    // A round top: the next multiple of 10 KiB above the largest value.
    let y_max = ((top_value / 10.0).floor() + 1.0) * 10.0;
    let decades = per.iter().map(|&(n, _, _)| (n as f64).log10().ceil()).fold(1.0, f64::max);
    let x = |n: usize| frame.left + plot_w * (n as f64).log10() / decades;
    let y = |kib: f64| frame.top + plot_h * (1.0 - kib / y_max);
    let y_ticks = (0..)
        .map(|i| f64::from(i) * 10.0)
        .take_while(|tick| *tick <= y_max + 0.01)
        .map(|tick| (y(tick), format!("{tick:.0} KiB")))
        .collect();
    let x_ticks =
        (0..=(decades as u32)).map(|d| 10usize.pow(d)).map(|n| (x(n), super::report::thousands(n as f64))).collect();
    let line = |name, colour, echoed: bool| Series {
        name,
        colour,
        points: per.iter().map(|p| (x(p.0), y(if echoed { p.2 } else { p.1 }))).collect(),
    };
    plot::svg(&LineChart {
        frame,
        title: "echo_server: resident memory per connection, one thread each",
        x_label: "connections open at once (logarithmic)",
        y_label: "VmRSS growth per connection",
        x_ticks,
        y_ticks,
        series: vec![line("idle", "#1d4ed8", false), line("after 16 KiB echoed", "#c2410c", true)],
        footer: format!(
            "cargo xtask bench --conn-memory, {}: debug echo_server, a fresh process per count; growth of VmRSS over the fresh process, divided by the connections. Data: memory-per-connection.csv.",
            super::report::today()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_connection_is_growth_over_the_fresh_process() {
        let p = Point { connections: 100, threads: 102, fresh: 3000 * 1024, idle: 5300 * 1024, echoed: 6000 * 1024 };
        assert_eq!(p.per_connection_kib(), (23.0, 30.0));
        let chart = chart(&[p, Point { connections: 1000, ..p }]);
        assert!(chart.starts_with("<svg") && chart.contains(">idle</text>") && chart.contains("1,000"), "{chart}");
        assert!(csv(&[p]).ends_with("100,102,3000,5300,6000,23.00,30.00\n"));
    }

    #[test]
    fn threads_are_read_from_status() {
        assert_eq!(parse_threads("Name:\techo_server\nThreads:\t1002\nSigQ:\t0/1\n"), Some(1002));
        assert_eq!(parse_threads("Name:\tx\n"), None);
    }

    #[test]
    fn a_real_echo_server_costs_one_thread_per_connection() {
        // The measurement against chapter 1's server itself, in process.
        let server = ch01_fundamentals::server::spawn_server(
            "127.0.0.1:0".parse().unwrap(),
            ch01_fundamentals::echo::handle_client,
        )
        .unwrap();
        let point = measure(server.addr, std::process::id(), 3).unwrap();
        assert_eq!(point.connections, 3);
        assert!(point.threads >= 4, "three connection threads at least: {point:?}");
        assert!(point.fresh > 0 && point.idle > 0 && point.echoed > 0);
    }
}
