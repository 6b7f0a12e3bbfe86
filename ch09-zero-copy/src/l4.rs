//! `l4_proxy`: a layer 4 load balancer on one thread.
//!
//! It never parses a byte. Each client connection gets a backend, chosen
//! by one of chapter 4's algorithms (those that make sense without a
//! request: round robin, weighted, least connections, client IP hash),
//! and from then on the two sockets are relayed both ways by two
//! [`Direction`]s, splice or copy. Chapter 5's [`Poller`] says which
//! socket can move; nothing blocks.
//!
//! One connection pair is a slot in a table; its two sockets have tokens
//! `2 × slot` (the client) and `2 × slot + 1` (the backend). A pair is
//! first *connecting* (a non-blocking connect to the backend; a refusal
//! or a timeout tries the next backend, at most once each), then
//! *relaying*. Each socket is watched only for what its directions wait
//! for: the client for reading when the upstream direction waits for it,
//! for writing when the downstream direction waits to write to it; the
//! same for the backend. A direction that is done shuts down its
//! destination's sending half; when both are, the pair is closed.

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ch01_fundamentals::server::Shutdown;
use ch04_advanced::algorithm::{Algorithm, Context, pick_untried};
use ch04_advanced::health::{HealthConfig, Probe, record_request};
use ch04_advanced::node::Pool;
use ch05_event_loop::poller::{Event, Interest, Mechanism, Poller, Trigger};
use socket2::{Domain, Socket, Type};

use crate::relay::{Direction, Kind, Wait};

/// What `l4_proxy` is configured with.
#[derive(Debug, Clone)]
pub struct L4Config {
    /// How bytes move: splice through a pipe, or copy.
    pub kind: Kind,
    /// How long a backend may take to accept a connection.
    pub connect_timeout: Duration,
    /// How long a pair may move no byte before it is closed.
    pub idle_timeout: Duration,
    /// Client connections held at once; more are closed on arrival.
    pub max_connections: usize,
    /// Which system call waits.
    pub poller: Mechanism,
    /// Health settings: a failed connect counts as a failed request
    /// (passive check, `max_fails`), and the probes a checker thread runs
    /// on the same pool (TCP by default at layer 4) take backends out of
    /// rotation before any client meets them.
    pub health: HealthConfig,
}

impl Default for L4Config {
    fn default() -> Self {
        Self {
            kind: Kind::Auto(256 * 1024),
            connect_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(300),
            max_connections: 10_000,
            poller: Mechanism::best(),
            health: HealthConfig { probe: Probe::Tcp, ..HealthConfig::default() },
        }
    }
}

/// Counters, readable from any thread while the loop runs.
#[derive(Debug, Default)]
pub struct L4Stats {
    /// Client connections accepted.
    pub accepted: AtomicU64,
    /// Pairs open now.
    pub open: AtomicU64,
    /// Client connections closed at once: over `max_connections`, or no
    /// backend could be reached.
    pub refused: AtomicU64,
    /// Bytes from clients to backends.
    pub bytes_up: AtomicU64,
    /// Bytes from backends to clients.
    pub bytes_down: AtomicU64,
    /// Pairs that ended with an error (a reset, a broken pipe) or a timeout.
    pub failed: AtomicU64,
}

/// Where a pair is.
#[derive(Debug)]
enum Phase {
    /// Waiting for the backend's connect; `tried` marks backends tried.
    Connecting { since: Instant, tried: Vec<bool> },
    /// Both sockets connected; bytes move.
    Relaying { up: Direction, down: Direction, up_wait: Wait, down_wait: Wait },
}

/// One client connection and its backend connection.
#[derive(Debug)]
struct Pair {
    client: TcpStream,
    backend: TcpStream,
    node: usize,
    peer: SocketAddr,
    phase: Phase,
    last_progress: Instant,
    /// What each socket is registered for now.
    watching: (Interest, Interest),
}

/// What the loop needs besides the pairs.
struct L4<'a> {
    config: &'a L4Config,
    pool: &'a Pool,
    algorithm: &'a dyn Algorithm,
    addrs: &'a [SocketAddr],
    stats: &'a L4Stats,
    poller: Poller,
    pairs: Vec<Option<Pair>>,
    free: Vec<usize>,
}

const LISTENER: usize = usize::MAX;

// ANCHOR: run
/// Runs the proxy on `listener` until `shutdown` fires: each client is
/// paired with a backend of `pool` (whose addresses, resolved, are
/// `addrs`) picked by `algorithm`. When it stops, open pairs are closed.
pub fn run(
    listener: TcpListener,
    pool: &Pool,
    addrs: &[SocketAddr],
    algorithm: &dyn Algorithm,
    config: &L4Config,
    stats: &L4Stats,
    shutdown: Shutdown,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    shutdown.wake_listener(listener.local_addr()?);
    let mut poller = Poller::new(config.poller)?;
    poller.register(&listener, LISTENER, Interest::READABLE, Trigger::Level)?;
    let mut l4 = L4 { config, pool, algorithm, addrs, stats, poller, pairs: Vec::new(), free: Vec::new() };
    let mut events = Vec::with_capacity(1024);
    // Pairs that used their budget and go on without waiting.
    let mut busy: HashSet<usize> = HashSet::new();
    let mut last_sweep = Instant::now();
    while !shutdown.is_triggered() {
        let timeout = if busy.is_empty() { Duration::from_millis(250) } else { Duration::ZERO };
        l4.poller.wait(&mut events, Some(timeout))?;
        if shutdown.is_triggered() {
            // The trigger's own connection woke us: not a client.
            break;
        }
        for e in events.iter().copied() {
            if e.token == LISTENER {
                l4.accept_all(&listener);
            } else {
                l4.drive(e.token / 2, Some(e), &mut busy);
            }
        }
        for slot in std::mem::take(&mut busy) {
            l4.drive(slot, None, &mut busy);
        }
        if last_sweep.elapsed() >= Duration::from_millis(250) {
            l4.sweep();
            last_sweep = Instant::now();
        }
    }
    Ok(())
}
// ANCHOR_END: run

impl L4<'_> {
    /// Accepts every waiting client and starts connecting it to a backend.
    fn accept_all(&mut self, listener: &TcpListener) {
        while let Some((client, peer)) = crate::accept_next(listener) {
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            if client.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = client.set_nodelay(true);
            if self.stats.open.load(Ordering::Relaxed) as usize >= self.config.max_connections {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, max = self.config.max_connections, "too many connections; closed");
                continue;
            }
            let tried = vec![false; self.pool.nodes.len()];
            self.connect(client, peer, tried);
        }
    }

    /// Starts a non-blocking connect to the next backend for `client`;
    /// closes it when none is left.
    fn connect(&mut self, client: TcpStream, peer: SocketAddr, mut tried: Vec<bool>) {
        let key = peer.ip().to_string();
        let ctx = Context { client_ip: peer.ip(), key: &key, cookie: None, now: Instant::now() };
        while let Some(node) = pick_untried(self.algorithm, self.pool, &ctx, &tried) {
            if let Some(seen) = tried.get_mut(node) {
                *seen = true;
            }
            let Some(&addr) = self.addrs.get(node) else { continue };
            match start_connect(addr) {
                Ok(backend) => {
                    let slot = self.free.pop().unwrap_or_else(|| {
                        self.pairs.push(None);
                        self.pairs.len() - 1
                    });
                    let watching = (Interest { readable: false, writable: false }, Interest::WRITABLE);
                    if self.poller.register(&backend, 2 * slot + 1, Interest::WRITABLE, Trigger::Level).is_err() {
                        self.free.push(slot);
                        continue;
                    }
                    let now = Instant::now();
                    let phase = Phase::Connecting { since: now, tried };
                    if let Some(n) = self.pool.nodes.get(node) {
                        n.backend.active.fetch_add(1, Ordering::Relaxed);
                        n.backend.requests.fetch_add(1, Ordering::Relaxed);
                    }
                    let pair = Pair { client, backend, node, peer, phase, last_progress: now, watching };
                    if let Some(entry) = self.pairs.get_mut(slot) {
                        *entry = Some(pair);
                    }
                    self.stats.open.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => self.backend_failed(node, &e.to_string()),
            }
        }
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%peer, "no backend could be reached; connection closed");
    }

    fn backend_failed(&self, node: usize, why: &str) {
        if let Some(n) = self.pool.nodes.get(node) {
            n.backend.failures.fetch_add(1, Ordering::Relaxed);
            record_request(n, false, &self.config.health, Instant::now());
            tracing::debug!(backend = %n.addr(), error = why, "connect failed; trying the next backend");
        }
    }

    // ANCHOR: drive
    /// Moves pair `slot` on after `event` (or after it used its budget).
    fn drive(&mut self, slot: usize, event: Option<Event>, busy: &mut HashSet<usize>) {
        let Some(mut pair) = self.pairs.get_mut(slot).and_then(Option::take) else { return };
        if let Phase::Connecting { .. } = pair.phase {
            let backend_ready = event.is_some_and(|e| e.token % 2 == 1 && (e.writable || e.error || e.closed));
            if !backend_ready {
                self.put_back(slot, pair);
                return;
            }
            match pair.backend.take_error() {
                Ok(None) if pair.backend.peer_addr().is_ok() => {
                    if let Some(n) = self.pool.nodes.get(pair.node) {
                        record_request(n, true, &self.config.health, Instant::now());
                    }
                    let (up, down) = match (Direction::new(self.config.kind), Direction::new(self.config.kind)) {
                        (Ok(up), Ok(down)) => (up, down),
                        (Err(e), _) | (_, Err(e)) => return self.close(slot, pair, Some(&e.to_string())),
                    };
                    pair.phase = Phase::Relaying { up, down, up_wait: Wait::More, down_wait: Wait::More };
                }
                Ok(_) | Err(_) => return self.retry(slot, pair),
            }
        }
        let Phase::Relaying { up, down, up_wait, down_wait } = &mut pair.phase else { return };
        let (before_up, before_down) = (up.moved(), down.moved());
        let mut failure = None;
        if *up_wait != Wait::Done {
            match up.pump(&pair.client, &pair.backend) {
                Ok(w) => *up_wait = w,
                Err(e) => failure = Some(e),
            }
            if *up_wait == Wait::Done {
                let _ = pair.backend.shutdown(std::net::Shutdown::Write);
            }
        }
        if failure.is_none() && *down_wait != Wait::Done {
            match down.pump(&pair.backend, &pair.client) {
                Ok(w) => *down_wait = w,
                Err(e) => failure = Some(e),
            }
            if *down_wait == Wait::Done {
                let _ = pair.client.shutdown(std::net::Shutdown::Write);
            }
        }
        let (moved_up, moved_down) = (up.moved() - before_up, down.moved() - before_down);
        self.stats.bytes_up.fetch_add(moved_up, Ordering::Relaxed);
        self.stats.bytes_down.fetch_add(moved_down, Ordering::Relaxed);
        if moved_up + moved_down > 0 {
            pair.last_progress = Instant::now();
        }
        let (uw, dw) = (*up_wait, *down_wait);
        if let Some(e) = failure {
            return self.close(slot, pair, Some(&e.to_string()));
        }
        if uw == Wait::Done && dw == Wait::Done {
            return self.close(slot, pair, None);
        }
        if uw == Wait::More || dw == Wait::More {
            busy.insert(slot);
        }
        // The client is read when the upstream waits for it, written when
        // the downstream waits to write to it; the backend the other way.
        let client = Interest { readable: uw == Wait::Readable, writable: dw == Wait::Writable };
        let backend = Interest { readable: dw == Wait::Readable, writable: uw == Wait::Writable };
        if let Err(e) = self.watch(slot, &mut pair, client, backend) {
            return self.close(slot, pair, Some(&e.to_string()));
        }
        self.put_back(slot, pair);
    }
    // ANCHOR_END: drive

    /// Registers the pair's sockets for what they wait for, when it changed.
    fn watch(&mut self, slot: usize, pair: &mut Pair, client: Interest, backend: Interest) -> io::Result<()> {
        let none = Interest { readable: false, writable: false };
        let set = |poller: &mut Poller, s: &TcpStream, token: usize, old: Interest, new: Interest| -> io::Result<()> {
            match (old == none, new == none) {
                (true, true) => Ok(()),
                (true, false) => poller.register(s, token, new, Trigger::Level),
                (false, true) => poller.deregister(s),
                (false, false) if old != new => poller.reregister(s, token, new, Trigger::Level),
                (false, false) => Ok(()),
            }
        };
        set(&mut self.poller, &pair.client, 2 * slot, pair.watching.0, client)?;
        set(&mut self.poller, &pair.backend, 2 * slot + 1, pair.watching.1, backend)?;
        pair.watching = (client, backend);
        Ok(())
    }

    /// The connect failed: the next backend, or the end.
    fn retry(&mut self, slot: usize, pair: Pair) {
        let Pair { client, backend, node, peer, phase, .. } = pair;
        let _ = self.poller.deregister(&backend);
        drop(backend);
        self.release(slot, node);
        self.backend_failed(node, "connect refused or timed out");
        if let Phase::Connecting { tried, .. } = phase {
            self.connect(client, peer, tried);
        }
    }

    /// Ends a pair: both sockets deregistered and closed.
    fn close(&mut self, slot: usize, pair: Pair, error: Option<&str>) {
        let none = Interest { readable: false, writable: false };
        if pair.watching.0 != none {
            let _ = self.poller.deregister(&pair.client);
        }
        if pair.watching.1 != none {
            let _ = self.poller.deregister(&pair.backend);
        }
        if let Some(error) = error {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %pair.peer, error, "connection ended with an error");
        }
        self.release(slot, pair.node);
    }

    fn release(&mut self, slot: usize, node: usize) {
        if let Some(n) = self.pool.nodes.get(node) {
            n.backend.active.fetch_sub(1, Ordering::Relaxed);
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        self.free.push(slot);
    }

    fn put_back(&mut self, slot: usize, pair: Pair) {
        if let Some(entry) = self.pairs.get_mut(slot) {
            *entry = Some(pair);
        }
    }

    /// Closes pairs past their deadline: a connect that takes too long
    /// tries the next backend; a relay silent too long ends.
    fn sweep(&mut self) {
        let now = Instant::now();
        for slot in 0..self.pairs.len() {
            let late = match self.pairs.get(slot).and_then(Option::as_ref) {
                Some(Pair { phase: Phase::Connecting { since, .. }, .. }) => {
                    now.duration_since(*since) >= self.config.connect_timeout
                }
                Some(p) => now.duration_since(p.last_progress) >= self.config.idle_timeout,
                None => false,
            };
            if !late {
                continue;
            }
            let Some(pair) = self.pairs.get_mut(slot).and_then(Option::take) else { continue };
            match pair.phase {
                Phase::Connecting { .. } => self.retry(slot, pair),
                Phase::Relaying { .. } => self.close(slot, pair, Some("idle timeout")),
            }
        }
    }
}

/// A non-blocking connect under way to `addr`.
fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

impl L4Stats {
    /// The statistics report (SIGUSR1 and exit).
    pub fn report(&self, pool: &Pool) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = format!(
            "l4_proxy: {} connections accepted, {} open, {} refused, {} ended with an error; {} bytes up, {} bytes down\n",
            get(&self.accepted),
            get(&self.open),
            get(&self.refused),
            get(&self.failed),
            get(&self.bytes_up),
            get(&self.bytes_down)
        );
        for n in &pool.nodes {
            out.push_str(&format!(
                "  {}: {} connections, {} open, {} failed connects\n",
                n.addr(),
                get(&n.backend.requests),
                n.active(),
                get(&n.backend.failures)
            ));
        }
        out
    }
}
