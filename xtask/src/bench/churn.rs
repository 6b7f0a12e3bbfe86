//! `cargo xtask bench --churn`: chapter 6's torture test of the pool.
//!
//! Three backends close every keep-alive connection that stays idle for
//! one second (plus up to half a second of jitter), and take 10 ms to
//! answer (so a burst needs many connections at once); `pooled_lb` keeps
//! connections to them. Clients send GETs and POSTs for a minute: a few as
//! fast as they can, most in bursts every 1.25 s, all together: a burst
//! fills the pool, its connections then sit idle for 1.25 s, right inside
//! the backends' closing window, and the next burst takes them out just as
//! the backends close them. That is the race every pool lives with. Every POST carries a unique `X-Request-Id`;
//! the backends count a POST seen twice.
//!
//! The pass line: no GET fails (a GET that meets a closing connection is
//! resent on a fresh one), and no POST reaches a backend twice (a POST
//! whose bytes left is answered 502 instead; those are counted, not
//! failures).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::load::{self, read_response};
use super::servers::{Server, free_port, localhost};

/// Clients that send as fast as they can (the load).
const STEADY: usize = 4;
/// Clients that send in bursts, all together, every [`TICK`] (the races).
const PACED: usize = 64;
/// The time between bursts: inside the backends' 1-1.5 s idle window.
const TICK: Duration = Duration::from_millis(1250);
/// Longest wait for one response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one client thread saw.
#[derive(Debug, Default)]
struct Seen {
    gets: u64,
    get_errors: u64,
    first_get_error: Option<String>,
    posts: u64,
    posts_502: u64,
    post_errors: u64,
    first_post_error: Option<String>,
}

/// What the churn run found.
#[derive(Debug)]
pub struct ChurnResult {
    gets: u64,
    get_errors: u64,
    first_get_error: Option<String>,
    posts: u64,
    posts_502: u64,
    post_errors: u64,
    first_post_error: Option<String>,
    /// POSTs the backends received, and those they received twice.
    backend_posts: u64,
    duplicate_posts: u64,
    /// Connections the backends accepted, and requests they served.
    accepted: u64,
    served: u64,
    /// The pool's lines from pooled_lb's report at exit.
    report: Vec<String>,
}

impl ChurnResult {
    /// Whether the run met the targets.
    pub fn passed(&self) -> bool {
        self.get_errors == 0 && self.duplicate_posts == 0 && self.post_errors == 0 && self.gets > 0
    }

    /// The lines to print.
    pub fn lines(&self, secs: u64) -> String {
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        let mut out = format!(
            "Churn: backends answer in 10 ms and close connections idle for 1-1.5 s; {STEADY} clients at full speed, {PACED} in bursts every 1.25 s, {secs} s\n"
        );
        out.push_str(&format!(
            "  GETs: {} sent, {} failed: {}{}\n",
            self.gets,
            self.get_errors,
            verdict(self.get_errors == 0),
            self.first_get_error.as_ref().map_or_else(String::new, |e| format!(" (first: {e})"))
        ));
        out.push_str(&format!(
            "  POSTs: {} sent, {} answered 502 (sent once, met a closing connection), {} other failures: {}{}\n",
            self.posts,
            self.posts_502,
            self.post_errors,
            verdict(self.post_errors == 0),
            self.first_post_error.as_ref().map_or_else(String::new, |e| format!(" (first: {e})"))
        ));
        out.push_str(&format!(
            "  POSTs the backends received: {}, received twice: {}: {}\n",
            self.backend_posts,
            self.duplicate_posts,
            verdict(self.duplicate_posts == 0)
        ));
        let reuse = if self.served > 0 { 100.0 * (1.0 - self.accepted as f64 / self.served as f64) } else { 0.0 };
        out.push_str(&format!(
            "  backends accepted {} connections for {} requests (reuse {reuse:.2} %)\n",
            self.accepted, self.served
        ));
        for line in &self.report {
            out.push_str(&format!("  pooled_lb: {}\n", line.trim()));
        }
        out
    }
}

/// Runs the churn test with the release binaries in `bin_dir`, logs in `tmp`.
pub fn churn(bin_dir: &Path, tmp: &Path, secs: u64) -> Result<ChurnResult> {
    let backend_bin = bin_dir.join("simple_http_backend");
    let mut backends = Vec::new();
    for i in 1..=3 {
        let port = free_port()?;
        let name = format!("churn-{i}");
        let args: Vec<String> = [
            "-p",
            &port.to_string(),
            "-n",
            &name,
            "--idle-timeout-ms",
            "1000",
            "--idle-jitter-ms",
            "500",
            "--latency-ms",
            "10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut server = Server::spawn(&name, &backend_bin, &args, localhost(port), tmp.join(format!("{name}.log")))?;
        server.wait_ready()?;
        backends.push(server);
    }
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let port = free_port()?;
    let mut args: Vec<String> = vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()];
    for a in &addrs {
        args.extend(["--backend".to_string(), a.to_string()]);
    }
    args.extend(["--health-check", "tcp", "--algorithm", "rr", "--drain-timeout-secs", "2"].map(String::from));
    let lb_log = tmp.join("churn-pooled_lb.log");
    let mut lb = Server::spawn("pooled_lb", &bin_dir.join("pooled_lb"), &args, localhost(port), lb_log.clone())?;
    lb.wait_ready()?;
    let addr = lb.addr;

    eprintln!("[bench] churn: {} clients for {secs} s against pooled_lb", STEADY + PACED);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let handles: Vec<_> = (0..STEADY + PACED)
        .map(|t| thread::spawn(move || client(addr, t, (t >= STEADY).then_some(start), deadline)))
        .collect();
    let mut total = Seen::default();
    for h in handles {
        let seen = h.join().map_err(|_| anyhow::anyhow!("a churn client thread panicked"))?;
        total.gets += seen.gets;
        total.get_errors += seen.get_errors;
        total.first_get_error = total.first_get_error.or(seen.first_get_error);
        total.posts += seen.posts;
        total.posts_502 += seen.posts_502;
        total.post_errors += seen.post_errors;
        total.first_post_error = total.first_post_error.or(seen.first_post_error);
    }
    let (mut accepted, mut served, mut backend_posts, mut duplicate_posts) = (0, 0, 0, 0);
    for a in &addrs {
        let c = load::backend_counters(*a, Duration::from_secs(2)).context("reading a backend's /stats")?;
        accepted += c.accepted;
        served += c.served;
        backend_posts += c.posts;
        duplicate_posts += c.duplicate_posts;
    }
    lb.stop()?;
    for b in backends {
        b.stop()?;
    }
    let log = std::fs::read_to_string(&lb_log).unwrap_or_default();
    let report = log
        .lines()
        .rev()
        .take_while(|l| !l.starts_with("==="))
        .filter(|l| l.contains("pool") || l.contains("evicted") || l.contains("resent"))
        .map(str::to_string)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Ok(ChurnResult {
        gets: total.gets,
        get_errors: total.get_errors,
        first_get_error: total.first_get_error,
        posts: total.posts,
        posts_502: total.posts_502,
        post_errors: total.post_errors,
        first_post_error: total.first_post_error,
        backend_posts,
        duplicate_posts,
        accepted,
        served,
        report,
    })
}

/// One client: alternates GET and POST on a keep-alive connection until
/// `deadline`; with `bursts_from`, one request per [`TICK`] counted from
/// that instant (a few milliseconds of jitter apart from the others).
fn client(addr: SocketAddr, t: usize, bursts_from: Option<Instant>, deadline: Instant) -> Seen {
    let mut seen = Seen::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::new();
    for seq in 0u64.. {
        if let Some(start) = bursts_from {
            let into = start.elapsed().as_nanos() % TICK.as_nanos();
            let to_next = TICK.saturating_sub(Duration::from_nanos(into as u64));
            let pause = to_next + Duration::from_millis(next() % 20);
            if Instant::now() + pause >= deadline {
                break;
            }
            thread::sleep(pause);
        }
        if Instant::now() >= deadline {
            break;
        }
        let post = seq % 2 == 1;
        let request = if post {
            format!("POST /echo HTTP/1.1\r\nHost: {addr}\r\nX-Request-Id: c{t}-{seq}\r\nContent-Length: 1\r\n\r\nx")
        } else {
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n")
        };
        if post {
            seen.posts += 1;
        } else {
            seen.gets += 1;
        }
        let outcome = exchange(&mut conn, &mut buf, addr, request.as_bytes());
        match (post, outcome) {
            (_, Ok(200)) => {}
            (true, Ok(502)) => seen.posts_502 += 1,
            (false, result) => {
                seen.get_errors += 1;
                seen.first_get_error.get_or_insert_with(|| describe(&result));
            }
            (true, result) => {
                seen.post_errors += 1;
                seen.first_post_error.get_or_insert_with(|| describe(&result));
            }
        }
    }
    seen
}

fn describe(result: &Result<u16, String>) -> String {
    match result {
        Ok(status) => format!("answered {status}"),
        Err(e) => e.clone(),
    }
}

/// Sends `request` on the client's connection (opened when needed) and
/// reads the response; the connection is dropped when it closes or fails.
fn exchange(conn: &mut Option<TcpStream>, buf: &mut Vec<u8>, addr: SocketAddr, request: &[u8]) -> Result<u16, String> {
    if conn.is_none() {
        let stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        buf.clear();
        *conn = Some(stream);
    }
    let Some(stream) = conn.as_mut() else { return Err("no connection".into()) };
    let result = stream
        .write_all(request)
        .map_err(|e| format!("write: {e}"))
        .and_then(|()| read_response(stream, buf, Instant::now() + REQUEST_TIMEOUT).map_err(|e| format!("read: {e}")));
    match result {
        Ok(r) => {
            if r.close {
                *conn = None;
            }
            Ok(r.status)
        }
        Err(e) => {
            *conn = None;
            Err(e)
        }
    }
}
