//! `high_perf_lb`: chapter 4's load balancer on one thread, without
//! blocking.
//!
//! Chapter 3 and 4 give every client a thread that blocks in `read` and
//! `connect`. Here one thread holds every connection. Nothing blocks: each
//! socket is non-blocking, the `Poller` says which ones can make progress,
//! and each connection remembers where it is in a small state machine
//! ([`conn`]): reading the head, connecting, exchanging, closing. The
//! selection algorithms and the health bookkeeping are chapter 4's; the
//! head rules and error responses are chapter 2's. What is new is only the
//! shape of the program: a loop that waits, then dispatches.
//!
//! | piece | where |
//! |---|---|
//! | the loop: wait, accept, dispatch, timers, shutdown | this file |
//! | the backend set, replaced whole by a reload (chapter 10) | [`backends`] |
//! | the table of connections (and probes) by slot | `lb/slab.rs` |
//! | one connection: its `State`, `drive` and the backstop | [`conn`] (`lb/conn/mod.rs`) |
//! | bounded byte buffers | `lb/conn/buffer.rs` |
//! | the socket calls: read, write, non-blocking connect | `lb/conn/sockets.rs` |
//! | the exchange: request head, response head, bodies, the end | `lb/conn/exchange.rs` |
//! | failover, retry, the line of requests waiting for a descriptor | `lb/conn/failover.rs` |
//! | interest: what each socket is watched for (backpressure) | `lb/conn/interest.rs` |
//! | one lazy timer per connection, and what a deadline means | `lb/conn/deadlines.rs` |
//! | active health checks without blocking | [`probe`] |
//! | keeping backend connections between requests (chapter 6 plugs in) | [`reuse`] |
//! | whether a request may reach a backend at all (chapter 7 plugs in) | [`admit`] |
//! | new settings for a hook, posted from another thread (chapter 10) | [`mailbox`] |
//! | hearing about every request when it ends (chapter 8 plugs in) | [`observe`] |
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

pub mod admit;
pub mod backends;
pub mod conn;
pub mod handoff;
pub mod mailbox;
pub mod observe;
pub mod probe;
pub mod reuse;
mod slab;

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ch01_fundamentals::server::Shutdown;
use ch02_proxy::http::Limits;
use ch02_proxy::proxy::Timeouts;
use ch04_advanced::algorithm::{self, Kind};
use ch04_advanced::headers::Cidr;
use ch04_advanced::health::{HealthConfig, Probe};
use ch04_advanced::node::{Backend, Node};

use crate::poller::{self, Event, Interest, Poller, Trigger};
use crate::timers::{TimerId, Timers};
use admit::Admission;
use backends::{Backends, Current};
use conn::Conn;
use observe::Observe;
use reuse::Reuse;
use slab::Slab;

/// Everything configurable about `high_perf_lb`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Head limits and the header timeout (also the keep-alive idle time).
    pub limits: Limits,
    /// Connect, response and idle timeouts.
    pub timeouts: Timeouts,
    /// Active and passive health checking (chapter 4's settings).
    pub health: HealthConfig,
    /// Client connections held at once; more are refused with 503.
    pub max_connections: usize,
    /// Bytes buffered per direction per connection: when a buffer is full,
    /// the side filling it is not read (backpressure).
    pub buffer_size: usize,
    /// How long requests in progress may take to finish after shutdown.
    pub drain_timeout: Duration,
    /// Which system call waits.
    pub poller: poller::Mechanism,
    /// The algorithm's options (the sticky cookie's name).
    pub algorithm: algorithm::Options,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Whether each response says which backend set served it, in an
    /// `X-LB-Config-Gen` header (chapter 10).
    pub generation_header: bool,
    /// How long a client may leave bytes waiting without taking one
    /// (`None`: only the phase's own timeouts apply).
    pub write_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            health: HealthConfig::default(),
            max_connections: 50_000,
            buffer_size: 16 * 1024,
            drain_timeout: Duration::from_secs(30),
            poller: poller::Mechanism::best(),
            algorithm: algorithm::Options::default(),
            trusted_proxies: Vec::new(),
            generation_header: false,
            write_timeout: None,
        }
    }
}

/// Counters the loop keeps; readable from any thread while it runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Client connections accepted.
    pub accepted: AtomicU64,
    /// Client connections open now.
    pub open: AtomicU64,
    /// Requests with a valid head, sent to a backend.
    pub requests: AtomicU64,
    /// Error responses we made ourselves (4xx/5xx).
    pub errors: AtomicU64,
    /// Bytes held in connection buffers now.
    pub buffered: AtomicU64,
    /// The most bytes one connection has ever held in its buffers.
    pub peak_per_connection: AtomicU64,
    /// Connections closed because serving them panicked: each is a bug,
    /// logged with the connection's slot and peer.
    pub panics: AtomicU64,
    /// Requests sent again on a fresh connection because the kept one
    /// they were sent on turned out closed (chapter 6).
    pub stale_retries: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The load balancer: its backends, algorithm, settings and counters.
#[derive(Debug)]
pub struct Lb {
    /// The backend set in use and the algorithm that picks in it, which a
    /// reload may replace (chapter 10).
    pub current: Arc<Current>,
    /// The settings.
    pub config: Config,
    /// The counters.
    pub stats: Arc<Stats>,
    /// Where loops hand each other connections (several loops only).
    pub(crate) handoff: handoff::Handoff,
}

impl Lb {
    /// A load balancer over `backends` choosing with `kind`. Fails when a
    /// backend's address does not resolve: a DNS lookup would block the
    /// only thread, so each is resolved once, here.
    pub fn new(backends: Vec<Backend>, kind: Kind, config: Config) -> io::Result<Self> {
        let current = Arc::new(Current::new(backends, kind, &config)?);
        Ok(Self { current, config, stats: Arc::new(Stats::default()), handoff: handoff::Handoff::default() })
    }

    /// The backend set in use now.
    pub fn backends(&self) -> Arc<Backends> {
        self.current.load()
    }
}

/// What a token names: the listener, a client connection, a backend
/// socket (by its slot in `uplinks`), a probe, or the wake-up socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Listener,
    Client(usize),
    Upstream(usize),
    Probe(usize),
    Wake,
}

/// Who a backend socket belongs to now. A backend socket keeps its token
/// for its whole life; kept between requests (chapter 6), it passes from
/// one client connection to the pool and on to another, and only this
/// entry changes: no system call to tell the poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uplink {
    /// Carrying a request for client connection `i`.
    Conn(usize),
    /// Idle in the [`Reuse`], under its id there.
    Idle(usize),
}

// ANCHOR: tokens
impl Token {
    const LISTENER: usize = usize::MAX;

    /// Two low bits say which kind, the rest is the slot index.
    fn encode(self) -> usize {
        match self {
            Token::Listener => Self::LISTENER,
            Token::Client(i) => i << 2,
            Token::Upstream(i) => (i << 2) | 1,
            Token::Probe(i) => (i << 2) | 2,
            Token::Wake => 3,
        }
    }

    fn decode(token: usize) -> Token {
        match (token, token & 3) {
            (Self::LISTENER, _) => Token::Listener,
            (t, 0) => Token::Client(t >> 2),
            (t, 1) => Token::Upstream(t >> 2),
            (t, 2) => Token::Probe(t >> 2),
            (_, _) => Token::Wake,
        }
    }
}
// ANCHOR_END: tokens

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// A connection's current deadline.
    Conn(usize),
    /// A health probe's deadline.
    Probe(usize),
    /// Time to start a round of health probes.
    HealthRound,
    /// Accepting paused after running out of file descriptors; resume.
    ResumeAccept,
    /// A kept backend connection is due to expire.
    Reuse,
}

/// The loop's state: the poller, the timers, every connection.
pub(crate) struct Reactor<'a> {
    pub(crate) lb: &'a Lb,
    /// The backend set new requests are served by: the newest this loop
    /// has adopted.
    pub(crate) cur: Arc<Backends>,
    /// Readable when a reload published a new set (or listener), or
    /// another loop handed this one a connection.
    waker: Option<UnixStream>,
    /// This loop's place in the hand-off (several loops only).
    inbox: Option<Arc<handoff::Inbox>>,
    pub(crate) shutdown: Shutdown,
    pub(crate) poller: Poller,
    pub(crate) timers: Timers<Due>,
    pub(crate) conns: Slab<Conn>,
    pub(crate) probes: Slab<probe::ProbeConn>,
    /// Every backend socket's owner, by the slot its token names.
    pub(crate) uplinks: Slab<Uplink>,
    /// One read buffer for every socket: an idle connection owns no buffer.
    pub(crate) scratch: Vec<u8>,
    /// Whether a node's probe is in flight, by key.
    pub(crate) probing: Vec<bool>,
    /// Connections waiting for a descriptor to connect with, oldest first.
    pub(crate) waiting: VecDeque<usize>,
    /// Backend connections kept between requests (none in chapter 5).
    pub(crate) reuse: Option<&'a mut dyn Reuse>,
    /// The armed expiry timer of the kept connections, and when it fires.
    pub(crate) reuse_timer: Option<(TimerId, Instant)>,
    /// Who decides whether a request may reach a backend (none in chapter 5).
    pub(crate) admission: Option<&'a mut dyn Admission>,
    /// Who hears about each request when it ends (none in chapter 5).
    pub(crate) observe: Option<&'a mut dyn Observe>,
    listener: Option<TcpListener>,
    accepting: bool,
    /// Whether a round of health probes is scheduled.
    probing_rounds: bool,
    /// Which of the program's loops this is.
    worker: Worker,
    /// Client connections this loop took on (accepted and kept, or
    /// handed to it by another loop).
    accepted: u64,
    /// Connections this loop accepted and handed to another.
    handed: u64,
    /// Which of the reloads' listener moves this loop listens after (0:
    /// it listens where the program started).
    listening_on: u64,
}

// ANCHOR: worker
/// Which of a program's loops this one is. A program may run several,
/// one per thread, over the same [`Lb`] (chapter 10's `--workers`): each
/// has its own poller, connections and hooks, and they share the backend
/// set, its health and the counters. One listening socket serves them
/// all, watched with [`Trigger::Exclusive`] so that a new connection
/// wakes one loop, not every one; the first loop alone probes the
/// backends, since their health is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    /// From 0.
    pub index: usize,
    /// How many loops the program runs.
    pub count: usize,
}

impl Worker {
    /// The only loop of a program that runs one (chapters 5 to 9).
    pub const ONLY: Worker = Worker { index: 0, count: 1 };

    /// Whether this loop runs the health probes.
    fn probes(self) -> bool {
        self.index == 0
    }

    /// How this loop watches the listening socket.
    fn listen_trigger(self) -> Trigger {
        if self.count > 1 { Trigger::Exclusive } else { Trigger::Level }
    }
}
// ANCHOR_END: worker

/// How long shutdown waits for the next request of a connection that
/// was accepted, or had its last answer, just before (see
/// [`conn::Conn::idle_from`]).
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

// ANCHOR: run
/// Runs the load balancer on `listener` until `shutdown` fires, then stops
/// accepting and lets requests in progress finish (up to the drain
/// timeout). One thread does everything.
pub fn run(listener: TcpListener, lb: &Lb, shutdown: Shutdown) -> io::Result<()> {
    run_with(listener, lb, shutdown, Hooks::default())
}

/// What later chapters plug into the loop: chapter 6 keeps backend
/// connections between requests, chapter 7 decides which requests may
/// reach a backend, chapter 8 counts every request. Chapter 5 plugs in
/// none of them.
#[derive(Debug, Default)]
pub struct Hooks<'a> {
    /// Backend connections kept between requests (chapter 6's pool).
    pub reuse: Option<&'a mut dyn Reuse>,
    /// Asked about every request before a backend is picked (chapter 7's
    /// rate limiter).
    pub admission: Option<&'a mut dyn Admission>,
    /// Told about every request when it ends (chapter 8's metrics).
    pub observe: Option<&'a mut dyn Observe>,
}

/// [`run`] with the [`Hooks`] given.
pub fn run_with(listener: TcpListener, lb: &Lb, shutdown: Shutdown, hooks: Hooks<'_>) -> io::Result<()> {
    run_worker(listener, lb, shutdown, hooks, Worker::ONLY)
}

/// [`run_with`] as loop `worker` of several over the same `lb`, each on
/// its own thread with its own `listener` descriptor for one listening
/// socket (see [`Worker`]). It is [`prepare`], then [`run_prepared`].
pub fn run_worker(
    listener: TcpListener,
    lb: &Lb,
    shutdown: Shutdown,
    hooks: Hooks<'_>,
    worker: Worker,
) -> io::Result<()> {
    run_prepared(prepare(listener, lb, worker)?, lb, shutdown, hooks)
}

/// One loop's own descriptors, made before it serves: its poller,
/// watching the listening socket and the loop's wake-up socket.
#[derive(Debug)]
pub struct Prepared {
    listener: TcpListener,
    poller: Poller,
    waker: UnixStream,
    inbox: Option<Arc<handoff::Inbox>>,
    worker: Worker,
}

/// Makes loop `worker`'s descriptors. A program with several loops makes
/// every loop's before any serves: once one loop accepts clients, they can
/// take every descriptor the process may open, and a loop that could not
/// make its poller then would stop the program; made first, a failure
/// stops it before it has a client.
pub fn prepare(listener: TcpListener, lb: &Lb, worker: Worker) -> io::Result<Prepared> {
    listener.set_nonblocking(true)?;
    let mut poller = Poller::new(lb.config.poller)?;
    poller.register(&listener, Token::Listener.encode(), Interest::READABLE, worker.listen_trigger())?;
    let (waker, writer) = lb.current.waker()?;
    poller.register(&waker, Token::Wake.encode(), Interest::READABLE, Trigger::Level)?;
    // With several loops, connections are handed between them.
    let inbox = (worker.count > 1).then(|| lb.handoff.join(writer));
    Ok(Prepared { listener, poller, waker, inbox, worker })
}

/// Runs a prepared loop until `shutdown` fires and it has drained.
pub fn run_prepared(prepared: Prepared, lb: &Lb, shutdown: Shutdown, hooks: Hooks<'_>) -> io::Result<()> {
    let slot = prepared.worker.index;
    let result = serve_prepared(prepared, lb, shutdown, hooks);
    // Serves no set any more: a reload need not wait for this loop.
    lb.current.serving(slot, u64::MAX);
    result
}

fn serve_prepared(prepared: Prepared, lb: &Lb, shutdown: Shutdown, hooks: Hooks<'_>) -> io::Result<()> {
    let Prepared { listener, poller, waker, inbox, worker } = prepared;
    let Hooks { reuse, admission, observe } = hooks;
    // Shutdown wakes the loop through its own waker, not with a connection
    // to the listener: a listening socket shared with a new process (an
    // upgrade) could hand that connection to the other process.
    let current = Arc::clone(&lb.current);
    shutdown.on_trigger(move || current.wake());
    let cur = lb.backends();
    let mut r = Reactor {
        lb,
        probing: vec![false; cur.registry.nodes.len()],
        cur,
        waker: Some(waker),
        inbox,
        shutdown: shutdown.clone(),
        poller,
        timers: Timers::new(),
        conns: Slab::default(),
        probes: Slab::default(),
        uplinks: Slab::default(),
        scratch: vec![0; 64 * 1024],
        waiting: VecDeque::new(),
        // Shortens the trait object's lifetime to the reactor's.
        reuse: reuse.map(|r| r as &mut dyn Reuse),
        reuse_timer: None,
        admission: admission.map(|a| a as &mut dyn Admission),
        observe: observe.map(|o| o as &mut dyn Observe),
        listener: Some(listener),
        accepting: true,
        probing_rounds: false,
        worker,
        accepted: 0,
        handed: 0,
        listening_on: 0,
    };
    if worker.probes() && r.cur.config.health.probe != Probe::Off {
        r.timers.insert(Instant::now(), Due::HealthRound);
        r.probing_rounds = true;
    }
    // A reload may have come while the loop was being made.
    r.follow_listener();
    lb.current.serving(worker.index, r.cur.generation);
    let mut events = Vec::with_capacity(1024);
    let mut drain_until = None;
    loop {
        if drain_until.is_none() && shutdown.is_triggered() {
            drain_until = Some(Instant::now() + r.cur.config.drain_timeout);
            r.stop_accepting();
        }
        let mut fresh_until = None;
        if let Some(deadline) = drain_until {
            fresh_until = r.close_idle(Instant::now());
            let over = Instant::now() >= deadline;
            // Connections another loop handed this one meanwhile are
            // served before it stops; once it has, they go back.
            if (r.conns.len() == 0 || over) && !r.close_inbox(over) {
                continue;
            }
            if r.conns.len() == 0 || over {
                if worker.count > 1 {
                    tracing::info!(
                        worker = worker.index,
                        accepted = r.accepted,
                        handed = r.handed,
                        left = r.conns.len(),
                        "worker stopped"
                    );
                } else {
                    tracing::info!(left = r.conns.len(), "stopped");
                }
                if let Some(admission) = r.admission.as_deref_mut() {
                    admission.stopped();
                }
                return Ok(());
            }
        }
        let mut timeout = r.timers.timeout(Instant::now());
        if let Some(deadline) = drain_until {
            // Wake for the drain deadline, and for the first just-accepted
            // connection whose grace ends before it.
            let until = fresh_until.map_or(deadline, |f: Instant| f.min(deadline));
            let left = until.saturating_duration_since(Instant::now());
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        r.poller.wait(&mut events, timeout)?;
        // A reload may have published a new backend set while we waited:
        // the requests these events bring are served by it.
        r.adopt_newest();
        for (n, event) in events.iter().enumerate() {
            // A long round (up to 1,024 events) looks again now and then:
            // one atomic load, so a reload need not wait for the round's end.
            if n % 64 == 63 {
                r.adopt_newest();
            }
            r.dispatch(event);
        }
        let now = Instant::now();
        while let Some((_, due)) = r.timers.pop_expired(now) {
            r.on_timer(due, now);
        }
    }
}
// ANCHOR_END: run

impl Reactor<'_> {
    // ANCHOR: node_index
    /// The node filed under `key`. Every key the loop holds came from a
    /// set it adopted, and the registry of the newest set it adopted holds
    /// every key of the earlier ones: it never shrinks.
    #[expect(clippy::indexing_slicing, reason = "keys come from sets this loop adopted; the registry never shrinks")]
    pub(crate) fn node(&self, key: usize) -> &Node {
        &self.cur.registry.nodes[key]
    }
    // ANCHOR_END: node_index

    fn dispatch(&mut self, event: &Event) {
        match Token::decode(event.token) {
            // Once stopping, accept nothing more: a connection accepted now
            // would only be closed, and another process sharing the socket
            // (an upgrade) can take it.
            Token::Listener if self.shutdown.is_triggered() => {}
            Token::Listener => self.accept_all(),
            Token::Client(i) => self.drive(i, conn::Ready::client(event)),
            Token::Upstream(u) => match self.uplinks.get_mut(u).copied() {
                Some(Uplink::Conn(i)) => self.drive(i, conn::Ready::upstream(event)),
                Some(Uplink::Idle(id)) => self.on_idle_readable(id),
                // Closed since the poller reported it: nothing to do.
                None => {}
            },
            Token::Probe(i) => self.on_probe_event(i, event),
            Token::Wake => self.drain_waker(),
        }
    }

    // ANCHOR: adopt
    /// Takes the newest backend set, if a reload published one since the
    /// last look. Requests under way keep the set they started with; new
    /// ones get this one. Kept connections to backends the new set does
    /// not have are closed (their requests in flight finish first: they
    /// hold their own connections), and a new listening socket, if the
    /// reload brought one, replaces the old.
    fn adopt_newest(&mut self) {
        if self.lb.current.generation() == self.cur.generation {
            return;
        }
        let old = std::mem::replace(&mut self.cur, self.lb.current.load());
        self.probing.resize(self.cur.registry.nodes.len(), false);
        if let Some(reuse) = self.reuse.as_deref_mut() {
            let mut closed = Vec::new();
            for key in old.keys().iter().filter(|k| !self.cur.keys().contains(k)) {
                reuse.node_down(*key, &mut closed);
            }
            self.forget_streams(closed);
        }
        self.follow_listener();
        // A reload may have turned probes on.
        if self.worker.probes() && !self.probing_rounds && self.cur.config.health.probe != Probe::Off {
            self.timers.insert(Instant::now(), Due::HealthRound);
            self.probing_rounds = true;
        }
        self.lb.current.adopted(self.worker.index, self.cur.generation, Instant::now());
        tracing::info!(generation = self.cur.generation, backends = self.cur.keys().len(), "serving a new backend set");
    }
    // ANCHOR_END: adopt

    /// Listens where the newest reload moved the listening socket, unless
    /// this loop does already. Also at the loop's start: a reload may have
    /// moved it while the loop was being made.
    fn follow_listener(&mut self) {
        match self.lb.current.moved_listener(self.listening_on) {
            Some((number, Ok(listener))) => {
                self.listening_on = number;
                self.rebind(listener);
            }
            Some((number, Err(e))) => {
                self.listening_on = number;
                tracing::error!(error = %e, "cannot duplicate the new listening socket; listening where we were");
            }
            None => {}
        }
    }

    /// Listens on `listener` instead of the old socket. Connections
    /// already waiting in the old one's backlog are accepted first:
    /// closing a listening socket resets every connection still in it.
    fn rebind(&mut self, listener: TcpListener) {
        let addr = match listener.set_nonblocking(true).and_then(|()| listener.local_addr()) {
            Ok(addr) => addr,
            Err(e) => {
                return tracing::error!(error = %e, "cannot use the new listening socket; listening where we were");
            }
        };
        // Shutting down already: no new listener is wanted.
        let Some(old) = self.listener.take() else { return };
        if let Err(e) =
            self.poller.register(&listener, Token::Listener.encode(), Interest::READABLE, self.worker.listen_trigger())
        {
            self.listener = Some(old);
            return tracing::error!(error = %e, "cannot watch the new listening socket; listening where we were");
        }
        let _ = self.poller.deregister(&old);
        loop {
            match old.accept() {
                Ok((stream, peer)) => {
                    // Kept here, and counted here for the hand-off.
                    if let Some(own) = &self.inbox {
                        own.arrived();
                    }
                    self.add_client(stream, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        tracing::info!(addr = %addr, was = ?old.local_addr().ok(), "listening on the new address");
        self.lb.current.moved_to(addr);
        self.listener = Some(listener);
    }

    /// The wake-up socket is readable: empty it (the wake-up itself was
    /// the point; `adopt_newest` has already run), and take on the
    /// connections other loops handed this one.
    fn drain_waker(&mut self) {
        let Some(w) = &mut self.waker else { return };
        let mut sink = [0u8; 64];
        while matches!(io::Read::read(w, &mut sink), Ok(n) if n > 0) {}
        if let Some(inbox) = self.inbox.clone() {
            for (stream, peer) in inbox.take() {
                self.add_client(stream, peer);
            }
        }
    }

    /// Before stopping: closes the inbox and returns true, or, when
    /// connections wait in it and not `force`, takes them on and returns
    /// false (the loop goes on to serve them).
    fn close_inbox(&mut self, force: bool) -> bool {
        let Some(inbox) = self.inbox.clone() else { return true };
        let waiting = inbox.close(force);
        if waiting.is_empty() || force {
            for _ in &waiting {
                inbox.left();
            }
            return true;
        }
        for (stream, peer) in waiting {
            self.add_client(stream, peer);
        }
        false
    }

    /// One client connection fewer on this loop (closed, or refused as it
    /// arrived), for the hand-off's count.
    pub(crate) fn client_left(&self) {
        if let Some(inbox) = &self.inbox {
            inbox.left();
        }
    }

    fn on_timer(&mut self, due: Due, now: Instant) {
        match due {
            Due::Conn(i) => self.on_conn_timer(i, now),
            Due::Probe(i) => self.on_probe_timeout(i),
            Due::HealthRound => {
                // A reload may have turned probes off: then the rounds stop.
                if self.cur.config.health.probe == Probe::Off {
                    self.probing_rounds = false;
                    return;
                }
                self.start_probes();
                self.timers.insert(now + self.cur.config.health.interval, Due::HealthRound);
            }
            Due::ResumeAccept => {
                if let Some(l) = &self.listener {
                    let trigger = self.worker.listen_trigger();
                    let _ = self.poller.register(l, Token::Listener.encode(), Interest::READABLE, trigger);
                    self.accepting = true;
                    self.accept_all();
                }
            }
            Due::Reuse => self.expire_kept(now),
        }
    }

    // ANCHOR: accept
    /// Accepts every connection waiting in the backlog: with one readiness
    /// report for many connections, stopping after one would leave the
    /// rest waiting for the next report (forever, with edge triggering).
    fn accept_all(&mut self) {
        loop {
            let Some(listener) = &self.listener else { return };
            if !self.accepting {
                return;
            }
            if !self.waiting.is_empty() {
                // Requests are waiting for a descriptor: a descriptor freed
                // now is theirs, not a new client's. New clients wait in
                // the backlog meanwhile.
                return self.pause_accept("requests are waiting for a descriptor");
            }
            let (stream, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if ch01_fundamentals::net::is_out_of_descriptors(&e) => {
                    tracing::warn!(error = %e, "out of file descriptors");
                    return self.pause_accept("out of file descriptors");
                }
                Err(e) => {
                    // ECONNABORTED and friends: that client is gone, not us.
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            };
            // With several loops, the one with the fewest connections gets
            // it (see `handoff`).
            match self.inbox.as_ref().and_then(|own| self.lb.handoff.place(own)) {
                Some(other) => match other.hand(stream, peer) {
                    Ok(()) => self.handed += 1,
                    // That loop has stopped: this one serves it.
                    Err((stream, peer)) => {
                        if let Some(own) = &self.inbox {
                            own.arrived();
                        }
                        self.add_client(stream, peer);
                    }
                },
                None => self.add_client(stream, peer),
            }
        }
    }
    // ANCHOR_END: accept

    /// Stops accepting for 100 ms. The connections stay in the backlog, so
    /// the listener stays readable: a level-triggered loop would spin on
    /// it, so it is not watched meanwhile (deregistered: a socket watched
    /// with `Trigger::Exclusive` cannot be re-registered).
    fn pause_accept(&mut self, why: &str) {
        let Some(listener) = &self.listener else { return };
        tracing::debug!(reason = why, "pausing accept for 100 ms");
        let _ = self.poller.deregister(listener);
        self.accepting = false;
        self.timers.insert(Instant::now() + Duration::from_millis(100), Due::ResumeAccept);
    }

    fn add_client(&mut self, stream: TcpStream, peer: SocketAddr) {
        self.accepted += 1;
        let stats = &self.lb.stats;
        Stats::add(&stats.accepted, 1);
        if self.conns.len() >= self.cur.config.max_connections {
            // One try, never blocking: a refusal that cannot be sent at once
            // is not worth waiting for.
            let mut s = &stream;
            let _ = stream.set_nonblocking(true);
            let body = ch02_proxy::proxy::error_response(503, "too many connections; try again later");
            let _ = io::Write::write(&mut s, &body);
            Stats::add(&stats.errors, 1);
            return self.client_left();
        }
        if let Err(e) = stream.set_nonblocking(true).and_then(|()| stream.set_nodelay(true)) {
            tracing::debug!(%peer, error = %e, "cannot set up the client socket");
            return self.client_left();
        }
        let now = Instant::now();
        let slot = self.conns.insert(Conn::new(stream, peer, now));
        let Some(c) = self.conns.get_mut(slot) else { return };
        if let Err(e) =
            self.poller.register(&c.client, Token::Client(slot).encode(), Interest::READABLE, Trigger::Level)
        {
            tracing::warn!(%peer, error = %e, "cannot watch the client socket");
            self.conns.remove(slot);
            return self.client_left();
        }
        c.client_interest = Interest::READABLE;
        Stats::add(&stats.open, 1);
        self.arm(slot, now);
    }

    fn stop_accepting(&mut self) {
        if let Some(listener) = self.listener.take() {
            let _ = self.poller.deregister(&listener);
            tracing::info!(open = self.conns.len(), "shutting down: no new connections; draining");
        }
    }

    /// On shutdown, connections waiting for a request are closed once they
    /// have waited [`DRAIN_GRACE`] since they were accepted or last
    /// answered (at once, if they have been idle that long already); those
    /// in the middle of a request are left to finish (within the drain
    /// timeout), and every answer from now on says `Connection: close`.
    /// Returns when the next idle one is due.
    fn close_idle(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for i in self.conns.indices() {
            match self.conns.get_mut(i).and_then(|c| c.idle_from(DRAIN_GRACE)) {
                Some(from) if from <= now => self.close(i),
                Some(from) => next = Some(next.map_or(from, |n| n.min(from))),
                None => {}
            }
        }
        next
    }

    /// Closes connection `i` and forgets it.
    fn close(&mut self, i: usize) {
        if let Some(c) = self.conns.take(i) {
            self.dispose(i, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let all = [
            Token::Listener,
            Token::Client(0),
            Token::Upstream(7),
            Token::Probe(3),
            Token::Client(1 << 40),
            Token::Wake,
        ];
        for t in all {
            assert_eq!(Token::decode(t.encode()), t);
        }
    }

    #[test]
    fn a_panic_while_serving_one_connection_closes_only_that_one() {
        use std::io::Read;
        let backends = vec![Backend::new("127.0.0.1:9", 1)];
        let lb = Lb::new(backends, Kind::Rr, Config::default()).unwrap();
        let mut r = Reactor {
            lb: &lb,
            cur: lb.backends(),
            waker: None,
            inbox: None,
            shutdown: Shutdown::new(),
            poller: Poller::new(lb.config.poller).unwrap(),
            timers: Timers::new(),
            conns: Slab::default(),
            probes: Slab::default(),
            uplinks: Slab::default(),
            scratch: vec![0; 1024],
            probing: vec![false; 1],
            waiting: VecDeque::new(),
            reuse: None,
            reuse_timer: None,
            admission: None,
            observe: None,
            listener: None,
            accepting: false,
            probing_rounds: false,
            worker: Worker::ONLY,
            accepted: 0,
            handed: 0,
            listening_on: 0,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..2 {
            clients.push(TcpStream::connect(addr).unwrap());
            let (stream, peer) = listener.accept().unwrap();
            r.add_client(stream, peer);
        }
        assert_eq!(r.conns.len(), 2);

        let c = r.conns.take(0).unwrap();
        r.guarded(0, c, Instant::now(), |_, _| panic!("a bug in serving one connection"));

        assert_eq!(lb.stats.panics.load(Ordering::Relaxed), 1);
        assert_eq!(lb.stats.open.load(Ordering::Relaxed), 1);
        assert_eq!(r.conns.len(), 1, "only the connection that panicked is gone");
        assert!(r.conns.get_mut(1).is_some());
        // Its client sees the connection close, not a hang.
        clients[0].set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(clients[0].read(&mut [0; 16]).unwrap(), 0);
    }
}
