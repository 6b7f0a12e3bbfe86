//! Headers the advanced load balancer adds.
//!
//! | header | to | value |
//! |---|---|---|
//! | `X-Forwarded-For` | backend | the client chain, the client appended |
//! | `X-Real-IP` | backend | the client address |
//! | `X-Forwarded-Proto` | backend | `http` |
//! | `X-Forwarded-Host` | backend | the `Host` the client used |
//! | `X-Request-ID` | backend and client | the client's own if it sent a sane one, else a new random id |
//! | `Set-Cookie` | client | the sticky-session cookie, when it must be set |
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::net::IpAddr;
use std::str::FromStr;

use ch02_proxy::http::Headers;
use ch03_load_balancer::rng::Rng;

/// Longest client-supplied request id we keep.
pub const MAX_REQUEST_ID: usize = 128;

// ANCHOR: request_id
/// Makes sure the request has an `X-Request-ID` and returns it. A client's
/// id is kept (so a trace spans systems) if it is 1 to 128 visible ASCII
/// characters; otherwise, or if absent, a new 128-bit random id is set.
pub fn ensure_request_id(headers: &mut Headers, rng: &mut Rng) -> String {
    let ids: Vec<&[u8]> = headers.get_all("x-request-id").collect();
    if let [id] = ids[..]
        && !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id.iter().all(|b| b.is_ascii_graphic())
    {
        // Visible ASCII is valid UTF-8.
        return String::from_utf8_lossy(id).into_owned();
    }
    let id = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    headers.set("X-Request-ID", id.clone());
    id
}
// ANCHOR_END: request_id

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .get_all("cookie")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A block of addresses, `10.0.0.0/8` or `::1/128` (a bare address is a
/// block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let net: IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an address or ADDRESS/BITS"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(|| format!("{s:?}: bits must be 0 to {max}"))?
            }
        };
        Ok(Self { net, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        // Compare the leading `prefix` bits; a shift by the full width
        // would overflow, so those cases are spelled out.
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

// ANCHOR: client_ip
/// The client a request is from. Usually the peer; but when the peer is
/// one of our `trusted` proxies, the client is the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy, read from the
/// right: everything left of that was written by parties we cannot vouch
/// for, so a client cannot choose its own hash bucket by sending a header.
pub fn client_ip(peer: IpAddr, headers: &Headers, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    let values: Vec<&[u8]> = headers.get_all("x-forwarded-for").collect();
    for value in values.iter().rev() {
        for hop in String::from_utf8_lossy(value).rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if is_trusted(ip) => client = ip,
                Ok(ip) => return ip,
                // Garbage where an address should be: trust stops here.
                Err(_) => return client,
            }
        }
    }
    client
}
// ANCHOR_END: client_ip

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_parse_and_contain() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.1.2.3")) && !c.contains(ip("11.0.0.1")) && !c.contains(ip("::1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        for bad in ["10.0.0.0/33", "::/129", "x/8", "10.0.0.0/", "10.0.0.0/-1", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() {
        let trusted = ["10.0.0.0/8".parse::<Cidr>().unwrap()];
        let mut h = Headers::default();
        h.push("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.7");
        // From a trusted proxy: the rightmost untrusted hop, not the
        // leftmost one a client could have written itself.
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        // From anyone else: the peer, whatever the header says.
        assert_eq!(client_ip(ip("5.5.5.5"), &h, &trusted), ip("5.5.5.5"));
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
        // No header, or garbage in it: the last address we can vouch for.
        assert_eq!(client_ip(ip("10.0.0.1"), &Headers::default(), &trusted), ip("10.0.0.1"));
        let mut junk = Headers::default();
        junk.push("X-Forwarded-For", "1.2.3.4, nonsense, 10.0.0.9");
        assert_eq!(client_ip(ip("10.0.0.1"), &junk, &trusted), ip("10.0.0.9"));
    }

    #[test]
    fn a_sane_client_id_is_kept_and_others_replaced() {
        let mut rng = Rng::new(1);
        let mut h = Headers::default();
        h.push("X-Request-ID", "abc-123");
        assert_eq!(ensure_request_id(&mut h, &mut rng), "abc-123");
        let mut h = Headers::default();
        let id = ensure_request_id(&mut h, &mut rng);
        assert_eq!(id.len(), 32);
        assert_eq!(h.get_str("x-request-id"), Some(id.as_str()));
        for bad in ["", "has space", &"x".repeat(129)] {
            let mut h = Headers::default();
            h.push("X-Request-ID", bad);
            assert_ne!(ensure_request_id(&mut h, &mut rng), bad);
            assert_eq!(h.get_all("x-request-id").count(), 1);
        }
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = Headers::default();
        h.push("Cookie", "a=1; lbs_backend=deadbeef; b=2");
        assert_eq!(cookie(&h, "lbs_backend"), Some("deadbeef"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
