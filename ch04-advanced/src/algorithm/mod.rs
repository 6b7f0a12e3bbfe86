//! Choosing a backend: one small trait, one file per algorithm.
//!
//! | algorithm | file | state | good for |
//! |---|---|---|---|
//! | round robin | [`round_robin`] | a counter | equal backends, similar requests |
//! | smooth weighted round robin | [`smooth_weighted`] | a current weight per node | unequal backends, predictable spread |
//! | least connections (weighted) | [`least_conn`] | none (reads active counts) | requests of very different cost |
//! | IP hash | [`ip_hash`] | none | simple client affinity |
//! | random | [`random`] | a generator | many balancers, no shared state |
//! | weighted random | [`weighted_random`] | a generator | the same, unequal backends |
//! | consistent hashing | [`consistent_hash`] | a ring | caches: few keys move when nodes change |
//! | sticky sessions | [`sticky`] | the client's cookie | stateful applications |

pub mod consistent_hash;
pub mod ip_hash;
pub mod least_conn;
pub mod random;
pub mod round_robin;
pub mod smooth_weighted;
pub mod sticky;
pub mod weighted_random;

use std::fmt::Debug;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::node::Pool;

/// What an algorithm may know about the request being placed.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The client's address.
    pub client_ip: IpAddr,
    /// The key for hashing algorithms (the client address or the path,
    /// as configured).
    pub key: &'a str,
    /// The value of the sticky-session cookie, if the client sent one.
    pub cookie: Option<&'a str>,
    /// The time of the decision (injected, so tests control it).
    pub now: Instant,
}

// ANCHOR: algorithm
/// A way of choosing a backend. Every connection thread calls `pick` on
/// the same value, so it takes `&self` and keeps any state in atomics or
/// behind a lock.
pub trait Algorithm: Send + Sync + Debug {
    /// The name used on the command line.
    fn name(&self) -> &'static str;

    /// The index (into `pool.nodes`) of the node for this request, or
    /// `None` when no node is eligible. Only eligible nodes may be chosen.
    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize>;

    /// Told when a request to node `index` has been answered, and how fast
    /// (for algorithms that learn from latency).
    fn on_response(&self, _index: usize, _latency: Duration) {}

    /// The cookie this algorithm keeps sessions in, if it does.
    fn cookie_name(&self) -> Option<&str> {
        None
    }
}
// ANCHOR_END: algorithm

/// Picks a node that has not been tried yet for this request: the
/// algorithm's choice, or, when it names a node already tried (hashing
/// algorithms keep answering the same one), the next untried eligible node.
pub fn pick_untried(algorithm: &dyn Algorithm, pool: &Pool, ctx: &Context<'_>, tried: &[bool]) -> Option<usize> {
    match algorithm.pick(pool, ctx)? {
        i if !tried.get(i).copied().unwrap_or(true) => Some(i),
        _ => (0..pool.nodes.len()).find(|&i| !tried.get(i).copied().unwrap_or(true) && pool.eligible(i, ctx.now)),
    }
}

/// The algorithms, by their command-line names. The names the C
/// curriculum and the Zig and Pingora examples use work too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Round robin.
    #[value(alias = "round-robin", alias = "round_robin")]
    Rr,
    /// Smooth weighted round robin (nginx's).
    #[value(alias = "weighted", alias = "weighted-round-robin", alias = "weighted_round_robin")]
    Wrr,
    /// Weighted least connections.
    #[value(alias = "least-conn", alias = "least-connections", alias = "least_connections")]
    Lc,
    /// Client IP hash.
    #[value(alias = "ip-hash", alias = "ip_hash")]
    Iphash,
    /// Uniform random.
    Random,
    /// Weighted random.
    #[value(alias = "weighted-random", alias = "weighted_random")]
    Wrandom,
    /// Consistent hashing (ketama ring).
    #[value(alias = "consistent-hash", alias = "consistent_hash")]
    Hash,
    /// Cookie sticky sessions (round robin for new clients).
    Sticky,
    /// Lowest moving-average response time (lab 7.2).
    Fastest,
}

/// Makes an algorithm for a pool: how a caller supplies one that this
/// module does not define (lab 7.2's, for [`Kind::Fastest`]).
pub type MakeAlgorithm = fn(&Pool) -> Box<dyn Algorithm>;

/// Options some algorithms take.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sticky sessions' cookie name.
    pub cookie_name: String,
    /// Seed for the random algorithms.
    pub seed: u64,
    /// Points per node on the consistent-hash ring.
    pub virtual_nodes: usize,
    /// Makes the `fastest` algorithm: the binaries plug in lab 7.2's.
    pub fastest: Option<MakeAlgorithm>,
}

impl Default for Options {
    fn default() -> Self {
        Self { cookie_name: "lbs_backend".to_string(), seed: 0x5eed, virtual_nodes: 160, fastest: None }
    }
}

/// Builds the algorithm `kind` for `pool`.
///
/// # Panics
///
/// For [`Kind::Fastest`] without [`Options::fastest`]: that algorithm is
/// the caller's to supply, and asking for it without supplying it is a
/// bug in the caller, not something a request can cause.
pub fn build(kind: Kind, pool: &Pool, options: &Options) -> Box<dyn Algorithm> {
    match kind {
        Kind::Rr => Box::new(round_robin::RoundRobin::default()),
        Kind::Wrr => Box::new(smooth_weighted::SmoothWeighted::new(pool.nodes.len())),
        Kind::Lc => Box::new(least_conn::LeastConnections::default()),
        Kind::Iphash => Box::new(ip_hash::IpHash),
        Kind::Random => Box::new(random::Random::new(options.seed)),
        Kind::Wrandom => Box::new(weighted_random::WeightedRandom::new(options.seed)),
        Kind::Hash => Box::new(consistent_hash::ConsistentHash::new(pool, options.virtual_nodes)),
        Kind::Sticky => Box::new(sticky::Sticky::new(&options.cookie_name)),
        Kind::Fastest => match options.fastest {
            Some(make) => make(pool),
            None => {
                panic!("--algorithm fastest: algorithm::Options::fastest is not set (the binary supplies lab 7.2's)")
            }
        },
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the algorithms' unit tests.
    use super::*;
    use crate::node::Backend;

    pub fn pool(weights: &[u32]) -> Pool {
        Pool::new(weights.iter().enumerate().map(|(i, &w)| Backend::new(format!("10.0.0.{i}:80"), w)).collect())
    }

    pub fn ctx(now: Instant) -> Context<'static> {
        Context { client_ip: IpAddr::from([192, 0, 2, 1]), key: "/", cookie: None, now }
    }

    pub fn counts(alg: &dyn Algorithm, pool: &Pool, n: usize) -> Vec<usize> {
        let now = Instant::now();
        let mut c = vec![0; pool.nodes.len()];
        for _ in 0..n {
            c[alg.pick(pool, &ctx(now)).expect("a node")] += 1;
        }
        c
    }
}
