//! Health: finding out which backends are up, two ways.
//!
//! - **Active checks** run on a thread of their own: every `interval`, each
//!   node is probed (a TCP connect, or an HTTP `GET` of a path expecting a
//!   2xx answer) with a `timeout`. `fall` failures in a row take a node
//!   down; `rise` successes in a row bring it back (then slow start ramps
//!   its weight).
//! - **Passive checks** watch real traffic: `max_fails` failed requests in
//!   a row (refused connections, 502s, 504s) take a node down at once,
//!   without waiting for the next probe. Without active checks, a node
//!   taken down this way is retried with a real request after
//!   `fail_timeout`, and a success brings it back.
//!
//! Every transition is logged once, with the reason.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ch01_fundamentals::server::Shutdown;

use crate::node::{Health, Node, Pool};

/// How nodes are probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No active checks; passive checks only.
    Off,
    /// A TCP connection is enough.
    Tcp,
    /// `GET path` must answer 2xx.
    Http(String),
}

/// Health-check settings.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Active probe kind.
    pub probe: Probe,
    /// Time between rounds of probes.
    pub interval: Duration,
    /// Time a probe may take.
    pub timeout: Duration,
    /// Successes in a row that bring a down node back.
    pub rise: u32,
    /// Probe failures in a row that take a node down.
    pub fall: u32,
    /// Real-request failures in a row that take a node down.
    pub max_fails: u32,
    /// Without active checks: how long a node taken down by real traffic
    /// waits before a real request tries it again.
    pub fail_timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            probe: Probe::Http("/health".to_string()),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
        }
    }
}

impl HealthConfig {
    /// How long a down node is kept out of rotation by time alone: with
    /// active checks, only a probe brings it back, so "a very long time".
    pub fn retry_after(&self) -> Duration {
        if self.probe == Probe::Off { self.fail_timeout } else { Duration::from_secs(24 * 3600) }
    }
}

// ANCHOR: probe
/// Probes one address once.
pub fn probe(addr: &str, probe: &Probe, timeout: Duration) -> Result<(), String> {
    let target: SocketAddr = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .next()
        .ok_or_else(|| "no address".to_string())?;
    let mut stream = TcpStream::connect_timeout(&target, timeout).map_err(|e| format!("connect: {e}"))?;
    let path = match probe {
        Probe::Off | Probe::Tcp => return Ok(()),
        Probe::Http(path) => path,
    };
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: lbs-health\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;
    // The status line is all we need; read until it is complete.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    probe_verdict(&head)
}
// ANCHOR_END: probe

/// A probe's verdict from the first bytes of the answer: healthy when the
/// status line says 2xx. Shared with chapter 5, whose event loop probes
/// without blocking.
pub fn probe_verdict(head: &[u8]) -> Result<(), String> {
    let line = String::from_utf8_lossy(head);
    let status: u16 = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "no HTTP status line".to_string())?;
    if (200..300).contains(&status) { Ok(()) } else { Err(format!("status {status}")) }
}

// ANCHOR: transitions
/// Records an active probe's result; logs and applies a transition when a
/// threshold is crossed.
pub fn record_probe(node: &Node, ok: bool, config: &HealthConfig, now: Instant, why: &str) {
    let mut h = node.health();
    if ok {
        h.probe_failures = 0;
        h.probe_successes = h.probe_successes.saturating_add(1);
        if !node.is_healthy() && h.probe_successes >= config.rise {
            bring_up(node, &mut h, now);
            tracing::info!(backend = %node.addr(), successes = h.probe_successes, "backend is UP (health check passed)");
        }
    } else {
        h.probe_successes = 0;
        h.probe_failures = h.probe_failures.saturating_add(1);
        if node.is_healthy() && h.probe_failures >= config.fall {
            node.backend.mark_down(config.retry_after());
            tracing::warn!(backend = %node.addr(), failures = h.probe_failures, reason = why, "backend is DOWN (health check failed)");
        }
    }
}

/// Records a real request's outcome (passive checking).
pub fn record_request(node: &Node, ok: bool, config: &HealthConfig, now: Instant) {
    let mut h = node.health();
    if ok {
        h.passive_failures = 0;
        // Without probes, a successful retry is how a node comes back: a
        // request sent once its fail_timeout is over. A success that
        // arrives earlier was in flight when the node went down, and says
        // nothing about it now.
        if !node.is_healthy() && config.probe == Probe::Off && node.backend.is_available(now) {
            h.recovered_at = Some(now);
            node.backend.mark_up();
            tracing::info!(backend = %node.addr(), "backend is UP (a request succeeded)");
        }
    } else {
        h.passive_failures = h.passive_failures.saturating_add(1);
        if node.is_healthy() && h.passive_failures >= config.max_fails {
            take_down(node, &mut h, config);
            tracing::warn!(backend = %node.addr(), failures = h.passive_failures, "backend is DOWN (requests failed)");
        } else if !node.is_healthy() {
            // A retry after fail_timeout failed: wait another fail_timeout.
            node.backend.mark_down(config.retry_after());
        }
    }
}

/// Takes `node` down because real requests failed (`h` is its locked
/// health): probes must now earn `rise` fresh successes to bring it back.
pub fn take_down(node: &Node, h: &mut Health, config: &HealthConfig) {
    h.probe_successes = 0;
    node.backend.mark_down(config.retry_after());
}

/// Brings `node` back at `now` (`h` is its locked health): slow start
/// counts from here, and the passive streak starts again.
pub fn bring_up(node: &Node, h: &mut Health, now: Instant) {
    h.recovered_at = Some(now);
    h.passive_failures = 0;
    node.backend.mark_up();
}
// ANCHOR_END: transitions

/// Replaces chapter 4's passive check ([`record_request`]): told of every
/// real request's outcome (`advanced_lb --failure-counting` plugs lab 4.3
/// in here).
pub trait PassiveCheck: Send + Sync + std::fmt::Debug {
    /// A real request to `node` ended at `now`, `ok` or not.
    fn record(&self, node: &Node, ok: bool, config: &HealthConfig, now: Instant);
}

/// Replaces a round of the active checks (`advanced_lb --recovery-check`
/// plugs lab 4.4 in here).
pub trait RecoveryRound: Send + Sync + std::fmt::Debug {
    /// One round over `checker`'s nodes at `now`; probe with
    /// [`HealthChecker::check`] and [`HealthChecker::warm`].
    fn round(&self, checker: &HealthChecker, now: Instant);
}

/// A check a program plugs into the health checker: a backend's address
/// (`host:port`) in, a verdict out (`Err`: why not).
pub type CheckFn = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// What a program adds to the active checks (`advanced_lb` plugs in labs
/// 7.3 and 7.4 here).
#[derive(Clone, Default)]
pub struct CheckHooks {
    /// Probes with this instead of chapter 4's `probe` (lab 7.3: an HTTP
    /// check with an expected status and body).
    pub probe: Option<CheckFn>,
    /// Run before a recovering backend is marked up (lab 7.4: a few
    /// requests of our own); a failure counts as a failed probe.
    pub warm_up: Option<CheckFn>,
    /// Runs each round instead of probing every node (lab 4.4: only the
    /// nodes that are down, when their schedule says so).
    pub recovery: Option<Arc<dyn RecoveryRound>>,
}

impl std::fmt::Debug for CheckHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckHooks")
            .field("probe", &self.probe.is_some())
            .field("warm_up", &self.warm_up.is_some())
            .field("recovery", &self.recovery)
            .finish()
    }
}

/// Runs the active checks of one pool.
#[derive(Debug, Clone)]
pub struct HealthChecker {
    /// The nodes to probe.
    pub pool: Arc<Pool>,
    /// The settings.
    pub config: HealthConfig,
    /// What the program adds.
    pub hooks: CheckHooks,
}

impl HealthChecker {
    /// Checks `pool` with `config`, as chapter 4 does.
    pub fn new(pool: Arc<Pool>, config: HealthConfig) -> Self {
        Self { pool, config, hooks: CheckHooks::default() }
    }

    /// The same, with the program's hooks.
    pub fn with_hooks(self, hooks: CheckHooks) -> Self {
        Self { hooks, ..self }
    }

    /// Probes every node once and records the results. The thread calls
    /// this every interval; tests call it directly, so no test has to wait
    /// for a timer.
    pub fn run_round(&self) {
        if let Some(recovery) = &self.hooks.recovery {
            recovery.round(self, Instant::now());
            return;
        }
        if self.config.probe == Probe::Off {
            return;
        }
        for node in &self.pool.nodes {
            let mut result = self.check(node);
            // This success would bring the node back: warm it up first.
            if result.is_ok()
                && !node.is_healthy()
                && node.health().probe_successes.saturating_add(1) >= self.config.rise
            {
                result = self.warm(node);
            }
            let why = result.as_ref().err().map(String::as_str).unwrap_or("");
            record_probe(node, result.is_ok(), &self.config, Instant::now(), why);
        }
    }

    /// Probes `node` once: with the program's probe if it has one, else
    /// with chapter 4's (a TCP connect when the probe is off).
    pub fn check(&self, node: &Node) -> Result<(), String> {
        match &self.hooks.probe {
            Some(check) => check(node.addr()),
            None => probe(node.addr(), &self.config.probe, self.config.timeout),
        }
    }

    /// Warms `node` up before it takes traffic again, when the program
    /// asks for it (lab 7.4); nothing to do otherwise.
    pub fn warm(&self, node: &Node) -> Result<(), String> {
        match &self.hooks.warm_up {
            Some(warm_up) => warm_up(node.addr()).map_err(|e| format!("warm-up: {e}")),
            None => Ok(()),
        }
    }

    /// Probes on a thread of its own until `shutdown` fires.
    pub fn spawn(self, shutdown: Shutdown) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new().name("health".into()).spawn(move || {
            // A recovery schedule keeps its own time: look at it often
            // enough that a due probe is not a whole interval late.
            let tick = match self.hooks.recovery {
                Some(_) => (self.config.interval / 4).max(Duration::from_millis(10)),
                None => self.config.interval,
            };
            loop {
                self.run_round();
                if shutdown.wait_timeout(tick) {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Backend;

    fn node() -> Node {
        Node::new(Backend::new("127.0.0.1:1", 1))
    }

    #[test]
    fn fall_and_rise_thresholds() {
        let (n, c, now) = (node(), HealthConfig::default(), Instant::now());
        record_probe(&n, false, &c, now, "x");
        record_probe(&n, false, &c, now, "x");
        assert!(n.is_healthy(), "two failures are not three");
        record_probe(&n, false, &c, now, "x");
        assert!(!n.is_healthy());
        record_probe(&n, true, &c, now, "");
        assert!(!n.is_healthy(), "one success is not two");
        record_probe(&n, true, &c, now, "");
        assert!(n.is_healthy());
        assert_eq!(n.health().recovered_at, Some(now), "slow start counts from here");
    }

    #[test]
    fn a_late_success_from_before_the_fall_does_not_bring_a_node_back() {
        let n = node();
        let c = HealthConfig { probe: Probe::Off, fail_timeout: Duration::from_secs(3600), ..HealthConfig::default() };
        let now = Instant::now();
        for _ in 0..3 {
            record_request(&n, false, &c, now);
        }
        assert!(!n.is_healthy());
        // A request that was already in flight answers: still down until
        // a request sent after fail_timeout succeeds.
        record_request(&n, true, &c, Instant::now());
        assert!(!n.is_healthy());
    }

    #[test]
    fn a_success_breaks_a_failure_streak() {
        let (n, c, now) = (node(), HealthConfig::default(), Instant::now());
        for ok in [false, false, true, false, false] {
            record_probe(&n, ok, &c, now, "x");
        }
        assert!(n.is_healthy());
    }

    #[test]
    fn passive_failures_take_a_node_down_and_without_probes_a_success_brings_it_back() {
        let n = node();
        let c = HealthConfig { probe: Probe::Off, fail_timeout: Duration::ZERO, ..HealthConfig::default() };
        let now = Instant::now();
        for _ in 0..3 {
            record_request(&n, false, &c, now);
        }
        assert!(!n.is_healthy());
        assert!(n.backend.is_available(Instant::now()), "fail_timeout zero: retried at once");
        record_request(&n, true, &c, Instant::now());
        assert!(n.is_healthy());
    }

    #[test]
    fn probing_a_closed_port_fails_with_a_reason() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let err = probe(&addr.to_string(), &Probe::Tcp, Duration::from_secs(1)).unwrap_err();
        assert!(err.starts_with("connect"), "{err}");
    }
}
