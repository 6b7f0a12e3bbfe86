//! `static_server`: files from a directory over HTTP/1.1, bodies sent
//! with `sendfile`, every connection on one thread.
//!
//! The loop is chapter 5's: non-blocking sockets, a [`Poller`] saying
//! which can move, and each connection a small state machine. A
//! connection is *reading* (bytes gather until chapter 2's parser finds a
//! whole head) or *sending* a [`Reply`]. For each head, [`plan`] decides
//! everything before a byte goes out: [`files`](crate::files) says which
//! file, which part, and whether the client's copy is still good. The
//! reply's head goes out with `TCP_CORK` set, so that it and the first
//! bytes of the body leave in one packet; the body follows with
//! [`send_file`]. When the socket is full the connection waits to be
//! writable; when it has sent [`StaticConfig::max_chunk`] bytes in one
//! turn it yields, so that one client on a fast link cannot keep the
//! loop from the others (nginx's `sendfile_max_chunk`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ch01_fundamentals::server::Shutdown;
use ch02_proxy::http::{Framing, HeadError, Limits, RequestHead, Version, parse_request};
use ch05_event_loop::poller::{Interest, Mechanism, Poller, Trigger};

use crate::files::{self, Part, Refused};
use crate::sendfile::send_file;

/// What the server is configured with.
#[derive(Debug, Clone)]
pub struct StaticConfig {
    /// The directory served; nothing outside it ever is.
    pub root: PathBuf,
    /// Head limits, and how long a client may take to send a head (the
    /// next one, on a keep-alive connection).
    pub limits: Limits,
    /// Most body bytes one connection sends in one turn of the loop.
    pub max_chunk: usize,
    /// How long a client may go without accepting a byte of its reply.
    pub write_timeout: Duration,
    /// Clients held at once; more get a 503 and are closed.
    pub max_connections: usize,
    /// Which system call waits.
    pub poller: Mechanism,
}

impl StaticConfig {
    /// Serves `root` with the default limits and a 2 MiB chunk.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            limits: Limits::default(),
            max_chunk: 2 << 20,
            write_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            poller: Mechanism::best(),
        }
    }
}

/// A response head, and which bytes of which file follow it.
#[derive(Debug)]
pub struct Plan {
    /// The status code.
    pub status: u16,
    /// Header fields after the status line (not `Connection`).
    pub headers: Vec<(&'static str, String)>,
    /// The body: a file's bytes `start..start + len`, or a short text.
    pub body: Body,
}

/// What follows a response head.
#[derive(Debug)]
pub enum Body {
    /// Bytes of an open file.
    File {
        /// The file.
        file: File,
        /// The first byte.
        start: u64,
        /// How many bytes.
        len: u64,
    },
    /// A short text (an error's explanation).
    Text(String),
    /// Nothing (304, and any answer to HEAD).
    Empty,
}

fn text(status: u16, detail: &str) -> Plan {
    let body = format!("{status} {}: {detail}\n", ch02_proxy::proxy::reason(status));
    let headers =
        vec![("Content-Type", "text/plain; charset=utf-8".to_string()), ("Content-Length", body.len().to_string())];
    Plan { status, headers, body: Body::Text(body) }
}

// ANCHOR: plan
/// What to answer `head` with: the whole decision, before any byte is
/// sent.
pub fn plan(head: &RequestHead, config: &StaticConfig) -> Plan {
    if head.method != "GET" && head.method != "HEAD" {
        let mut p = text(405, "this server answers GET and HEAD only");
        p.headers.push(("Allow", "GET, HEAD".to_string()));
        return p;
    }
    let found = files::segments(&head.target).and_then(|segs| files::resolve(&config.root, &segs));
    let found = match found {
        Ok(found) => found,
        Err(Refused::NotFound) => return text(404, "no such file"),
        Err(refused @ (Refused::Malformed(why) | Refused::Forbidden(why))) => return text(refused.status(), why),
    };
    let file = match File::open(&found.path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return text(404, "no such file"),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return text(403, "the file cannot be read"),
        // Out of descriptors, say: ours to fix, not the client's.
        Err(e) => return text(503, &format!("the file cannot be opened now ({e}); try again")),
    };
    let len = found.metadata.len();
    let modified = found.metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
    let etag = files::etag(len, modified);
    let field = |name: &str| head.headers.get(name).map(String::from_utf8_lossy);
    let mut headers = vec![
        ("ETag", etag.clone()),
        ("Last-Modified", files::http_date(modified)),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    if files::not_modified(field("if-none-match").as_deref(), field("if-modified-since").as_deref(), &etag, modified) {
        return Plan { status: 304, headers, body: Body::Empty };
    }
    headers.push(("Content-Type", files::content_type(&found.path).to_string()));
    // A range applies only to the version the client has (If-Range): with
    // any If-Range, the whole file is sent, which is always correct.
    let asked = if head.headers.get("if-range").is_some() { None } else { field("range") };
    let (status, start, count) = match files::range(asked.as_deref(), len) {
        Part::Whole => (200, 0, len),
        Part::Range { start, end } => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
            (206, start, end - start + 1)
        }
        Part::Unsatisfiable => {
            let mut p = text(416, "the range is outside the file");
            p.headers.push(("Content-Range", format!("bytes */{len}")));
            return p;
        }
    };
    headers.push(("Content-Length", count.to_string()));
    Plan { status, headers, body: Body::File { file, start, len: count } }
}
// ANCHOR_END: plan

// ANCHOR: reply
/// A reply under way: its head (with a short text body, if any), then
/// the file's bytes `offset..end`.
#[derive(Debug)]
pub struct Reply {
    head: Vec<u8>,
    written: usize,
    file: Option<(File, u64, u64)>,
    /// Whether the connection reads another request afterwards.
    keep: bool,
    /// Body bytes sent so far (for the log).
    sent: u64,
    /// What the log line says of the request.
    request: String,
    status: u16,
}

/// Where a reply got to in one turn.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// All sent.
    Done,
    /// The socket is full: wait until it is writable.
    Blocked,
    /// The turn's budget is spent: go on next turn, after the others.
    Budget,
}

impl Reply {
    /// The reply to `plan`: only its head for `HEAD`, and `keep` says
    /// whether the connection stays open after it.
    pub fn new(plan: Plan, head_only: bool, keep: bool, request: String) -> Self {
        let mut head = format!("HTTP/1.1 {} {}\r\n", plan.status, ch02_proxy::proxy::reason(plan.status));
        for (name, value) in &plan.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str(if keep { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
        let mut head = head.into_bytes();
        let mut text_len = 0;
        let file = match plan.body {
            _ if head_only => None,
            Body::File { file, start, len } => Some((file, start, start + len)),
            Body::Text(text) => {
                head.extend_from_slice(text.as_bytes());
                text_len = text.len() as u64;
                None
            }
            Body::Empty => None,
        };
        // A text body is counted as sent with the head: the log's `bytes`.
        Self { head, written: 0, file, keep, sent: text_len, request, status: plan.status }
    }

    /// Sends what the socket takes, at most `budget` body bytes.
    pub fn push(&mut self, out: &TcpStream, budget: usize) -> io::Result<Pushed> {
        while let Some(rest) = self.head.get(self.written..).filter(|r| !r.is_empty()) {
            match (&*out).write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let Some((file, offset, end)) = &mut self.file else { return Ok(Pushed::Done) };
        let mut this_turn = 0;
        while *offset < *end {
            if this_turn >= budget {
                return Ok(Pushed::Budget);
            }
            let want = usize::try_from(*end - *offset).unwrap_or(usize::MAX).min(budget - this_turn);
            match send_file(out, file, offset, want) {
                // The client was promised the bytes and cannot be given
                // them: the connection ends (an error).
                Ok((0, _)) => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was sent"));
                }
                Ok((n, _)) => {
                    this_turn += n;
                    self.sent += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Pushed::Done)
    }

    /// Whether a file body follows the head (then the head is corked).
    fn has_file(&self) -> bool {
        self.file.is_some()
    }
}
// ANCHOR_END: reply

/// One client connection.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes read and not yet parsed.
    input: Vec<u8>,
    /// The client ended its side.
    eof: bool,
    reply: Option<Reply>,
    /// Reading: when the head must be complete. Sending: when the client
    /// must have accepted another byte.
    deadline: Instant,
    watching: Interest,
}

/// What a connection waits for after a turn.
enum Next {
    Wait(Interest),
    /// It has more to send and used its turn's budget.
    Busy,
    Close,
}

const LISTENER: usize = usize::MAX;
const NONE: Interest = Interest { readable: false, writable: false };

struct Server<'a> {
    config: &'a StaticConfig,
    poller: Poller,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
}

// ANCHOR: run
/// Serves `config.root` on `listener` until `shutdown` fires.
pub fn run(listener: TcpListener, config: &StaticConfig, shutdown: Shutdown) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    shutdown.wake_listener(listener.local_addr()?);
    let mut server =
        Server { config, poller: Poller::new(config.poller)?, conns: Vec::new(), free: Vec::new(), open: 0 };
    server.poller.register(&listener, LISTENER, Interest::READABLE, Trigger::Level)?;
    let mut events = Vec::with_capacity(1024);
    // Connections that used their budget and go on without waiting.
    let mut busy = Vec::new();
    let mut last_sweep = Instant::now();
    while !shutdown.is_triggered() {
        let timeout = if busy.is_empty() { Duration::from_millis(250) } else { Duration::ZERO };
        server.poller.wait(&mut events, Some(timeout))?;
        if shutdown.is_triggered() {
            break;
        }
        for e in events.iter() {
            if e.token == LISTENER {
                server.accept_all(&listener);
            } else {
                server.drive(e.token, &mut busy);
            }
        }
        for slot in std::mem::take(&mut busy) {
            server.drive(slot, &mut busy);
        }
        if last_sweep.elapsed() >= Duration::from_millis(250) {
            server.sweep(&mut busy);
            last_sweep = Instant::now();
        }
    }
    Ok(())
}
// ANCHOR_END: run

impl Server<'_> {
    fn accept_all(&mut self, listener: &TcpListener) {
        while let Some((stream, peer)) = crate::accept_next(listener) {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if self.open >= self.config.max_connections {
                // One try at a short answer; the socket buffer is empty.
                let _ = (&stream).write(ch02_proxy::proxy::BUSY_REPLY);
                tracing::warn!(%peer, max = self.config.max_connections, "too many connections; answered 503");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if self.poller.register(&stream, slot, Interest::READABLE, Trigger::Level).is_err() {
                self.free.push(slot);
                continue;
            }
            let deadline = Instant::now() + self.config.limits.header_timeout;
            let conn = Conn {
                stream,
                peer,
                input: Vec::new(),
                eof: false,
                reply: None,
                deadline,
                watching: Interest::READABLE,
            };
            if let Some(entry) = self.conns.get_mut(slot) {
                *entry = Some(conn);
            }
            self.open += 1;
        }
    }

    /// Moves connection `slot` on as far as it goes without waiting.
    fn drive(&mut self, slot: usize, busy: &mut Vec<usize>) {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else { return };
        let next = match step(&mut conn, self.config) {
            Ok(next) => next,
            Err(e) => {
                tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
                Next::Close
            }
        };
        let want = match next {
            Next::Close => return self.close(slot, conn),
            Next::Busy => {
                busy.push(slot);
                NONE
            }
            Next::Wait(interest) => interest,
        };
        if want != conn.watching {
            let changed = match (conn.watching == NONE, want == NONE) {
                (true, _) => self.poller.register(&conn.stream, slot, want, Trigger::Level),
                (false, true) => self.poller.deregister(&conn.stream),
                (false, false) => self.poller.reregister(&conn.stream, slot, want, Trigger::Level),
            };
            if changed.is_err() {
                return self.close(slot, conn);
            }
            conn.watching = want;
        }
        if let Some(entry) = self.conns.get_mut(slot) {
            *entry = Some(conn);
        }
    }

    fn close(&mut self, slot: usize, conn: Conn) {
        if conn.watching != NONE {
            let _ = self.poller.deregister(&conn.stream);
        }
        self.open -= 1;
        self.free.push(slot);
    }

    /// Ends what is past its deadline: a client silent between requests is
    /// closed, one that started a head and stopped gets a 408, one that
    /// stopped taking its reply is closed.
    fn sweep(&mut self, busy: &mut Vec<usize>) {
        let now = Instant::now();
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else { continue };
            if now < conn.deadline {
                continue;
            }
            if conn.reply.is_some() || conn.input.is_empty() {
                let why = if conn.reply.is_some() { "the client stopped reading" } else { "idle" };
                tracing::debug!(peer = %conn.peer, why, "connection closed after its timeout");
                if let Some(conn) = self.conns.get_mut(slot).and_then(Option::take) {
                    self.close(slot, conn);
                }
                continue;
            }
            let e = HeadError::Timeout(self.config.limits.header_timeout);
            conn.reply = Some(refusal(&e));
            conn.deadline = now + self.config.write_timeout;
            busy.push(slot);
        }
    }
}

fn refusal(e: &HeadError) -> Reply {
    let status = e.status().unwrap_or(400);
    Reply::new(text(status, &e.to_string()), false, false, "-".to_string())
}

// ANCHOR: step
/// One turn of a connection: send what it owes, then read and parse, as
/// long as neither the socket nor the budget says stop.
fn step(conn: &mut Conn, config: &StaticConfig) -> io::Result<Next> {
    loop {
        if let Some(reply) = &mut conn.reply {
            let before = (reply.written, reply.sent);
            let pushed = reply.push(&conn.stream, config.max_chunk)?;
            if (reply.written, reply.sent) != before {
                conn.deadline = Instant::now() + config.write_timeout;
            }
            match pushed {
                Pushed::Blocked => return Ok(Next::Wait(Interest::WRITABLE)),
                Pushed::Budget => return Ok(Next::Busy),
                Pushed::Done => {}
            }
            if reply.has_file() {
                set_cork(&conn.stream, false);
            }
            tracing::info!(peer = %conn.peer, request = %reply.request, status = reply.status, bytes = reply.sent, "request");
            if !reply.keep {
                return Ok(Next::Close);
            }
            conn.reply = None;
            conn.deadline = Instant::now() + config.limits.header_timeout;
        }
        match parse_request(&conn.input, &config.limits) {
            Ok(Some((head, len))) => {
                conn.input.drain(..len);
                conn.reply = Some(answer(&head, config));
                if let Some(reply) = &conn.reply
                    && reply.has_file()
                {
                    // Corked, the head waits in the socket until the first
                    // body bytes join it: one packet, not a tiny one and a
                    // full one.
                    set_cork(&conn.stream, true);
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                conn.reply = Some(refusal(&e));
                continue;
            }
        }
        if conn.eof {
            // Closed between requests, or in the middle of a head.
            return Ok(Next::Close);
        }
        let mut chunk = [0u8; 16 * 1024];
        match (&conn.stream).read(&mut chunk) {
            Ok(0) => conn.eof = true,
            Ok(n) => conn.input.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Next::Wait(Interest::READABLE)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: step

/// The reply to one parsed head.
fn answer(head: &RequestHead, config: &StaticConfig) -> Reply {
    // GET and HEAD have no body; one that comes anyway would be read as
    // the next request, so the connection ends after this answer.
    let keep = head.version == Version::Http11
        && !head.headers.has_token("connection", "close")
        && head.framing == Framing::Empty;
    let request = format!("{} {}", head.method, head.target);
    Reply::new(plan(head, config), head.method == "HEAD", keep, request)
}

#[cfg(target_os = "linux")]
fn set_cork(out: &TcpStream, on: bool) {
    // Failure only costs a packet.
    let _ = socket2::SockRef::from(out).set_tcp_cork(on);
}

#[cfg(not(target_os = "linux"))]
fn set_cork(_out: &TcpStream, _on: bool) {}
