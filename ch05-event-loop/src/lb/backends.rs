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

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ch04_advanced::algorithm::{self, Algorithm, Kind};
use ch04_advanced::node::{Backend, Latency, Node, Pool};

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
    /// Node `i`'s key: where it is filed for as long as its address is in
    /// some set.
    keys: Vec<usize>,
    /// Every node the balancer has had, by key, as of this set: the loop
    /// looks nodes up here without taking a lock.
    pub registry: Arc<Registry>,
}
// ANCHOR_END: backends

impl Backends {
    /// The key of node `i` of this set.
    pub fn key(&self, i: usize) -> Option<usize> {
        self.keys.get(i).copied()
    }

    /// Every node's key, in the set's order.
    pub fn keys(&self) -> &[usize] {
        &self.keys
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

/// What a new set is made of.
#[derive(Debug)]
pub struct Replacement {
    /// The backends, in order.
    pub backends: Vec<Backend>,
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
    /// A listening socket for the loop to take over, with the swap.
    listener: Mutex<Option<TcpListener>>,
    /// One end of each loop's wake-up socket: a byte written there makes
    /// a loop waiting for readiness return at once.
    wakers: Mutex<Vec<UnixStream>>,
    /// When the newest swap was asked for.
    asked: Mutex<Option<Instant>>,
    /// From a swap being asked for to a loop serving with it.
    pub swap_latency: Latency,
}
// ANCHOR_END: current

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Current {
    /// The first set: `backends` picked from by `kind`. Fails when a
    /// backend's address does not resolve, or when there is none.
    pub fn new(backends: Vec<Backend>, kind: Kind, options: &algorithm::Options) -> io::Result<Self> {
        let mut registry = Registry::default();
        let first = build(&mut registry, backends, kind, options, Duration::ZERO, 1)?;
        Ok(Self {
            now: Mutex::new(Arc::new(first)),
            generation: AtomicU64::new(1),
            registry: Mutex::new(registry),
            listener: Mutex::new(None),
            wakers: Mutex::new(Vec::new()),
            asked: Mutex::new(None),
            swap_latency: Latency::default(),
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
        let Replacement { backends, kind, options, slow_start, listener, asked } = with;
        // One reload at a time; the loops are not held up meanwhile.
        let mut registry = lock(&self.registry);
        let generation = self.generation() + 1;
        let next = build(&mut registry, backends, kind, &options, slow_start, generation)?;
        *lock(&self.listener) = listener;
        *lock(&self.asked) = Some(asked);
        *lock(&self.now) = Arc::new(next);
        self.generation.store(generation, Ordering::Release);
        drop(registry);
        self.wake();
        Ok(generation)
    }
    // ANCHOR_END: replace

    /// A loop's wake-up socket: the loop watches the returned end.
    pub(crate) fn waker(&self) -> io::Result<UnixStream> {
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        theirs.set_nonblocking(true)?;
        lock(&self.wakers).push(ours);
        Ok(theirs)
    }

    fn wake(&self) {
        for w in lock(&self.wakers).iter_mut() {
            // A full socket already holds a wake-up: nothing lost.
            let _ = w.write(&[1]);
        }
    }

    /// The listening socket the newest swap brought, for a loop to take.
    pub(crate) fn take_listener(&self) -> Option<TcpListener> {
        lock(&self.listener).take()
    }

    /// A loop serves with the newest set from now: how long that took
    /// since it was asked for is recorded.
    pub(crate) fn adopted(&self, at: Instant) {
        if let Some(asked) = *lock(&self.asked) {
            self.swap_latency.record(at.saturating_duration_since(asked));
        }
    }
}

/// Makes set number `generation` of `backends`, filing new addresses in
/// `registry`. The registry is changed only once every address resolved.
fn build(
    registry: &mut Registry,
    backends: Vec<Backend>,
    kind: Kind,
    options: &algorithm::Options,
    slow_start: Duration,
    generation: u64,
) -> io::Result<Backends> {
    if backends.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "at least one backend is needed"));
    }
    let mut resolved = Vec::with_capacity(backends.len());
    for b in &backends {
        let addr = match registry.by_addr.get(&b.addr).and_then(|&k| registry.addrs.get(k)) {
            Some(&known) => known,
            None => b.addr.to_socket_addrs()?.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("backend {} has no address", b.addr))
            })?,
        };
        resolved.push(addr);
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
    let pool = Arc::new(Pool { nodes, slow_start });
    let algorithm = algorithm::build(kind, &pool, options);
    Ok(Backends { generation, pool, algorithm, keys, registry: Arc::new(registry.clone()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap(current: &Current, addrs: &[(&str, u32)]) -> io::Result<u64> {
        current.replace(Replacement {
            backends: addrs.iter().map(|&(a, w)| Backend::new(a, w)).collect(),
            kind: Kind::Rr,
            options: algorithm::Options::default(),
            slow_start: Duration::ZERO,
            listener: None,
            asked: Instant::now(),
        })
    }

    #[test]
    fn a_backend_keeps_its_node_and_key_across_sets() {
        let options = algorithm::Options::default();
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
        let options = algorithm::Options::default();
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
    fn a_swap_wakes_every_loop() {
        use std::io::Read;
        let options = algorithm::Options::default();
        let current = Current::new(vec![Backend::new("127.0.0.1:9001", 1)], Kind::Rr, &options).unwrap();
        let (mut a, mut b) = (current.waker().unwrap(), current.waker().unwrap());
        swap(&current, &[("127.0.0.1:9002", 1)]).unwrap();
        let mut byte = [0u8; 8];
        assert_eq!(a.read(&mut byte).unwrap(), 1);
        assert_eq!(b.read(&mut byte).unwrap(), 1);
    }
}
