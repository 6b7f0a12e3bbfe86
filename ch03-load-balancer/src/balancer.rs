//! The load balancer: a reverse proxy with a choice of backend per request.
//!
//! Per connection (on its own thread, as in chapter 1):
//!
//! 1. read and validate the request head (chapter 2's rules);
//! 2. choose a backend with the configured strategy;
//! 3. connect; if the backend refuses, mark it down and try the next one
//!    (*failover*), until every backend has been tried: then 503;
//! 4. forward the request and the response (chapter 2's `forward_exchange`),
//!    counting requests, failures and bytes per backend.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::fmt::Debug;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ch01_fundamentals::server::{ServeStats, ServerConfig, Shutdown, serve};
use ch02_proxy::http::{Buffered, Limits, RequestHead};
use ch02_proxy::proxy::{
    Forwarded, ProxyError, Timeouts, connect_upstream, forward_exchange, host_and_port, prepare_upstream_request,
    send_error,
};

use crate::backend::{Backend, BackendSet};

// ANCHOR: selector
/// A way of choosing a backend that the balancer is given rather than
/// knowing itself: lab 4.1's random and lab 4.2's weighted choice are two,
/// plugged in by the `load_balancer` binary. Every connection thread
/// calls `pick` on the same value, so it takes `&self`.
pub trait Selector: Send + Sync + Debug {
    /// The index (into `backends`) of the backend for the next request, or
    /// `None` when none is available at `now`.
    fn pick(&self, backends: &[Arc<Backend>], now: Instant) -> Option<usize>;
}

/// How the next backend is chosen.
#[derive(Debug)]
pub enum Strategy {
    /// In turn.
    RoundRobin,
    /// By a selector (`--strategy random` or `weighted`).
    Select(Box<dyn Selector>),
}
// ANCHOR_END: selector

/// How a load balancer behaves.
#[derive(Debug)]
pub struct LbConfig {
    /// The backend choice.
    pub strategy: Strategy,
    /// Head limits and the header timeout.
    pub limits: Limits,
    /// Connect, response and idle timeouts.
    pub timeouts: Timeouts,
    /// Clients served at once.
    pub max_connections: usize,
    /// How long a backend that refused a connection is skipped.
    pub retry_after: Duration,
}

impl Default for LbConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::RoundRobin,
            limits: Limits::default(),
            // Backends sit on the same network: 2 s to connect is generous.
            timeouts: Timeouts { connect: Duration::from_secs(2), ..Timeouts::default() },
            max_connections: ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS,
            retry_after: Duration::from_secs(10),
        }
    }
}

/// A load balancer: its backends, its configuration and its counters.
#[derive(Debug)]
pub struct LoadBalancer {
    /// The backends.
    pub backends: BackendSet,
    /// The configuration.
    pub config: LbConfig,
    /// When it started (for uptime and requests per second).
    pub started: Instant,
    /// Requests received (with a valid head).
    pub requests: AtomicU64,
    /// Requests answered with 503 because no backend could be reached.
    pub unavailable: AtomicU64,
}

impl LoadBalancer {
    /// A load balancer over `backends`.
    pub fn new(backends: Vec<Backend>, config: LbConfig) -> Arc<Self> {
        Arc::new(Self {
            backends: BackendSet::new(backends),
            config,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
        })
    }

    // ANCHOR: pick
    /// The backend for the next attempt, by the configured strategy.
    pub fn pick(&self, now: Instant) -> Option<Arc<Backend>> {
        let all = self.backends.all();
        match &self.config.strategy {
            Strategy::RoundRobin => self.backends.next_round_robin(now),
            Strategy::Select(selector) => selector.pick(all, now).and_then(|i| all.get(i)).map(Arc::clone),
        }
    }
    // ANCHOR_END: pick

    // ANCHOR: failover
    /// Connects to a backend, failing over to the next when one refuses.
    /// Each backend is tried at most once per request: `tried` holds the
    /// ones this request has been to already (a retry passes it back in).
    pub fn connect_with_failover(&self, tried: &mut Vec<String>) -> Result<(Arc<Backend>, TcpStream), ProxyError> {
        let n = self.backends.all().len();
        // A strategy may offer a backend already tried (random does); allow
        // a few extra picks so that does not end the search early, bounded
        // so a request never loops.
        for _ in 0..n * 3 {
            if tried.len() == n {
                break;
            }
            let Some(backend) = self.pick(Instant::now()) else { break };
            if tried.contains(&backend.addr) {
                continue;
            }
            tried.push(backend.addr.clone());
            let (host, port) = host_and_port(&backend.addr, 80)?;
            match connect_upstream(&host, port, self.config.timeouts.connect) {
                Ok(stream) => {
                    if backend.mark_up() {
                        tracing::info!(backend = %backend.addr, "backend is UP again");
                    }
                    return Ok((backend, stream));
                }
                // Our own shortage (descriptors, ports): no backend is to blame.
                Err(e) if !e.blames_backend() => return Err(e),
                Err(e) => {
                    backend.failures.fetch_add(1, Ordering::Relaxed);
                    if backend.mark_down(self.config.retry_after) {
                        tracing::warn!(backend = %backend.addr, error = %e.detail, "backend is DOWN; failing over");
                    }
                }
            }
        }
        Err(ProxyError::unavailable(if tried.is_empty() {
            "no backend is available".to_string()
        } else {
            format!("no backend could be reached (tried {})", tried.join(", "))
        }))
    }
    // ANCHOR_END: failover
}

// ANCHOR: run
/// Runs the load balancer on `listener` until `shutdown` fires.
pub fn run(listener: TcpListener, lb: Arc<LoadBalancer>, shutdown: Shutdown) -> io::Result<ServeStats> {
    let server_config = ServerConfig {
        max_connections: lb.config.max_connections,
        busy_reply: ch02_proxy::proxy::BUSY_REPLY,
        ..ServerConfig::default()
    };
    serve(listener, shutdown, server_config, move |stream| handle_client(stream, &lb))
}
// ANCHOR_END: run

/// Serves one client connection: one request, one response.
pub fn handle_client(stream: TcpStream, lb: &LoadBalancer) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    let mut out = stream.try_clone()?;
    let mut client = Buffered::new(stream);
    let head = match client.read_request_head(&lb.config.limits) {
        Ok(head) => head,
        Err(e) => {
            send_error(&mut out, &ProxyError::from(e));
            return Ok(());
        }
    };
    lb.requests.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let (method, target) = (head.method.clone(), head.target.clone());
    match balance(&mut client, &mut out, head, peer, lb) {
        Ok((backend, forwarded)) => {
            let ms = started.elapsed().as_millis() as u64;
            let status = forwarded.response.status;
            tracing::info!(%peer, %method, %target, backend = %backend, status, ms, "request");
        }
        Err(e) => {
            send_error(&mut out, &e);
            if let Some(status) = e.status {
                tracing::warn!(%peer, %method, %target, status, error = %e.detail, "request failed");
            }
        }
    }
    Ok(())
}

// ANCHOR: balance
fn balance(
    client: &mut Buffered,
    out: &mut TcpStream,
    mut head: RequestHead,
    peer: SocketAddr,
    lb: &LoadBalancer,
) -> Result<(String, Forwarded), ProxyError> {
    prepare_upstream_request(&mut head, peer.ip(), "http")?;

    let mut tried = Vec::new();
    let mut last: Option<ProxyError> = None;
    loop {
        let (backend, upstream) = match lb.connect_with_failover(&mut tried) {
            Ok(pair) => pair,
            // Nobody left to retry on: the client hears the real failure.
            Err(e) => {
                if last.is_none() && e.status == Some(503) {
                    lb.unavailable.fetch_add(1, Ordering::Relaxed);
                }
                return Err(last.unwrap_or(e));
            }
        };
        backend.requests.fetch_add(1, Ordering::Relaxed);
        backend.active.fetch_add(1, Ordering::Relaxed);
        let result = forward_exchange(client, out, head.clone(), upstream, &lb.config.limits, &lb.config.timeouts);
        backend.active.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(f) => {
                if f.cut_short {
                    // The body broke off after its head went out: still the
                    // backend's fault, though nothing more can be answered.
                    backend.failures.fetch_add(1, Ordering::Relaxed);
                }
                backend.bytes_out.fetch_add(f.bytes_up, Ordering::Relaxed);
                backend.bytes_in.fetch_add(f.bytes_down, Ordering::Relaxed);
                return Ok((backend.addr.clone(), f));
            }
            // The backend accepted but failed us (dropped, bad response,
            // timeout): it is charged, and the retry rule decides whether
            // the request may go to another backend.
            Err(e) if e.blames_backend() => {
                backend.failures.fetch_add(1, Ordering::Relaxed);
                if !e.may_retry(&head) {
                    return Err(e);
                }
                tracing::info!(backend = %backend.addr, error = %e.detail, "no response; retrying on another backend");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: balance
