//! The reverse proxy: clients talk to it as if it were the server; it
//! passes each request to the one backend behind it.
//!
//! ```text
//! client ──► reverse_proxy ──► backend
//!        ◄──               ◄──
//! ```
//!
//! Per connection: read and validate the request head (400/408/414/431),
//! edit it (hop-by-hop headers out, forwarding headers in, `Connection:
//! close`), connect to the backend (502/504), forward the request and its
//! body, read the response head (502/504), forward the response.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use ch01_fundamentals::server::{ServeStats, ServerConfig, Shutdown, serve};

use crate::http::{Buffered, Headers, Limits, RequestHead};
use crate::proxy::{
    ExchangeHook, Forwarded, ProxyError, Timeouts, client_io, connect_upstream, forward_exchange, host_and_port,
    prepare_upstream_request, serve_one,
};

/// Edits each request's headers on their way to the backend, after the
/// forwarding headers are in: called with the headers, the client's
/// address, our own address and the scheme clients used
/// ([`ReverseConfig::proto`]). Lab 6.3's `add_forwarded` is one
/// (`--forwarded`).
pub type HeadersHook = Arc<dyn Fn(&mut Headers, IpAddr, IpAddr, &str) + Send + Sync>;

/// How a reverse proxy behaves.
#[derive(Clone)]
pub struct ReverseConfig {
    /// The backend, `host:port`.
    pub backend: String,
    /// Head limits and the header timeout.
    pub limits: Limits,
    /// Connect, response and idle timeouts.
    pub timeouts: Timeouts,
    /// Clients served at once.
    pub max_connections: usize,
    /// The scheme clients used to reach us (`X-Forwarded-Proto`).
    pub proto: String,
    /// Called on every request's headers (lab 6.3's `Forwarded` header).
    pub edit_headers: Option<HeadersHook>,
    /// Called with every finished exchange (lab 6.1's access log).
    pub on_exchange: Option<ExchangeHook>,
}

impl std::fmt::Debug for ReverseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseConfig")
            .field("backend", &self.backend)
            .field("limits", &self.limits)
            .field("timeouts", &self.timeouts)
            .field("max_connections", &self.max_connections)
            .field("proto", &self.proto)
            .field("edit_headers", &self.edit_headers.is_some())
            .field("on_exchange", &self.on_exchange.is_some())
            .finish()
    }
}

impl ReverseConfig {
    /// Defaults, in front of `backend`.
    pub fn new(backend: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            max_connections: ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS,
            proto: "http".to_string(),
            edit_headers: None,
            on_exchange: None,
        }
    }
}

// ANCHOR: run
/// Runs the reverse proxy on `listener` until `shutdown` fires.
pub fn run(listener: TcpListener, config: ReverseConfig, shutdown: Shutdown) -> io::Result<ServeStats> {
    let server_config = ServerConfig {
        max_connections: config.max_connections,
        busy_reply: crate::proxy::BUSY_REPLY,
        ..ServerConfig::default()
    };
    let config = Arc::new(config);
    serve(listener, shutdown, server_config, move |stream| handle_client(stream, &config))
}
// ANCHOR_END: run

// ANCHOR: handle_client
/// Serves one client connection: one request, one response.
pub fn handle_client(stream: TcpStream, config: &ReverseConfig) -> io::Result<()> {
    serve_one(stream, &config.limits, config.on_exchange.as_ref(), |client, out, head, peer| {
        let local = out.local_addr().map_err(client_io)?;
        proxy_request(client, out, head, peer, local, config)
    })
}
// ANCHOR_END: handle_client

// ANCHOR: proxy_request
fn proxy_request(
    client: &mut Buffered,
    out: &mut TcpStream,
    mut head: RequestHead,
    peer: SocketAddr,
    local: SocketAddr,
    config: &ReverseConfig,
) -> Result<Forwarded, ProxyError> {
    prepare_upstream_request(&mut head, peer.ip(), &config.proto)?;
    if let Some(edit) = &config.edit_headers {
        edit(&mut head.headers, peer.ip(), local.ip(), &config.proto);
    }
    let (host, port) = host_and_port(&config.backend, 80)?;
    let upstream = connect_upstream(&host, port, config.timeouts.connect)?;
    forward_exchange(client, out, head, upstream, &config.limits, &config.timeouts)
}
// ANCHOR_END: proxy_request
