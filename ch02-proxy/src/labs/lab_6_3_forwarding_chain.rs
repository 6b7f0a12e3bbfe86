//! # Lab 6.3 — forwarding headers for a chain of proxies
//!
//! `X-Forwarded-For` is a convention; RFC 7239 standardised the same idea
//! as one header, `Forwarded`, whose value is a comma-separated list of
//! *elements*, one per proxy, each a `;`-separated list of `name=value`
//! pairs. Add it to the reverse proxy (`--forwarded`), so that behind a
//! chain of proxies the backend sees every hop.
//!
//! - [`node`] writes an address as a `for=`/`by=` value: IPv4 as it is
//!   (`192.0.2.60`), IPv6 in brackets and quotes (`"[2001:db8::1]"`),
//!   because `:` is not allowed in a bare token.
//! - [`quote_if_needed`] returns a value unchanged when every character is
//!   an HTTP token character (letters, digits and ``!#$%&'*+-.^_`|~``),
//!   and otherwise as a quoted string, with `"` and `\` escaped by a `\`.
//! - [`forwarded_element`] builds one element in this order:
//!   `for=<node>;by=<node>;host=<quoted if needed>;proto=<proto>`, leaving
//!   out `host` when there is none.
//! - [`add_forwarded`] appends our element to the request's chain: the
//!   values of every existing `Forwarded` header, joined with `, `, then
//!   ours, in a single `Forwarded` header. The element's `host` is the
//!   request's `Host` header.
//!
//! Run it: `cargo test -p ch02-proxy --no-default-features lab_6_3`.

use std::net::IpAddr;

use crate::http::Headers;

/// An address as a `Forwarded` node.
pub fn node(ip: IpAddr) -> String {
    // TODO: IPv4 bare, IPv6 as "[...]".
    let _ = ip;
    todo!("lab 6.3: format a node")
}

/// A token as it is, anything else as a quoted string.
pub fn quote_if_needed(value: &str) -> String {
    // TODO: check tchar, otherwise quote and escape.
    let _ = value;
    todo!("lab 6.3: quote a value")
}

/// One `Forwarded` element.
pub fn forwarded_element(client: IpAddr, by: IpAddr, host: Option<&str>, proto: &str) -> String {
    // TODO: for=...;by=...;host=...;proto=...
    let _ = (client, by, host, proto);
    todo!("lab 6.3: build an element")
}

/// Appends this hop to the request's `Forwarded` chain.
pub fn add_forwarded(headers: &mut Headers, client: IpAddr, by: IpAddr, proto: &str) {
    // TODO: join the existing values, append ours, set one header.
    let _ = (headers, client, by, proto);
    todo!("lab 6.3: extend the chain")
}
