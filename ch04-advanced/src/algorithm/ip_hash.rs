//! IP hash: the same client address always lands on the same node while
//! that node is up; if it is down, the next eligible node along the list.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

// ANCHOR: ip_hash
use super::{Algorithm, Context};
use crate::node::{Pool, fnv1a};

/// Client address hash.
#[derive(Debug, Default)]
pub struct IpHash;

impl Algorithm for IpHash {
    fn name(&self) -> &'static str {
        "iphash"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        let n = pool.nodes.len();
        if n == 0 {
            return None;
        }
        let ip = match ctx.client_ip {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let start = (fnv1a(&ip) % n as u64) as usize;
        // Skipping a down node moves only *its* clients, to the next node.
        (0..n).map(|k| (start + k) % n).find(|&i| pool.eligible(i, ctx.now))
    }
}

// ANCHOR_END: ip_hash

// ANCHOR: ip_hash_tests
#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::pool;
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    fn pick(p: &Pool, ip: IpAddr) -> usize {
        let ctx = Context { client_ip: ip, key: "/", cookie: None, now: Instant::now() };
        IpHash.pick(p, &ctx).unwrap()
    }

    #[test]
    fn a_client_sticks_to_its_node_and_clients_spread() {
        let p = pool(&[1, 1, 1]);
        let mut c = [0; 3];
        for i in 0..3000u32 {
            let ip = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            let first = pick(&p, ip);
            assert_eq!(pick(&p, ip), first);
            c[first] += 1;
        }
        assert!(c.iter().all(|&n| (800..=1200).contains(&n)), "{c:?}");
    }

    #[test]
    fn a_down_node_is_skipped_and_only_its_clients_move() {
        let p = pool(&[1, 1, 1]);
        let ips: Vec<IpAddr> = (0..300u32).map(|i| IpAddr::from((0xc000_0200 + i).to_be_bytes())).collect();
        let before: Vec<usize> = ips.iter().map(|&ip| pick(&p, ip)).collect();
        p.nodes[1].backend.mark_down(Duration::from_secs(60));
        for (ip, b) in ips.iter().zip(&before) {
            let after = pick(&p, *ip);
            assert_ne!(after, 1);
            if *b != 1 {
                assert_eq!(after, *b, "clients of healthy nodes do not move");
            }
        }
    }
}
// ANCHOR_END: ip_hash_tests
