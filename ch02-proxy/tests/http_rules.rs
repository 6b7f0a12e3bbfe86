//! The HTTP/1 rules of `ARCHITECTURE.md` section 3, rule by rule: each malformed or ambiguous request is
//! refused with its exact status, both by the parser and by the real
//! reverse proxy over a socket (which must also not forward it).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use backends::{BackendConfig, spawn};
use ch02_proxy::http::{Limits, parse_request};
use common::{raw_exchange, reverse_proxy, status_of};

/// Checks `raw` against the parser and the proxy; the backend must never
/// see the request.
fn refused(raw: &[u8], status: u16) {
    let parsed = parse_request(raw, &Limits::default());
    match parsed {
        Err(e) => assert_eq!(e.status(), Some(status), "parser: {e}"),
        Ok(p) => panic!("parser accepted {:?}: {p:?}", String::from_utf8_lossy(raw)),
    }
    let backend = spawn(BackendConfig::named("never")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    let response = raw_exchange(proxy.addr, raw);
    assert_eq!(status_of(&response), status, "proxy answered {response:?}");
    assert!(response.contains("Connection: close"), "{response:?}");
    assert_eq!(backend.stats().requests_served.load(Ordering::SeqCst), 0, "nothing was forwarded");
}

macro_rules! rule {
    ($name:ident, $raw:expr, $status:expr) => {
        #[test]
        fn $name() {
            refused($raw, $status);
        }
    };
}

rule!(
    content_length_with_transfer_encoding,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    400
);
rule!(
    differing_content_lengths,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    400
);
rule!(content_length_letters, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400);
rule!(content_length_negative, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
rule!(content_length_trailing_comma, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\nhello", 400);
rule!(content_length_list, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400);
rule!(content_length_empty, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400);
rule!(content_length_overflow, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
rule!(content_length_plus_sign, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400);
rule!(transfer_encoding_in_http_1_0, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
rule!(
    transfer_encoding_chunked_twice,
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    400
);
rule!(
    transfer_encoding_chunked_on_two_lines,
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    400
);
rule!(transfer_encoding_gzip_only, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
rule!(
    transfer_encoding_chunked_not_last,
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    400
);
rule!(
    transfer_encoding_unknown_before_chunked_is_501,
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    501
);
rule!(obs_fold, b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: first\r\n  continued\r\n\r\n", 400);
rule!(bare_cr_in_a_value, b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400);
rule!(bare_cr_as_a_line_end, b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400);
rule!(control_character_in_a_value, b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", 400);
rule!(nul_in_a_value, b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400);
rule!(invalid_token_character_in_a_name, b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400);
rule!(missing_host_in_http_1_1, b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400);
rule!(repeated_host, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
rule!(space_before_the_colon, b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
rule!(tab_before_the_colon, b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400);
rule!(not_http_at_all, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400);

#[test]
fn invalid_chunk_size_is_refused_before_the_body_is_forwarded() {
    // The head is fine, so the parser accepts it; the body is not.
    let backend = spawn(BackendConfig::named("b")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    for body in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"-5\r\nhello\r\n0\r\n\r\n", b"5 \r\nhello\r\n0\r\n\r\n"] {
        let mut raw = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        raw.extend_from_slice(body);
        let response = raw_exchange(proxy.addr, &raw);
        assert_eq!(status_of(&response), 400, "{response:?}");
        assert!(response.contains("invalid chunk size"), "{response:?}");
    }
}

#[test]
fn connect_target_without_a_port() {
    refused(b"CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 400);
}

#[test]
fn header_section_over_the_limit_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..200 {
        raw.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(100)).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    refused(&raw, 431);
}

#[test]
fn too_many_header_lines_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..150 {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    refused(&raw, 431);
}

#[test]
fn request_target_over_the_limit_is_414() {
    let raw = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    refused(raw.as_bytes(), 414);
    // Known to be too long before the line even ends.
    let partial = format!("GET /{}", "a".repeat(9000));
    let e = parse_request(partial.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(e.status(), Some(414));
}

#[test]
fn the_header_limit_is_configurable() {
    let limits = Limits { max_head_bytes: 64, ..Limits::default() };
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Padding: 0123456789012345678901234567890123456789\r\n\r\n";
    assert_eq!(parse_request(raw, &limits).unwrap_err().status(), Some(431));
    assert!(parse_request(raw, &Limits::default()).unwrap().is_some());
}

#[test]
fn a_head_that_does_not_arrive_in_time_is_408() {
    let backend = spawn(BackendConfig::named("b")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |c| c.limits.header_timeout = Duration::from_millis(100));
    // Half a head, then silence (the connection stays open): slowloris.
    let mut s = std::net::TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(common::TIMEOUT)).unwrap();
    std::io::Write::write_all(&mut s, b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ").unwrap();
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut out);
    assert_eq!(status_of(&out), 408, "{out:?}");
}

#[test]
fn a_valid_request_still_goes_through() {
    let backend = spawn(BackendConfig::named("fine")).unwrap();
    let proxy = reverse_proxy(backend.addr(), |_| {});
    let response = raw_exchange(proxy.addr, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(status_of(&response), 200);
    assert!(response.ends_with("Hello from fine (GET /)\n"));
}
