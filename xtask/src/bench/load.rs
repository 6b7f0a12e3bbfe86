//! Load: wrk when it is installed, else a small built-in generator; and the
//! HTTP/1.1 response reading that the built-in generator and the checks
//! share.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A request slower than this is an error (wrk's `--timeout`, and the
/// built-in generator's read timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Load-generator threads: wrk's `-t2`, and the built-in generator's.
const THREADS: usize = 2;
/// Largest response the built-in client accepts.
const MAX_RESPONSE: usize = 1 << 20;
/// How long a single connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What one load run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadResult {
    /// Completed requests per second over the run.
    pub requests_per_sec: f64,
    /// Median latency; `None` when no request completed.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency.
    pub p99_ms: Option<f64>,
    /// Failed connects, reads, writes, timeouts and answers that are not
    /// 2xx or 3xx.
    pub errors: u64,
}

/// Who makes the load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generator {
    /// wrk, at this path.
    Wrk(PathBuf),
    /// [`builtin`], in this process.
    Builtin,
}

impl Generator {
    /// The name written in the CSV.
    pub fn name(&self) -> &'static str {
        match self {
            Generator::Wrk(_) => "wrk",
            Generator::Builtin => "builtin",
        }
    }

    /// Drives `addr` with `connections` keep-alive connections for `duration`.
    pub fn run(&self, addr: SocketAddr, connections: usize, duration: Duration) -> Result<LoadResult> {
        match self {
            Generator::Wrk(wrk) => run_wrk(wrk, addr, connections, duration),
            Generator::Builtin => Ok(builtin(addr, connections, duration)),
        }
    }
}

// ---------------------------------------------------------------- wrk

/// Runs `wrk -t2 -cN -dDs --latency` and reads its report.
fn run_wrk(wrk: &Path, addr: SocketAddr, connections: usize, duration: Duration) -> Result<LoadResult> {
    let threads = connections.clamp(1, THREADS);
    let mut cmd = Command::new(wrk);
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg(format!("--timeout={}s", REQUEST_TIMEOUT.as_secs()))
        .arg("--latency")
        .arg(format!("http://{addr}/"));
    let limit = duration + Duration::from_secs(30);
    let (status, stdout, stderr) = crate::process::run_bounded(cmd, limit)?;
    let Some(status) = status else { bail!("wrk was still running after {limit:?}: killed") };
    if !status.success() {
        bail!("wrk failed ({status}):\n{stdout}{stderr}");
    }
    parse_wrk(&stdout).with_context(|| format!("could not read wrk's report:\n{stdout}{stderr}"))
}

/// Reads wrk's report: `Requests/sec:`, the 50% and 99% lines of the
/// latency distribution (`--latency`), `Socket errors: connect A, read B,
/// write C, timeout D` and `Non-2xx or 3xx responses: N`.
pub fn parse_wrk(out: &str) -> Result<LoadResult> {
    let mut requests_per_sec = None;
    let (mut p50_ms, mut p99_ms) = (None, None);
    let mut errors = 0;
    let mut in_distribution = false;
    for line in out.lines() {
        let line = line.trim();
        if line.starts_with("Latency Distribution") {
            in_distribution = true;
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = Some(v.trim().parse::<f64>().with_context(|| format!("bad Requests/sec {v:?}"))?);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            for part in v.split(',') {
                let n = part.split_whitespace().last().context("empty socket error count")?;
                errors += n.parse::<u64>().with_context(|| format!("bad socket error count in {line:?}"))?;
            }
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().with_context(|| format!("bad count in {line:?}"))?;
        } else if in_distribution {
            match line.split_once('%').map(|(p, v)| (p.trim(), v.trim())) {
                Some(("50", v)) => p50_ms = Some(parse_wrk_time(v)?),
                Some(("99", v)) => p99_ms = Some(parse_wrk_time(v)?),
                Some(_) => {}
                None => in_distribution = false,
            }
        }
    }
    let requests_per_sec = requests_per_sec.context("no Requests/sec line")?;
    Ok(LoadResult { requests_per_sec, p50_ms, p99_ms, errors })
}

/// wrk's time format, `812.00us`, `1.23ms`, `2.50s`, `1.00m`, in ms.
pub fn parse_wrk_time(text: &str) -> Result<f64> {
    let units = [("us", 0.001), ("ms", 1.0), ("s", 1_000.0), ("m", 60_000.0), ("h", 3_600_000.0)];
    for (suffix, scale) in units {
        if let Some(number) = text.strip_suffix(suffix) {
            let value: f64 = number.trim().parse().with_context(|| format!("bad time {text:?}"))?;
            return Ok(value * scale);
        }
    }
    bail!("time {text:?} has no unit")
}

// ------------------------------------------------------ built-in generator

/// The built-in load generator, for machines without wrk.
///
/// `connections` keep-alive connections are split over two threads. Each
/// thread keeps one request in flight on every one of its connections and
/// walks them in a ring: read connection i's response, record its latency,
/// send its next request, move on to i + 1. The sockets are blocking, so a
/// waiting thread sleeps in `read` instead of spinning (which on a small
/// machine would steal the CPU from the server being measured), and std is
/// all it needs.
///
/// Its limits, to keep in mind when reading its numbers:
/// - closed loop: a new request goes out only when the previous one on
///   that connection is answered, so a slow server is offered less load
///   (wrk works the same way);
/// - head-of-line: while a thread waits on connection i, answers already
///   waiting on the others are not read, so their latencies count that
///   wait too, and one stuck connection stalls its thread for up to
///   [`REQUEST_TIMEOUT`];
/// - coarse percentiles: a histogram with about 1.6 % wide buckets.
pub fn builtin(addr: SocketAddr, connections: usize, duration: Duration) -> LoadResult {
    let threads = connections.clamp(1, THREADS);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            // Spread the remainder: thread t gets one more when t < remainder.
            let share = connections / threads + usize::from(t < connections % threads);
            let start = Arc::clone(&start);
            thread::spawn(move || generator_thread(addr, share, duration, &start))
        })
        .collect();
    let mut total = ThreadStats::default();
    let mut elapsed = Duration::ZERO;
    for handle in handles {
        match handle.join() {
            Ok((stats, took)) => {
                total.requests += stats.requests;
                total.errors += stats.errors;
                total.latency.merge(&stats.latency);
                elapsed = elapsed.max(took);
            }
            // A panic in a generator thread is a bug in this file; count it
            // as an error rather than losing the run.
            Err(_) => total.errors += 1,
        }
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    LoadResult {
        requests_per_sec: total.requests as f64 / secs,
        p50_ms: total.latency.percentile(0.50).map(|us| us as f64 / 1_000.0),
        p99_ms: total.latency.percentile(0.99).map(|us| us as f64 / 1_000.0),
        errors: total.errors,
    }
}

#[derive(Debug, Default)]
struct ThreadStats {
    requests: u64,
    errors: u64,
    latency: Histogram,
}

/// One connection of the ring.
#[derive(Debug)]
struct Slot {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    sent_at: Instant,
}

impl Slot {
    /// Sends the next request, connecting first when needed. On failure the
    /// slot is left unconnected, and tried again on the next turn.
    fn send(&mut self, addr: SocketAddr, request: &[u8], stats: &mut ThreadStats) {
        if self.stream.is_none() {
            match connect(addr) {
                Ok(s) => self.stream = Some(s),
                Err(_) => {
                    stats.errors += 1;
                    return;
                }
            }
        }
        self.buf.clear();
        self.sent_at = Instant::now();
        if let Some(stream) = &mut self.stream {
            if stream.write_all(request).is_err() {
                stats.errors += 1;
                self.stream = None;
            }
        }
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn generator_thread(addr: SocketAddr, share: usize, duration: Duration, start: &Barrier) -> (ThreadStats, Duration) {
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: lbs-bench\r\n\r\n").into_bytes();
    let mut stats = ThreadStats::default();
    let now = Instant::now();
    let mut slots: Vec<Slot> = (0..share).map(|_| Slot { stream: None, buf: Vec::new(), sent_at: now }).collect();
    // Connect everything first, then start the clock together.
    for slot in &mut slots {
        match connect(addr) {
            Ok(s) => slot.stream = Some(s),
            Err(_) => stats.errors += 1,
        }
    }
    start.wait();
    let started = Instant::now();
    let deadline = started + duration;
    for slot in &mut slots {
        slot.send(addr, &request, &mut stats);
    }
    'run: loop {
        let mut progress = false;
        for slot in &mut slots {
            if Instant::now() >= deadline {
                break 'run;
            }
            let Some(stream) = &mut slot.stream else {
                slot.send(addr, &request, &mut stats);
                continue;
            };
            let limit = (slot.sent_at + REQUEST_TIMEOUT).min(deadline);
            match read_response(stream, &mut slot.buf, limit) {
                Ok(response) => {
                    progress = true;
                    stats.requests += 1;
                    stats.latency.record(slot.sent_at.elapsed());
                    if !(200..400).contains(&response.status) {
                        stats.errors += 1;
                    }
                    if response.close {
                        slot.stream = None;
                    }
                }
                // The run ended while this request was in flight: not an error.
                Err(_) if Instant::now() >= deadline => break 'run,
                Err(_) => {
                    stats.errors += 1;
                    slot.stream = None;
                }
            }
            slot.send(addr, &request, &mut stats);
        }
        if !progress {
            // Nothing answered in a whole turn (the server refuses or is
            // gone): pause instead of spinning on failing connects.
            thread::sleep(Duration::from_millis(10));
        }
    }
    (stats, started.elapsed())
}

/// A latency histogram in microseconds with bounded memory: exact below
/// 128 µs, then 64 buckets per power of two (about 1.6 % wide).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

/// Sub-buckets per power of two, as a number of bits.
const SUB_BITS: u32 = 6;
/// Values below this have a bucket each.
const LINEAR: u64 = 2 << SUB_BITS;
/// Powers of two covered above `LINEAR` (up to 2^47 µs, four years).
const OCTAVES: u64 = 40;

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; (LINEAR + OCTAVES * (1 << SUB_BITS)) as usize], total: 0 }
    }
}

impl Histogram {
    fn index(us: u64) -> usize {
        if us < LINEAR {
            return us as usize;
        }
        let exponent = u64::from(63 - us.leading_zeros()); // >= SUB_BITS + 1
        let octave = (exponent - u64::from(SUB_BITS) - 1).min(OCTAVES - 1);
        let sub = (us >> (exponent - u64::from(SUB_BITS))) & ((1 << SUB_BITS) - 1);
        (LINEAR + octave * (1 << SUB_BITS) + sub) as usize
    }

    /// The middle of bucket `index`, in µs.
    fn value(index: usize) -> u64 {
        let index = index as u64;
        if index < LINEAR {
            return index;
        }
        let octave = (index - LINEAR) >> SUB_BITS;
        let sub = (index - LINEAR) & ((1 << SUB_BITS) - 1);
        let shift = octave + 1;
        let low = ((1 << SUB_BITS) + sub) << shift;
        low + (1 << shift) / 2
    }

    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let i = Self::index(us).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.total += 1;
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The latency (µs) below which a fraction `q` of the counts fall.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Self::value(i));
            }
        }
        None
    }
}

// ------------------------------------------------------ reading responses

pub use ch02_proxy::http::Framing;

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// Bytes up to and including the blank line.
    pub len: usize,
    /// Where the body ends.
    pub framing: Framing,
    /// Whether the server closes the connection after this response.
    pub close: bool,
}

/// Parses a response head with chapter 2's parser (the book's own
/// rules; the generator has no parser of its own); `Ok(None)` while the
/// blank line has not arrived. Keeps what the generator needs: the
/// status, the framing, and whether the connection closes after it.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let parsed = ch02_proxy::http::parse_response(buf, &ch02_proxy::http::Limits::default(), "GET");
    let Some((head, len)) = parsed.map_err(|e| format!("invalid response head: {e}"))? else { return Ok(None) };
    let says = |token| head.headers.has_token("connection", token);
    let http10 = head.version == ch02_proxy::http::Version::Http10;
    let close = says("close") || (http10 && !says("keep-alive")) || head.framing == Framing::UntilClose;
    Ok(Some(Head { status: head.status, len, framing: head.framing, close }))
}

/// How many bytes of `body` the body takes, once it is all there, found by
/// chapter 5's `BodyTracker`.
pub fn body_len(body: &[u8], framing: Framing) -> Result<Option<usize>, String> {
    let mut tracker = ch05_event_loop::framing::BodyTracker::new(framing);
    let n = tracker.feed(body).map_err(|e| format!("invalid body: {e}"))?;
    Ok(tracker.is_done().then_some(n))
}

/// What the generator keeps of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Whether the connection is now closed (or about to be).
    pub close: bool,
}

/// Reads one whole response from `stream` before `deadline`. `buf` is the
/// connection's read buffer: bytes past this response stay in it.
pub fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> io::Result<Response> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut chunk = [0u8; 16 * 1024];
    let mut head: Option<Head> = None;
    loop {
        if head.is_none() {
            head = parse_head(buf).map_err(invalid)?;
        }
        if let Some(h) = head {
            if let Some(len) = body_len(&buf[h.len..], h.framing).map_err(invalid)? {
                buf.drain(..h.len + len);
                return Ok(Response { status: h.status, close: h.close });
            }
        }
        if buf.len() > MAX_RESPONSE {
            return Err(invalid(format!("response larger than {MAX_RESPONSE} bytes")));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(deadline - now))?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return match head {
                    Some(h) if h.framing == Framing::UntilClose => {
                        buf.clear();
                        Ok(Response { status: h.status, close: true })
                    }
                    _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-response")),
                };
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(io::ErrorKind::TimedOut.into());
            }
            Err(e) => return Err(e),
        }
    }
}

/// One `GET /` on a new connection; its status. Used to check that a load
/// balancer really reaches the backends before it is measured.
pub fn get_once(addr: SocketAddr, timeout: Duration) -> io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut buf = Vec::new();
    Ok(read_response(&mut stream, &mut buf, Instant::now() + timeout)?.status)
}

/// A backend's counters, from its `/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendCounters {
    /// Connections accepted so far.
    pub accepted: u64,
    /// Requests served so far.
    pub served: u64,
    /// POSTs received so far.
    pub posts: u64,
    /// POSTs received a second time (the same `X-Request-Id`).
    pub duplicate_posts: u64,
}

/// A backend's counters from its `/stats`.
pub fn backend_counters(addr: SocketAddr, timeout: Duration) -> io::Result<BackendCounters> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(format!("GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let field = |name: &str| json_number(&text, name).ok_or_else(|| io::Error::other(format!("no {name} in /stats")));
    Ok(BackendCounters {
        accepted: field("connections_accepted")?,
        served: field("requests_served")?,
        posts: field("posts")?,
        duplicate_posts: field("duplicate_posts")?,
    })
}

/// The number after `"name":` in a flat JSON object.
fn json_number(text: &str, name: &str) -> Option<u64> {
    let key = format!("\"{name}\"");
    let rest = text.split_once(&key)?.1.trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn reads_numbers_from_the_backends_stats() {
        let text =
            r#"HTTP/1.1 200 OK\r\n\r\n{"name":"b","healthy":true,"connections_accepted": 12,"requests_served":3400}"#;
        assert_eq!(json_number(text, "connections_accepted"), Some(12));
        assert_eq!(json_number(text, "requests_served"), Some(3400));
        assert_eq!(json_number(text, "missing"), None);
    }

    /// A report as wrk 4.1 prints it with --latency, with errors.
    const WRK_OUTPUT: &str = "\
Running 10s test @ http://127.0.0.1:40123/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.41ms    1.07ms  31.52ms   83.12%
    Req/Sec    13.42k     1.21k   15.90k    71.50%
  Latency Distribution
     50%    2.18ms
     75%    2.77ms
     90%    3.52ms
     99%  812.00us
  267034 requests in 10.00s, 40.23MB read
  Socket errors: connect 3, read 12, write 1, timeout 4
  Non-2xx or 3xx responses: 7
Requests/sec:  26697.31
Transfer/sec:      4.02MB
";

    #[test]
    fn parses_a_wrk_report() {
        let r = parse_wrk(WRK_OUTPUT).unwrap();
        assert!((r.requests_per_sec - 26_697.31).abs() < 1e-6);
        assert_eq!(r.p50_ms, Some(2.18));
        assert!((r.p99_ms.unwrap() - 0.812).abs() < 1e-9);
        assert_eq!(r.errors, 3 + 12 + 1 + 4 + 7);
    }

    #[test]
    fn parses_a_clean_wrk_report_and_rejects_garbage() {
        let clean: String = WRK_OUTPUT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| l.to_string() + "\n")
            .collect();
        let r = parse_wrk(&clean).unwrap();
        assert_eq!(r.errors, 0);
        assert!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n").is_err());
        assert_eq!(parse_wrk_time("1.50s").unwrap(), 1_500.0);
        assert_eq!(parse_wrk_time("2.00m").unwrap(), 120_000.0);
        assert!(parse_wrk_time("12").is_err());
    }

    #[test]
    fn response_heads_and_bodies() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";
        let head = parse_head(r).unwrap().unwrap();
        assert_eq!(head, Head { status: 200, len: r.len() - 5, framing: Framing::Length(5), close: false });
        assert_eq!(body_len(&r[head.len..], head.framing), Ok(Some(5)));
        assert_eq!(body_len(b"hel", head.framing), Ok(None));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Len"), Ok(None));

        let close = parse_head(b"HTTP/1.1 502 Bad Gateway\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(close.unwrap().map(|h| (h.status, h.close)), Some((502, true)));
        let http10 = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((http10.framing, http10.close), (Framing::UntilClose, true));
        let kept = parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(kept.unwrap().map(|h| h.close), Some(false));
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());

        let chunked = b"4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\nNEXT";
        assert_eq!(body_len(chunked, Framing::Chunked), Ok(Some(chunked.len() - 4)));
        assert_eq!(body_len(&chunked[..chunked.len() - 6], Framing::Chunked), Ok(None));
        let trailer = b"0\r\nX-Checksum: 1\r\n\r\n";
        assert_eq!(body_len(trailer, Framing::Chunked), Ok(Some(trailer.len())));
        assert!(body_len(b"zz\r\n", Framing::Chunked).is_err());
    }

    #[test]
    fn histogram_percentiles_are_close() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(0.5), None);
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.percentile(0.50).unwrap() as f64;
        let p99 = h.percentile(0.99).unwrap() as f64;
        assert!((p50 - 5_000.0).abs() / 5_000.0 < 0.02, "p50 {p50}");
        assert!((p99 - 9_900.0).abs() / 9_900.0 < 0.02, "p99 {p99}");
        let mut small = Histogram::default();
        small.record(Duration::from_micros(42));
        assert_eq!(small.percentile(0.99), Some(42));
        let mut huge = Histogram::default();
        huge.record(Duration::from_secs(1 << 40));
        assert!(huge.percentile(0.5).is_some());
        for us in [128u64, 129, 1_000, 65_535, 1 << 30] {
            let v = Histogram::value(Histogram::index(us)) as f64;
            assert!((v - us as f64).abs() / (us as f64) < 0.02, "{us} -> {v}");
        }
    }

    /// A tiny keep-alive server: a thread per connection; every third
    /// answer on a connection says `Connection: close`, so the generator's
    /// reconnects are exercised too.
    fn test_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || serve(stream));
            }
        });
        addr
    }

    fn serve(mut stream: TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        for n in 1.. {
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            buf.clear();
            let close = if n % 3 == 0 { "Connection: close\r\n" } else { "" };
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n{close}\r\nok\n");
            if stream.write_all(answer.as_bytes()).is_err() || n % 3 == 0 {
                return;
            }
        }
    }

    #[test]
    fn builtin_generator_drives_a_local_server() {
        let addr = test_server();
        assert_eq!(get_once(addr, Duration::from_secs(5)).unwrap(), 200);
        let r = builtin(addr, 8, Duration::from_millis(300));
        assert!(r.requests_per_sec > 0.0, "{r:?}");
        assert_eq!(r.errors, 0, "{r:?}");
        assert!(r.p50_ms.is_some() && r.p99_ms >= r.p50_ms, "{r:?}");
    }
}
