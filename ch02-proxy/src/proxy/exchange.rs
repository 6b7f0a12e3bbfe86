//! Connecting upstream, and carrying one request and its response across
//! (the blocking proxies of chapters 2 to 4).
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ch01_fundamentals::io::write_all;

use super::{ProxyError, Timeouts, error_response, send_error};
use crate::body::{BodyError, copy_body};
use crate::http::{Buffered, Framing, HeadError, Limits, RequestHead, ResponseHead, remove_hop_by_hop};

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
