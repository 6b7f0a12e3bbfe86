//! The forward proxy: clients are configured to send everything through
//! it (`curl -x`, a browser's proxy setting), and it reaches out to
//! whatever server they name.
//!
//! Two kinds of request arrive:
//!
//! - `CONNECT host:port`: open a TCP connection to host:port, answer
//!   `200 Connection Established`, then relay bytes blindly both ways. This
//!   is how HTTPS goes through a proxy: the proxy never sees inside.
//! - `GET http://host/path` (absolute form): a plain HTTP request that the
//!   proxy forwards in origin form (`GET /path`) and whose response it
//!   passes back.
//!
//! A forward proxy that connects anywhere is an *open relay* that anyone
//! can use to hide behind. This one only connects to allowed ports: 443
//! for CONNECT and 80 for plain requests, widened with `--allow-port`.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use ch01_fundamentals::io::write_all;
use ch01_fundamentals::server::{ServeStats, ServerConfig, Shutdown, serve};

use crate::http::{Buffered, Limits, RequestHead, ResponseHead, remove_hop_by_hop, split_authority};
use crate::proxy::{
    ExchangeHook, Forwarded, ProxyError, Timeouts, client_io, connect_upstream, forward_exchange, host_and_port,
    serve_one, split_absolute_http,
};
use crate::relay::{RelayEnd, relay};

// ANCHOR: response_cache
/// A store of whole responses for plain GETs, which the forward proxy
/// consults before going to the origin. The proxy only carries bytes in
/// and out; the cache decides what it keeps and for how long (lab 6.2's
/// `HttpCache` is one, plugged in by the `forward_proxy` binary).
pub trait ResponseCache: Send + Sync {
    /// The stored response for `key` (the absolute URL), as sent to the
    /// client, if there is one still fresh at `now`.
    fn lookup(&self, key: &str, now: Instant) -> Option<Vec<u8>>;

    /// Offers the response to `request`: `response` is its head, `bytes`
    /// the whole response as sent to the client. The cache may keep it or
    /// not.
    fn store(&self, key: &str, request: &RequestHead, response: &ResponseHead, bytes: Vec<u8>, now: Instant);

    /// The largest response worth offering: the proxy stops copying a
    /// response for the cache past this many bytes.
    fn max_bytes(&self) -> usize;

    /// A request with `method` to `key` was answered with `status`: the
    /// cache may drop what it holds for `key` (a `POST` changed it).
    /// Nothing by default.
    fn after(&self, key: &str, method: &str, status: u16) {
        let _ = (key, method, status);
    }
}
// ANCHOR_END: response_cache

/// How a forward proxy behaves.
#[derive(Clone)]
pub struct ForwardConfig {
    /// Ports CONNECT may reach (default: 443).
    pub connect_ports: BTreeSet<u16>,
    /// Ports plain `http://` requests may reach (default: 80).
    pub http_ports: BTreeSet<u16>,
    /// Head limits and the header timeout.
    pub limits: Limits,
    /// Connect, response and idle timeouts.
    pub timeouts: Timeouts,
    /// Clients served at once.
    pub max_connections: usize,
    /// A response cache for plain GETs (`--cache-entries`: lab 6.2's).
    pub cache: Option<Arc<dyn ResponseCache>>,
    /// Called with every finished exchange.
    pub on_exchange: Option<ExchangeHook>,
}

impl std::fmt::Debug for ForwardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardConfig")
            .field("connect_ports", &self.connect_ports)
            .field("http_ports", &self.http_ports)
            .field("limits", &self.limits)
            .field("timeouts", &self.timeouts)
            .field("max_connections", &self.max_connections)
            .field("cache", &self.cache.is_some())
            .field("on_exchange", &self.on_exchange.is_some())
            .finish()
    }
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            connect_ports: BTreeSet::from([443]),
            http_ports: BTreeSet::from([80]),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            max_connections: ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS,
            cache: None,
            on_exchange: None,
        }
    }
}

impl ForwardConfig {
    /// Allows `port` for both CONNECT and plain requests.
    pub fn allow_port(&mut self, port: u16) {
        self.connect_ports.insert(port);
        self.http_ports.insert(port);
    }
}

fn port_list(ports: &BTreeSet<u16>) -> String {
    ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
}

/// Runs the forward proxy on `listener` until `shutdown` fires.
pub fn run(listener: TcpListener, config: ForwardConfig, shutdown: Shutdown) -> io::Result<ServeStats> {
    let server_config = ServerConfig {
        max_connections: config.max_connections,
        busy_reply: crate::proxy::BUSY_REPLY,
        ..ServerConfig::default()
    };
    let config = Arc::new(config);
    serve(listener, shutdown, server_config, move |stream| handle_client(stream, &config))
}

/// Serves one client connection.
pub fn handle_client(stream: TcpStream, config: &ForwardConfig) -> io::Result<()> {
    serve_one(stream, &config.limits, config.on_exchange.as_ref(), |client, out, head, _peer| {
        if head.method == "CONNECT" { tunnel(client, out, &head, config) } else { plain(client, out, head, config) }
    })
}

// ANCHOR: tunnel
/// CONNECT: check the port, connect, say 200, then relay blindly.
fn tunnel(
    client: &mut Buffered,
    out: &mut TcpStream,
    head: &RequestHead,
    config: &ForwardConfig,
) -> Result<Forwarded, ProxyError> {
    // parse_request already refused a CONNECT target without a port.
    let (host, port) = split_authority(&head.target).ok_or_else(|| ProxyError::new(400, "CONNECT needs host:port"))?;
    if !config.connect_ports.contains(&port) {
        return Err(ProxyError::new(
            403,
            format!(
                "CONNECT to port {port} is not allowed: this proxy tunnels only to port(s) {} \
                 (start it with --allow-port {port} to allow it)",
                port_list(&config.connect_ports)
            ),
        ));
    }
    let mut upstream = connect_upstream(host, port, config.timeouts.connect)?;
    write_all(out, b"HTTP/1.1 200 Connection Established\r\n\r\n").map_err(client_io)?;
    // Bytes the client sent right after its CONNECT head (a TLS hello,
    // say) arrived with the head: pass them on before relaying.
    let early = std::mem::take(&mut client.buf);
    // The client already has its 200: a target that refuses these bytes
    // can only end the tunnel, and the failure is the target's.
    write_all(&mut upstream, &early)
        .map_err(|e| ProxyError::backend_cut(format!("the tunnel's target refused the first bytes: {e}")))?;
    // The relay owns both sockets: give it its own handle on the client.
    let client_stream = client.stream.try_clone().map_err(client_io)?;
    let stats = relay(client_stream, upstream, Some(config.timeouts.idle)).map_err(client_io)?;
    if stats.end != RelayEnd::Closed {
        tracing::debug!(target = %head.target, end = ?stats.end, "tunnel ended");
    }
    Ok(Forwarded {
        response: crate::http::ResponseHead {
            version: crate::http::Version::Http11,
            status: 200,
            reason: "Connection Established".into(),
            headers: Default::default(),
            framing: crate::http::Framing::UntilClose,
        },
        cut_short: false,
        bytes_up: stats.a_to_b + early.len() as u64,
        bytes_down: stats.b_to_a,
    })
}
// ANCHOR_END: tunnel

/// Tees what is written to the client into a copy for the cache, up to a
/// limit past which the response is not cacheable anyway.
struct Tee<'a> {
    out: &'a mut TcpStream,
    copy: Vec<u8>,
    limit: usize,
    overflow: bool,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        if !self.overflow {
            if self.copy.len() + n > self.limit {
                self.overflow = true;
                self.copy = Vec::new();
            } else {
                // `write` returns at most `buf.len()`; `get` keeps a broken
                // writer from turning into a panic.
                self.copy.extend_from_slice(buf.get(..n).unwrap_or(buf));
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

// ANCHOR: plain
/// An absolute-form request: check the port, rewrite to origin form, forward.
fn plain(
    client: &mut Buffered,
    out: &mut TcpStream,
    mut head: RequestHead,
    config: &ForwardConfig,
) -> Result<Forwarded, ProxyError> {
    let (authority, origin) = split_absolute_http(&head.target)?;
    let (host, port) = host_and_port(authority, 80)?;
    if !config.http_ports.contains(&port) {
        return Err(ProxyError::new(
            403,
            format!(
                "requests to port {port} are not allowed: this proxy forwards plain HTTP only to port(s) {} \
                 (start it with --allow-port {port} to allow it)",
                port_list(&config.http_ports)
            ),
        ));
    }
    let cache_key = head.target.clone();
    let authority = authority.to_string();
    let cache = config.cache.as_ref().filter(|_| head.method == "GET");
    if let Some(cache) = cache
        && let Some(response) = cache.lookup(&cache_key, Instant::now())
    {
        write_all(out, &response).map_err(client_io)?;
        let status = crate::http::parse_response(&response, &config.limits, "GET").ok().flatten();
        return match status {
            Some((response_head, _)) => Ok(Forwarded {
                response: response_head,
                bytes_up: 0,
                bytes_down: response.len() as u64,
                cut_short: false,
            }),
            None => Err(ProxyError::new(500, "a cached response could not be read back")),
        };
    }
    head.target = origin;
    remove_hop_by_hop(&mut head.headers);
    // The Host header must name the server we are going to (RFC 9112 3.2.2).
    head.headers.set("Host", authority);
    head.headers.set("Connection", "close");
    let upstream = connect_upstream(&host, port, config.timeouts.connect)?;
    let Some(cache) = cache else {
        let method = head.method.clone();
        let forwarded = forward_exchange(client, out, head, upstream, &config.limits, &config.timeouts)?;
        // Not a GET: the cache hears what it did, and may drop what it holds.
        if let Some(cache) = &config.cache {
            cache.after(&cache_key, &method, forwarded.response.status);
        }
        return Ok(forwarded);
    };
    let request = head.clone();
    let mut tee = Tee { out, copy: Vec::new(), limit: cache.max_bytes(), overflow: false };
    let forwarded = forward_exchange(client, &mut tee, head, upstream, &config.limits, &config.timeouts)?;
    if !tee.overflow
        && tee.copy.len() as u64 == forwarded.bytes_down
        // Our head is the origin's plus `Connection: close`: an origin head
        // just under the limits no longer fits them, and every hit would be
        // a 500 (found by fuzzing). Offer only what can be read back.
        && matches!(crate::http::parse_response(&tee.copy, &config.limits, "GET"), Ok(Some(_)))
    {
        cache.store(&cache_key, &request, &forwarded.response, tee.copy, Instant::now());
    }
    Ok(forwarded)
}
// ANCHOR_END: plain
