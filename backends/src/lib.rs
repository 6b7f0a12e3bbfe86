//! # Test backends
//!
//! `simple_http_backend` is the server every chapter puts behind its proxy
//! or load balancer. It is small, but a real HTTP/1.1 server: keep-alive,
//! Content-Length and chunked bodies, bounded heads, and switches that make
//! it slow, flaky or unhealthy on demand, so that tests can provoke every
//! situation a load balancer must handle.
//!
//! Concept map:
//!
//! | idea | where |
//! |---|---|
//! | configuration and live counters | [`BackendConfig`], [`Stats`] |
//! | the accept loop and connection tasks | [`run`] |
//! | reading a request (head limits, bodies) | `http.rs` |
//! | the endpoints | `routes.rs` |
//! | a backend on port 0 for tests, on its own thread | [`spawn`], [`BackendHandle`] |
//! | a tiny blocking HTTP client for tests | [`client`] |
//!
//! Endpoints: `/` (and any path not below) answers `Hello from NAME`;
//! `/health` (200, or 503 after `POST /admin/health/down`);
//! `/admin/health/up`; `/echo` (the request head as received, then the
//! body); `/bytes/N` (N bytes, `?chunked=1` for chunked encoding);
//! `/slow?ms=N`; `/status/CODE`; `/stats` (JSON counters).
#![deny(missing_docs)]

pub mod client;
mod http;
mod routes;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// How one backend behaves.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Where to listen; port 0 lets the kernel choose (tests).
    pub addr: SocketAddr,
    /// The name in every answer, so a client can see which backend served it.
    pub name: String,
    /// Added to every request except `/stats` and `/admin/...`.
    pub latency: Duration,
    /// A random extra delay between zero and this, on top of `latency`.
    pub jitter: Duration,
    /// Fraction (0.0 to 1.0) of ordinary requests answered with a 500.
    pub fail_rate: f64,
    /// Largest request head accepted; bigger ones get 431.
    pub max_head_bytes: usize,
    /// Largest request body accepted; bigger ones get 413.
    pub max_body_bytes: usize,
    /// A keep-alive connection idle this long is closed.
    pub idle_timeout: Duration,
    /// A random extra of up to this on each idle timeout, so connections
    /// do not all close in step.
    pub idle_jitter: Duration,
    /// From the first byte of a request head, the time the rest of it may
    /// take; then 408 and the connection is closed (slowloris defence).
    pub header_timeout: Duration,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            name: "backend".to_string(),
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            fail_rate: 0.0,
            max_head_bytes: 16 * 1024,
            max_body_bytes: 8 * 1024 * 1024,
            idle_timeout: Duration::from_secs(60),
            idle_jitter: Duration::ZERO,
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl BackendConfig {
    /// A default configuration with this name.
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }
}

/// Live counters, readable while the backend runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections open right now.
    pub active_connections: AtomicU64,
    /// Requests answered (any status).
    pub requests_served: AtomicU64,
    /// POST requests received.
    pub posts: AtomicU64,
    /// POST requests whose `X-Request-Id` had been seen before: a proxy
    /// sent the same POST twice.
    pub duplicate_posts: AtomicU64,
}

/// A copy of the counters at one moment, as `/stats` reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    /// The backend's name.
    pub name: String,
    /// Whether `/health` answers 200.
    pub healthy: bool,
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// Connections open right now.
    pub active_connections: u64,
    /// Requests answered (any status).
    pub requests_served: u64,
    /// POST requests received.
    #[serde(default)]
    pub posts: u64,
    /// POST requests whose `X-Request-Id` had been seen before.
    #[serde(default)]
    pub duplicate_posts: u64,
}

/// Everything a connection task needs, shared by all of them.
#[derive(Debug)]
pub struct State {
    /// The configuration.
    pub config: BackendConfig,
    /// The counters.
    pub stats: Stats,
    healthy: AtomicBool,
    rng: AtomicU64,
    /// The ids of POSTs seen (at most `MAX_POST_IDS`).
    post_ids: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How many POST ids a backend remembers, so a long run cannot grow the
/// set without bound (about 100 MB at most); past it, ids go unchecked.
const MAX_POST_IDS: usize = 1 << 21;

impl State {
    /// Fresh state for `config`: healthy, counters at zero.
    pub fn new(config: BackendConfig) -> Arc<Self> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        Arc::new(Self {
            config,
            stats: Stats::default(),
            healthy: AtomicBool::new(true),
            rng: AtomicU64::new(seed),
            post_ids: Default::default(),
        })
    }

    /// Counts a POST, and a duplicate when its id was seen before.
    pub(crate) fn note_post(&self, id: Option<&str>) {
        self.stats.posts.fetch_add(1, Ordering::Relaxed);
        let Some(id) = id else { return };
        let mut seen = self.post_ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(id) {
            self.stats.duplicate_posts.fetch_add(1, Ordering::Relaxed);
        } else if seen.len() < MAX_POST_IDS {
            seen.insert(id.to_string());
        }
    }

    /// This connection's idle timeout: the configured one plus a random
    /// part of the jitter.
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.config.idle_timeout + self.config.idle_jitter.mul_f64(self.random())
    }

    /// Switches what `/health` answers.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Whether `/health` answers 200.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            name: self.config.name.clone(),
            healthy: self.is_healthy(),
            connections_accepted: self.stats.connections_accepted.load(Ordering::Relaxed),
            active_connections: self.stats.active_connections.load(Ordering::Relaxed),
            requests_served: self.stats.requests_served.load(Ordering::Relaxed),
            posts: self.stats.posts.load(Ordering::Relaxed),
            duplicate_posts: self.stats.duplicate_posts.load(Ordering::Relaxed),
        }
    }

    /// A uniformly distributed number in [0, 1): splitmix64 over an atomic
    /// counter, good enough for jitter and failure injection, no crate needed.
    pub(crate) fn random(&self) -> f64 {
        let mut z = self.rng.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Serves HTTP on `listener` until `shutdown` completes; then stops
/// accepting, ends every connection task and returns.
pub async fn run(listener: TcpListener, state: Arc<State>, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and the like: say so, pause, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                state.stats.connections_accepted.fetch_add(1, Ordering::Relaxed);
                let state = Arc::clone(&state);
                tasks.spawn(async move { serve_connection(stream, peer, state).await });
            }
            // Reap finished tasks so the set does not grow without bound.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
    Ok(())
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, state: Arc<State>) {
    state.stats.active_connections.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    if let Err(e) = http::serve(stream, &state, &routes::Routes).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
    state.stats.active_connections.fetch_sub(1, Ordering::Relaxed);
}

/// A backend running on a thread of its own, for tests and demos. Works
/// from synchronous code and from inside a tokio runtime alike. Dropping
/// the handle stops the backend.
#[derive(Debug)]
pub struct BackendHandle {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl BackendHandle {
    /// Where the backend listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.state.config.name
    }

    /// The live counters.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// The counters as `/stats` would report them.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.state.snapshot()
    }

    /// Switches `/health` between 200 (true) and 503 (false).
    pub fn set_healthy(&self, healthy: bool) {
        self.state.set_healthy(healthy);
    }

    /// Stops the backend: the listener closes and open connections end.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Err(io::Error::other("backend thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for BackendHandle {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Starts a backend for `config` on a new thread with its own
/// single-threaded runtime. The socket is bound before this returns, so the
/// caller may connect at once.
pub fn spawn(config: BackendConfig) -> io::Result<BackendHandle> {
    // A deep accept queue: a load balancer under test may open thousands
    // of connections at once, and a full queue drops SYNs (1 s retries).
    let std_listener = ch01_fundamentals::net::listen(config.addr, 4096)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let state = State::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    let thread_state = Arc::clone(&state);
    let thread = std::thread::Builder::new().name(format!("backend-{addr}")).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let listener = TcpListener::from_std(std_listener)?;
            run(listener, thread_state, async move {
                let _ = stopped.await;
            })
            .await
        })
    })?;
    Ok(BackendHandle { addr, state, stop: Some(stop), thread: Some(thread) })
}

/// Starts `n` backends named `backend-1` to `backend-n` on free ports.
pub fn spawn_many(n: usize) -> io::Result<Vec<BackendHandle>> {
    (1..=n).map(|i| spawn(BackendConfig::named(format!("backend-{i}")))).collect()
}
