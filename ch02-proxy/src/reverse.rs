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
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use ch01_fundamentals::server::{ServeStats, ServerConfig, Shutdown, serve};

use crate::http::{Buffered, Limits, RequestHead};
use crate::proxy::{
    ExchangeHook, Forwarded, ProxyError, Timeouts, client_io, connect_upstream, forward_exchange, host_and_port,
    prepare_upstream_request, serve_one,
};

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
    /// Also add an RFC 7239 `Forwarded` header (lab 6.3).
    pub add_forwarded: bool,
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
            .field("add_forwarded", &self.add_forwarded)
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
            add_forwarded: false,
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
    if config.add_forwarded {
        crate::labs::lab_6_3_forwarding_chain::add_forwarded(&mut head.headers, peer.ip(), local.ip(), &config.proto);
    }
    let (host, port) = host_and_port(&config.backend, 80)?;
    let upstream = connect_upstream(&host, port, config.timeouts.connect)?;
    forward_exchange(client, out, head, upstream, &config.limits, &config.timeouts)
}
// ANCHOR_END: proxy_request
