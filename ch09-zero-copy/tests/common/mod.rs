//! What the integration tests share.

/// `n` bytes that are not all alike, from `seed` (a failure shows where
/// they differ, and the same seed gives the same bytes).
pub fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
