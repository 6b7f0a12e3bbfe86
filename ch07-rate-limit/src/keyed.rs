//! One limiter state per client, in memory fixed in advance.
//!
//! A limiter keyed by client address is itself a target: an attacker with
//! a few million source addresses (IPv6 gives everyone billions) makes a
//! map that grows without bound until the balancer runs out of memory. So
//! this table is allocated once, at the operator's capacity, and never
//! grows:
//!
//! - open addressing: a flat array of `(key, state)` slots, 24 bytes each
//!   with [`Gcra`](crate::algorithm::Gcra)'s 8-byte state, and no pointers;
//! - a key lives in one of the `PROBE` slots after its hash (a bounded
//!   probe: a check reads at most three cache lines);
//! - a new key takes an empty slot, or a slot whose state has fully
//!   recovered ([`Algorithm::is_fresh`]), which forgets nothing that
//!   matters;
//! - when neither is found, the table never evicts a client that is being
//!   limited. The new key is charged to one shared *overflow* state
//!   instead: under a flood of new keys, they share one client's allowance.
//!   And a key that later finds a slot starts from the overflow state
//!   while that is still in debt, so passing through the overflow cannot
//!   reset anyone either.
//!
//! So eviction can only make the limiter stricter, never looser: a property
//! test (`tests/keyed.rs`) checks that no key is ever allowed more than an
//! unbounded map would allow it.
#![deny(clippy::indexing_slicing)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::algorithm::{Algorithm, Decision};
use crate::clock::Nanos;

/// Slots looked at for one key, after the one its hash names.
pub const PROBE: usize = 8;

/// Slots per key of capacity, in eighths: 10/8 = a table at most 80 % full.
const SLOTS_PER_KEY_EIGHTHS: usize = 10;

/// A client's identity in 128 bits: an IP address (IPv4 as IPv6-mapped),
/// or the hash of anything else (a header value, a route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u64; 2]);

/// Marks an empty slot. `ffff:ffff:...:ffff` is a multicast address, never
/// the source of a TCP connection; a hashed key that lands on it is moved.
const EMPTY: [u64; 2] = [u64::MAX, u64::MAX];

impl Key {
    /// An address as a key.
    pub fn ip(ip: IpAddr) -> Key {
        let v6 = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let n = u128::from(v6);
        Key::raw([(n >> 64) as u64, n as u64])
    }

    /// Any two words as a key.
    pub fn raw(words: [u64; 2]) -> Key {
        if words == EMPTY { Key([u64::MAX, u64::MAX - 1]) } else { Key(words) }
    }
}

/// Turns arbitrary bytes (a header value, a path prefix) into a [`Key`]:
/// 128 bits from two independently seeded hashes, so two different values
/// share a key with a probability of about 2⁻¹²⁸. Seeded at random per
/// process, so nobody can precompute collisions.
#[derive(Debug, Clone, Default)]
pub struct KeyHasher {
    a: RandomState,
    b: RandomState,
}

impl KeyHasher {
    /// A new pair of random seeds.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key for `bytes`.
    pub fn key(&self, bytes: &[u8]) -> Key {
        Key::raw([self.a.hash_one(bytes), self.b.hash_one(bytes)])
    }
}

// ANCHOR: slot
/// One slot: a key and its state, nothing else.
#[derive(Debug, Clone, Copy)]
struct Slot<S> {
    key: [u64; 2],
    state: S,
}
// ANCHOR_END: slot

/// What the table has done, for the statistics report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyedStats {
    /// Keys placed in an empty slot.
    pub inserted: u64,
    /// Keys placed in the slot of a key that had fully recovered (it was
    /// forgotten, which changes nothing).
    pub reclaimed: u64,
    /// Checks charged to the shared overflow state: no slot was free.
    pub overflowed: u64,
}

/// Whether a check charges the state, or only asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Decide and charge an allowed request.
    Yes,
    /// Decide only (the first of several limits: charged once all pass).
    No,
}

/// One algorithm's state for up to `capacity` keys.
#[derive(Debug)]
pub struct Keyed<A: Algorithm>
where
    A::State: Copy,
{
    algorithm: A,
    slots: Box<[Slot<A::State>]>,
    hasher: RandomState,
    overflow: A::State,
    capacity: usize,
    stats: KeyedStats,
}

impl<A: Algorithm> Keyed<A>
where
    A::State: Copy,
{
    /// A table for `capacity` keys (at least 1), allocated now, whole.
    pub fn new(algorithm: A, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let len = (capacity.saturating_mul(SLOTS_PER_KEY_EIGHTHS) / 8).max(PROBE);
        let empty = Slot { key: EMPTY, state: algorithm.fresh() };
        Self {
            overflow: algorithm.fresh(),
            slots: vec![empty; len].into_boxed_slice(),
            hasher: RandomState::new(),
            capacity,
            stats: KeyedStats::default(),
            algorithm,
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> &A {
        &self.algorithm
    }

    /// The capacity asked for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes the table holds: fixed at creation.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots) + std::mem::size_of::<Self>()
    }

    /// What the table has done so far.
    pub fn stats(&self) -> KeyedStats {
        self.stats
    }

    /// Slots in use (a count over the table: for tests and reports, not
    /// for the hot path).
    pub fn occupied(&self) -> usize {
        self.slots.iter().filter(|s| s.key != EMPTY).count()
    }

    // ANCHOR: check
    /// Decides about one request from `key` at `now`, charging it when
    /// `charge` says so and it is allowed.
    pub fn check(&mut self, key: Key, now: Nanos, charge: Charge) -> Decision {
        let home = self.home(key);
        let len = self.slots.len();
        // One pass over the probe window: the key itself, or the first
        // slot it could take (empty, or holding a recovered state).
        let mut free = None;
        for step in 0..PROBE {
            let i = (home + step) % len;
            let Some(slot) = self.slots.get_mut(i) else { break };
            if slot.key == key.0 {
                return decide(&self.algorithm, &mut slot.state, now, charge);
            }
            if free.is_none() && (slot.key == EMPTY || self.algorithm.is_fresh(&slot.state, now)) {
                free = Some(i);
            }
        }
        // A key we do not hold. A new client's state is fresh, unless the
        // overflow is in debt: then this key may be one that was charged
        // there, and it must not start over.
        let start = if self.algorithm.is_fresh(&self.overflow, now) { self.algorithm.fresh() } else { self.overflow };
        match free.and_then(|i| self.slots.get_mut(i)) {
            Some(slot) => {
                let mut state = start;
                let decision = decide(&self.algorithm, &mut state, now, charge);
                if charge == Charge::Yes {
                    if slot.key == EMPTY {
                        self.stats.inserted += 1;
                    } else {
                        self.stats.reclaimed += 1;
                    }
                    *slot = Slot { key: key.0, state };
                }
                decision
            }
            None => {
                // No room without forgetting a client that is limited.
                self.stats.overflowed += 1;
                decide(&self.algorithm, &mut self.overflow, now, charge)
            }
        }
    }
    // ANCHOR_END: check

    /// The slot the key's hash names.
    fn home(&self, key: Key) -> usize {
        let h = self.hasher.hash_one(key.0);
        // Maps the hash onto 0..len without a division's bias or cost.
        ((u128::from(h) * self.slots.len() as u128) >> 64) as usize
    }
}

/// Checks `state`; leaves it untouched unless charging.
fn decide<A: Algorithm>(alg: &A, state: &mut A::State, now: Nanos, charge: Charge) -> Decision
where
    A::State: Copy,
{
    match charge {
        Charge::Yes => alg.check(state, now),
        Charge::No => alg.check(&mut { *state }, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Gcra;
    use crate::clock::SECOND;
    use crate::quota::Quota;

    fn gcra(rate: f64, burst: u32) -> Gcra {
        Gcra::new(Quota::new(rate, burst).unwrap())
    }

    #[test]
    fn keys_are_limited_separately() {
        let mut t = Keyed::new(gcra(1.0, 2), 100);
        let (a, b) = (Key::ip([127, 0, 0, 2].into()), Key::ip([127, 0, 0, 3].into()));
        assert!(t.check(a, 0, Charge::Yes).allowed());
        assert!(t.check(a, 0, Charge::Yes).allowed());
        assert!(!t.check(a, 0, Charge::Yes).allowed());
        assert!(t.check(b, 0, Charge::Yes).allowed());
        assert_eq!(t.occupied(), 2);
    }

    #[test]
    fn asking_does_not_charge() {
        let mut t = Keyed::new(gcra(1.0, 1), 10);
        let k = Key::ip([10, 0, 0, 1].into());
        for _ in 0..5 {
            assert!(t.check(k, 0, Charge::No).allowed());
        }
        assert!(t.check(k, 0, Charge::Yes).allowed());
        assert!(!t.check(k, 0, Charge::No).allowed());
    }

    #[test]
    fn ipv4_and_its_mapped_ipv6_are_one_client_and_no_key_is_empty() {
        let v4: IpAddr = [192, 0, 2, 1].into();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(Key::ip(v4), Key::ip(mapped));
        let all_ones: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        assert_ne!(Key::ip(all_ones).0, EMPTY);
    }

    #[test]
    fn a_table_never_grows_and_keeps_limited_clients() {
        let mut t = Keyed::new(gcra(1.0, 1), 16);
        let bytes = t.memory_bytes();
        // 16 clients each drain their allowance at t = 0...
        for i in 0..16u32 {
            t.check(Key::raw([1, u64::from(i)]), 0, Charge::Yes);
        }
        // ...and 10,000 new ones arrive in the same second: they cannot
        // push the limited ones out, so they share the overflow.
        for i in 0..10_000u32 {
            t.check(Key::raw([2, u64::from(i)]), SECOND / 2, Charge::Yes);
        }
        assert_eq!(t.memory_bytes(), bytes);
        assert!(t.occupied() <= t.slots.len());
        assert!(t.stats().overflowed > 9_000, "{:?}", t.stats());
        // A client that was limited is still limited.
        let limited = (0..16u32).filter(|&i| !t.check(Key::raw([1, u64::from(i)]), SECOND / 2, Charge::No).allowed());
        assert!(limited.count() >= 12);
    }

    #[test]
    fn recovered_keys_make_room() {
        let mut t = Keyed::new(gcra(10.0, 1), 8);
        for i in 0..1000u64 {
            // Each key comes once, a second apart: by then every earlier
            // one has recovered, so its slot is reused.
            assert!(t.check(Key::raw([3, i]), i * SECOND, Charge::Yes).allowed());
        }
        assert_eq!(t.stats().overflowed, 0, "{:?}", t.stats());
        assert!(t.stats().reclaimed > 900);
    }
}
