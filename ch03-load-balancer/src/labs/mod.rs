//! # Chapter 3 labs
//!
//! Each lab is one file in this folder: its doc comment is the task, and
//! its function bodies are `todo!()` for you to replace. The graded tests
//! are in `tests/labs.rs`; run one lab's tests with
//!
//! ```text
//! cargo test -p ch03-load-balancer --no-default-features lab_4_1
//! ```
//!
//! Once a lab passes, the load balancer can use it:
//! `load_balancer --strategy random` (lab 4.1) or `--strategy weighted`
//! (lab 4.2).

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_1_random_selection.rs")]
pub mod lab_4_1_random_selection;

#[cfg_attr(feature = "reference", path = "../../solutions/lab_4_2_weighted_selection.rs")]
pub mod lab_4_2_weighted_selection;

/// A small seeded pseudo-random generator (splitmix64) for lab 4.1, so
/// tests can replay the same sequence. Not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number from 0 to `n - 1` (`n` > 0), without modulo bias worth
    /// noticing for small `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}
