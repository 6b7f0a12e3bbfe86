//! What the forward and the reverse proxy share: error responses,
//! connecting upstream, and carrying one request and its response across.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, ErrorKind, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ch01_fundamentals::io::write_all;

use crate::body::{BodyError, copy_body};
use crate::http::{Buffered, Framing, HeadError, Limits, RequestHead, ResponseHead, remove_hop_by_hop};

/// Timeouts for each phase of an exchange; every phase has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to the upstream server.
    pub connect: Duration,
    /// From the end of the request to the upstream's response head.
    pub response: Duration,
    /// No byte moving either way, during a body or a tunnel.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), response: Duration::from_secs(30), idle: Duration::from_secs(60) }
    }
}

// ANCHOR: proxy_error
/// Whose fault a failure is. One rule for every proxy and balancer in the
/// book: the fault, not the status code, decides whether the backend's
/// passive health suffers and whether the request may go elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client's: a request we refuse (4xx), or a client that left.
    Client,
    /// The backend's: refused or dropped the connection, sent an invalid
    /// response, or did not answer in time (502, 504). Counts against it.
    Backend,
    /// Ours: no backend to send to, or a local shortage such as file
    /// descriptors or ports (500, 503). Never counts against a backend.
    Local,
}

impl Fault {
    /// The fault a status means when nothing more is known: 4xx is the
    /// client's, 502 and 504 the backend's, anything else ours.
    pub fn of_status(status: u16) -> Self {
        match status {
            400..=499 => Fault::Client,
            502 | 504 => Fault::Backend,
            _ => Fault::Local,
        }
    }
}

/// A failure that the proxy reports to its client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ProxyError {
    /// The status to answer with; `None` when the client is gone.
    pub status: Option<u16>,
    /// What went wrong, in words; it becomes the response body.
    pub detail: String,
    /// Whose fault it is.
    pub fault: Fault,
    /// The backend failed before any byte of its response arrived (it
    /// closed, reset, or stayed silent): an idempotent request may be
    /// sent to another backend.
    pub nothing_received: bool,
}

impl ProxyError {
    /// An error answered with `status`, whose fault the status tells
    /// ([`Fault::of_status`]).
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self { status: Some(status), detail: detail.into(), fault: Fault::of_status(status), nothing_received: false }
    }

    /// The backend failed before sending a single byte of a response.
    pub fn backend_silent(status: u16, detail: impl Into<String>) -> Self {
        Self { fault: Fault::Backend, nothing_received: true, ..Self::new(status, detail) }
    }

    /// Nothing could be sent anywhere: no backend, or every one failed to
    /// connect. 503, and our fault: the backends were charged already,
    /// each for its own failed connect.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self { fault: Fault::Local, ..Self::new(503, detail) }
    }

    /// The backend broke off in the middle of a response whose head the
    /// client already has: nothing can be answered, and the backend is
    /// charged.
    pub fn backend_cut(detail: impl Into<String>) -> Self {
        Self { status: None, detail: detail.into(), fault: Fault::Backend, nothing_received: false }
    }

    /// The client went away: nothing to answer.
    pub fn client_gone(detail: impl Into<String>) -> Self {
        Self { status: None, detail: detail.into(), fault: Fault::Client, nothing_received: false }
    }

    /// Whether this failure counts against the backend (passive health).
    pub fn blames_backend(&self) -> bool {
        self.fault == Fault::Backend
    }

    /// The retry rule: a request may go to another backend when the
    /// backend failed before any byte of a response arrived, the method is
    /// idempotent (GET, HEAD, OPTIONS, PUT, DELETE), and the request has
    /// no body we have already spent. (A failed *connect* may always be
    /// retried: nothing was sent; the balancers' failover loops do that.)
    pub fn may_retry(&self, request: &RequestHead) -> bool {
        self.fault == Fault::Backend
            && self.nothing_received
            && request.is_idempotent()
            && request.framing == Framing::Empty
    }
}

impl From<HeadError> for ProxyError {
    fn from(e: HeadError) -> Self {
        let status = e.status();
        Self { status, detail: e.to_string(), fault: Fault::Client, nothing_received: false }
    }
}
// ANCHOR_END: proxy_error

/// The reason phrase of the statuses our proxies send.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// What a proxy tells a client it has no room for (connection limit, no
/// descriptor or thread left): chapter 1's `ServerConfig::busy_reply`. A
/// constant, because it is sent from the accept loop with nothing to spare.
pub const BUSY_REPLY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 57\r\nConnection: close\r\n\r\n503 Service Unavailable: too many connections; try again\n";

// ANCHOR: error_response
/// A complete error response whose body says what happened, in words a
/// person reading curl's output can act on.
pub fn error_response(status: u16, detail: &str) -> Vec<u8> {
    let body = format!("{status} {}: {detail}\n", reason(status));
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )
    .into_bytes()
}
// ANCHOR_END: error_response

/// Sends the error response for `error`, if the client can still hear it.
pub fn send_error(client: &mut TcpStream, error: &ProxyError) {
    if let Some(status) = error.status {
        let _ = write_all(client, &error_response(status, &error.detail));
    }
}

// ANCHOR: connect_upstream
/// Resolves `host:port` and connects to the first address that answers.
/// Refused or unresolvable: 502. No answer in time: 504.
pub fn connect_upstream(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ProxyError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ProxyError::new(502, format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(ProxyError::new(502, format!("{host} has no address")));
    }
    let mut timed_out = false;
    let mut last = None;
    for addr in &addrs {
        match ch01_fundamentals::net::connect(*addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => timed_out = true,
            Err(e) if ch01_fundamentals::net::is_local_shortage(&e) => {
                // Our shortage, not the server's: never charged to it.
                return Err(ProxyError::new(503, format!("cannot open a connection to {host}:{port}: {e}")));
            }
            Err(e) => last = Some(e),
        }
    }
    if timed_out {
        Err(ProxyError::new(504, format!("{host}:{port} did not accept a connection within {timeout:?}")))
    } else {
        let why = last.map_or_else(|| "unknown error".to_string(), |e| e.to_string());
        Err(ProxyError::new(502, format!("cannot connect to {host}:{port}: {why}")))
    }
}
// ANCHOR_END: connect_upstream

/// One request and its response, for logs and statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The client's address.
    pub client: SocketAddr,
    /// The request method.
    pub method: String,
    /// The request target as the client sent it.
    pub target: String,
    /// The status the client got (ours or the upstream's).
    pub status: u16,
    /// From the request head's arrival to the end of the response.
    pub latency: Duration,
    /// Request bytes sent upstream (head and body).
    pub bytes_up: u64,
    /// Response bytes sent to the client (head and body).
    pub bytes_down: u64,
}

/// Something to call with every finished exchange (an access log, stats).
pub type ExchangeHook = Arc<dyn Fn(&Exchange) + Send + Sync>;

/// What [`forward_exchange`] carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The upstream's response head, as it was sent on to the client.
    pub response: ResponseHead,
    /// Request bytes sent upstream.
    pub bytes_up: u64,
    /// Response bytes sent to the client.
    pub bytes_down: u64,
    /// The upstream's body broke off or was malformed after its head had
    /// gone to the client: the client saw the connection end early, and
    /// the upstream is to blame (a balancer charges it).
    pub cut_short: bool,
}

// ANCHOR: forward_exchange
/// Carries one request (its head already edited for the upstream) and the
/// response across: head, body by its framing, response head, response
/// body by its framing. The connection closes afterwards (one request per
/// connection in this chapter; chapter 5 keeps client connections open
/// between requests, chapter 6 backend connections).
pub fn forward_exchange(
    client: &mut Buffered,
    client_out: &mut dyn Write,
    request: RequestHead,
    upstream: TcpStream,
    limits: &Limits,
    timeouts: &Timeouts,
) -> Result<Forwarded, ProxyError> {
    forward_exchange_with(client, client_out, request, upstream, limits, timeouts, &mut |_| {})
}

/// [`forward_exchange`], with a chance to edit the response head before it
/// goes to the client (a load balancer adds `Set-Cookie` or `X-Request-ID`).
pub fn forward_exchange_with(
    client: &mut Buffered,
    client_out: &mut dyn Write,
    mut request: RequestHead,
    upstream: TcpStream,
    limits: &Limits,
    timeouts: &Timeouts,
    edit_response: &mut dyn FnMut(&mut ResponseHead),
) -> Result<Forwarded, ProxyError> {
    // We answer `Expect: 100-continue` ourselves: the client then sends
    // its body, which we forward with the head.
    if request.headers.has_token("expect", "100-continue") && request.framing != Framing::Empty {
        write_all(client_out, b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|e| ProxyError::client_gone(e.to_string()))?;
    }
    request.headers.remove("expect");
    // An HTTP/1.0 request may come without Host; we always speak HTTP/1.1
    // upstream, where Host is required: name the server we connected to.
    if request.headers.get("host").is_none()
        && let Ok(peer) = upstream.peer_addr()
    {
        request.headers.set("Host", peer.to_string());
    }
    let request_head = request.to_bytes();
    let mut upstream = Buffered::new(upstream);
    let _ = upstream.stream.set_write_timeout(Some(timeouts.idle));
    let _ = client.stream.set_read_timeout(Some(timeouts.idle));
    // A client that stops reading a large response must not hold this
    // thread and the upstream connection forever.
    let _ = client.stream.set_write_timeout(Some(timeouts.idle));
    write_all(&mut upstream.stream, &request_head)
        .map_err(|e| ProxyError::backend_silent(502, format!("sending the request upstream failed: {e}")))?;
    let body_up = copy_body(client, &mut upstream.stream, request.framing).map_err(|e| match e {
        BodyError::Malformed(why) => ProxyError::new(400, format!("malformed request body: {why}")),
        BodyError::Write(e) => ProxyError::new(502, format!("sending the request body upstream failed: {e}")),
        e @ (BodyError::Truncated(_) | BodyError::Read(_)) => ProxyError::client_gone(e.to_string()),
    })?;

    let mut response = match upstream.read_response_head(limits, &request.method, timeouts.response) {
        Ok(response) => response,
        Err(e) => {
            let silent = upstream.buf.is_empty();
            return Err(match e {
                HeadError::Timeout(t) if silent => {
                    ProxyError::backend_silent(504, format!("the upstream server did not answer within {t:?}"))
                }
                HeadError::Timeout(t) => {
                    ProxyError::new(504, format!("the upstream server's response head stalled for {t:?}"))
                }
                HeadError::Closed => {
                    ProxyError::backend_silent(502, "the upstream server closed the connection without answering")
                }
                HeadError::Io(kind) if silent => {
                    ProxyError::backend_silent(502, format!("the upstream server dropped the connection: {kind}"))
                }
                e => ProxyError::new(502, format!("the upstream server sent an invalid response: {e}")),
            });
        }
    };
    remove_hop_by_hop(&mut response.headers);
    response.headers.set("Connection", "close");
    edit_response(&mut response);
    let response_head = response.to_bytes();
    write_all(client_out, &response_head).map_err(|e| ProxyError::client_gone(e.to_string()))?;
    let _ = upstream.stream.set_read_timeout(Some(timeouts.idle));
    let (body_down, cut_short) = match copy_body(&mut upstream, client_out, response.framing) {
        Ok(n) => (n, false),
        // The client stopped listening: its doing, not the upstream's.
        Err(BodyError::Write(e)) => return Err(ProxyError::client_gone(e.to_string())),
        Err(e) => {
            // The head is out: all we can do is cut the connection short,
            // which tells the client the response is incomplete.
            tracing::warn!(error = %e, "response body cut short");
            (0, true)
        }
    };
    Ok(Forwarded {
        response,
        bytes_up: request_head.len() as u64 + body_up,
        bytes_down: response_head.len() as u64 + body_down,
        cut_short,
    })
}
// ANCHOR_END: forward_exchange

// ANCHOR: serve_one
/// Serves one client connection of a proxy that answers one request per
/// connection. Reads and validates the head; a refused head is answered
/// with its status, logged and passed to the hook as method and target
/// `-`. Otherwise `exchange` carries the request (it gets the buffered
/// client, a second handle for writing to it, the head and the client's
/// address), and `finish` answers its error if any, logs and calls the hook.
pub fn serve_one<F>(stream: TcpStream, limits: &Limits, hook: Option<&ExchangeHook>, exchange: F) -> io::Result<()>
where
    F: FnOnce(&mut Buffered, &mut TcpStream, RequestHead, SocketAddr) -> Result<Forwarded, ProxyError>,
{
    let peer = stream.peer_addr()?;
    let mut out = stream.try_clone()?;
    let mut client = Buffered::new(stream);
    let arrived = Instant::now();
    let head = match client.read_request_head(limits) {
        Ok(head) => head,
        Err(e) => {
            finish(hook, &mut out, peer, "-".into(), "-".into(), arrived, Err(e.into()));
            return Ok(());
        }
    };
    // The latency logged is the proxy's and the upstream's, not how slowly
    // the client sent its head: the clock starts now.
    let started = Instant::now();
    let (method, target) = (head.method.clone(), head.target.clone());
    let result = exchange(&mut client, &mut out, head, peer);
    finish(hook, &mut out, peer, method, target, started, result);
    Ok(())
}
// ANCHOR_END: serve_one

/// Ends an exchange: answers the error if there was one, logs a line, and
/// calls the hook (an access log) with what happened.
pub fn finish(
    hook: Option<&ExchangeHook>,
    out: &mut TcpStream,
    peer: SocketAddr,
    method: String,
    target: String,
    started: Instant,
    result: Result<Forwarded, ProxyError>,
) {
    let (status, bytes_up, bytes_down) = match result {
        Ok(f) => (f.response.status, f.bytes_up, f.bytes_down),
        Err(e) => {
            send_error(out, &e);
            match e.status {
                Some(status) => {
                    tracing::warn!(%peer, %method, %target, status, error = %e.detail, "request failed");
                    (status, 0, error_response(status, &e.detail).len() as u64)
                }
                None => {
                    tracing::debug!(%peer, error = %e.detail, "client went away");
                    return;
                }
            }
        }
    };
    let latency = started.elapsed();
    tracing::info!(%peer, %method, %target, status, ms = latency.as_millis() as u64, bytes_up, bytes_down, "request");
    if let Some(hook) = hook {
        hook(&Exchange { client: peer, method, target, status, latency, bytes_up, bytes_down });
    }
}

// ANCHOR: prepare_upstream_request
/// Turns a client's request into the one a reverse proxy or load balancer
/// sends upstream: CONNECT refused (405), an absolute-form target turned
/// into origin form, hop-by-hop headers removed, forwarding headers added
/// for `client`, and one request per connection (`Connection: close`).
pub fn prepare_upstream_request(head: &mut RequestHead, client: IpAddr, proto: &str) -> Result<(), ProxyError> {
    if head.method == "CONNECT" {
        return Err(ProxyError::new(405, "CONNECT tunnels are not offered here: this is not a forward proxy"));
    }
    // Servers must accept absolute-form targets too; upstream gets origin form.
    if !head.target.starts_with('/') && head.target != "*" {
        head.target = split_absolute_http(&head.target)?.1;
    }
    remove_hop_by_hop(&mut head.headers);
    crate::forwarding::add_forwarding_headers(&mut head.headers, client, proto);
    head.headers.set("Connection", "close");
    Ok(())
}
// ANCHOR_END: prepare_upstream_request

/// Splits an absolute-form `http://authority/path?query` target into the
/// authority and the origin-form rest (`/path?query`, at least `/`).
pub fn split_absolute_http(target: &str) -> Result<(&str, String), ProxyError> {
    // Byte-level prefix checks: the target is network bytes, and a slice
    // at a fixed offset can land inside a multi-byte character.
    let Some(rest) = strip_prefix_ignore_case(target, "http://") else {
        if strip_prefix_ignore_case(target, "https://").is_some() {
            return Err(ProxyError::new(400, "https:// URLs go through CONNECT (curl does this with -x for https)"));
        }
        return Err(ProxyError::new(400, "a forward proxy needs an absolute http:// URL or CONNECT host:port"));
    };
    // `find` returns a character boundary, and `split_at_checked` would
    // say so if it did not.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at_checked(end).unwrap_or((rest, ""));
    if authority.is_empty() || authority.contains('@') {
        return Err(ProxyError::new(400, "the URL has no host, or has user information"));
    }
    let path = path.split('#').next().unwrap_or("");
    let origin = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    Ok((authority, origin))
}

/// `s` without its ASCII prefix `prefix` (compared case-insensitively), or
/// `None` when `s` does not start with it. Compares bytes, so it never cuts
/// inside a character.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    // The prefix is ASCII, so equal bytes end on a character boundary.
    head.eq_ignore_ascii_case(prefix.as_bytes()).then(|| s.get(prefix.len()..)).flatten()
}

/// Why a backend that speaks TLS is refused on the command line.
pub const NO_TLS_TO_BACKENDS: &str = "TLS to backends is not part of this curriculum yet: an https:// or port-443 \
backend would be spoken to in plain text. Give a plain-HTTP backend (TLS is discussed in Part IV of the book)";

/// Whether a backend given as `spec` (`https://host`, `host:443`,
/// `host:443:weight`) expects TLS, which our balancers do not speak.
pub fn is_tls_backend(spec: &str) -> bool {
    if strip_prefix_ignore_case(spec, "https://").is_some() {
        return true;
    }
    let spec = strip_prefix_ignore_case(spec, "http://").unwrap_or(spec);
    // `host:443[:w]` splits into host, port, weight; `[v6]:443[:w]` leaves
    // `:443[:w]` after the bracket, which splits into "", port, weight.
    let rest = spec.rsplit_once(']').map_or(spec, |(_, after)| after);
    rest.split(':').nth(1) == Some("443")
}

/// Splits an authority into host and port, with `default_port` when it has
/// none.
pub fn host_and_port(authority: &str, default_port: u16) -> Result<(String, u16), ProxyError> {
    if let Some((host, port)) = crate::http::split_authority(authority) {
        return Ok((host.to_string(), port));
    }
    let bracketed = authority.strip_prefix('[').and_then(|a| a.strip_suffix(']'));
    let host = bracketed.unwrap_or(authority);
    if host.is_empty() || (bracketed.is_none() && host.contains(':')) {
        return Err(ProxyError::new(400, format!("bad host in {authority:?}")));
    }
    Ok((host.to_string(), default_port))
}

/// Turns an io error on the client side into "client gone".
pub fn client_io(e: io::Error) -> ProxyError {
    ProxyError::client_gone(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_urls_split_into_authority_and_origin_form() {
        assert_eq!(split_absolute_http("http://example.com/a?b#c").unwrap(), ("example.com", "/a?b".to_string()));
        assert_eq!(split_absolute_http("http://example.com").unwrap(), ("example.com", "/".to_string()));
        assert_eq!(split_absolute_http("HTTP://h:81?q").unwrap(), ("h:81", "/?q".to_string()));
        assert_eq!(split_absolute_http("https://h/").unwrap_err().status, Some(400));
        assert_eq!(split_absolute_http("/relative").unwrap_err().status, Some(400));
        assert_eq!(split_absolute_http("http://user@h/").unwrap_err().status, Some(400));
        // Regression: a target whose eighth byte is inside a character
        // (`a€€€`) once panicked on a `[..8]` slice.
        assert_eq!(split_absolute_http("a\u{20ac}\u{20ac}\u{20ac}").unwrap_err().status, Some(400));
        assert_eq!(split_absolute_http("http://\u{20ac}/\u{20ac}").unwrap(), ("\u{20ac}", "/\u{20ac}".to_string()));
    }

    #[test]
    fn tls_backends_are_recognised() {
        for tls in ["https://h", "HTTPS://h:8443", "h:443", "h:443:2", "[::1]:443", "[::1]:443:5", "http://h:443"] {
            assert!(is_tls_backend(tls), "{tls}");
        }
        for plain in ["h:80", "h:4430", "h:8443:443", "[::443]:80", "http://h:9001", "127.0.0.1:9001"] {
            assert!(!is_tls_backend(plain), "{plain}");
        }
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(host_and_port("h", 80).unwrap(), ("h".to_string(), 80));
        assert_eq!(host_and_port("h:8080", 80).unwrap(), ("h".to_string(), 8080));
        assert_eq!(host_and_port("[::1]", 80).unwrap(), ("::1".to_string(), 80));
        assert_eq!(host_and_port("[::1]:81", 80).unwrap(), ("::1".to_string(), 81));
        assert!(host_and_port("h:port", 80).is_err());
    }

    #[test]
    fn the_busy_reply_is_the_503_error_response() {
        assert_eq!(BUSY_REPLY, &error_response(503, "too many connections; try again")[..]);
    }

    #[test]
    fn error_responses_are_complete_http() {
        let r = String::from_utf8(error_response(502, "cannot connect to x")).unwrap();
        assert!(r.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
        assert!(r.ends_with("\r\n\r\n502 Bad Gateway: cannot connect to x\n"));
        assert!(r.contains("Content-Length: 37\r\n"));
    }
}
