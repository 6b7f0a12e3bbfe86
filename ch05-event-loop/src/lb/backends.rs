//! The backend set the loop picks from, as one value that a reload can
//! replace whole (chapter 10 does).
//!
//! A request is served by one [`Backends`]: the set in use when its head
//! was read. It keeps that set (an `Arc`) to its end, through retries and
//! failover, so a reload never changes a request half-way. The loop takes
//! the newest set between two rounds of events; requests read after that
//! use it. Nothing is locked on the way of a request: the loop holds its
//! own `Arc` and looks at one atomic counter per round to know whether a
//! newer set was published.
//!
//! A backend keeps its node (health, counters, latency) across sets for
//! as long as its address stays: each address gets a *key* once, and a
//! new set made of the same addresses reuses the same nodes. The keys are
//! what the pool of kept connections (chapter 6) and the metrics (chapter
//! 8) file things under, so both survive a reload too.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ch04_advanced::algorithm::{self, Algorithm, Kind};
use ch04_advanced::node::{Backend, Node, Pool};

use super::Config;

// ANCHOR: backends
/// One backend set and the algorithm that picks in it.
#[derive(Debug)]
pub struct Backends {
    /// 1 for the set the balancer started with, one more at each swap.
    pub generation: u64,
    /// The nodes, in configuration order, with their health and counters.
    pub pool: Arc<Pool>,
    /// How a node is chosen in this set.
    pub algorithm: Box<dyn Algorithm>,
    /// Which algorithm that is.
    pub kind: Kind,
    /// Node `i`'s key: where it is filed for as long as its address is in
    /// some set.
    keys: Vec<usize>,
    /// Every node the balancer has had, by key, as of this set: the loop
    /// looks nodes up here without taking a lock.
    pub registry: Arc<Registry>,
    /// By key: whether the node is in this set.
    member: Vec<bool>,
    /// Path prefixes served by a subset of the backends, longest first
    /// (chapter 10's `routes`); a path no prefix matches is served by them all.
    pub routes: Vec<Routed>,
    /// The loop's settings (timeouts, head limits, health checks, ...)
    /// from this set on: a reload may change them with the backends.
    pub config: Arc<Config>,
}
// ANCHOR_END: backends

/// A path prefix and the backends that serve it, with an algorithm of
/// their own (so the balancing among them is as good as among all).
#[derive(Debug)]
pub struct Routed {
    /// The prefix: a path that starts with it is routed here.
    pub prefix: String,
    /// Its nodes (the same nodes as the whole set's, shared).
    pub pool: Arc<Pool>,
    /// How a node is chosen among them.
    pub algorithm: Box<dyn Algorithm>,
    keys: Vec<usize>,
}

/// The backends one request is served by: the whole set, or a route's.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    /// The nodes.
    pub pool: &'a Arc<Pool>,
    /// How a node is chosen.
    pub algorithm: &'a dyn Algorithm,
    keys: &'a [usize],
}

impl Group<'_> {
    /// The key of node `i` of this group.
    pub fn key(&self, i: usize) -> Option<usize> {
        self.keys.get(i).copied()
    }
}

impl Backends {
    /// The key of node `i` of this set.
    pub fn key(&self, i: usize) -> Option<usize> {
        self.keys.get(i).copied()
    }

    /// Every node's key, in the set's order.
    pub fn keys(&self) -> &[usize] {
        &self.keys
    }

    // ANCHOR: route
    /// Which group serves `target`: the route with the longest prefix its
    /// path starts with (`Some(i)`, into `routes`), or the whole set.
    pub fn route(&self, target: &str) -> Option<usize> {
        if self.routes.is_empty() {
            return None;
        }
        let path = path_of(target);
        self.routes.iter().position(|r| path.starts_with(r.prefix.as_str()))
    }
    // ANCHOR_END: route

    /// The backends of `route` (see [`route`](Self::route)); the whole set
    /// for `None`, or for a route this set does not have.
    pub fn group(&self, route: Option<usize>) -> Group<'_> {
        match route.and_then(|i| self.routes.get(i)) {
            Some(r) => Group { pool: &r.pool, algorithm: r.algorithm.as_ref(), keys: &r.keys },
            None => Group { pool: &self.pool, algorithm: self.algorithm.as_ref(), keys: &self.keys },
        }
    }

    /// Whether the node filed under `key` is in this set.
    pub fn contains(&self, key: usize) -> bool {
        self.member.get(key).copied().unwrap_or(false)
    }

    /// The node filed under `key`.
    pub fn node(&self, key: usize) -> Option<&Arc<Node>> {
        self.registry.nodes.get(key)
    }

    /// The address of the node filed under `key`.
    pub fn addr(&self, key: usize) -> Option<SocketAddr> {
        self.registry.addrs.get(key).copied()
    }
}

/// Every node the balancer has had, by key, and its resolved address.
/// It never shrinks: a key stays meaningful as long as anything (a
/// request, a kept connection, a metric) may hold it. It grows only with
/// addresses never seen before.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    /// Node by key.
    pub nodes: Vec<Arc<Node>>,
    /// Address by key, resolved once: a DNS lookup would block the loop.
    pub addrs: Vec<SocketAddr>,
    by_addr: HashMap<String, usize>,
}

/// The path of a request target: itself in origin form (`/a/b?q`), the
/// part from the first `/` after the host in absolute form
/// (`http://h/a/b`), `/` when there is none.
fn path_of(target: &str) -> &str {
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => target,
    }
}

/// What a new set is made of.
#[derive(Debug)]
pub struct Replacement {
    /// The backends, in order.
    pub backends: Vec<Backend>,
    /// Path prefixes and the backends (`host:port`, each one of
    /// `backends`) that serve them.
    pub routes: Vec<(String, Vec<String>)>,
    /// New settings for the loop; `None` keeps those of the set in use.
    pub config: Option<Config>,
    /// The algorithm.
    pub kind: Kind,
    /// Its options (the sticky cookie's name, the hash ring's size).
    pub options: algorithm::Options,
    /// How long a recovered node takes to reach its full weight.
    pub slow_start: Duration,
    /// A new listening socket, when the address to listen on changed.
    pub listener: Option<TcpListener>,
    /// When the change was asked for (a signal, a request to the admin
    /// listener): the loop measures from here to the moment it serves
    /// with the new set.
    pub asked: Instant,
}

// ANCHOR: current
/// The set in use now. Many threads may read it; a reload replaces it
/// with [`replace`](Current::replace), and each loop adopts the new one
/// between two rounds of events.
#[derive(Debug)]
pub struct Current {
    now: Mutex<Arc<Backends>>,
    /// The newest set's generation: what the loop compares with its own.
    generation: AtomicU64,
    registry: Mutex<Registry>,
    /// The listening socket the newest move brought, and its number
    /// (from 1): every loop listens on a duplicate of it. Kept here, so a
    /// loop that starts after the move still finds it.
    moved: Mutex<Option<(u64, TcpListener)>>,
    /// Where the loop listens, once a reload has moved it.
    listening: Mutex<Option<SocketAddr>>,
    /// One end of each loop's wake-up socket: a byte written there makes
    /// a loop waiting for readiness return at once.
    wakers: Mutex<Vec<UnixStream>>,
    /// The generation each loop serves (0: not started; `u64::MAX`:
    /// stopped), so that a reload can wait until every loop serves it.
    serving: Mutex<Vec<u64>>,
    served: Condvar,
    /// When the newest swap was asked for.
    asked: Mutex<Option<Instant>>,
    /// From a swap being asked for to a loop serving with it.
    pub swap_latency: SwapTimes,
}
// ANCHOR_END: current

/// How long swaps took, each kept exactly: a few a second at most, so
/// the newest [`SwapTimes::KEPT`] of them cost 64 KiB and give true
/// percentiles, where power-of-two buckets could only say "between 4 and
/// 8 ms" of a 5 ms target.
#[derive(Debug, Default)]
pub struct SwapTimes {
    /// The newest durations, oldest first, and how many were recorded in all.
    kept: Mutex<(VecDeque<Duration>, u64)>,
}

impl SwapTimes {
    /// How many durations are kept: the percentiles are over these.
    pub const KEPT: usize = 4096;

    /// Records one swap's duration, forgetting the oldest beyond `KEPT`.
    pub fn record(&self, took: Duration) {
        let mut kept = lock(&self.kept);
        if kept.0.len() == Self::KEPT {
            kept.0.pop_front();
        }
        kept.0.push_back(took);
        kept.1 += 1;
    }

    /// How many swaps were recorded since the start.
    pub fn count(&self) -> u64 {
        lock(&self.kept).1
    }

    /// The `q` quantile (0 to 1, nearest rank) of the kept durations;
    /// `None` before the first.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut sorted: Vec<Duration> = lock(&self.kept).0.iter().copied().collect();
        sorted.sort_unstable();
        let rank = (sorted.len() as f64 * q.clamp(0.0, 1.0)).ceil().max(1.0) as usize;
        sorted.get(rank.checked_sub(1)?).copied()
    }
}

/// A mutex's contents, even if a thread panicked holding it (the data it
/// guards stays consistent: every change is one assignment).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Current {
    /// The first set: `backends` picked from by `kind`. Fails when a
    /// backend's address does not resolve, or when there is none.
    pub fn new(backends: Vec<Backend>, kind: Kind, config: &Config) -> io::Result<Self> {
        let mut registry = Registry::default();
        let settings = Arc::new(config.clone());
        let first =
            build(&mut registry, (backends, Vec::new()), kind, &config.algorithm, (Duration::ZERO, settings), 1)?;
        Ok(Self {
            now: Mutex::new(Arc::new(first)),
            generation: AtomicU64::new(1),
            registry: Mutex::new(registry),
            moved: Mutex::new(None),
            listening: Mutex::new(None),
            wakers: Mutex::new(Vec::new()),
            serving: Mutex::new(Vec::new()),
            served: Condvar::new(),
            asked: Mutex::new(None),
            swap_latency: SwapTimes::default(),
        })
    }

    /// The set in use now.
    pub fn load(&self) -> Arc<Backends> {
        Arc::clone(&lock(&self.now))
    }

    /// The newest set's generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    // ANCHOR: replace
    /// Publishes a new set made of `with`, and wakes the loops to adopt
    /// it. Everything that can fail (resolving the addresses) is done
    /// before anything changes: an error leaves the running set as it
    /// was. Backends whose address was in an earlier set keep their node,
    /// so their health and counters, with the new weight. Returns the new
    /// generation.
    pub fn replace(&self, with: Replacement) -> io::Result<u64> {
        let Replacement { backends, routes, config, kind, options, slow_start, listener, asked } = with;
        // One reload at a time; the loops are not held up meanwhile.
        let mut registry = lock(&self.registry);
        let generation = self.generation() + 1;
        let settings = config.map_or_else(|| Arc::clone(&self.load().config), Arc::new);
        let next = build(&mut registry, (backends, routes), kind, &options, (slow_start, settings), generation)?;
        // Published before the set: a loop that sees the set sees the move.
        if let Some(listener) = listener {
            let mut moved = lock(&self.moved);
            let number = moved.as_ref().map_or(0, |(n, _)| *n) + 1;
            *moved = Some((number, listener));
        }
        *lock(&self.asked) = Some(asked);
        *lock(&self.now) = Arc::new(next);
        self.generation.store(generation, Ordering::Release);
        drop(registry);
        self.wake();
        Ok(generation)
    }
    // ANCHOR_END: replace

    /// Makes the first set again from `with`, keeping generation 1: for
    /// what the command line that built the first set cannot say (chapter
    /// 10's routes). Only before a loop serves from it: refused after.
    pub fn amend(&self, with: Replacement) -> io::Result<()> {
        let Replacement { backends, routes, config, kind, options, slow_start, .. } = with;
        let mut registry = lock(&self.registry);
        if !lock(&self.wakers).is_empty() || self.generation() != 1 {
            return Err(io::Error::other("the first backend set can only be amended before the loop starts"));
        }
        let settings = config.map_or_else(|| Arc::clone(&self.load().config), Arc::new);
        let first = build(&mut registry, (backends, routes), kind, &options, (slow_start, settings), 1)?;
        *lock(&self.now) = Arc::new(first);
        Ok(())
    }

    /// A loop's wake-up socket: the loop watches the first end returned;
    /// a byte written to the second (or by a reload) wakes it.
    pub fn waker(&self) -> io::Result<(UnixStream, UnixStream)> {
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        theirs.set_nonblocking(true)?;
        let writer = ours.try_clone()?;
        lock(&self.wakers).push(ours);
        Ok((theirs, writer))
    }

    /// Wakes every loop (a byte on each wake-up socket).
    pub fn wake(&self) {
        for w in lock(&self.wakers).iter_mut() {
            // A full socket already holds a wake-up: nothing lost.
            let _ = w.write(&[1]);
        }
    }

    /// Where the loop listens now, if a reload moved it (else where it
    /// started: the caller knows that).
    pub fn listening(&self) -> Option<SocketAddr> {
        *lock(&self.listening)
    }

    /// Records that the loop now listens at `addr` (after a move).
    pub fn moved_to(&self, addr: SocketAddr) {
        *lock(&self.listening) = Some(addr);
    }

    /// A duplicate of the listening socket the newest move brought, with
    /// the move's number, for a loop that listens after move `have` (0:
    /// none yet); `None` when there is no newer move. Asked once per set
    /// adopted, never per request.
    pub fn moved_listener(&self, have: u64) -> Option<(u64, io::Result<TcpListener>)> {
        lock(&self.moved)
            .as_ref()
            .filter(|(number, _)| *number != have)
            .map(|(number, listener)| (*number, listener.try_clone()))
    }

    /// The program runs `loops` loops (numbered from 0): a reload waits
    /// for each of them in [`wait_served`](Current::wait_served). Called
    /// before the first reload can come.
    pub fn expect_loops(&self, loops: usize) {
        *lock(&self.serving) = vec![0; loops];
    }

    /// Loop `slot` serves set `generation` from now (`u64::MAX`: it has
    /// stopped and serves nothing more).
    pub fn serving(&self, slot: usize, generation: u64) {
        if let Some(serves) = lock(&self.serving).get_mut(slot) {
            *serves = generation;
        }
        self.served.notify_all();
    }

    /// Loop `slot` serves with the newest set from now: how long that
    /// took since it was asked for is recorded.
    pub fn adopted(&self, slot: usize, generation: u64, at: Instant) {
        if let Some(asked) = *lock(&self.asked) {
            self.swap_latency.record(at.saturating_duration_since(asked));
        }
        self.serving(slot, generation);
    }

    /// Waits up to `within` until every loop the program said it runs
    /// serves set `generation` or a newer one (or has stopped): after
    /// that, no request starts on an older set and the listening socket
    /// is where the set says. False when the time ran out first.
    pub fn wait_served(&self, generation: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut serving = lock(&self.serving);
        loop {
            if serving.iter().all(|&serves| serves >= generation) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            serving = self.served.wait_timeout(serving, left).map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }
}

/// Makes set number `generation` of `backends`, filing new addresses in
/// `registry`. The registry is changed only once every address resolved.
fn build(
    registry: &mut Registry,
    (backends, routes): (Vec<Backend>, Vec<(String, Vec<String>)>),
    kind: Kind,
    options: &algorithm::Options,
    (slow_start, config): (Duration, Arc<Config>),
    generation: u64,
) -> io::Result<Backends> {
    if backends.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "at least one backend is needed"));
    }
    let mut resolved = Vec::with_capacity(backends.len());
    for b in &backends {
        let addr = match registry.by_addr.get(&b.addr).and_then(|&k| registry.addrs.get(k)) {
            Some(&known) => known,
            None => b
                .addr
                .to_socket_addrs()
                .map_err(|e| io::Error::new(e.kind(), format!("backend {}: {e}", b.addr)))?
                .next()
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("backend {} has no address", b.addr))
                })?,
        };
        resolved.push(addr);
    }
    // Routes name backends of this set, and at least one each.
    let backends_addrs: Vec<String> = backends.iter().map(|b| b.addr.clone()).collect();
    for (prefix, names) in &routes {
        if names.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("route {prefix} has no backend")));
        }
        if let Some(name) = names.iter().find(|n| !backends_addrs.contains(n)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("route {prefix}: {name} is not a backend"),
            ));
        }
    }
    let (mut nodes, mut keys) = (Vec::with_capacity(backends.len()), Vec::with_capacity(backends.len()));
    for (b, addr) in backends.into_iter().zip(resolved) {
        let known = registry.by_addr.get(&b.addr).copied();
        let key = match known.and_then(|k| registry.nodes.get(k).map(|n| (k, n))) {
            Some((k, node)) => {
                node.set_weight(b.weight);
                nodes.push(Arc::clone(node));
                k
            }
            None => {
                let key = registry.nodes.len();
                registry.by_addr.insert(b.addr.clone(), key);
                let node = Arc::new(Node::new(b));
                registry.nodes.push(Arc::clone(&node));
                registry.addrs.push(addr);
                nodes.push(node);
                key
            }
        };
        keys.push(key);
    }
    let mut routed = Vec::with_capacity(routes.len());
    for (prefix, names) in routes {
        let (mut r_nodes, mut r_keys) = (Vec::new(), Vec::new());
        for name in &names {
            let at = backends_addrs.iter().position(|a| a == name);
            if let Some((node, &key)) = at.and_then(|at| Some((nodes.get(at)?, keys.get(at)?))) {
                r_nodes.push(Arc::clone(node));
                r_keys.push(key);
            }
        }
        let pool = Arc::new(Pool { nodes: r_nodes, slow_start });
        let algorithm = algorithm::build(kind, &pool, options);
        routed.push(Routed { prefix, pool, algorithm, keys: r_keys });
    }
    // Longest prefix first: the first match is the most specific.
    routed.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    let pool = Arc::new(Pool { nodes, slow_start });
    let algorithm = algorithm::build(kind, &pool, options);
    let mut member = vec![false; registry.nodes.len()];
    for &k in &keys {
        if let Some(m) = member.get_mut(k) {
            *m = true;
        }
    }
    Ok(Backends {
        generation,
        pool,
        algorithm,
        kind,
        keys,
        registry: Arc::new(registry.clone()),
        member,
        routes: routed,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_times_are_exact_and_only_the_newest_are_kept() {
        let times = SwapTimes::default();
        assert_eq!(times.quantile(0.99), None);
        let ms = Duration::from_millis;
        for n in 1..=100 {
            times.record(ms(n));
        }
        assert_eq!(times.count(), 100);
        assert_eq!(times.quantile(0.5), Some(ms(50)));
        assert_eq!(times.quantile(0.99), Some(ms(99)));
        assert_eq!(times.quantile(1.0), Some(ms(100)));
        assert_eq!(times.quantile(0.0), Some(ms(1)));
        // KEPT more of 1 ms push every earlier one out.
        for _ in 0..SwapTimes::KEPT {
            times.record(ms(1));
        }
        assert_eq!(times.count(), 100 + SwapTimes::KEPT as u64);
        assert_eq!(times.quantile(1.0), Some(ms(1)));
    }

    /// A round-robin set of `backends` with `routes`, nothing else changed.
    fn replacement(backends: &[&str], routes: Vec<(String, Vec<String>)>) -> Replacement {
        Replacement {
            backends: backends.iter().map(|a| Backend::new(*a, 1)).collect(),
            routes,
            config: None,
            kind: Kind::Rr,
            options: algorithm::Options::default(),
            slow_start: Duration::ZERO,
            listener: None,
            asked: Instant::now(),
        }
    }

    fn swap(current: &Current, addrs: &[(&str, u32)]) -> io::Result<u64> {
        let names: Vec<&str> = addrs.iter().map(|&(a, _)| a).collect();
        let mut with = replacement(&names, Vec::new());
        with.backends = addrs.iter().map(|&(a, w)| Backend::new(a, w)).collect();
        current.replace(with)
    }

    #[test]
    fn a_backend_keeps_its_node_and_key_across_sets() {
        let options = Config::default();
        let current = Current::new(
            vec![Backend::new("127.0.0.1:9001", 1), Backend::new("127.0.0.1:9002", 1)],
            Kind::Rr,
            &options,
        )
        .unwrap();
        let first = current.load();
        first.pool.nodes[1].backend.failures.fetch_add(3, Ordering::Relaxed);
        assert_eq!(swap(&current, &[("127.0.0.1:9002", 5), ("127.0.0.1:9003", 1)]).unwrap(), 2);
        let second = current.load();
        assert_eq!(second.generation, 2);
        assert_eq!(second.keys(), &[1, 2], "9002 keeps key 1; 9003 is new");
        assert!(!second.contains(0) && second.contains(1) && second.contains(2) && !second.contains(7));
        assert!(Arc::ptr_eq(&first.pool.nodes[1], &second.pool.nodes[0]), "the same node, counters and all");
        assert_eq!(second.pool.nodes[0].backend.failures.load(Ordering::Relaxed), 3);
        assert_eq!(second.pool.nodes[0].weight(), 5, "with the new weight");
        assert_eq!(first.generation, 1, "a request holding the first set still has it whole");
        assert_eq!(second.registry.nodes.len(), 3);
        // Back to the first address: its old key.
        swap(&current, &[("127.0.0.1:9001", 1)]).unwrap();
        assert_eq!(current.load().keys(), &[0]);
        assert_eq!(current.generation(), 3);
    }

    #[test]
    fn a_set_that_cannot_be_built_changes_nothing() {
        let options = Config::default();
        let current = Current::new(vec![Backend::new("127.0.0.1:9001", 1)], Kind::Rr, &options).unwrap();
        assert!(swap(&current, &[]).is_err());
        assert!(swap(&current, &[("127.0.0.1:9009", 1), ("no-such-host.invalid:80", 1)]).is_err());
        assert_eq!(current.generation(), 1);
        assert_eq!(current.load().keys(), &[0]);
        assert_eq!(current.load().registry.nodes.len(), 1);
        swap(&current, &[("127.0.0.1:9002", 1)]).unwrap();
        assert_eq!(current.load().keys(), &[1], "nothing was filed for the set that was not made");
    }

    #[test]
    fn routes_pick_among_their_own_backends_longest_prefix_first() {
        let options = Config::default();
        let current = Current::new(vec![Backend::new("127.0.0.1:9001", 1)], Kind::Rr, &options).unwrap();
        let all = ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"];
        let route = |p: &str, names: &[&str]| (p.to_string(), names.iter().map(|s| s.to_string()).collect());
        current
            .replace(replacement(&all, vec![route("/api", &[all[1], all[2]]), route("/api/v2", &[all[2]])]))
            .unwrap();
        let set = current.load();
        let prefix = |target: &str| set.route(target).map(|i| set.routes[i].prefix.clone());
        assert_eq!(prefix("/api/v2/users").as_deref(), Some("/api/v2"), "the longest prefix wins");
        assert_eq!(prefix("/api/v1").as_deref(), Some("/api"));
        assert_eq!(prefix("http://example.com/api/x?q=1").as_deref(), Some("/api"), "absolute form: its path");
        assert_eq!(prefix("/static/a.css"), None);
        assert_eq!(prefix("http://example.com"), None);
        let v2 = set.group(set.route("/api/v2"));
        assert_eq!(v2.pool.nodes.len(), 1);
        assert_eq!(v2.key(0), Some(2), "9003's key, shared with the whole set");
        assert!(Arc::ptr_eq(&v2.pool.nodes[0], &set.pool.nodes[2]), "the same node as the whole set's");
        assert_eq!(set.group(None).pool.nodes.len(), 3);
        // A route naming something that is not a backend: nothing changes.
        let bad = current.replace(replacement(&all[..1], vec![route("/x", &["127.0.0.1:9999"])]));
        assert!(bad.is_err());
        assert_eq!(current.load().generation, 2);
    }

    #[test]
    fn a_swap_wakes_every_loop() {
        use std::io::Read;
        let options = Config::default();
        let current = Current::new(vec![Backend::new("127.0.0.1:9001", 1)], Kind::Rr, &options).unwrap();
        let (mut a, mut b) = (current.waker().unwrap().0, current.waker().unwrap().0);
        swap(&current, &[("127.0.0.1:9002", 1)]).unwrap();
        let mut byte = [0u8; 8];
        assert_eq!(a.read(&mut byte).unwrap(), 1);
        assert_eq!(b.read(&mut byte).unwrap(), 1);
    }

    #[test]
    fn a_moved_listener_is_found_by_every_loop_even_one_started_later() {
        let current = Current::new(vec![Backend::new("127.0.0.1:9001", 1)], Kind::Rr, &Config::default()).unwrap();
        assert!(current.moved_listener(0).is_none());
        // A move before any loop has made its wake-up socket: the loops
        // that start later still find it, each a descriptor of its own.
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = first.local_addr().unwrap();
        let mut with = replacement(&["127.0.0.1:9001"], Vec::new());
        with.listener = Some(first);
        current.replace(with).unwrap();
        for _ in 0..3 {
            let (number, copy) = current.moved_listener(0).unwrap();
            assert_eq!((number, copy.unwrap().local_addr().unwrap()), (1, at));
        }
        assert!(current.moved_listener(1).is_none(), "a loop on move 1 has nothing newer");
        // A second move is numbered after it.
        let mut with = replacement(&["127.0.0.1:9001"], Vec::new());
        with.listener = Some(TcpListener::bind("127.0.0.1:0").unwrap());
        current.replace(with).unwrap();
        assert_eq!(current.moved_listener(1).unwrap().0, 2);
        assert!(current.moved_listener(2).is_none());
    }

    #[test]
    fn a_reload_waits_until_every_loop_serves_it_or_stopped() {
        let current = Current::new(vec![Backend::new("127.0.0.1:9001", 1)], Kind::Rr, &Config::default()).unwrap();
        // No loop counted (a program that runs the loop itself): nothing to wait for.
        assert!(current.wait_served(2, Duration::ZERO));
        current.expect_loops(2);
        // Neither loop started yet.
        assert!(!current.wait_served(1, Duration::ZERO));
        current.serving(0, 1);
        current.serving(1, 1);
        assert!(current.wait_served(1, Duration::ZERO));
        let generation = swap(&current, &[("127.0.0.1:9002", 1)]).unwrap();
        current.adopted(0, generation, Instant::now());
        assert!(!current.wait_served(generation, Duration::ZERO), "loop 1 still serves the old set");
        assert_eq!(current.swap_latency.count(), 1);
        // Loop 1 adopts from another thread while the reload waits.
        let current = Arc::new(current);
        let loop1 = Arc::clone(&current);
        let adopts = std::thread::spawn(move || loop1.adopted(1, generation, Instant::now()));
        assert!(current.wait_served(generation, Duration::from_secs(10)));
        adopts.join().unwrap();
        // A stopped loop is waited for no more.
        let newer = swap(&current, &[("127.0.0.1:9003", 1)]).unwrap();
        current.adopted(0, newer, Instant::now());
        current.serving(1, u64::MAX);
        assert!(current.wait_served(newer, Duration::ZERO));
    }
}
