//! The advanced load balancer: chapter 3's, with a pluggable algorithm per
//! route, health checks, request ids, sticky cookies, latency statistics
//! and draining.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ch01_fundamentals::server::{ServeStats, ServerConfig, Shutdown, serve};
use ch02_proxy::http::{Buffered, Limits, RequestHead};
use ch02_proxy::proxy::{
    Forwarded, ProxyError, Timeouts, connect_upstream, forward_exchange_with, host_and_port, prepare_upstream_request,
    send_error,
};
use ch03_load_balancer::rng::Rng;

use crate::algorithm::{Context, pick_untried};
use crate::headers::{Cidr, client_ip, cookie, ensure_request_id};
use crate::health::{HealthConfig, PassiveCheck, record_request};
use crate::node::{Node, Pool};
use crate::routing::{Group, Router};
use crate::stats::{BackendLine, Reporter, StatsEndpoint};

/// What the hashing algorithms hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum HashKey {
    /// The client's IP address.
    #[default]
    Ip,
    /// The request path (cache-friendly: one object, one backend).
    Path,
}

/// Everything configurable about the advanced load balancer.
#[derive(Debug, Clone)]
pub struct Options {
    /// Head limits and the header timeout.
    pub limits: Limits,
    /// Connect, response and idle timeouts.
    pub timeouts: Timeouts,
    /// Clients served at once.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish on shutdown.
    pub drain_timeout: Duration,
    /// Health checking.
    pub health: HealthConfig,
    /// What consistent hashing hashes.
    pub hash_key: HashKey,
    /// Told of every request; prints the reports it returns
    /// (`--stats-every`: lab 4.5's).
    pub reporter: Option<Arc<dyn Reporter>>,
    /// A path answered with statistics (`--stats-path`: lab 8.3's JSON).
    pub stats_endpoint: Option<StatsEndpoint>,
    /// The weights file reloaded on SIGHUP (lab 8.4).
    pub weights_file: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Counts real requests' failures instead of chapter 4's passive check
    /// (`--failure-counting`: lab 4.3's counter).
    pub passive: Option<Arc<dyn PassiveCheck>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            max_connections: ch01_fundamentals::server::DEFAULT_MAX_CONNECTIONS,
            drain_timeout: Duration::from_secs(30),
            health: HealthConfig::default(),
            hash_key: HashKey::Ip,
            reporter: None,
            stats_endpoint: None,
            weights_file: None,
            trusted_proxies: Vec::new(),
            passive: None,
        }
    }
}

impl Options {
    /// Tells the passive check in use how a real request to `node` ended.
    fn record_request(&self, node: &Node, ok: bool) {
        let now = Instant::now();
        match &self.passive {
            Some(check) => check.record(node, ok, &self.health, now),
            None => record_request(node, ok, &self.health, now),
        }
    }
}

/// The load balancer's shared state.
#[derive(Debug)]
pub struct AdvancedLb {
    /// Groups and routes.
    pub router: Router,
    /// The options.
    pub options: Options,
    /// When it started.
    pub started: Instant,
    /// Requests received with a valid head.
    pub requests: AtomicU64,
    ids: Mutex<Rng>,
}

impl AdvancedLb {
    /// A load balancer over `router`.
    pub fn new(router: Router, options: Options) -> Arc<Self> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
        Arc::new(Self {
            router,
            options,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            ids: Mutex::new(Rng::new(seed)),
        })
    }

    /// The default group's pool.
    pub fn default_pool(&self) -> &Arc<Pool> {
        &self.router.default_group().pool
    }

    /// Report lines for every node of every group.
    pub fn backend_lines(&self) -> Vec<BackendLine> {
        self.router
            .groups()
            .flat_map(|g| g.pool.nodes.iter())
            .map(|n| BackendLine {
                addr: n.addr().to_string(),
                up: n.is_healthy(),
                requests: n.backend.requests.load(Ordering::Relaxed),
                failures: n.backend.failures.load(Ordering::Relaxed),
                mean_us: n.latency.mean().as_micros().min(u128::from(u64::MAX)) as u64,
            })
            .collect()
    }
}

// ANCHOR: run
/// Runs until `shutdown` fires, then drains: the listener closes at once
/// and requests in progress get `drain_timeout` to finish.
pub fn run(listener: TcpListener, lb: Arc<AdvancedLb>, shutdown: Shutdown) -> io::Result<ServeStats> {
    let config = ServerConfig {
        max_connections: lb.options.max_connections,
        drain_timeout: lb.options.drain_timeout,
        busy_reply: ch02_proxy::proxy::BUSY_REPLY,
    };
    serve(listener, shutdown, config, move |stream| handle_client(stream, &lb))
}
// ANCHOR_END: run

/// Serves one client connection: one request, one response.
pub fn handle_client(stream: TcpStream, lb: &AdvancedLb) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    let mut out = stream.try_clone()?;
    let mut client = Buffered::new(stream);
    let head = match client.read_request_head(&lb.options.limits) {
        Ok(head) => head,
        Err(e) => {
            send_error(&mut out, &ProxyError::from(e));
            return Ok(());
        }
    };
    // The statistics endpoint is an admin request: answered here, and not
    // counted as traffic.
    if let Some(endpoint) = &lb.options.stats_endpoint
        && head.target == endpoint.path
    {
        let json = (endpoint.render)(lb.default_pool(), lb.started.elapsed(), lb.requests.load(Ordering::Relaxed));
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        );
        let _ = ch01_fundamentals::io::write_all(&mut out, response.as_bytes());
        return Ok(());
    }
    lb.requests.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let (method, target) = (head.method.clone(), head.target.clone());
    match balance(&mut client, &mut out, head, peer, lb) {
        Ok((backend, request_id, f)) => {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(%peer, %method, %target, %backend, status = f.response.status, ms, %request_id, "request");
        }
        Err(e) => {
            send_error(&mut out, &e);
            if let Some(status) = e.status {
                tracing::warn!(%peer, %method, %target, status, error = %e.detail, "request failed");
            }
        }
    }
    if let Some(reporter) = &lb.options.reporter
        && let Some(report) = reporter.on_request(&lb.backend_lines())
    {
        eprint!("{report}");
    }
    Ok(())
}

// ANCHOR: balance
fn balance(
    client: &mut Buffered,
    out: &mut TcpStream,
    mut head: RequestHead,
    peer: SocketAddr,
    lb: &AdvancedLb,
) -> Result<(String, String, Forwarded), ProxyError> {
    // The client behind our trusted proxies, read before we add ourselves
    // to X-Forwarded-For.
    let client_addr = client_ip(peer.ip(), &head.headers, &lb.options.trusted_proxies);
    prepare_upstream_request(&mut head, peer.ip(), "http")?;
    let path = head.target.split('?').next().unwrap_or("/").to_string();
    let group = lb.router.route(&path);
    let sticky = group.algorithm.cookie_name().map(str::to_string);
    let cookie_value = sticky.as_deref().and_then(|name| cookie(&head.headers, name)).map(str::to_string);
    let request_id = ensure_request_id(&mut head.headers, &mut lb.ids.lock().unwrap_or_else(PoisonError::into_inner));

    let key = match lb.options.hash_key {
        HashKey::Ip => client_addr.to_string(),
        HashKey::Path => path.clone(),
    };
    let ctx = Context { client_ip: client_addr, key: &key, cookie: cookie_value.as_deref(), now: Instant::now() };
    let mut tried = vec![false; group.pool.nodes.len()];
    let mut last: Option<ProxyError> = None;
    loop {
        let (index, node, upstream) = match connect_with_failover(group, &ctx, &lb.options, &mut tried) {
            Ok(picked) => picked,
            // Nobody left to retry on: the client hears the real failure.
            Err(e) => return Err(last.unwrap_or(e)),
        };
        node.backend.requests.fetch_add(1, Ordering::Relaxed);
        node.backend.active.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let set_cookie = match (&sticky, cookie_value.as_deref()) {
            (Some(name), value) if value != Some(node.id.as_str()) => {
                Some(format!("{name}={}; Path=/; HttpOnly", node.id))
            }
            _ => None,
        };
        let mut edit = |response: &mut ch02_proxy::http::ResponseHead| {
            response.headers.set("X-Request-ID", request_id.clone());
            if let Some(c) = &set_cookie {
                response.headers.push("Set-Cookie", c.clone());
            }
        };
        let (limits, timeouts) = (&lb.options.limits, &lb.options.timeouts);
        let result = forward_exchange_with(client, out, head.clone(), upstream, limits, timeouts, &mut edit);
        node.backend.active.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(f) => {
                let latency = started.elapsed();
                node.latency.record(latency);
                group.algorithm.on_response(index, latency);
                node.backend.bytes_out.fetch_add(f.bytes_up, Ordering::Relaxed);
                node.backend.bytes_in.fetch_add(f.bytes_down, Ordering::Relaxed);
                if f.cut_short {
                    // The body broke off after its head went out: still the
                    // backend's fault, though nothing more can be answered.
                    node.backend.failures.fetch_add(1, Ordering::Relaxed);
                }
                lb.options.record_request(node, !f.cut_short);
                return Ok((node.addr().to_string(), request_id, f));
            }
            // The backend's fault (chapter 2's one rule): it is charged,
            // and the retry rule decides whether another backend may try.
            Err(e) if e.blames_backend() => {
                node.backend.failures.fetch_add(1, Ordering::Relaxed);
                lb.options.record_request(node, false);
                if !e.may_retry(&head) {
                    return Err(e);
                }
                tracing::info!(backend = %node.addr(), error = %e.detail, "no response; retrying on another backend");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: balance

// ANCHOR: failover
/// Picks a node and connects; a node that refuses counts as a failed
/// request (passive health) and the next one is tried, each at most once
/// per request (`tried` marks the nodes this request has been to).
fn connect_with_failover<'a>(
    group: &'a Group,
    ctx: &Context<'_>,
    options: &Options,
    tried: &mut [bool],
) -> Result<(usize, &'a Arc<Node>, TcpStream), ProxyError> {
    let pool = &group.pool;
    for _ in 0..pool.nodes.len() {
        let Some(index) = pick_untried(group.algorithm.as_ref(), pool, ctx, tried) else { break };
        let (Some(node), Some(seen)) = (pool.nodes.get(index), tried.get_mut(index)) else { break };
        *seen = true;
        let (host, port) = host_and_port(node.addr(), 80)?;
        match connect_upstream(&host, port, options.timeouts.connect) {
            Ok(stream) => return Ok((index, node, stream)),
            // Our own shortage (descriptors, ports): no backend is to blame.
            Err(e) if !e.blames_backend() => return Err(e),
            Err(e) => {
                tracing::debug!(backend = %node.addr(), error = %e.detail, "connect failed; trying the next backend");
                node.backend.failures.fetch_add(1, Ordering::Relaxed);
                options.record_request(node, false);
            }
        }
    }
    let tried: Vec<&str> = pool.nodes.iter().zip(tried.iter()).filter(|&(_, &t)| t).map(|(n, _)| n.addr()).collect();
    Err(ProxyError::unavailable(if tried.is_empty() {
        format!("no healthy backend in group {}", group.name)
    } else {
        format!("no backend of group {} could be reached (tried {})", group.name, tried.join(", "))
    }))
}
// ANCHOR_END: failover
