//! One client connection as a state machine.
//!
//! A thread-per-connection server keeps its place in the code: "I am
//! blocked in `read_request_head`", and the stack holds the rest. An event
//! loop serves thousands of connections with one stack, so each one keeps
//! its place in data instead:
//!
//! ```text
//!   Head ──head ok──▶ Connecting ──connected──▶ Exchange ──response done──▶ Head (keep-alive)
//!    │                    │ refused: next backend          │                  or Closing
//!    └─ bad head / 408 ───┴─────────── 502 / 503 / 504 ────┴──────────────▶ Closing ──▶ closed
//! ```
//!
//! Every event for the connection calls [`Reactor::drive`], which moves
//! as far as the sockets allow and stops at the first `WouldBlock`. Three
//! bounded buffers hold what is in flight: the head so far (`from_client`),
//! bytes for the backend (`to_upstream`) and bytes for the client
//! (`to_client`). A full buffer stops the reads that fill it:
//! backpressure, so a client that reads slowly holds a few KiB here, not
//! the whole response.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, Read, Write};
use std::net::{Shutdown as Half, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ch02_proxy::http::{Framing, HeadScan, Version, parse_request, parse_response, remove_hop_by_hop};
use ch02_proxy::proxy::{Fault, error_response, prepare_upstream_request};
use ch04_advanced::algorithm::{Context, pick_untried};
use ch04_advanced::headers::{client_ip, cookie};
use ch04_advanced::health::record_request;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::{Due, Reactor, Stats, Token};
use crate::framing::BodyTracker;
use crate::poller::{Event, Interest, Trigger};
use crate::timers::TimerId;

/// After an error response, how long we wait for the client to take it.
const LINGER: Duration = Duration::from_secs(2);

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Waiting for a file descriptor to connect with (all in use): the
    /// request waits in line, as in HAProxy's queue, rather than failing.
    Queued,
    /// A non-blocking connect to a backend is in progress.
    Connecting,
    /// The request goes up, the response comes down.
    Exchange,
    /// Sending the last bytes, then closing.
    Closing,
}

/// Bytes waiting to be written (or parsed), with a read position, so
/// taking bytes from the front does not move the rest.
#[derive(Debug, Default)]
pub struct Buf {
    data: Vec<u8>,
    start: usize,
}

impl Buf {
    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.data.len() - self.start
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or_default()
    }

    fn push(&mut self, bytes: &[u8]) {
        // Bytes already sent sit at the front until the buffer empties. A
        // reader that never quite catches up would keep it from emptying,
        // and the allocation would grow for ever; so before growing it, drop
        // the sent bytes instead. Memory stays near the bytes waiting.
        if self.start > 0 && self.data.len() + bytes.len() > self.data.capacity() {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }

    fn take_all(&mut self) -> Vec<u8> {
        let out = self.bytes().to_vec();
        self.clear();
        out
    }

    fn clear(&mut self) {
        self.data.clear();
        self.start = 0;
    }

    /// Gives the memory back: an idle connection should own no buffer.
    fn shrink(&mut self) {
        if self.is_empty() {
            self.data = Vec::new();
        }
    }
}

/// The backend side of a connection.
#[derive(Debug)]
pub struct Upstream {
    /// The socket (non-blocking).
    pub stream: TcpStream,
    /// Which node of the pool.
    pub node: usize,
    connected: bool,
    eof: bool,
    interest: Interest,
}

/// The request being served.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    /// Where the request body ends in the client's bytes.
    body: BodyTracker,
    /// Where the response body ends; `None` until the response head.
    response: Option<BodyTracker>,
    /// The response head so far.
    response_head: Vec<u8>,
    response_done: bool,
    status: u16,
    /// When the head arrived; the latency is measured from here.
    started: Instant,
    /// When the last request byte went to the backend.
    sent_at: Option<Instant>,
    /// Nodes tried so far (failover tries each at most once).
    tried: Vec<bool>,
    /// The request head as sent, kept while the request may be retried
    /// (idempotent, no body): `None` otherwise.
    replay: Option<Vec<u8>>,
    /// The failure that started a retry, answered if no backend is left.
    last_error: Option<(u16, String)>,
    /// The client (behind trusted proxies), the hashing key and the
    /// sticky cookie, to pick again on failover.
    client: std::net::IpAddr,
    key: String,
    cookie: Option<String>,
    set_cookie: Option<String>,
    bytes_up: u64,
    bytes_down: u64,
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    /// The client's socket (non-blocking).
    pub client: TcpStream,
    peer: SocketAddr,
    state: State,
    from_client: Buf,
    scan: HeadScan,
    to_upstream: Buf,
    to_client: Buf,
    /// The backend connection, during a request.
    pub upstream: Option<Upstream>,
    req: Option<Request>,
    /// The armed timer and when it fires.
    pub timer: Option<(TimerId, Instant)>,
    /// When the current phase began.
    since: Instant,
    last_active: Instant,
    /// What the poller watches the client socket for.
    pub client_interest: Interest,
    client_eof: bool,
    /// Our sending side is shut (Closing).
    shut_down: bool,
    keep_alive: bool,
    served: u32,
    /// Bytes in the three buffers, as last counted in the stats.
    pub buffered: usize,
}

impl Conn {
    /// A connection that has just been accepted.
    pub fn new(client: TcpStream, peer: SocketAddr, now: Instant) -> Self {
        Self {
            client,
            peer,
            state: State::Head,
            from_client: Buf::default(),
            scan: HeadScan::default(),
            to_upstream: Buf::default(),
            to_client: Buf::default(),
            upstream: None,
            req: None,
            timer: None,
            since: now,
            last_active: now,
            client_interest: Interest::READABLE,
            client_eof: false,
            shut_down: false,
            keep_alive: false,
            served: 0,
            buffered: 0,
        }
    }

    /// Waiting for a request with nothing received: safe to close on shutdown.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && self.from_client.is_empty()
    }

    /// The current phase's deadline.
    fn deadline(&self, r: &Reactor<'_>) -> Instant {
        let cfg = &r.lb.config;
        match self.state {
            State::Head => self.since + cfg.limits.header_timeout,
            State::Queued | State::Connecting => self.since + cfg.timeouts.connect,
            State::Exchange => match &self.req {
                Some(req) if req.response.is_none() && !req.response_done => match req.sent_at {
                    Some(at) => at + cfg.timeouts.response,
                    None => self.last_active + cfg.timeouts.idle,
                },
                _ => self.last_active + cfg.timeouts.idle,
            },
            State::Closing => self.since + LINGER,
        }
    }
}

/// What the poller said, from the point of view of one connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    client_read: bool,
    client_gone: bool,
    up_read: bool,
    up_write: bool,
}

impl Ready {
    /// An event on the client socket.
    pub fn client(e: &Event) -> Self {
        Self { client_read: e.readable, client_gone: e.error || e.closed, ..Self::default() }
    }

    /// An event on the upstream socket.
    pub fn upstream(e: &Event) -> Self {
        Self { up_read: e.readable, up_write: e.writable || e.error, ..Self::default() }
    }
}

/// What a step decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Go,
    Close,
}

/// The result of reading one socket as far as allowed.
struct Got {
    bytes: usize,
    eof: bool,
}

/// Reads from `stream` into `scratch`, at most `room` bytes, until
/// `WouldBlock`, end of stream or `room` is used up; hands each piece to
/// `take`. Errors other than `WouldBlock` are returned.
fn read_some(
    stream: &mut TcpStream,
    scratch: &mut [u8],
    mut room: usize,
    mut take: impl FnMut(&[u8]) -> Result<(), (u16, &'static str)>,
) -> Result<Result<Got, (u16, &'static str)>, io::Error> {
    let mut got = Got { bytes: 0, eof: false };
    while room > 0 {
        let want = room.min(scratch.len());
        let Some(window) = scratch.get_mut(..want) else { break };
        match stream.read(window) {
            Ok(0) => {
                got.eof = true;
                break;
            }
            Ok(n) => {
                got.bytes += n;
                room -= n;
                if let Err(e) = take(window.get(..n).unwrap_or_default()) {
                    return Ok(Err(e));
                }
                // A short read means the kernel had no more for now. With
                // level triggering we may stop here and save the read that
                // would only say WouldBlock: if more arrives, the next wait
                // reports it. (Edge-triggered code must read on until
                // WouldBlock, or it may never hear about the rest.)
                if n < want {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(got))
}

/// Writes as much of `buf` as the socket takes now; returns whether any
/// byte went out.
fn flush(stream: &mut TcpStream, buf: &mut Buf) -> io::Result<bool> {
    let mut wrote = false;
    while !buf.is_empty() {
        match stream.write(buf.bytes()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf.consume(n);
                wrote = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(wrote)
}

// ANCHOR: connect
/// Starts a non-blocking connect: the call returns at once, usually with
/// EINPROGRESS; the socket becomes *writable* when the handshake is done,
/// and SO_ERROR then says whether it worked.
pub(crate) fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// `b` split after its first `n` bytes (a body tracker's count, never more
/// than it was fed); a count past the end keeps everything in the first part.
fn split(b: &[u8], n: usize) -> (&[u8], &[u8]) {
    b.split_at_checked(n).unwrap_or((b, &[]))
}

/// Whether a connect that reported writable succeeded (SO_ERROR).
fn connect_result(stream: &TcpStream) -> io::Result<()> {
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
// ANCHOR_END: connect

impl Reactor<'_> {
    // ANCHOR: drive
    /// Moves connection `i` forward as far as its sockets allow.
    pub(crate) fn drive(&mut self, i: usize, ready: Ready) {
        // The connection is taken out of the table while we work on it, so
        // the rest of the reactor (poller, timers) can be borrowed freely.
        let Some(c) = self.conns.take(i) else { return };
        let now = Instant::now();
        self.guarded(i, c, now, |r, c| Some(r.step(i, c, ready, now)));
    }

    fn step(&mut self, i: usize, c: &mut Conn, ready: Ready, now: Instant) -> Flow {
        if ready.client_read {
            if c.client_interest.readable {
                if self.read_client(c, now) == Flow::Close {
                    return Flow::Close;
                }
            } else if ready.client_gone {
                // Not reading it, yet told it hung up or failed: the client
                // is gone; nobody is left to answer.
                return Flow::Close;
            }
        }
        if ready.up_write && c.state == State::Connecting {
            self.finish_connect(i, c, now);
        }
        if ready.up_read && c.state == State::Exchange {
            self.read_upstream(i, c, now);
        }
        // Now make every move the buffers allow, until nothing changes.
        for _ in 0..64 {
            let mut moved = false;
            if c.state == State::Head
                && !c.from_client.is_empty()
                && c.scan.worth_parsing(c.from_client.bytes(), &self.lb.config.limits)
            {
                moved |= self.parse_head(i, c, now);
            }
            if c.state == State::Head && c.client_eof {
                if c.from_client.is_empty() {
                    return Flow::Close;
                }
                // Whatever could be parsed has been: the rest is half a head.
                self.fail(c, 400, "connection closed in the middle of a head");
                moved = true;
            }
            if c.state == State::Exchange
                && let Some(up) = &mut c.upstream
                && !c.to_upstream.is_empty()
            {
                match flush(&mut up.stream, &mut c.to_upstream) {
                    Ok(wrote) => moved |= wrote,
                    Err(e) => {
                        self.retry_or_fail(i, c, 502, &format!("sending the request to the backend failed: {e}"), now);
                        moved = true;
                    }
                }
            }
            if let Some(req) = &mut c.req
                && req.sent_at.is_none()
                && req.body.is_done()
                && c.to_upstream.is_empty()
                && c.state == State::Exchange
            {
                req.sent_at = Some(now);
            }
            if !c.to_client.is_empty() {
                match flush(&mut c.client, &mut c.to_client) {
                    Ok(wrote) => {
                        if wrote {
                            c.last_active = now;
                            moved = true;
                        }
                    }
                    Err(_) => return Flow::Close,
                }
            }
            if c.to_client.is_empty() {
                if c.state == State::Closing {
                    // Tell the client we are done, then close once it has
                    // read (or after LINGER): closing with unread bytes in
                    // our receive queue would send RST, and RST can destroy
                    // the error response before the client reads it.
                    if !c.shut_down {
                        let _ = c.client.shutdown(Half::Write);
                        c.shut_down = true;
                    }
                    if c.client_eof {
                        return Flow::Close;
                    }
                }
                if c.state == State::Exchange && c.req.as_ref().is_some_and(|r| r.response_done) {
                    self.end_exchange(c, now);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        Flow::Go
    }
    // ANCHOR_END: drive

    /// Reads what the client sent, as far as the state wants it.
    fn read_client(&mut self, c: &mut Conn, now: Instant) -> Flow {
        let limits = self.lb.config.limits;
        let buffer = self.lb.config.buffer_size;
        let scratch = &mut self.scratch;
        let result = match c.state {
            State::Head => {
                let room = (limits.max_head_bytes + 1).saturating_sub(c.from_client.len());
                let from = &mut c.from_client;
                read_some(&mut c.client, scratch, room, |b| {
                    from.push(b);
                    Ok(())
                })
            }
            State::Queued | State::Connecting | State::Exchange => {
                let Some(req) = c.req.as_mut() else { return Flow::Go };
                // Body bytes go up (bounded by the buffer); once the body is
                // complete, what comes is the next request (bounded like a head).
                let room = if req.body.is_done() {
                    (limits.max_head_bytes + 1).saturating_sub(c.from_client.len())
                } else {
                    buffer.saturating_sub(c.to_upstream.len())
                };
                let (up, rest) = (&mut c.to_upstream, &mut c.from_client);
                read_some(&mut c.client, scratch, room, |b| {
                    let n = req.body.feed(b).map_err(|why| (400, why))?;
                    let (body, next) = split(b, n);
                    up.push(body);
                    req.bytes_up += n as u64;
                    // Bytes after the body are the next request: keep them.
                    rest.push(next);
                    Ok(())
                })
            }
            State::Closing => {
                // Lingering: read and drop what the client still sends.
                read_some(&mut c.client, scratch, 64 * 1024, |_| Ok(()))
            }
        };
        match result {
            Err(e) => {
                tracing::debug!(peer = %c.peer, error = %e, "client connection failed");
                Flow::Close
            }
            Ok(Err((status, why))) => {
                self.fail(c, status, &format!("malformed request body: {why}"));
                Flow::Go
            }
            Ok(Ok(got)) => {
                if got.bytes > 0 {
                    c.last_active = now;
                }
                if got.eof {
                    // A half-close: the client has sent everything it will
                    // send. Requests already received are still answered.
                    c.client_eof = true;
                    let body_unfinished = c.req.as_ref().is_some_and(|r| !r.body.is_done());
                    if c.state != State::Head && c.state != State::Closing && body_unfinished {
                        tracing::debug!(peer = %c.peer, "client closed in the middle of a request body");
                        return Flow::Close;
                    }
                }
                Flow::Go
            }
        }
    }

    /// Parses the head in `from_client`; a complete one starts the request.
    /// Returns whether anything changed.
    fn parse_head(&mut self, i: usize, c: &mut Conn, now: Instant) -> bool {
        let limits = &self.lb.config.limits;
        let (mut head, len) = match parse_request(c.from_client.bytes(), limits) {
            Ok(Some(parsed)) => parsed,
            Ok(None) if c.from_client.len() >= limits.max_head_bytes => {
                self.fail(c, 431, &format!("header section larger than {} bytes", limits.max_head_bytes));
                return true;
            }
            Ok(None) => return false,
            Err(e) => {
                let status = e.status().unwrap_or(400);
                self.fail(c, status, &e.to_string());
                return true;
            }
        };
        c.from_client.consume(len);
        c.scan = HeadScan::default();
        Stats::add(&self.lb.stats.requests, 1);
        c.keep_alive = head.version == Version::Http11 && !head.headers.has_token("connection", "close");
        // The client behind our trusted proxies, before we add ourselves.
        let client = client_ip(c.peer.ip(), &head.headers, &self.lb.config.trusted_proxies);
        if let Err(e) = prepare_upstream_request(&mut head, c.peer.ip(), "http") {
            self.fail(c, e.status.unwrap_or(400), &e.detail);
            return true;
        }
        // We answer `Expect: 100-continue` ourselves, as chapter 2 does.
        if head.headers.has_token("expect", "100-continue") && head.framing != Framing::Empty {
            c.to_client.push(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        head.headers.remove("expect");
        let pool = &self.lb.pool;
        let cookie_value =
            self.lb.algorithm.cookie_name().and_then(|name| cookie(&head.headers, name)).map(str::to_string);
        let mut req = Request {
            method: head.method.clone(),
            target: head.target.clone(),
            body: BodyTracker::new(head.framing),
            response: None,
            response_head: Vec::new(),
            response_done: false,
            status: 0,
            started: now,
            sent_at: None,
            tried: vec![false; pool.nodes.len()],
            replay: None,
            last_error: None,
            client,
            key: client.to_string(),
            cookie: cookie_value,
            set_cookie: None,
            bytes_up: 0,
            bytes_down: 0,
        };
        if head.headers.get("host").is_none() {
            head.headers.set("Host", "backend");
        }
        let bytes = head.to_bytes();
        req.bytes_up = bytes.len() as u64;
        c.to_upstream.push(&bytes);
        if head.is_idempotent() && head.framing == Framing::Empty {
            req.replay = Some(bytes);
        }
        // Body bytes that came with the head go up too; bytes after the
        // body stay for the next request.
        let rest = c.from_client.take_all();
        match req.body.feed(&rest) {
            Ok(n) => {
                let (body, next) = split(&rest, n);
                c.to_upstream.push(body);
                req.bytes_up += n as u64;
                c.from_client.push(next);
            }
            Err(why) => {
                c.req = Some(req);
                self.fail(c, 400, &format!("malformed request body: {why}"));
                return true;
            }
        }
        c.req = Some(req);
        self.connect_next(i, c, now);
        true
    }

    // ANCHOR: failover
    /// Connects to the next backend the algorithm picks among those not
    /// tried yet. A refusal (at once or later) tries the next one: nothing
    /// has been sent, so any request may be retried.
    fn connect_next(&mut self, i: usize, c: &mut Conn, now: Instant) {
        let pool = &self.lb.pool;
        loop {
            let Some(req) = c.req.as_mut() else { return };
            let ctx = Context { client_ip: req.client, key: &req.key, cookie: req.cookie.as_deref(), now };
            let Some(node) = pick_untried(self.lb.algorithm.as_ref(), pool, &ctx, &req.tried) else {
                let tried: Vec<&str> =
                    pool.nodes.iter().zip(&req.tried).filter(|&(_, &t)| t).map(|(n, _)| n.addr()).collect();
                // A retry that found nobody left: the client hears the
                // backend's failure that started it.
                if let Some((status, detail)) = req.last_error.take() {
                    return self.fail(c, status, &detail);
                }
                let detail = if tried.is_empty() {
                    "no healthy backend".to_string()
                } else {
                    format!("no backend could be reached (tried {})", tried.join(", "))
                };
                // Every backend refused: 503, as every balancer answers
                // (each refusal was charged to its backend already).
                self.fail(c, 503, &detail);
                return;
            };
            let (Some(seen), Some(&addr), Some(n)) =
                (req.tried.get_mut(node), self.lb.addrs.get(node), pool.nodes.get(node))
            else {
                return self.fail(c, 500, "the algorithm picked a backend that does not exist");
            };
            *seen = true;
            match start_connect(addr) {
                Ok(stream) => {
                    let token = Token::Upstream(i).encode();
                    if let Err(e) = self.poller.register(&stream, token, Interest::WRITABLE, Trigger::Level) {
                        self.fail(c, 500, &format!("cannot watch the backend socket: {e}"));
                        return;
                    }
                    n.backend.requests.fetch_add(1, Ordering::Relaxed);
                    n.backend.active.fetch_add(1, Ordering::Relaxed);
                    let sticky = self.lb.algorithm.cookie_name();
                    req.set_cookie = match sticky {
                        Some(name) if req.cookie.as_deref() != Some(n.id.as_str()) => {
                            Some(format!("{name}={}; Path=/; HttpOnly", n.id))
                        }
                        _ => None,
                    };
                    c.upstream =
                        Some(Upstream { stream, node, connected: false, eof: false, interest: Interest::WRITABLE });
                    c.state = State::Connecting;
                    c.since = now;
                    return;
                }
                Err(e) if ch01_fundamentals::net::is_out_of_descriptors(&e) => {
                    // Every descriptor is in use: wait in line until one
                    // is released (`drop_upstream`), up to the connect timeout.
                    if let Some(seen) = req.tried.get_mut(node) {
                        *seen = false;
                    }
                    tracing::debug!(peer = %c.peer, waiting = self.waiting.len() + 1,
                        "all descriptors in use; the request waits in line");
                    if c.state != State::Queued {
                        c.state = State::Queued;
                        c.since = now;
                    }
                    self.waiting.push_back(i);
                    return;
                }
                Err(e) if ch01_fundamentals::net::is_local_shortage(&e) => {
                    // Our shortage (ports, descriptors, memory), not the
                    // backend's fault: no passive-health mark against it.
                    self.fail(c, 503, &format!("cannot open a connection to a backend: {e}"));
                    return;
                }
                Err(e) => self.connect_failed(node, &e.to_string()),
            }
        }
    }

    /// Counts a failed connect against the node (passive health).
    fn connect_failed(&mut self, node: usize, why: &str) {
        let n = self.lb.node(node);
        tracing::debug!(backend = %n.addr(), error = why, "connect failed; trying the next backend");
        n.backend.failures.fetch_add(1, Ordering::Relaxed);
        record_request(n, false, &self.lb.config.health, Instant::now());
    }

    /// The connect finished (writable): did it work?
    fn finish_connect(&mut self, i: usize, c: &mut Conn, now: Instant) {
        let Some(up) = &mut c.upstream else { return };
        match connect_result(&up.stream) {
            Ok(()) => {
                up.connected = true;
                c.state = State::Exchange;
                c.since = now;
                c.last_active = now;
            }
            Err(e) => {
                let Some(up) = c.upstream.take() else { return };
                let node = up.node;
                self.drop_upstream(up);
                self.connect_failed(node, &e.to_string());
                self.connect_next(i, c, now);
            }
        }
    }
    // ANCHOR_END: failover

    /// Reads the backend's answer: first its head (checked, edited), then
    /// its body, as far as the client's buffer has room.
    fn read_upstream(&mut self, i: usize, c: &mut Conn, now: Instant) {
        let limits = self.lb.config.limits;
        let Some(up) = &mut c.upstream else { return };
        let Some(req) = c.req.as_mut() else { return };
        let scratch = &mut self.scratch;
        let result = if req.response.is_none() {
            let room = (limits.max_head_bytes + 1).saturating_sub(req.response_head.len());
            let head = &mut req.response_head;
            read_some(&mut up.stream, scratch, room, |b| {
                head.extend_from_slice(b);
                Ok(())
            })
        } else {
            let room = self.lb.config.buffer_size.saturating_sub(c.to_client.len());
            let (to_client, tracker, down) = (&mut c.to_client, &mut req.response, &mut req.bytes_down);
            read_some(&mut up.stream, scratch, room, |b| {
                let Some(t) = tracker.as_mut() else { return Ok(()) };
                let n = t.feed(b).map_err(|why| (502, why))?;
                to_client.push(split(b, n).0);
                *down += n as u64;
                Ok(())
            })
        };
        let got = match result {
            Ok(Ok(got)) => got,
            Ok(Err((_, why))) => {
                self.fail(c, 502, &format!("the backend sent a malformed body: {why}"));
                return;
            }
            Err(e) => {
                self.retry_or_fail(i, c, 502, &format!("reading from the backend failed: {e}"), now);
                return;
            }
        };
        if got.bytes > 0 {
            c.last_active = now;
        }
        if got.eof {
            up.eof = true;
        }
        if req.response.is_none() {
            self.parse_response_head(i, c, got.eof, now);
        }
        let Some(req) = c.req.as_mut() else { return };
        let Some(up) = &c.upstream else { return };
        if let Some(t) = &req.response
            && !req.response_done
        {
            if t.is_done() {
                req.response_done = true;
            } else if up.eof {
                if !t.until_close() {
                    // Cut short: the head is out, so all we can do is end
                    // the connection, which tells the client.
                    tracing::warn!(peer = %c.peer, target = %req.target, "response body cut short by the backend");
                    c.keep_alive = false;
                }
                req.response_done = true;
            }
        }
    }

    /// Turns the backend's response head, once complete, into ours.
    fn parse_response_head(&mut self, i: usize, c: &mut Conn, eof: bool, now: Instant) {
        let limits = self.lb.config.limits;
        let Some(req) = c.req.as_mut() else { return };
        loop {
            let parsed = match parse_response(&req.response_head, &limits, &req.method) {
                Ok(Some(parsed)) => parsed,
                Ok(None) if eof && req.response_head.is_empty() => {
                    return self.retry_or_fail(i, c, 502, "the backend closed the connection without answering", now);
                }
                Ok(None) if eof => {
                    return self.fail(c, 502, "the backend closed the connection in the middle of a head");
                }
                Ok(None) if req.response_head.len() > limits.max_head_bytes => {
                    return self.fail(c, 502, "the backend's response head is too large");
                }
                Ok(None) => return,
                Err(e) => return self.fail(c, 502, &format!("the backend sent an invalid response: {e}")),
            };
            let (mut head, len) = parsed;
            let rest = req.response_head.split_off(len);
            if (100..200).contains(&head.status) {
                // 100 Continue and friends: the real response follows.
                req.response_head = rest;
                continue;
            }
            req.response_head = Vec::new();
            remove_hop_by_hop(&mut head.headers);
            // Keep the client's connection only when the response has an
            // end of its own, the whole request went up (a backend may
            // answer early; the rest of the body must not be read as the
            // next request), and the client has not left.
            if head.framing == Framing::UntilClose || !req.body.is_done() || (c.client_eof && c.from_client.is_empty())
            {
                c.keep_alive = false;
            }
            head.headers.set("Connection", if c.keep_alive { "keep-alive" } else { "close" });
            if let Some(value) = &req.set_cookie {
                head.headers.push("Set-Cookie", value.clone());
            }
            req.status = head.status;
            let bytes = head.to_bytes();
            req.bytes_down = bytes.len() as u64;
            c.to_client.push(&bytes);
            let mut tracker = BodyTracker::new(head.framing);
            match tracker.feed(&rest) {
                Ok(n) => {
                    c.to_client.push(split(&rest, n).0);
                    req.bytes_down += n as u64;
                }
                Err(why) => {
                    req.response = Some(tracker);
                    return self.fail(c, 502, &format!("the backend sent a malformed body: {why}"));
                }
            }
            req.response = Some(tracker);
            return;
        }
    }

    /// The response is complete and sent: log, count, and wait for the
    /// next request or close.
    fn end_exchange(&mut self, c: &mut Conn, now: Instant) {
        let Some(req) = c.req.take() else { return };
        if let Some(up) = c.upstream.take() {
            let node = self.lb.node(up.node);
            let latency = now.saturating_duration_since(req.started);
            node.latency.record(latency);
            self.lb.algorithm.on_response(up.node, latency);
            node.backend.bytes_out.fetch_add(req.bytes_up, Ordering::Relaxed);
            node.backend.bytes_in.fetch_add(req.bytes_down, Ordering::Relaxed);
            record_request(node, true, &self.lb.config.health, now);
            if !up.eof {
                // The backend has not closed yet, so closing now would make
                // us the side that closes first, and that side keeps the
                // connection in TIME_WAIT for a minute. A load balancer
                // opening thousands of connections a second to one backend
                // would soon hold all ~28,000 local ports that way, and
                // connect() would fail with EADDRNOTAVAIL. The response is
                // complete, so end with a reset instead: no TIME_WAIT.
                let _ = SockRef::from(&up.stream).set_linger(Some(Duration::ZERO));
            }
            tracing::info!(peer = %c.peer, method = %req.method, target = %req.target, backend = %node.addr(),
                status = req.status, ms = latency.as_millis() as u64, "request");
            self.drop_upstream(up);
        }
        c.served += 1;
        c.to_upstream.clear();
        if c.keep_alive && !(c.client_eof && c.from_client.is_empty()) {
            c.state = State::Head;
            c.since = now;
            c.scan = HeadScan::default();
            c.to_upstream.shrink();
            c.to_client.shrink();
            c.from_client.shrink();
        } else {
            c.state = State::Closing;
            c.since = now;
        }
    }

    // ANCHOR: retry
    /// The backend failed before any byte of its response arrived. The
    /// retry rule (chapter 2's `ProxyError::may_retry`): an idempotent
    /// request without a body goes to the next untried backend, the failed
    /// one charged; anything else is answered with `status`.
    fn retry_or_fail(&mut self, i: usize, c: &mut Conn, status: u16, detail: &str, now: Instant) {
        let Some(req) = c.req.as_mut() else { return self.fail(c, status, detail) };
        let nothing_received = req.response.is_none() && req.response_head.is_empty();
        let Some(replay) = req.replay.as_ref().filter(|_| nothing_received) else {
            return self.fail(c, status, detail);
        };
        c.to_upstream.clear();
        c.to_upstream.push(replay);
        req.sent_at = None;
        req.last_error = Some((status, detail.to_string()));
        if let Some(up) = c.upstream.take() {
            let node = self.lb.node(up.node);
            node.backend.failures.fetch_add(1, Ordering::Relaxed);
            record_request(node, false, &self.lb.config.health, now);
            tracing::info!(peer = %c.peer, backend = %node.addr(), error = detail, "no response; retrying on another backend");
            self.drop_upstream(up);
        }
        self.connect_next(i, c, now);
    }
    // ANCHOR_END: retry

    /// Answers the client with an error (when nothing of a response has
    /// been sent yet) and ends the connection.
    fn fail(&mut self, c: &mut Conn, status: u16, detail: &str) {
        let started_response = c.req.as_ref().is_some_and(|r| r.response.is_some());
        let method = c.req.as_ref().map_or("-", |r| r.method.as_str()).to_string();
        let target = c.req.as_ref().map_or("-", |r| r.target.as_str()).to_string();
        if let Some(up) = c.upstream.take() {
            // The backend's failures count against it (passive health);
            // the rule is chapter 2's `Fault`, the same in every balancer.
            if Fault::of_status(status) == Fault::Backend {
                let node = self.lb.node(up.node);
                node.backend.failures.fetch_add(1, Ordering::Relaxed);
                record_request(node, false, &self.lb.config.health, Instant::now());
            }
            self.drop_upstream(up);
        }
        c.req = None;
        c.keep_alive = false;
        c.to_upstream.clear();
        c.state = State::Closing;
        c.since = Instant::now();
        if started_response {
            tracing::warn!(peer = %c.peer, %method, %target, error = detail, "response cut short");
            // The client sees the connection end early; that is all we can say.
            c.to_client.clear();
            c.client_eof = true;
            return;
        }
        Stats::add(&self.lb.stats.errors, 1);
        tracing::warn!(peer = %c.peer, %method, %target, status, error = detail, "request failed");
        c.to_client.clear();
        c.to_client.push(&error_response(status, detail));
    }

    /// Stops watching an upstream socket and closes it.
    fn drop_upstream(&mut self, up: Upstream) {
        let _ = self.poller.deregister(&up.stream);
        self.lb.node(up.node).backend.active.fetch_sub(1, Ordering::Relaxed);
        drop(up); // closes the socket: one descriptor free
        self.resume_one_waiting();
    }

    /// Gives a freed descriptor to the request that has waited longest.
    fn resume_one_waiting(&mut self) {
        while let Some(i) = self.waiting.pop_front() {
            // The connection in hand is out of the table (`take` says None);
            // a closed one is gone. Either way, try the next in line.
            let Some(mut c) = self.conns.take(i) else { continue };
            if c.state != State::Queued {
                self.conns.put(i, c);
                continue;
            }
            let now = Instant::now();
            self.connect_next(i, &mut c, now);
            self.sync(i, &mut c, now);
            self.conns.put(i, c);
            return;
        }
    }

    // ANCHOR: backpressure
    /// Tells the poller what each socket should be watched for now. This is
    /// where backpressure happens: a full buffer takes away the read
    /// interest of the side that fills it, so the kernel's buffers fill,
    /// TCP's window closes, and the sender slows down.
    fn sync(&mut self, i: usize, c: &mut Conn, now: Instant) {
        let buffer = self.lb.config.buffer_size;
        let limits = self.lb.config.limits;
        let reading_body = c.req.as_ref().is_some_and(|r| !r.body.is_done());
        let client = Interest {
            readable: !c.client_eof
                && match c.state {
                    State::Head => true,
                    // While the body comes, read it as far as the buffer
                    // allows; after it, keep watching (a pipelined request, or
                    // the client hanging up) unless a whole head is waiting.
                    // Keeping the interest unchanged saves two epoll_ctl calls
                    // per request.
                    State::Queued | State::Connecting | State::Exchange if reading_body => c.to_upstream.len() < buffer,
                    State::Queued | State::Connecting | State::Exchange => c.from_client.len() <= limits.max_head_bytes,
                    State::Closing => c.to_client.is_empty(),
                },
            writable: !c.to_client.is_empty(),
        };
        if client != c.client_interest
            && self.poller.reregister(&c.client, Token::Client(i).encode(), client, Trigger::Level).is_ok()
        {
            c.client_interest = client;
        }
        if let Some(up) = &mut c.upstream {
            let waiting = c.req.as_ref().is_some_and(|r| !r.response_done);
            let want = if !up.connected {
                Interest::WRITABLE
            } else {
                Interest {
                    readable: !up.eof && waiting && c.to_client.len() < buffer,
                    writable: !c.to_upstream.is_empty(),
                }
            };
            if want != up.interest
                && self.poller.reregister(&up.stream, Token::Upstream(i).encode(), want, Trigger::Level).is_ok()
            {
                up.interest = want;
            }
        }
        let held = c.from_client.len() + c.to_upstream.len() + c.to_client.len();
        let stats = &self.lb.stats;
        if held > c.buffered {
            stats.buffered.fetch_add((held - c.buffered) as u64, Ordering::Relaxed);
        } else {
            stats.buffered.fetch_sub((c.buffered - held) as u64, Ordering::Relaxed);
        }
        c.buffered = held;
        stats.peak_per_connection.fetch_max(held as u64, Ordering::Relaxed);
        self.arm_conn(i, c, now);
    }
    // ANCHOR_END: backpressure

    // ANCHOR: timers
    /// Makes sure a timer fires no later than the connection's deadline.
    /// An earlier timer is kept: when it fires, the deadline is checked
    /// again and the timer re-armed. So a busy connection does not cancel
    /// and re-insert a timer on every read (lazy re-arming).
    fn arm_conn(&mut self, i: usize, c: &mut Conn, _now: Instant) {
        let want = c.deadline(self);
        match c.timer {
            Some((_, at)) if at <= want => {}
            Some((id, _)) => {
                self.timers.cancel(id);
                c.timer = Some((self.timers.insert(want, Due::Conn(i)), want));
            }
            None => c.timer = Some((self.timers.insert(want, Due::Conn(i)), want)),
        }
    }

    /// Arms connection `i`'s timer (right after accepting it).
    pub(crate) fn arm(&mut self, i: usize, now: Instant) {
        let Some(mut c) = self.conns.take(i) else { return };
        self.arm_conn(i, &mut c, now);
        self.conns.put(i, c);
    }

    /// A connection's timer fired: a deadline passed, or it is re-armed.
    pub(crate) fn on_conn_timer(&mut self, i: usize, now: Instant) {
        let Some(c) = self.conns.take(i) else { return };
        self.guarded(i, c, now, |r, c| r.conn_deadline(i, c, now));
    }

    /// What a connection's timer does: `None` when it was only re-armed.
    fn conn_deadline(&mut self, i: usize, c: &mut Conn, now: Instant) -> Option<Flow> {
        c.timer = None;
        if c.deadline(self) > now {
            self.arm_conn(i, c, now);
            return None;
        }
        let c = &mut *c;
        let cfg = &self.lb.config;
        match c.state {
            State::Head if c.from_client.is_empty() && c.served > 0 => {
                // An idle keep-alive connection: close quietly.
                return Some(Flow::Close);
            }
            State::Head => {
                let t = cfg.limits.header_timeout;
                self.fail(c, 408, &format!("no complete head within {t:?}"));
            }
            State::Queued => {
                let t = cfg.timeouts.connect;
                self.fail(c, 503, &format!("no connection to a backend could be opened within {t:?}"));
            }
            State::Connecting => {
                let t = cfg.timeouts.connect;
                if let Some(up) = c.upstream.take() {
                    let node = up.node;
                    self.drop_upstream(up);
                    self.connect_failed(node, &format!("no connection within {t:?}"));
                }
                // A retry keeps the failure that started it for the client.
                let retrying = c.req.as_ref().is_some_and(|r| r.last_error.is_some());
                self.connect_next(i, c, now);
                if c.state == State::Closing && !c.to_client.is_empty() && !retrying {
                    // All tried: the last failure was a timeout.
                    let detail = format!("no backend accepted a connection within {t:?}");
                    c.to_client.clear();
                    c.to_client.push(&error_response(504, &detail));
                }
            }
            State::Exchange => {
                let waiting_head = c.req.as_ref().is_some_and(|r| r.response.is_none() && r.sent_at.is_some());
                let uploading = c.req.as_ref().is_some_and(|r| !r.body.is_done());
                if waiting_head {
                    let t = cfg.timeouts.response;
                    self.retry_or_fail(i, c, 504, &format!("the backend did not answer within {t:?}"), now);
                } else if uploading {
                    let t = cfg.timeouts.idle;
                    self.fail(c, 408, &format!("the request body stalled for {t:?}"));
                } else {
                    let t = cfg.timeouts.idle;
                    self.fail(c, 504, &format!("the response stalled for {t:?}"));
                }
            }
            State::Closing => return Some(Flow::Close),
        }
        Some(self.step(i, c, Ready::default(), now))
    }
    // ANCHOR_END: timers

    // ANCHOR: backstop
    /// Runs `work` on connection `i` (taken out of the table), then puts it
    /// back, syncs its interest and timer, or closes it, as `work` says
    /// (`None`: put back untouched).
    ///
    /// The backstop: a panic inside `work` is a bug in our code, and one
    /// connection's bug must not end every other connection this thread
    /// serves. The panic is caught here, the connection is closed, logged
    /// with its slot and peer, and counted; the loop goes on. This is not
    /// error handling: errors are values, answered with a status. Only a
    /// bug lands here, and the log line is there so it gets fixed.
    pub(crate) fn guarded(
        &mut self,
        i: usize,
        mut c: Conn,
        now: Instant,
        work: impl FnOnce(&mut Self, &mut Conn) -> Option<Flow>,
    ) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let flow = work(self, &mut c);
            if flow == Some(Flow::Go) {
                self.sync(i, &mut c, now);
            }
            flow
        }));
        match outcome {
            Ok(None | Some(Flow::Go)) => self.conns.put(i, c),
            Ok(Some(Flow::Close)) => self.dispose(i, c),
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Stats::add(&self.lb.stats.panics, 1);
                tracing::error!(conn = i, peer = %c.peer, panic = %what, "a bug panicked while serving this connection: closed it; the loop goes on");
                self.dispose(i, c);
            }
        }
    }
    // ANCHOR_END: backstop

    /// Closes a connection that has been taken out of the table.
    pub(crate) fn dispose(&mut self, i: usize, mut c: Conn) {
        if let Some((id, _)) = c.timer.take() {
            self.timers.cancel(id);
        }
        let _ = self.poller.deregister(&c.client);
        if let Some(up) = c.upstream.take() {
            self.drop_upstream(up);
        }
        let stats = &self.lb.stats;
        stats.open.fetch_sub(1, Ordering::Relaxed);
        stats.buffered.fetch_sub(c.buffered as u64, Ordering::Relaxed);
        self.conns.release(i);
        // Dropping `c` closes the client socket: one descriptor free for a
        // request waiting in line.
        drop(c);
        if !self.waiting.is_empty() {
            self.resume_one_waiting();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Buf;

    #[test]
    fn a_buffer_that_never_empties_does_not_grow_without_bound() {
        let mut b = Buf::default();
        let piece = [7u8; 1000];
        b.push(&piece);
        for _ in 0..10_000 {
            // The reader takes a little less than what arrives each time,
            // until the writer stops at 16 KiB waiting (backpressure).
            b.consume(900);
            if b.len() + piece.len() <= 16 * 1024 {
                b.push(&piece);
            }
        }
        assert!(b.len() <= 16 * 1024);
        assert!(b.data.capacity() <= 64 * 1024, "capacity {} for {} bytes waiting", b.data.capacity(), b.len());
    }

    #[test]
    fn bytes_come_out_in_order() {
        let mut b = Buf::default();
        b.push(b"hello ");
        b.consume(2);
        b.push(b"world");
        assert_eq!(b.bytes(), b"llo world");
        assert_eq!(b.take_all(), b"llo world");
        assert!(b.is_empty());
    }
}
