//! The request as it goes upstream: origin-form target, hop-by-hop
//! headers out, forwarding headers in; and backend addresses, with TLS
//! backends refused.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::net::IpAddr;

use super::ProxyError;
use crate::http::{RequestHead, remove_hop_by_hop};

// ANCHOR: prepare_upstream_request
/// Turns a client's request into the one a reverse proxy or load balancer
/// sends upstream: CONNECT refused (405), an absolute-form target turned
/// into origin form, hop-by-hop headers removed, forwarding headers added
/// for `client`, and one request per connection (`Connection: close`).
pub fn prepare_upstream_request(head: &mut RequestHead, client: IpAddr, proto: &str) -> Result<(), ProxyError> {
    if head.method == "CONNECT" {
        return Err(ProxyError::new(405, "CONNECT tunnels are not offered here: this is not a forward proxy"));
    }
    // Servers must accept absolute-form targets too; upstream gets origin form.
    if !head.target.starts_with('/') && head.target != "*" {
        head.target = split_absolute_http(&head.target)?.1;
    }
    remove_hop_by_hop(&mut head.headers);
    crate::forwarding::add_forwarding_headers(&mut head.headers, client, proto);
    head.headers.set("Connection", "close");
    Ok(())
}
// ANCHOR_END: prepare_upstream_request

/// Splits an absolute-form `http://authority/path?query` target into the
/// authority and the origin-form rest (`/path?query`, at least `/`).
pub fn split_absolute_http(target: &str) -> Result<(&str, String), ProxyError> {
    // Byte-level prefix checks: the target is network bytes, and a slice
    // at a fixed offset can land inside a multi-byte character.
    let Some(rest) = strip_prefix_ignore_case(target, "http://") else {
        if strip_prefix_ignore_case(target, "https://").is_some() {
            return Err(ProxyError::new(400, "https:// URLs go through CONNECT (curl does this with -x for https)"));
        }
        return Err(ProxyError::new(400, "a forward proxy needs an absolute http:// URL or CONNECT host:port"));
    };
    // `find` returns a character boundary, and `split_at_checked` would
    // say so if it did not.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at_checked(end).unwrap_or((rest, ""));
    if authority.is_empty() || authority.contains('@') {
        return Err(ProxyError::new(400, "the URL has no host, or has user information"));
    }
    let path = path.split('#').next().unwrap_or("");
    let origin = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    Ok((authority, origin))
}

/// `s` without its ASCII prefix `prefix` (compared case-insensitively), or
/// `None` when `s` does not start with it. Compares bytes, so it never cuts
/// inside a character.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    // The prefix is ASCII, so equal bytes end on a character boundary.
    head.eq_ignore_ascii_case(prefix.as_bytes()).then(|| s.get(prefix.len()..)).flatten()
}

/// Why a backend that speaks TLS is refused on the command line.
pub const NO_TLS_TO_BACKENDS: &str = "TLS to backends is not part of this curriculum yet: an https:// or port-443 \
backend would be spoken to in plain text. Give a plain-HTTP backend (TLS is discussed in Part IV of the book)";

/// Whether a backend given as `spec` (`https://host`, `host:443`,
/// `host:443:weight`) expects TLS, which our balancers do not speak.
pub fn is_tls_backend(spec: &str) -> bool {
    if strip_prefix_ignore_case(spec, "https://").is_some() {
        return true;
    }
    let spec = strip_prefix_ignore_case(spec, "http://").unwrap_or(spec);
    // `host:443[:w]` splits into host, port, weight; `[v6]:443[:w]` leaves
    // `:443[:w]` after the bracket, which splits into "", port, weight.
    let rest = spec.rsplit_once(']').map_or(spec, |(_, after)| after);
    rest.split(':').nth(1) == Some("443")
}

/// Splits an authority into host and port, with `default_port` when it has
/// none.
pub fn host_and_port(authority: &str, default_port: u16) -> Result<(String, u16), ProxyError> {
    if let Some((host, port)) = crate::http::split_authority(authority) {
        return Ok((host.to_string(), port));
    }
    let bracketed = authority.strip_prefix('[').and_then(|a| a.strip_suffix(']'));
    let host = bracketed.unwrap_or(authority);
    if host.is_empty() || (bracketed.is_none() && host.contains(':')) {
        return Err(ProxyError::new(400, format!("bad host in {authority:?}")));
    }
    Ok((host.to_string(), default_port))
}
