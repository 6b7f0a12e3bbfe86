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
//!
//! The backends are chapter 5's [`Current`]: one set, with its settings
//! (connect and idle timeouts, health thresholds, drain time), that a
//! reload may replace whole (chapter 10's layer 4 mode does). The loop
//! takes the newest set at the top of each round; a pair keeps the set it
//! was connected from to its end, so a reload never moves a connection
//! under way, and a backend that stays in the new set keeps its health
//! and counters.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ch01_fundamentals::server::Shutdown;
use ch04_advanced::algorithm::{Context, Kind as AlgorithmKind, pick_untried};
use ch04_advanced::health::{HealthConfig, Probe, record_request};
use ch04_advanced::node::Node;
use ch05_event_loop::lb::backends::{Backends, Current};
use ch05_event_loop::lb::handoff::{Handoff, Inbox};
use ch05_event_loop::poller::{Event, Interest, Mechanism, Poller, Trigger};
use socket2::{Domain, Socket, Type};

use ch05_event_loop::lb::Config as LoopConfig;

use crate::relay::{Direction, Kind, Wait};

// ANCHOR: at_layer4
/// Whether algorithm `kind` can pick a backend for a connection, where
/// there is no request: all of chapter 4's but sticky sessions (a cookie)
/// and the fastest backend (response times). The hashes key on the
/// client's address.
pub fn at_layer4(kind: AlgorithmKind) -> bool {
    !matches!(kind, AlgorithmKind::Sticky | AlgorithmKind::Fastest)
}

/// The names [`at_layer4`] accepts, for messages.
pub const LAYER4_ALGORITHMS: &str = "rr, wrr, lc, iphash, random, wrandom or hash";
// ANCHOR_END: at_layer4

/// What the loop is configured with, besides the backend set's settings.
#[derive(Debug, Clone)]
pub struct L4Config {
    /// How bytes move: splice through a pipe, or copy.
    pub kind: Kind,
    /// Client connections held at once; more are closed on arrival.
    pub max_connections: usize,
    /// Which system call waits.
    pub poller: Mechanism,
}

impl Default for L4Config {
    fn default() -> Self {
        Self { kind: Kind::Auto(256 * 1024), max_connections: 10_000, poller: Mechanism::best() }
    }
}

/// The settings a layer 4 backend set carries (chapter 5's loop settings,
/// of which layer 4 uses four): `connect` is how long a backend may take
/// to accept a connection, `idle` how long a pair may move no byte before
/// it is closed, `health` the thresholds (a failed connect counts as a
/// failed request, and probes, TCP by default here, take backends out
/// before a client meets them), `drain` how long pairs under way may go
/// on after a stop (zero: closed at once).
pub fn settings(connect: Duration, idle: Duration, health: HealthConfig, drain: Duration) -> LoopConfig {
    let mut config = LoopConfig { health, drain_timeout: drain, ..LoopConfig::default() };
    config.timeouts.connect = connect;
    config.timeouts.idle = idle;
    config
}

/// [`settings`] with `l4_proxy`'s defaults: 2 s to connect, 5 minutes
/// idle, chapter 4's thresholds with a TCP probe, no drain.
pub fn default_settings() -> LoopConfig {
    let health = HealthConfig { probe: Probe::Tcp, ..HealthConfig::default() };
    settings(Duration::from_secs(2), Duration::from_secs(300), health, Duration::ZERO)
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
    /// The set the backend was picked from, and its index there.
    set: Arc<Backends>,
    node: usize,
    peer: SocketAddr,
    phase: Phase,
    last_progress: Instant,
    /// What each socket is registered for now.
    watching: (Interest, Interest),
}

/// Loop `index` of several that share one listening socket, spreading
/// new clients over themselves through `handoff` (chapter 5's, as its
/// HTTP loops do): chapter 10's `--workers` in layer 4 mode.
#[derive(Debug, Clone, Copy)]
pub struct Worker<'a> {
    /// This loop's number, from 0.
    pub index: usize,
    /// How many loops there are: none accepts before all have joined.
    pub count: usize,
    /// Every loop's inbox.
    pub handoff: &'a Handoff,
}

/// What the loop needs besides the pairs.
struct L4<'a> {
    config: &'a L4Config,
    /// The loops' hand-off and this loop's inbox, when there are several.
    handoff: Option<(&'a Handoff, Arc<Inbox>)>,
    /// The newest set, which new clients are paired from.
    set: Arc<Backends>,
    stats: &'a L4Stats,
    poller: Poller,
    pairs: Vec<Option<Pair>>,
    free: Vec<usize>,
}

const LISTENER: usize = usize::MAX;
const WAKER: usize = usize::MAX - 1;

/// Runs the proxy on `listener`, one loop alone: see [`run_worker`].
pub fn run(
    listener: TcpListener,
    current: &Current,
    config: &L4Config,
    stats: &L4Stats,
    shutdown: Shutdown,
) -> io::Result<()> {
    run_worker(listener, current, config, stats, shutdown, None)
}

// ANCHOR: run
/// Runs the proxy on `listener` until `shutdown` fires: each client is
/// paired with a backend of `current`'s newest set, picked by the set's
/// algorithm (key: the client's address). A new set published by a
/// reload wakes the loop, which takes it, and the listening socket it
/// moved to if it did, before its next client. Once `shutdown` fires the
/// loop stops accepting and gives the pairs under way the set's drain
/// time to finish; those left then are closed. As one of several loops
/// (`worker`), it watches the shared socket exclusively (one loop woken
/// per connection) and a client it accepts goes to the loop with the
/// fewest, woken through its wake-up socket.
pub fn run_worker(
    listener: TcpListener,
    current: &Current,
    config: &L4Config,
    stats: &L4Stats,
    shutdown: Shutdown,
    worker: Option<Worker<'_>>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut poller = Poller::new(config.poller)?;
    let trigger = if worker.is_some() { Trigger::Exclusive } else { Trigger::Level };
    poller.register(&listener, LISTENER, Interest::READABLE, trigger)?;
    let mut listener = Some(listener);
    // A byte on the wake-up socket: a new set (Current::replace), a stop,
    // or a client another loop handed over.
    let (wake, waker) = current.waker()?;
    poller.register(&wake, WAKER, Interest::READABLE, Trigger::Level)?;
    let handoff = match worker {
        Some(w) => Some((w.handoff, w.handoff.join(waker.try_clone()?))),
        None => None,
    };
    shutdown.on_trigger(move || {
        let _ = (&waker).write(&[1]);
    });
    if let Some(w) = worker {
        w.handoff.wait_joined(w.count, || shutdown.is_triggered());
    }
    let index = worker.map_or(0, |w| w.index);
    let set = current.load();
    current.serving(index, set.generation);
    let mut l4 = L4 { config, handoff, set, stats, poller, pairs: Vec::new(), free: Vec::new() };
    let mut events = Vec::with_capacity(1024);
    // Pairs that used their budget and go on without waiting.
    let mut busy: HashSet<usize> = HashSet::new();
    let mut last_sweep = Instant::now();
    // The listener move this loop listens after (0: none), and once
    // stopping, the end of the drain.
    let (mut moved, mut draining) = (0, None);
    loop {
        if shutdown.is_triggered() && draining.is_none() {
            if let Some(l) = listener.take() {
                let _ = l4.poller.deregister(&l);
            }
            // Clients handed over and not taken yet are served with the rest.
            let waiting = l4.handoff.as_ref().map(|(_, inbox)| inbox.close(true)).unwrap_or_default();
            for (client, peer) in waiting {
                l4.start(client, peer);
            }
            let drain = l4.set.config.drain_timeout;
            let open = l4.open();
            if open > 0 && !drain.is_zero() {
                tracing::info!(
                    open,
                    drain_ms = drain.as_millis() as u64,
                    "stopped accepting; draining connections under way"
                );
            }
            draining = Some(Instant::now() + drain);
        }
        if draining.is_some_and(|end| l4.open() == 0 || Instant::now() >= end) {
            break;
        }
        let timeout = if busy.is_empty() { Duration::from_millis(250) } else { Duration::ZERO };
        l4.poller.wait(&mut events, Some(timeout))?;
        if current.generation() != l4.set.generation {
            l4.set = current.load();
            if let Some((number, socket)) = current.moved_listener(moved) {
                moved = number;
                l4.follow(socket, &mut listener, current, draining.is_some(), trigger);
            }
            current.adopted(index, l4.set.generation, Instant::now());
            tracing::info!(
                generation = l4.set.generation,
                backends = l4.set.pool.nodes.len(),
                "serving with a new backend set"
            );
        }
        for e in events.iter().copied() {
            match e.token {
                LISTENER => {
                    if let Some(l) = &listener {
                        l4.accept_all(l);
                    }
                }
                WAKER => {
                    let mut bytes = [0u8; 64];
                    while (&wake).read(&mut bytes).is_ok_and(|n| n > 0) {}
                    let handed = l4.handoff.as_ref().map(|(_, inbox)| inbox.take()).unwrap_or_default();
                    for (client, peer) in handed {
                        l4.start(client, peer);
                    }
                }
                token => l4.drive(token / 2, Some(e), &mut busy),
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
    l4.close_all();
    current.serving(index, u64::MAX);
    Ok(())
}
// ANCHOR_END: run

impl L4<'_> {
    /// Pairs open now.
    fn open(&self) -> usize {
        self.pairs.iter().filter(|p| p.is_some()).count()
    }

    /// Listens on the socket a reload moved the balancer to, instead of
    /// `listener` (unless stopping: then on none).
    fn follow(
        &mut self,
        socket: io::Result<TcpListener>,
        listener: &mut Option<TcpListener>,
        current: &Current,
        stopping: bool,
        trigger: Trigger,
    ) {
        let new = socket.and_then(|l| {
            l.set_nonblocking(true)?;
            if !stopping {
                self.poller.register(&l, LISTENER, Interest::READABLE, trigger)?;
            }
            Ok(l)
        });
        match new {
            Ok(new) => {
                if let Some(old) = listener.take() {
                    let _ = self.poller.deregister(&old);
                }
                if let Ok(addr) = new.local_addr() {
                    tracing::info!(%addr, "listening on the new address");
                    current.moved_to(addr);
                }
                if !stopping {
                    *listener = Some(new);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot listen on the moved socket; staying where we were"),
        }
    }

    /// Accepts every waiting client and starts connecting it to a backend;
    /// with several loops, hands it to the one with the fewest instead,
    /// when that is another.
    fn accept_all(&mut self, listener: &TcpListener) {
        while let Some((client, peer)) = crate::accept_next(listener) {
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            let (client, peer) = match self.handoff.as_ref().and_then(|(handoff, own)| handoff.place(own)) {
                Some(other) => match other.hand(client, peer) {
                    Ok(()) => continue,
                    // That loop has stopped: this one serves it.
                    Err(back) => {
                        if let Some((_, own)) = &self.handoff {
                            own.arrived();
                        }
                        back
                    }
                },
                None => (client, peer),
            };
            self.start(client, peer);
        }
    }

    /// Starts serving an accepted client: paired with a backend of the
    /// newest set, or closed when over `max_connections`.
    fn start(&mut self, client: TcpStream, peer: SocketAddr) {
        if client.set_nonblocking(true).is_err() {
            return self.client_left();
        }
        let _ = client.set_nodelay(true);
        if self.stats.open.load(Ordering::Relaxed) as usize >= self.config.max_connections {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, max = self.config.max_connections, "too many connections; closed");
            return self.client_left();
        }
        let set = Arc::clone(&self.set);
        let tried = vec![false; set.pool.nodes.len()];
        self.connect(client, peer, set, tried);
    }

    /// One client fewer on this loop, for the hand-off's count.
    fn client_left(&self) {
        if let Some((_, own)) = &self.handoff {
            own.left();
        }
    }

    /// Starts a non-blocking connect to the next backend of `set` for
    /// `client`; closes it when none is left.
    fn connect(&mut self, client: TcpStream, peer: SocketAddr, set: Arc<Backends>, mut tried: Vec<bool>) {
        let key = peer.ip().to_string();
        let ctx = Context { client_ip: peer.ip(), key: &key, cookie: None, now: Instant::now() };
        while let Some(node) = pick_untried(set.algorithm.as_ref(), &set.pool, &ctx, &tried) {
            if let Some(seen) = tried.get_mut(node) {
                *seen = true;
            }
            let Some(addr) = set.key(node).and_then(|k| set.addr(k)) else { continue };
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
                    if let Some(n) = set.pool.nodes.get(node) {
                        n.backend.active.fetch_add(1, Ordering::Relaxed);
                        n.backend.requests.fetch_add(1, Ordering::Relaxed);
                    }
                    let pair = Pair { client, backend, set, node, peer, phase, last_progress: now, watching };
                    if let Some(entry) = self.pairs.get_mut(slot) {
                        *entry = Some(pair);
                    }
                    self.stats.open.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => backend_failed(&set, node, &e.to_string()),
            }
        }
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        self.client_left();
        tracing::warn!(%peer, "no backend could be reached; connection closed");
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
                    if let Some(n) = pair.set.pool.nodes.get(pair.node) {
                        record_request(n, true, &pair.set.config.health, Instant::now());
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

    /// The connect failed: the next backend of the pair's set, or the end.
    fn retry(&mut self, slot: usize, pair: Pair) {
        let Pair { client, backend, set, node, peer, phase, .. } = pair;
        let _ = self.poller.deregister(&backend);
        drop(backend);
        self.release(slot, &set, node);
        backend_failed(&set, node, "connect refused or timed out");
        if let Phase::Connecting { tried, .. } = phase {
            self.connect(client, peer, set, tried);
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
        self.release(slot, &pair.set, pair.node);
        self.client_left();
    }

    /// Closes every pair left (the loop is stopping).
    fn close_all(&mut self) {
        for slot in 0..self.pairs.len() {
            if let Some(pair) = self.pairs.get_mut(slot).and_then(Option::take) {
                self.close(slot, pair, Some("the proxy stopped"));
            }
        }
    }

    fn release(&mut self, slot: usize, set: &Backends, node: usize) {
        if let Some(n) = set.pool.nodes.get(node) {
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
                Some(Pair { phase: Phase::Connecting { since, .. }, set, .. }) => {
                    now.duration_since(*since) >= set.config.timeouts.connect
                }
                Some(p) => now.duration_since(p.last_progress) >= p.set.config.timeouts.idle,
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

/// Counts a failed connect to node `node` of `set` against it.
fn backend_failed(set: &Backends, node: usize, why: &str) {
    if let Some(n) = set.pool.nodes.get(node) {
        n.backend.failures.fetch_add(1, Ordering::Relaxed);
        record_request(n, false, &set.config.health, Instant::now());
        tracing::debug!(backend = %n.addr(), error = why, "connect failed; trying the next backend");
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
    /// The statistics report (SIGUSR1 and exit), by program `name`, with
    /// a line for each of `nodes`.
    pub fn report<'a>(&self, name: &str, nodes: impl IntoIterator<Item = &'a Arc<Node>>) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = format!(
            "{name}: {} connections accepted, {} open, {} refused, {} ended with an error; {} bytes up, {} bytes down\n",
            get(&self.accepted),
            get(&self.open),
            get(&self.refused),
            get(&self.failed),
            get(&self.bytes_up),
            get(&self.bytes_down)
        );
        for n in nodes {
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
