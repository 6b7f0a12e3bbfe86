//! # Lab 6.3 — forwarding headers for a chain of proxies (reference solution)
//!
//! The task is in `src/labs/lab_6_3_forwarding_chain.rs`.

use std::net::IpAddr;

use crate::http::Headers;

/// An address as a `Forwarded` node.
pub fn node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A token as it is, anything else as a quoted string.
pub fn quote_if_needed(value: &str) -> String {
    if !value.is_empty() && value.chars().all(is_tchar) {
        return value.to_string();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// One `Forwarded` element.
pub fn forwarded_element(client: IpAddr, by: IpAddr, host: Option<&str>, proto: &str) -> String {
    let mut element = format!("for={};by={}", node(client), node(by));
    if let Some(host) = host {
        element.push_str(";host=");
        element.push_str(&quote_if_needed(host));
    }
    element.push_str(";proto=");
    element.push_str(&quote_if_needed(proto));
    element
}

/// Appends this hop to the request's `Forwarded` chain.
pub fn add_forwarded(headers: &mut Headers, client: IpAddr, by: IpAddr, proto: &str) {
    let host = headers.get_str("host").map(str::to_string);
    let mut chain: Vec<String> =
        headers.get_all("forwarded").map(|v| String::from_utf8_lossy(v).trim().to_string()).collect();
    chain.retain(|v| !v.is_empty());
    chain.push(forwarded_element(client, by, host.as_deref(), proto));
    headers.set("Forwarded", chain.join(", "));
}
