//! One limiter state per client, in memory fixed in advance.
//!
//! A limiter keyed by client address is itself a target: an attacker with
//! a few million source addresses (IPv6 gives everyone billions) makes a
//! map that grows without bound until the balancer runs out of memory. So
//! this table is allocated once, at the operator's capacity, and never
//! grows:
//!
//! - no keys are stored, only a 64-bit *tag*: the key's hash under a seed
//!   chosen at random when the table is made. A slot is the tag and the
//!   state, 16 bytes with [`Gcra`](crate::algorithm::Gcra)'s 8-byte state;
//! - slots come in buckets of four (one 64-byte cache line), and a key may
//!   live in either of two buckets its hash names ("two choices": a new key
//!   goes to the emptier one, which keeps the table evenly filled). A check
//!   reads at most two cache lines;
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
//! Two keys whose tags are equal share a state. With a million keys that
//! happens to some pair about once in 36 million tables, and sharing can
//! only make a limit stricter. So eviction, overflow and collisions can
//! all make the limiter stricter, never looser: a property test
//! (`tests/keyed.rs`) checks that no key is ever allowed more than an
//! unbounded map would allow it.
#![deny(clippy::indexing_slicing)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::algorithm::{Algorithm, Decision};
use crate::clock::Nanos;

/// Slots per bucket: four 16-byte slots fill a 64-byte cache line.
pub const BUCKET: usize = 4;

/// Slots per key of capacity, in eighths: 10/8, a table at most 80 % full.
const SLOTS_PER_KEY_EIGHTHS: usize = 10;

/// A client's identity in 128 bits: an IP address (IPv4 as IPv6-mapped),
/// or the hash of anything else (a header value, a route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u64; 2]);

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
        Key(words)
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
/// One slot: a key's tag (0: empty) and its state, nothing else.
#[derive(Debug, Clone, Copy)]
struct Slot<S> {
    tag: u64,
    state: S,
}

/// Four slots on one cache line (for 16-byte slots).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Bucket<S> {
    slots: [Slot<S>; BUCKET],
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
    buckets: Box<[Bucket<A::State>]>,
    seed: [u64; 3],
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
        let slots = capacity.saturating_mul(SLOTS_PER_KEY_EIGHTHS) / 8;
        let len = slots.div_ceil(BUCKET).max(2);
        let empty = Bucket { slots: [Slot { tag: 0, state: algorithm.fresh() }; BUCKET] };
        let mut buckets = Vec::with_capacity(len);
        // Asked before the memory is first written, so that its pages are
        // faulted in as 2 MiB huge pages where the system allows: a
        // random lookup in a big table otherwise misses the TLB too.
        huge_pages(buckets.as_mut_ptr(), len * std::mem::size_of::<Bucket<A::State>>());
        buckets.resize(len, empty);
        Self {
            overflow: algorithm.fresh(),
            buckets: buckets.into_boxed_slice(),
            seed: random_seed(),
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
        std::mem::size_of_val(&*self.buckets) + std::mem::size_of::<Self>()
    }

    /// What the table has done so far.
    pub fn stats(&self) -> KeyedStats {
        self.stats
    }

    /// Slots in use (a count over the table: for tests and reports, not
    /// for the hot path).
    pub fn occupied(&self) -> usize {
        self.buckets.iter().flat_map(|b| b.slots.iter()).filter(|s| s.tag != 0).count()
    }

    // ANCHOR: prefetch
    /// Asks the processor to start loading the two cache lines `key`'s
    /// check will read, and returns at once. At a million keys the table
    /// is far bigger than the caches, so a check mostly waits for memory
    /// (about 160 ns here); the loop knows a client's address as soon as
    /// its socket is readable, a whole `read` system call before the
    /// check, and calls this then: the wait happens during the call.
    pub fn prefetch(&self, key: Key) {
        let (one, two) = self.buckets_of(self.tag(key));
        for b in [one, two] {
            if let Some(bucket) = self.buckets.get(b) {
                prefetch_line(bucket);
            }
        }
    }
    // ANCHOR_END: prefetch

    // ANCHOR: check
    /// Decides about one request from `key` at `now`, charging it when
    /// `charge` says so and it is allowed.
    pub fn check(&mut self, key: Key, now: Nanos, charge: Charge) -> Decision {
        let tag = self.tag(key);
        let (one, two) = self.buckets_of(tag);
        // Both buckets are read first, independently: two cache misses
        // then overlap instead of following each other.
        let first_tags = (self.buckets.get(one).map(|b| b.slots[0].tag), self.buckets.get(two).map(|b| b.slots[0].tag));
        std::hint::black_box(first_tags);
        // One pass over both buckets: the key itself, or where it could go
        // (an empty slot, or one holding a recovered state), counting the
        // room in each bucket to put a new key in the emptier one.
        let mut free: [(usize, Option<usize>); 2] = [(0, None), (0, None)];
        for (which, b) in [one, two].into_iter().enumerate() {
            let Some(bucket) = self.buckets.get_mut(b) else { continue };
            for (i, slot) in bucket.slots.iter_mut().enumerate() {
                if slot.tag == tag {
                    return decide(&self.algorithm, &mut slot.state, now, charge);
                }
                if (slot.tag == 0 || self.algorithm.is_fresh(&slot.state, now))
                    && let Some(room) = free.get_mut(which)
                {
                    room.0 += 1;
                    room.1.get_or_insert(i);
                }
            }
            if one == two {
                break;
            }
        }
        // A key we do not hold. A new client's state is fresh, unless the
        // overflow is in debt: then this key may be one that was charged
        // there, and it must not start over.
        let start = if self.algorithm.is_fresh(&self.overflow, now) { self.algorithm.fresh() } else { self.overflow };
        let [(room_one, at_one), (room_two, at_two)] = free;
        let place = if room_two > room_one { at_two.map(|i| (two, i)) } else { at_one.map(|i| (one, i)) };
        match place.and_then(|(b, i)| self.buckets.get_mut(b).and_then(|b| b.slots.get_mut(i))) {
            Some(slot) => {
                let mut state = start;
                let decision = decide(&self.algorithm, &mut state, now, charge);
                if charge == Charge::Yes {
                    if slot.tag == 0 {
                        self.stats.inserted += 1;
                    } else {
                        self.stats.reclaimed += 1;
                    }
                    *slot = Slot { tag, state };
                }
                decision
            }
            None => {
                // No room without forgetting a client that is limited.
                if charge == Charge::Yes {
                    self.stats.overflowed += 1;
                }
                decide(&self.algorithm, &mut self.overflow, now, charge)
            }
        }
    }
    // ANCHOR_END: check

    /// The key's tag: its hash under this table's seed, never 0 (empty).
    /// Three multiplications, each folded (the high half of the 128-bit
    /// product XORed into the low half), mix every input bit into every
    /// output bit; the random seed means nobody outside can aim keys at
    /// one bucket.
    fn tag(&self, key: Key) -> u64 {
        let [a, b] = key.0;
        let [s0, s1, s2] = self.seed;
        let h = fold_mul(a ^ s0, 0x9E37_79B9_7F4A_7C15);
        let h = fold_mul(h ^ b ^ s1, 0xD6E8_FEB8_6659_FD93);
        let h = fold_mul(h ^ s2, 0xA076_1D64_78BD_642F);
        h.max(1)
    }

    /// The two buckets a tag may live in: from its high and low halves.
    fn buckets_of(&self, tag: u64) -> (usize, usize) {
        let n = self.buckets.len() as u64;
        // Maps 32 bits onto 0..n without a division's bias or cost.
        let one = ((tag >> 32) * n) >> 32;
        let two = ((tag & 0xFFFF_FFFF) * n) >> 32;
        (one as usize, two as usize)
    }
}

/// Advises the kernel to back `[start, start + len)` with huge pages
/// (Linux's transparent huge pages in `madvise` mode). Only advice: when
/// it is refused, or elsewhere than Linux, nothing changes but speed.
#[cfg(target_os = "linux")]
fn huge_pages<T>(start: *mut T, len: usize) {
    const PAGE: usize = 4096;
    let first = (start as usize).next_multiple_of(PAGE);
    let end = (start as usize).saturating_add(len) / PAGE * PAGE;
    let Some(addr) = std::ptr::NonNull::new(first as *mut std::ffi::c_void) else { return };
    if end > first {
        // SAFETY: the range is page-aligned and lies inside an allocation
        // this table owns (the Vec's capacity); MADV_HUGEPAGE changes how
        // the pages are backed, never their contents or validity.
        let _ = unsafe { nix::sys::mman::madvise(addr, end - first, nix::sys::mman::MmapAdvise::MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
fn huge_pages<T>(_start: *mut T, _len: usize) {}

/// A hint to load the cache line holding `value`; never a fault, even
/// for an address that is not mapped.
#[cfg(target_arch = "x86_64")]
fn prefetch_line<T>(value: &T) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch reads nothing a program can observe and cannot
    // fault; the pointer comes from a reference, so it is valid anyway.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast::<i8>()) }
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch_line<T>(_value: &T) {}

fn fold_mul(x: u64, k: u64) -> u64 {
    let p = u128::from(x) * u128::from(k);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Three random words from the standard library's per-process random
/// hasher keys (no extra dependency for randomness).
fn random_seed() -> [u64; 3] {
    let word = |i: u64| RandomState::new().hash_one(i);
    [word(1), word(2), word(3)]
}

/// Checks `state`; leaves it untouched unless charging. (The limiter's
/// global limit, a single state, asks the same way.)
pub(crate) fn decide<A: Algorithm>(alg: &A, state: &mut A::State, now: Nanos, charge: Charge) -> Decision
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
        let t = Keyed::new(gcra(1.0, 1), 10);
        let all_ones: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        for k in [Key::ip(all_ones), Key::raw([0, 0]), Key::ip([0, 0, 0, 0].into())] {
            assert_ne!(t.tag(k), 0);
        }
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
        assert!(t.occupied() <= t.buckets.len() * BUCKET);
        assert!(t.stats().overflowed > 9_000, "{:?}", t.stats());
        // A client that was limited is still limited.
        let limited = (0..16u32).filter(|&i| !t.check(Key::raw([1, u64::from(i)]), SECOND / 2, Charge::No).allowed());
        assert!(limited.count() >= 12);
    }

    #[test]
    fn a_prefetch_changes_nothing() {
        let mut t = Keyed::new(gcra(1.0, 1), 100);
        let (held, stranger) = (Key::ip([127, 0, 0, 2].into()), Key::ip([127, 0, 0, 9].into()));
        assert!(t.check(held, 0, Charge::Yes).allowed());
        for k in [held, stranger, Key::raw([0, 0]), Key::raw([u64::MAX, u64::MAX])] {
            t.prefetch(k);
        }
        assert_eq!(t.occupied(), 1);
        assert_eq!(t.stats(), KeyedStats { inserted: 1, ..KeyedStats::default() });
        assert!(!t.check(held, 0, Charge::Yes).allowed());
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
