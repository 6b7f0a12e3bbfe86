//! The admin listener: a second port, on loopback unless the operator says
//! otherwise, that answers
//!
//! | path | what |
//! |---|---|
//! | `/metrics` | every series, in the Prometheus text format |
//! | `/lb-stats` | the same numbers as JSON, per backend, with latency percentiles |
//! | `/healthz` | 200 while the process runs (liveness) |
//! | `/readyz` | 200 when at least one backend is healthy, else 503 (readiness) |
//! | `/` | a live dashboard: one page that polls `/lb-stats` and draws it |
//!
//! A program built on this chapter's may add paths ([`Routes`]; chapter
//! 10 adds `/reload` and `/config`).
//!
//! It runs on threads of its own, with blocking sockets: a scrape every
//! few seconds does not need the event loop, and a slow scraper must never
//! hold up a request. A thread per connection, at most [`MAX_CLIENTS`] at
//! once, each with read and write timeouts; requests are GET or HEAD, with
//! heads parsed by chapter 2's parser under its limits.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ch02_proxy::http::{Framing, Limits, Version, parse_request};
use ch05_event_loop::lb::backends::Current;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::balancer::Metrics;
use crate::registry::Format;
use crate::stats::lb_stats;

/// Admin connections served at once; more are answered 503 and closed.
pub const MAX_CLIENTS: usize = 16;

/// How long an admin client may take to send a head or read an answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Heads from admin clients: small, since only GETs are served.
fn limits() -> Limits {
    Limits { max_head_bytes: 8 * 1024, max_target_bytes: 2 * 1024, max_headers: 64, ..Limits::default() }
}

/// A response: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
    /// With a 405, the methods the path takes (`GET, HEAD` if `None`).
    pub allow: Option<&'static str>,
    /// Runs once the answer has been written (and the connection closed):
    /// for what would cut the answer off, such as chapter 10's upgrade,
    /// whose old process stops once the new one serves.
    pub then: Option<Then>,
}

/// What runs after an [`Answer`] is written.
#[derive(Clone)]
pub struct Then(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Then {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Then(..)")
    }
}

impl PartialEq for Then {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Then {}

/// Paths a program adds: called with the method and the path (no query)
/// of every request before this module's own paths; `None` passes it on.
#[derive(Clone)]
pub struct Routes(pub Arc<Route>);

/// One function that answers some paths: method and path in, maybe an answer out.
pub type Route = dyn Fn(&str, &str) -> Option<Answer> + Send + Sync;

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Routes")
    }
}

impl Answer {
    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self { status, content_type: "text/plain; charset=utf-8", body: body.into(), allow: None, then: None }
    }
}

// ANCHOR: route
/// The answer to `method` on `target`; `accept` is the request's
/// `Accept` header, which chooses the format of `/metrics`.
pub fn route(metrics: &Metrics, method: &str, target: &str, accept: Option<&str>) -> Answer {
    let path = target.split(['?', '#']).next().unwrap_or(target);
    if let Some(answer) = metrics.admin_routes().and_then(|routes| (routes.0)(method, path)) {
        return answer;
    }
    if method != "GET" && method != "HEAD" {
        return Answer::text(405, "the admin listener answers GET and HEAD only\n");
    }
    match path {
        "/metrics" => {
            let format = Format::from_accept(accept);
            let body = metrics.registry.render_as(format);
            Answer { status: 200, content_type: format.content_type(), body, allow: None, then: None }
        }
        "/lb-stats" => {
            let body = serde_json::to_string_pretty(&lb_stats(metrics)).unwrap_or_default() + "\n";
            Answer { status: 200, content_type: "application/json", body, allow: None, then: None }
        }
        "/healthz" => Answer::text(200, "ok\n"),
        "/readyz" => readiness(metrics),
        "/" => {
            let body = DASHBOARD.to_string();
            Answer { status: 200, content_type: "text/html; charset=utf-8", body, allow: None, then: None }
        }
        _ => Answer::text(404, "not found; try /metrics, /lb-stats, /healthz or /readyz\n"),
    }
}
// ANCHOR_END: route

/// The live dashboard: one page, no dependencies, that polls `/lb-stats`
/// every second and draws what it finds (`src/dashboard.html`).
const DASHBOARD: &str = include_str!("dashboard.html");

/// Ready when at least one backend is healthy.
fn readiness(metrics: &Metrics) -> Answer {
    let Some(running) = metrics.running() else { return Answer::text(503, "not ready: still starting\n") };
    readiness_of(&running.current)
}

/// `GET /readyz` for the set in use in `current`: 200 when at least one of
/// its backends is healthy, 503 when none is (chapter 10's layer 4 mode
/// answers with it too).
pub fn readiness_of(current: &Current) -> Answer {
    let backends = current.load();
    let total = backends.pool.nodes.len();
    let healthy = backends.pool.nodes.iter().filter(|n| n.is_healthy()).count();
    if healthy > 0 {
        Answer::text(200, format!("ready: {healthy} of {total} backends healthy\n"))
    } else {
        Answer::text(503, format!("not ready: none of {total} backends is healthy\n"))
    }
}

/// Binds the admin listener on `addr` and serves it on a thread of its
/// own until the process ends. Returns the address bound (`addr` may
/// name port 0).
pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> io::Result<SocketAddr> {
    start_on(TcpListener::bind(addr)?, metrics)
}

/// [`start`] on a socket already listening (chapter 10's upgrade hands
/// the old process's admin socket to the new one). The thread takes
/// connections until [`Metrics::stop_admin`].
pub fn start_on(listener: TcpListener, metrics: Arc<Metrics>) -> io::Result<SocketAddr> {
    let local = listener.local_addr()?;
    // Non-blocking, so that the thread waits in `poll` for a connection or
    // the stop, never in `accept`: a socket shared with another process
    // may see its connection taken by the other between the two.
    listener.set_nonblocking(true)?;
    let (stop, stopped) = UnixStream::pair()?;
    metrics.set_admin_stop(Stop(stop));
    std::thread::Builder::new().name("admin".into()).spawn(move || accept_loop(&listener, &stopped, &metrics))?;
    Ok(local)
}

/// The write end of the admin thread's stop socket: a byte there, and the
/// thread takes no more connections.
#[derive(Debug)]
pub struct Stop(UnixStream);

impl Stop {
    /// Asks the admin thread to stop taking connections; false if it is
    /// gone already.
    pub fn stop(&self) -> bool {
        (&self.0).write_all(&[1]).is_ok()
    }
}

/// Waits for either a connection or the stop; true when stopped.
fn wait_for_client(listener: &TcpListener, stopped: &UnixStream) -> io::Result<bool> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN), PollFd::new(stopped.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Any event on the stop socket (a byte, or its other end closed) stops.
    Ok(fds.get(1).and_then(PollFd::revents).is_some_and(|r| !r.is_empty()))
}

fn accept_loop(listener: &TcpListener, stopped: &UnixStream, metrics: &Arc<Metrics>) {
    let busy = Arc::new(AtomicUsize::new(0));
    loop {
        match wait_for_client(listener, stopped) {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                tracing::warn!(error = %e, "admin listener: cannot wait for connections");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        let mut stream = match listener.accept() {
            Ok((s, _)) => s,
            // Taken by another process sharing the socket, or gone again.
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                // Out of descriptors, say: do not spin.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        // Served with blocking reads and writes, under timeouts.
        if let Err(e) = stream.set_nonblocking(false) {
            tracing::warn!(error = %e, "admin client dropped: cannot make its socket blocking");
            continue;
        }
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::AcqRel);
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            let _ = write_answer(&mut stream, &Answer::text(503, "too many admin clients\n"), false, false);
            continue;
        }
        let (metrics, busy) = (Arc::clone(metrics), Arc::clone(&busy));
        let spawned = std::thread::Builder::new().name("admin-client".into()).spawn(move || {
            if let Err(e) = serve(stream, &metrics) {
                tracing::debug!(error = %e, "admin client ended with an error");
            }
            busy.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start an admin thread");
        }
    }
}

/// Serves one admin connection: requests one after another (keep-alive)
/// until the client closes, asks to close, or breaks the rules.
fn serve(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let limits = limits();
    loop {
        let parsed = match parse_request(&buf, &limits) {
            Ok(Some(parsed)) => parsed,
            Ok(None) if buf.len() >= limits.max_head_bytes => {
                return write_answer(&mut stream, &Answer::text(431, "request head too large\n"), false, false);
            }
            Ok(None) => {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                continue;
            }
            Err(e) => {
                let answer = Answer::text(e.status().unwrap_or(400), format!("{e}\n"));
                return write_answer(&mut stream, &answer, false, false);
            }
        };
        let (head, len) = parsed;
        buf.drain(..len.min(buf.len()));
        // Admin requests have no body; one that has one is answered and
        // the connection closed, so the body is never read as a request.
        let keep = head.version == Version::Http11
            && !head.headers.has_token("connection", "close")
            && head.framing == Framing::Empty;
        let accept = head.headers.get("accept").map(String::from_utf8_lossy);
        let answer = route(metrics, &head.method, &head.target, accept.as_deref());
        if let Some(Then(then)) = &answer.then {
            // The last answer on this connection, written and closed first.
            let written = write_answer(&mut stream, &answer, head.method == "HEAD", false);
            drop(stream);
            then();
            return written;
        }
        write_answer(&mut stream, &answer, head.method == "HEAD", keep)?;
        if !keep {
            return Ok(());
        }
    }
}

fn write_answer(stream: &mut TcpStream, answer: &Answer, head_only: bool, keep: bool) -> io::Result<()> {
    let reason = ch02_proxy::proxy::reason(answer.status);
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    );
    if answer.status == 405 {
        out.push_str(&format!("Allow: {}\r\n", answer.allow.unwrap_or("GET, HEAD")));
    }
    out.push_str(if keep { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    if !head_only {
        out.push_str(&answer.body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()
}
