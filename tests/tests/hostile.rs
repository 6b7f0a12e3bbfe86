//! Hostile clients and hostile backends against every server binary that
//! speaks HTTP: `reverse_proxy`, `forward_proxy`, `load_balancer`,
//! `advanced_lb`, `high_perf_lb`, `tokio_lb`, `pooled_lb`, `rate_limited_lb`, `metrics_lb`, `hot_reload_lb`,
//! `static_server` and `simple_http_backend`.
//!
//! Each test is one attack, run against every binary it applies to. After
//! every attack the process must still be running, must answer a plain GET
//! with 200 (through `forward_proxy`: an absolute-form GET to an allowed
//! backend), and its log must hold no line saying `panicked`.
//!
//! Nothing here waits on a fixed sleep: servers start on port 0 and say
//! where they listen in their JSON log; every socket has read and write
//! timeouts, so a server that hangs fails the test instead of hanging it;
//! every loop is bounded.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use backends::client::{HttpResponse, read_response};
use backends::{BackendConfig, BackendHandle, spawn, spawn_many};
use tests::{Server, binary, start};

/// How long any one read or write of a test client may block: a server
/// that takes longer is hanging.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// The binaries
// ---------------------------------------------------------------------------

/// What a binary stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One `--backend`.
    Reverse,
    /// Reaches whatever absolute URL it is given, on `--allow-port`s.
    Forward,
    /// Any number of `--backend`s.
    Balancer,
    /// Serves requests itself.
    Backend,
}

/// One server binary and how to start it.
#[derive(Debug, Clone, Copy)]
struct Bin {
    package: &'static str,
    name: &'static str,
    /// The log message that carries the listening address.
    message: &'static str,
    kind: Kind,
    /// Flags it always gets (health checks off: probes would add traffic).
    fixed: &'static [&'static str],
}

const REVERSE_PROXY: Bin = Bin {
    package: "ch02-proxy",
    name: "reverse_proxy",
    message: "reverse proxy listening",
    kind: Kind::Reverse,
    fixed: &[],
};
const FORWARD_PROXY: Bin = Bin {
    package: "ch02-proxy",
    name: "forward_proxy",
    message: "forward proxy listening",
    kind: Kind::Forward,
    fixed: &[],
};
const LOAD_BALANCER: Bin = Bin {
    package: "ch03-load-balancer",
    name: "load_balancer",
    message: "load balancer listening",
    kind: Kind::Balancer,
    fixed: &[],
};
const ADVANCED_LB: Bin = Bin {
    package: "ch04-advanced",
    name: "advanced_lb",
    message: "advanced load balancer listening",
    kind: Kind::Balancer,
    fixed: &["--health-check", "off"],
};
const HIGH_PERF_LB: Bin = Bin {
    package: "ch05-event-loop",
    name: "high_perf_lb",
    message: "high-performance load balancer listening",
    kind: Kind::Balancer,
    fixed: &["--health-check", "off"],
};
const TOKIO_LB: Bin = Bin {
    package: "ch05-event-loop",
    name: "tokio_lb",
    message: "tokio load balancer listening",
    kind: Kind::Balancer,
    fixed: &["--health-check", "off"],
};
const POOLED_LB: Bin = Bin {
    package: "ch06-pooling",
    name: "pooled_lb",
    message: "pooled load balancer listening",
    kind: Kind::Balancer,
    fixed: &["--health-check", "off"],
};
/// The limiter reads every request's headers (here an API key) and path
/// (a route limit) to find its key: hostile bytes go through it too. The
/// limits are high enough never to refuse what the suite sends.
const RATE_LIMITED_LB: Bin = Bin {
    package: "ch07-rate-limit",
    name: "rate_limited_lb",
    message: "rate-limited load balancer listening",
    kind: Kind::Balancer,
    fixed: &[
        "--health-check",
        "off",
        "--rate",
        "100000",
        "--burst",
        "100000",
        "--rate-key",
        "header:x-api-key",
        "--rate-route",
        "/api=100000:100000",
        "--rate-global",
        "1000000:1000000",
    ],
};

/// With its admin listener on a port of its own choosing.
const METRICS_LB: Bin = Bin {
    package: "ch08-metrics",
    name: "metrics_lb",
    message: "metrics load balancer listening",
    kind: Kind::Balancer,
    fixed: &[
        "--health-check",
        "off",
        "--rate",
        "100000",
        "--burst",
        "100000",
        "--rate-key",
        "header:x-api-key",
        "--rate-route",
        "/api=100000:100000",
        "--rate-global",
        "1000000:1000000",
        "--admin-port",
        "0",
    ],
};
/// Chapter 10's capstone, started without a file (with one, it is
/// `metrics_lb` with the file's flags: `hot_reload.rs` tests that).
const HOT_RELOAD_LB: Bin = Bin {
    package: "ch10-hot-reload",
    name: "hot_reload_lb",
    message: "hot reload load balancer listening",
    ..METRICS_LB
};
const SIMPLE_BACKEND: Bin = Bin {
    package: "backends",
    name: "simple_http_backend",
    message: "backend listening",
    kind: Kind::Backend,
    fixed: &[],
};

const STATIC_SERVER: Bin = Bin {
    package: "ch09-zero-copy",
    name: "static_server",
    message: "static server listening",
    kind: Kind::Backend,
    // A directory with an index.html (tests run in the tests crate's folder).
    fixed: &["--root", "fixtures/www"],
};

/// Every binary that speaks HTTP.
const ALL: [Bin; 12] = [
    REVERSE_PROXY,
    FORWARD_PROXY,
    LOAD_BALANCER,
    ADVANCED_LB,
    HIGH_PERF_LB,
    TOKIO_LB,
    POOLED_LB,
    RATE_LIMITED_LB,
    METRICS_LB,
    HOT_RELOAD_LB,
    SIMPLE_BACKEND,
    STATIC_SERVER,
];
/// Those with a backend behind them.
const PROXIES: [Bin; 10] = [
    REVERSE_PROXY,
    FORWARD_PROXY,
    LOAD_BALANCER,
    ADVANCED_LB,
    HIGH_PERF_LB,
    TOKIO_LB,
    POOLED_LB,
    RATE_LIMITED_LB,
    METRICS_LB,
    HOT_RELOAD_LB,
];
/// Those with several backends behind them.
const BALANCERS: [Bin; 8] =
    [LOAD_BALANCER, ADVANCED_LB, HIGH_PERF_LB, TOKIO_LB, POOLED_LB, RATE_LIMITED_LB, METRICS_LB, HOT_RELOAD_LB];

/// The binary's path, built once per test process (`binary` runs cargo,
/// which may wait for the build lock).
fn path_of(bin: &Bin) -> PathBuf {
    static PATHS: OnceLock<Mutex<HashMap<&'static str, PathBuf>>> = OnceLock::new();
    let paths = PATHS.get_or_init(Mutex::default);
    let mut paths = paths.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    paths.entry(bin.name).or_insert_with(|| binary(bin.package, bin.name)).clone()
}

/// Raises this process's open-files limit to the hard limit, once: a test
/// holds a thousand sockets, and the servers it starts inherit the limit.
fn raise_nofile() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let want = hard.min(1 << 20);
            if soft < want {
                let _ = setrlimit(Resource::RLIMIT_NOFILE, want, hard);
            }
        }
    });
}

/// A running binary under attack.
struct Target {
    bin: Bin,
    server: Server,
    /// Where a plain request goes: the first backend (named in the
    /// forward proxy's absolute URLs), or the server itself.
    origin: SocketAddr,
    /// Every log line read so far (checked for panics).
    log: Vec<String>,
}

impl Target {
    /// Starts `bin` in front of `upstreams` with `extra` flags.
    fn start(bin: Bin, upstreams: &[SocketAddr], extra: &[&str]) -> Target {
        raise_nofile();
        let args = args_for(&bin, upstreams, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = start(&path_of(&bin), &args, bin.message);
        let origin = upstreams.first().copied().unwrap_or(server.addr);
        Target { bin, server, origin, log: Vec::new() }
    }

    /// Starts `bin` with at most `nofile` open files (soft and hard limit,
    /// set by the shell before it `exec`s the binary).
    fn start_with_nofile(bin: Bin, upstreams: &[SocketAddr], extra: &[&str], nofile: u32) -> Target {
        raise_nofile();
        let script = format!("ulimit -n {nofile} && exec \"$0\" \"$@\"");
        let path = path_of(&bin);
        let mut args = vec!["-c".to_string(), script, path.to_string_lossy().into_owned()];
        args.extend(args_for(&bin, upstreams, extra));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = start(&PathBuf::from("/bin/sh"), &args, bin.message);
        let origin = upstreams.first().copied().unwrap_or(server.addr);
        Target { bin, server, origin, log: Vec::new() }
    }

    fn name(&self) -> &'static str {
        self.bin.name
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The request target for `path`: absolute-form through the forward
    /// proxy, origin-form everywhere else.
    fn target(&self, path: &str) -> String {
        if self.bin.kind == Kind::Forward { format!("http://{}{path}", self.origin) } else { path.to_string() }
    }

    /// `GET path` with `headers` (each ending in CRLF) and the blank line.
    fn get(&self, path: &str, headers: &str) -> Vec<u8> {
        format!("GET {} HTTP/1.1\r\nHost: {}\r\n{headers}\r\n", self.target(path), self.origin).into_bytes()
    }

    /// Waits (bounded) for a log line matching `pred`, keeping every line read.
    fn wait_for_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.server.log.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.log.push(line);
                    if hit {
                        return self.log.last().cloned();
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads the log until it has been quiet for a moment (bounded).
    fn drain_log(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.server.log.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => self.log.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    // ANCHOR: check
    /// After `attack`: the process runs, a plain GET gets 200, and the log
    /// holds no panic.
    fn check(&mut self, attack: &str) {
        let name = self.name();
        self.drain_log();
        assert!(self.server.is_running(), "{name}: the process exited after {attack}");
        if let Err(e) = TcpStream::connect_timeout(&self.addr(), IO_TIMEOUT) {
            let tail = &self.log[self.log.len().saturating_sub(20)..];
            panic!("{name}: cannot connect after {attack}: {e}; the log ends:\n{tail:#?}");
        }
        let answer = exchange(self.addr(), &self.get("/", "Connection: close\r\n"), false);
        match &answer {
            Answer::Response(r) if r.status == 200 => {}
            other => panic!("{name}: a plain GET after {attack} got {other:?}"),
        }
        self.drain_log();
        let panics: Vec<&String> = self.log.iter().filter(|l| l.contains("panicked")).collect();
        assert!(panics.is_empty(), "{name}: the log shows a panic after {attack}:\n{panics:#?}");
        assert!(self.server.is_running(), "{name}: the process exited after {attack}");
    }
    // ANCHOR_END: check
}

/// The command line for `bin` in front of `upstreams`.
fn args_for(bin: &Bin, upstreams: &[SocketAddr], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["-p", "0", "--log-format", "json"].iter().map(|s| s.to_string()).collect();
    match bin.kind {
        Kind::Reverse => {
            args.extend(["--backend".to_string(), upstreams[0].to_string()]);
        }
        Kind::Forward => {
            for u in upstreams {
                args.extend(["--allow-port".to_string(), u.port().to_string()]);
            }
        }
        Kind::Balancer => {
            for u in upstreams {
                args.extend(["--backend".to_string(), u.to_string()]);
            }
        }
        Kind::Backend => {}
    }
    args.extend(bin.fixed.iter().chain(extra).map(|s| s.to_string()));
    args
}

/// Runs `attack` against each binary on a thread of its own, and fails
/// with the first failure's own message.
fn each_in_parallel(bins: &[Bin], attack: impl Fn(Bin) + Sync) {
    thread::scope(|s| {
        let attack = &attack;
        let handles: Vec<_> = bins.iter().map(|&bin| s.spawn(move || attack(bin))).collect();
        let mut first = None;
        for h in handles {
            if let Err(panic) = h.join() {
                first.get_or_insert(panic);
            }
        }
        if let Some(panic) = first {
            std::panic::resume_unwind(panic);
        }
    });
}

// ---------------------------------------------------------------------------
// Talking to a server
// ---------------------------------------------------------------------------

/// What a client got back.
#[derive(Debug)]
enum Answer {
    /// A complete response.
    Response(HttpResponse),
    /// The connection ended (end of stream or reset) before a complete
    /// response; how, for failure messages (read through `Debug` only).
    Closed(#[allow(dead_code)] io::ErrorKind),
    /// Nothing within [`IO_TIMEOUT`]: the server hangs.
    Hang,
}

impl Answer {
    fn status(&self) -> Option<u16> {
        match self {
            Answer::Response(r) => Some(r.status),
            _ => None,
        }
    }
}

/// A connection with read and write timeouts.
fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect to the server");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads one response, or says how the connection ended.
fn read_answer(reader: &mut BufReader<TcpStream>) -> Answer {
    match read_response(reader, false) {
        Ok(r) => Answer::Response(r),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Answer::Hang,
        Err(e) => Answer::Closed(e.kind()),
    }
}

/// Sends `raw` on a new connection (a failed write is ignored: the server
/// may answer and close before taking everything), half-closes if asked,
/// and reads the answer.
fn exchange(addr: SocketAddr, raw: &[u8], half_close: bool) -> Answer {
    let mut s = connect(addr);
    let _ = s.write_all(raw);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    read_answer(&mut BufReader::new(s))
}

/// Whether an error response's body says why: `STATUS Reason: detail`.
fn says_why(r: &HttpResponse) -> bool {
    let text = r.text();
    text.starts_with(&format!("{} ", r.status))
        && text.split_once(": ").is_some_and(|(_, detail)| detail.trim().len() >= 10)
}

/// Closes `s` with a reset (SO_LINGER 0), not a FIN.
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
}

/// xorshift64: a small seeded generator, so every run sends the same bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------
// 1. Slowloris
// ---------------------------------------------------------------------------

/// A thousand clients each send half a head and stop. Meanwhile a normal
/// client is served; at the header timeout every half-head client gets 408.
#[test]
fn a_thousand_half_heads_get_408_while_a_normal_client_is_served() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    for bin in ALL {
        let mut t = Target::start(bin, &[backend.addr()], &["--header-timeout-ms", "1500"]);
        let name = t.name();
        let half = format!("GET {} HTTP/1.1\r\nHost: x\r\n", t.target("/"));
        let held: Vec<TcpStream> = (0..1000)
            .map(|i| {
                let mut s = connect(t.addr());
                s.write_all(half.as_bytes()).unwrap_or_else(|e| panic!("{name}: half-head client {i}: {e}"));
                s
            })
            .collect();
        let answer = exchange(t.addr(), &t.get("/", "Connection: close\r\n"), false);
        assert_eq!(answer.status(), Some(200), "{name}: a normal client among 1,000 half heads: {answer:?}");
        // It was served meanwhile: the newest half-head client has had no
        // answer yet.
        let newest = held.last().unwrap();
        newest.set_nonblocking(true).unwrap();
        let peeked = newest.peek(&mut [0u8; 1]);
        assert!(
            matches!(&peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "{name}: the newest half-head client was answered before the normal client was served: {peeked:?}"
        );
        newest.set_nonblocking(false).unwrap();
        for (i, s) in held.into_iter().enumerate() {
            let answer = read_answer(&mut BufReader::new(s));
            assert_eq!(answer.status(), Some(408), "{name}: half-head client {i}: {answer:?}");
        }
        t.check("1,000 half heads");
    }
}

// ---------------------------------------------------------------------------
// 2. Random bytes
// ---------------------------------------------------------------------------

/// Seeded random bytes as a request (alone, after a method, and as header
/// lines): 400 or a closed connection, never a hang.
#[test]
fn random_bytes_get_400_or_a_close_never_a_hang() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    each_in_parallel(&ALL, |bin| {
        let mut t = Target::start(bin, &[backend.addr()], &["--header-timeout-ms", "2000"]);
        let name = t.name();
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for i in 0..60 {
            let len = 1 + (rng.next() % 1024) as usize;
            let noise = rng.bytes(len);
            let raw = match i % 3 {
                0 => noise,
                1 => [b"GET ".as_slice(), &noise].concat(),
                _ => [b"GET / HTTP/1.1\r\n".as_slice(), &noise, b"\r\n\r\n"].concat(),
            };
            let answer = exchange(t.addr(), &raw, true);
            assert!(
                matches!(&answer, Answer::Closed(_)) || answer.status() == Some(400),
                "{name}: random input {i} ({len} random bytes) got {answer:?}"
            );
        }
        t.check("random bytes");
    });
}

// ---------------------------------------------------------------------------
// 3. Huge heads
// ---------------------------------------------------------------------------

/// Heads of 64 KiB and more, one huge header or thousands of small ones: 431.
#[test]
fn heads_of_64_kib_and_more_get_431() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    each_in_parallel(&ALL, |bin| {
        let mut t = Target::start(bin, &[backend.addr()], &[]);
        let name = t.name();
        let one_header = |n: usize| format!("X-Big: {}\r\n", "a".repeat(n));
        let many_headers = (0..2000).map(|i| format!("X-H{i:04}: {}\r\n", "v".repeat(30))).collect::<String>();
        let cases = [
            ("one 64 KiB header", t.get("/", &one_header(64 * 1024))),
            ("one 64 KiB + 1 header", t.get("/", &one_header(64 * 1024 + 1))),
            ("one 1 MiB header", t.get("/", &one_header(1024 * 1024))),
            ("2,000 headers (80 KiB)", t.get("/", &many_headers)),
        ];
        for (what, raw) in cases {
            assert!(raw.len() >= 64 * 1024);
            let answer = exchange(t.addr(), &raw, false);
            assert_eq!(answer.status(), Some(431), "{name}: {what}: {answer:?}");
        }
        t.check("heads of 64 KiB and more");
    });
}

// ---------------------------------------------------------------------------
// 4. Pipelined garbage
// ---------------------------------------------------------------------------

/// A valid request with garbage pipelined behind it: the request gets its
/// 200, then the garbage gets 400 or the connection closes.
#[test]
fn a_valid_request_then_pipelined_garbage_gets_200_then_400_or_close() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    each_in_parallel(&ALL, |bin| {
        let mut t = Target::start(bin, &[backend.addr()], &["--header-timeout-ms", "2000"]);
        let name = t.name();
        let garbage: [&[u8]; 3] = [
            b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"G\rET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ];
        for (i, g) in garbage.iter().enumerate() {
            let mut s = connect(t.addr());
            let raw = [t.get("/", "").as_slice(), g].concat();
            let _ = s.write_all(&raw);
            let mut reader = BufReader::new(s);
            let first = read_answer(&mut reader);
            assert_eq!(first.status(), Some(200), "{name}: garbage {i}: the valid request first: {first:?}");
            let second = read_answer(&mut reader);
            assert!(
                matches!(&second, Answer::Closed(_)) || second.status() == Some(400),
                "{name}: garbage {i} after the valid request: {second:?}"
            );
        }
        t.check("pipelined garbage");
    });
}

// ---------------------------------------------------------------------------
// 5. Resets
// ---------------------------------------------------------------------------

/// Clients that reset (SO_LINGER 0, then close) mid-head, mid-body and
/// mid-response.
#[test]
fn clients_that_reset_mid_request_or_mid_response_leave_the_server_serving() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    each_in_parallel(&ALL, |bin| {
        let mut t = Target::start(bin, &[backend.addr()], &[]);
        let name = t.name();
        let echo = t.target("/echo");
        let host = t.origin;

        let mut s = connect(t.addr());
        s.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
        reset(s);
        t.check("a reset mid-head");

        let mut s = connect(t.addr());
        let head = format!("POST {echo} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100000\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&[b'x'; 1000]).unwrap();
        reset(s);
        t.check("a reset in the middle of a Content-Length body");

        let mut s = connect(t.addr());
        let head = format!("POST {echo} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        s.write_all(head.as_bytes()).unwrap();
        reset(s);
        t.check("a reset in the middle of a chunked body");

        let mut s = connect(t.addr());
        s.write_all(&t.get("/bytes/10000000", "")).unwrap();
        let mut first = [0u8; 1];
        s.read_exact(&mut first).unwrap_or_else(|e| panic!("{name}: the response to /bytes/10000000 starts: {e}"));
        reset(s);
        t.check("a reset in the middle of a 10 MB response");
    });
}

// ---------------------------------------------------------------------------
// 6. Every byte everywhere
// ---------------------------------------------------------------------------

/// Whether `b` may appear in a header name (a token character).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Every byte 0x00–0xFF in the request target, a header name and a header
/// value, and a multi-byte character (`€`) at every offset 0..16 of the
/// target: a complete response (400 for the invalid ones) or a close. A
/// target that is neither origin-form nor absolute-form (`a€€€`) is 400
/// from every binary.
#[test]
fn every_byte_in_target_header_name_and_value_gets_a_response_or_a_close() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    each_in_parallel(&ALL, |bin| {
        let mut t = Target::start(bin, &[backend.addr()], &["--header-timeout-ms", "2000"]);
        let name = t.name();
        let addr = t.addr();
        // (what, raw request, whether it is valid: None where either answer is right)
        let mut cases: Vec<(String, Vec<u8>, Option<bool>)> = Vec::new();
        for b in 0..=255u8 {
            let target = [t.target("/a").as_bytes(), &[b], b"b"].concat();
            let raw = [b"GET ".as_slice(), &target, b" HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
            cases.push((format!("byte {b:#04x} in the target"), raw, Some((0x21..=0x7e).contains(&b))));
            let line = [b"X-".as_slice(), &[b], b": v\r\n"].concat();
            let raw = [t.get("/", "").strip_suffix(b"\r\n").unwrap(), &line, b"\r\n"].concat();
            cases.push((format!("byte {b:#04x} in a header name"), raw, Some(is_tchar(b) || b == b':')));
            let line = [b"X-T: a".as_slice(), &[b], b"b\r\n"].concat();
            let raw = [t.get("/", "").strip_suffix(b"\r\n").unwrap(), &line, b"\r\n"].concat();
            let valid = b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80;
            cases.push((format!("byte {b:#04x} in a header value"), raw, Some(valid)));
        }
        for k in 0..16 {
            // Neither origin-form nor absolute-form: 400 from everyone.
            let target = format!("{}\u{20ac}\u{20ac}\u{20ac}", "a".repeat(k));
            let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
            cases.push((format!("{target:?} as the target"), raw, Some(false)));
            // Origin-form with raw UTF-8 after `/` and k letters (not
            // allowed by RFC 3986, tolerated by some): any complete
            // response below 500, or a close.
            let target = t.target(&format!("/{}\u{20ac}", "a".repeat(k)));
            let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
            cases.push((format!("{target:?} as the target"), raw, None));
            // A character inside a header value and a header name.
            let value = format!("X-U: {}\u{20ac}\r\n", "a".repeat(k));
            cases.push((format!("{value:?} as a header"), t.get("/", &value), Some(true)));
            let field = format!("X-{}\u{20ac}: v\r\n", "a".repeat(k));
            cases.push((format!("{field:?} as a header"), t.get("/", &field), Some(false)));
        }
        // The absolute form with the character inside its scheme.
        for k in 0..7 {
            let mut target = format!("http://{}/", t.origin);
            target.insert(k, '\u{20ac}');
            let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
            cases.push((format!("{target:?} as the target"), raw, Some(false)));
        }
        let exact = b"GET a\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        cases.push(("the exact request `GET a\u{20ac}\u{20ac}\u{20ac} HTTP/1.1`".to_string(), exact, Some(false)));

        // A file server answers a valid request for a file it does not
        // have with 404, a `%` not followed by two hex digits (which it
        // must decode) with 400, and a `\` in a path with 403 (a separator
        // on some systems: never part of a name it serves).
        let files = bin.name == "static_server";
        let refused_by_files = |status: u16, what: &str| {
            status == 404 || (status == 400 && what.contains("0x25")) || (status == 403 && what.contains("0x5c"))
        };
        for (what, raw, valid) in &cases {
            let answer = exchange(addr, raw, false);
            match (valid, &answer) {
                (_, Answer::Hang) => panic!("{name}: {what}: no answer within {IO_TIMEOUT:?}"),
                (Some(true), Answer::Response(r)) if r.status == 200 => {}
                (Some(true), Answer::Response(r)) if files && refused_by_files(r.status, what) => {}
                (Some(true), _) => panic!("{name}: {what} is valid, yet got {answer:?}"),
                (Some(false), Answer::Response(r)) if r.status == 400 => {}
                (Some(false), Answer::Closed(_)) if !what.contains('\u{20ac}') => {}
                (Some(false), _) => panic!("{name}: {what} is invalid, yet got {answer:?}"),
                (None, Answer::Response(r)) if r.status < 500 => {}
                (None, Answer::Closed(_)) => {}
                (None, _) => panic!("{name}: {what}: {answer:?}"),
            }
        }
        t.check("every byte in every field");
    });
}

// ---------------------------------------------------------------------------
// 7. Misbehaving backends
// ---------------------------------------------------------------------------

/// A backend on a std listener that misbehaves by path: `/close-now`
/// closes at once, `/close-head` in the middle of its head, `/close-body`
/// in the middle of its body, `/garbage` sends no HTTP at all,
/// `/huge-head` a 70 KiB head, `/silent` never answers. Any other path:
/// a proper `200 ok`.
struct BadBackend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BadBackend {
    fn spawn() -> BadBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = conn {
                    thread::spawn(move || misbehave(s));
                }
            }
        });
        BadBackend { addr, stop, thread: Some(thread) }
    }
}

impl Drop for BadBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection of [`BadBackend`].
fn misbehave(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
    let path = line.split(' ').nth(1).unwrap_or("");
    let answer: Vec<u8> = match path {
        "/close-now" => return,
        "/close-head" => b"HTTP/1.1 200 OK\r\nContent-Len".to_vec(),
        "/close-body" => b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a part of it".to_vec(),
        "/garbage" => b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n".to_vec(),
        "/huge-head" => {
            format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok", "a".repeat(70_000)).into_bytes()
        }
        "/silent" => {
            // Hold the connection until the proxy gives up and closes it.
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            return;
        }
        _ => b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n".to_vec(),
    };
    let _ = s.write_all(&answer);
}

/// Behind a backend that closes, sends garbage, sends a huge head or
/// never answers, the client gets 502 or 504 with a body that says why
/// (or, once the head is out, a connection cut short), never a hang.
#[test]
fn misbehaving_backends_are_502_or_504_with_a_reason_never_a_hang() {
    let bad = BadBackend::spawn();
    each_in_parallel(&PROXIES, |bin| {
        let mut t = Target::start(bin, &[bad.addr], &["--response-timeout-ms", "300"]);
        let name = t.name();
        for (path, want) in
            [("/close-now", 502), ("/close-head", 502), ("/garbage", 502), ("/huge-head", 502), ("/silent", 504)]
        {
            let answer = exchange(t.addr(), &t.get(path, "Connection: close\r\n"), false);
            match &answer {
                Answer::Response(r) if r.status == want && says_why(r) => {}
                other => panic!("{name}: a backend doing {path}: want {want} with a reason, got {other:?}"),
            }
            t.check(&format!("a backend doing {path}"));
        }
        // The head is out before the body stops: all a proxy can do is cut
        // the connection, so the client sees the response is incomplete.
        let answer = exchange(t.addr(), &t.get("/close-body", "Connection: close\r\n"), false);
        match &answer {
            Answer::Closed(_) => {}
            Answer::Response(r) if r.status == 502 && says_why(r) => {}
            other => panic!("{name}: a backend closing mid-body: want a cut connection or 502, got {other:?}"),
        }
        t.check("a backend closing mid-body");
    });
}

// ---------------------------------------------------------------------------
// 8. A backend killed under load
// ---------------------------------------------------------------------------

/// One load-generator thread: `n` GETs of `path` (on keep-alive
/// connections, or one connection each), reporting each on `progress`.
/// Returns the failures.
fn generate_load(addr: SocketAddr, path: &str, keep_alive: bool, n: usize, progress: &mpsc::Sender<()>) -> Vec<String> {
    let mut failures = Vec::new();
    let mut conn: Option<BufReader<TcpStream>> = None;
    let header = if keep_alive { "" } else { "Connection: close\r\n" };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{header}\r\n");
    for i in 0..n {
        let reader = conn.get_or_insert_with(|| BufReader::new(connect(addr)));
        let result = reader.get_mut().write_all(request.as_bytes()).and_then(|()| read_response(reader, false));
        match result {
            Ok(r) if r.status == 200 => {
                if !keep_alive || r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
                    conn = None;
                }
            }
            Ok(r) => {
                failures.push(format!("request {i}: {} {}", r.status, r.text().trim()));
                conn = None;
            }
            Err(e) => {
                failures.push(format!("request {i}: {e}"));
                conn = None;
            }
        }
        let _ = progress.send(());
    }
    failures
}

/// Two backends; four clients send 600 GETs that each take the backend a
/// few milliseconds, so some are in progress on the backend killed after
/// the first 150. No GET fails (what the dead backend refused, or dropped
/// before answering, goes to the other), and the dead backend is marked
/// down.
// ANCHOR: killed_backend
#[test]
fn a_backend_killed_under_load_fails_no_get_and_is_marked_down() {
    each_in_parallel(&BALANCERS, |bin| {
        let mut backends = spawn_many(2).unwrap();
        let addrs: Vec<SocketAddr> = backends.iter().map(BackendHandle::addr).collect();
        let mut t = Target::start(bin, &addrs, &[]);
        let name = t.name();
        let (addr, victim) = (t.addr(), backends.remove(0));
        let victim_addr = victim.addr().to_string();
        let (progress, progressed) = mpsc::channel();
        let failures: Vec<String> = thread::scope(|s| {
            let loaders: Vec<_> = (0..4)
                .map(|k| {
                    let progress = progress.clone();
                    s.spawn(move || generate_load(addr, "/slow?ms=5", k % 2 == 0, 150, &progress))
                })
                .collect();
            for done in 0..150 {
                if progressed.recv_timeout(Duration::from_secs(20)).is_err() {
                    panic!("{name}: the load stalled after {done} requests");
                }
            }
            drop(victim); // the listener closes, its connections end
            loaders.into_iter().flat_map(|l| l.join().unwrap()).collect()
        });
        assert!(
            failures.is_empty(),
            "{name}: {} GETs failed after a backend was killed: {failures:#?}",
            failures.len()
        );
        let down = t.wait_for_line(Duration::from_secs(10), |l| l.contains("DOWN") && l.contains(&victim_addr));
        assert!(down.is_some(), "{name}: the killed backend {victim_addr} was never marked down");
        t.check("a backend killed under load");
    });
}
// ANCHOR_END: killed_backend

// ---------------------------------------------------------------------------
// 9. Descriptor exhaustion
// ---------------------------------------------------------------------------

/// Under `ulimit -n 64`, a hundred clients: first idle, then each with a
/// GET. Those beyond the limit wait or are refused cleanly; once they have
/// left, a fresh GET gets 200.
#[test]
fn with_64_descriptors_a_hundred_clients_wait_or_are_refused_cleanly() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    each_in_parallel(&ALL, |bin| {
        let mut t = Target::start_with_nofile(bin, &[backend.addr()], &["--header-timeout-ms", "3000"], 64);
        let name = t.name();
        let idle: Vec<TcpStream> = (0..100)
            .map(|i| {
                TcpStream::connect_timeout(&t.addr(), IO_TIMEOUT).unwrap_or_else(|e| {
                    t.drain_log();
                    panic!("{name}: idle client {i} of 100 cannot connect: {e}; the log:\n{:#?}", t.log)
                })
            })
            .collect();
        assert!(t.server.is_running(), "{name}: exited holding 100 idle clients under 64 descriptors");
        drop(idle);
        t.check("100 idle clients under 64 descriptors");

        let request = t.get("/", "Connection: close\r\n");
        let clients: Vec<TcpStream> = (0..100)
            .map(|_| {
                let mut s = connect(t.addr());
                let _ = s.write_all(&request);
                s
            })
            .collect();
        let mut served = 0;
        for (i, s) in clients.into_iter().enumerate() {
            match read_answer(&mut BufReader::new(s)) {
                Answer::Response(r) if r.status == 200 => served += 1,
                Answer::Response(r) if r.status >= 500 && says_why(&r) => {}
                Answer::Closed(_) => {}
                other => panic!("{name}: client {i} of 100 under 64 descriptors: {other:?}"),
            }
        }
        assert!(served > 0, "{name}: none of 100 clients was served under 64 descriptors");
        t.check("100 GETs at once under 64 descriptors");
    });
}
