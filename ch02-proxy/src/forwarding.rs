//! The forwarding headers a reverse proxy adds, so the server behind it
//! still knows who the client was and how it connected.
//!
//! | header | value | why |
//! |---|---|---|
//! | `X-Forwarded-For` | the client chain, ours appended | the backend sees the proxy's address as its peer |
//! | `X-Real-IP` | the address of *our* client | one address, no list to parse |
//! | `X-Forwarded-Proto` | `http` or `https` | the scheme the client used, for redirects and cookies |
//! | `X-Forwarded-Host` | the `Host` the client asked for | the backend may be addressed by another name |
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::net::IpAddr;

use crate::http::Headers;

// ANCHOR: forwarding_headers
/// Adds the forwarding headers for a request from `client` that arrived
/// over `proto`. An existing `X-Forwarded-For` chain (from proxies in front
/// of us) is kept and our client appended to it.
pub fn add_forwarding_headers(headers: &mut Headers, client: IpAddr, proto: &str) {
    let chain: Vec<String> = headers.tokens("x-forwarded-for").collect();
    let mut value = chain.join(", ");
    if !value.is_empty() {
        value.push_str(", ");
    }
    value.push_str(&client.to_string());
    headers.set("X-Forwarded-For", value);
    headers.set("X-Real-IP", client.to_string());
    headers.set("X-Forwarded-Proto", proto);
    if let Some(host) = headers.get("host").map(<[u8]>::to_vec) {
        headers.set("X-Forwarded-Host", host);
    }
}
// ANCHOR_END: forwarding_headers

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_proxy_starts_the_chain() {
        let mut h = Headers::default();
        h.push("Host", "example.com");
        add_forwarding_headers(&mut h, "203.0.113.7".parse().unwrap(), "http");
        assert_eq!(h.get_str("x-forwarded-for"), Some("203.0.113.7"));
        assert_eq!(h.get_str("x-real-ip"), Some("203.0.113.7"));
        assert_eq!(h.get_str("x-forwarded-proto"), Some("http"));
        assert_eq!(h.get_str("x-forwarded-host"), Some("example.com"));
    }

    #[test]
    fn a_later_proxy_appends_to_the_chain_even_across_header_lines() {
        let mut h = Headers::default();
        h.push("X-Forwarded-For", "198.51.100.1");
        h.push("X-Forwarded-For", "198.51.100.2, 198.51.100.3");
        add_forwarding_headers(&mut h, "10.0.0.9".parse().unwrap(), "https");
        assert_eq!(h.get_all("x-forwarded-for").count(), 1);
        assert_eq!(h.get_str("x-forwarded-for"), Some("198.51.100.1, 198.51.100.2, 198.51.100.3, 10.0.0.9"));
        assert_eq!(h.get_str("x-real-ip"), Some("10.0.0.9"));
    }
}
