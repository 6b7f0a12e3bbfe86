//! `forward_target`: what the forward proxy does with the target a client
//! names: `CONNECT host:port` (authority form) or `GET http://host/path`
//! (absolute form).
//!
//! Input: a flags byte, two bytes of a port the proxy allows (besides 443
//! for CONNECT and 80 for plain HTTP), then the target. It goes into a
//! request line (`CONNECT` or `GET`, as the flags say) and through
//! `parse_request`, as every target does; with the raw flag the bytes are
//! the whole head instead. Then `forward.rs`'s `tunnel` or `plain`:
//! `split_authority` and the CONNECT port allow-list, or
//! `split_absolute_http`, `host_and_port`, the plain port allow-list, the
//! head rewritten to origin form with `Host` set to the authority, and the
//! access log line (lab 6.1). It stops where the proxy would resolve and
//! connect.
//!
//! Checked besides "never panics": a CONNECT target that `parse_request`
//! accepted always splits (`tunnel` relies on it), an absolute URL splits
//! into an authority and an origin form that put back together split the
//! same way, and the rewritten head parses back with the same framing.
#![no_main]

use std::collections::BTreeSet;
use std::time::Duration;

use ch02_proxy::http::{RequestHead, parse_request, remove_hop_by_hop, split_authority};
use ch02_proxy::labs::lab_6_1_request_logging::format_line;
use ch02_proxy::proxy::{Exchange, host_and_port, split_absolute_http};
use lbs_fuzz::{Input, assert_forwardable, check_refusal, limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let port = input.u16();
    let target = input.rest();
    let connect = flags & 1 != 0;
    let limits = limits(flags & 4 != 0);
    let head_bytes = if flags & 2 != 0 {
        target.to_vec()
    } else {
        let method: &[u8] = if connect { b"CONNECT" } else { b"GET" };
        [method, b" ", target, b" HTTP/1.1\r\nHost: proxy.test\r\n\r\n"].concat()
    };
    let head = match parse_request(&head_bytes, &limits) {
        Ok(Some((head, _))) => head,
        Ok(None) => return,
        Err(e) => return check_refusal(&e),
    };
    // ForwardConfig::allow_port widens both lists.
    let connect_ports = BTreeSet::from([443, port]);
    let http_ports = BTreeSet::from([80, port]);

    // serve_one's access log line (lab 6.1) names the target as sent.
    let line = format_line(&Exchange {
        client: "203.0.113.9:50000".parse().expect("a socket address"),
        method: head.method.clone(),
        target: head.target.clone(),
        status: 200,
        latency: Duration::from_millis(3),
        bytes_up: 0,
        bytes_down: 0,
    });
    assert!(line.ends_with('\n') && line.contains(&head.target));

    if head.method == "CONNECT" {
        tunnel(&head, &connect_ports);
    } else {
        plain(head, &http_ports);
    }
});

/// `forward.rs`'s `tunnel`, up to the connect.
fn tunnel(head: &RequestHead, connect_ports: &BTreeSet<u16>) {
    let Some((host, port)) = split_authority(&head.target) else {
        panic!("parse_request accepted a CONNECT target that does not split: {:?}", head.target);
    };
    assert!(!host.is_empty() && !host.contains(['/', ' ', '@']), "{host:?}");
    let _allowed = connect_ports.contains(&port);
}

/// `forward.rs`'s `plain`, up to the connect, and the head it sends.
fn plain(mut head: RequestHead, http_ports: &BTreeSet<u16>) {
    let Ok((authority, origin)) = split_absolute_http(&head.target) else { return };
    assert!(!authority.is_empty() && !authority.contains(['@', '/', '?', '#']), "{authority:?}");
    assert!(origin.starts_with('/') && !origin.contains('#'), "{origin:?}");
    let rebuilt = format!("http://{authority}{origin}");
    assert_eq!(split_absolute_http(&rebuilt).ok(), Some((authority, origin.clone())), "{:?}", head.target);
    let Ok((host, port)) = host_and_port(authority, 80) else { return };
    assert!(!host.is_empty(), "{authority:?}");
    if !http_ports.contains(&port) {
        return; // 403
    }
    let authority = authority.to_string();
    head.target = origin;
    remove_hop_by_hop(&mut head.headers);
    head.headers.set("Host", authority);
    head.headers.set("Connection", "close");
    // forward_exchange: we answer Expect ourselves.
    head.headers.remove("expect");
    assert_forwardable(&head.to_bytes(), &head);
}
