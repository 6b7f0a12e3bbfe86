//! `request_path`: the bytes a client sends to the reverse proxy or a load
//! balancer, through everything they go through on the way to a backend.
//!
//! Input: a flags byte, a split byte, then the client's bytes, delivered in
//! the pieces the split byte chooses (see `lbs_fuzz::split`). Two servers
//! read them:
//!
//! - the blocking ones (chapters 2 to 4): the head as
//!   `Buffered::read_request_head` reads it (`HeadScan`, `parse_request`),
//!   chapter 4's client behind trusted proxies, `prepare_upstream_request`,
//!   the optional RFC 7239 `Forwarded` header (lab 6.3), chapter 4's
//!   routing, sticky cookie, request id and hashing,
//!   `forward_exchange_with`'s last edits, the head written out, and the
//!   body copied by `copy_body`;
//! - chapter 5's event loop: `parse_head` (`lb/conn/exchange.rs`) on every
//!   pipelined request, its `BodyTracker` deciding where each body ends.
//!
//! Besides "never panics", it checks that the head found does not depend on
//! how the bytes were cut, that every head sent upstream parses back with
//! the same framing (else it is request smuggling), that a chunked body is
//! forwarded byte for byte, and that chapter 5 serves the same requests
//! whether the bytes came at once or in pieces.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ch02_proxy::body::{BodyError, copy_body};
use ch02_proxy::http::{Buffered, Framing, HeadScan, Limits, RequestHead, Version, parse_request};
use ch02_proxy::labs::lab_6_3_forwarding_chain::add_forwarded;
use ch02_proxy::proxy::prepare_upstream_request;
use ch03_load_balancer::rng::Rng;
use ch04_advanced::algorithm::{self, Context, Kind, pick_untried};
use ch04_advanced::headers::{Cidr, client_ip, cookie, ensure_request_id};
use ch04_advanced::node::{Backend, Pool};
use ch04_advanced::routing::{Group, Router};
use ch05_event_loop::framing::BodyTracker;
use lbs_fuzz::{Input, Pieces, assert_forwardable, check_refusal, limits, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let cut = input.byte();
    let bytes = input.rest();
    let limits = limits(flags & 1 != 0);
    let peer = lbs_fuzz::peer_ip(flags >> 1);
    blocking(bytes, cut, &limits, peer, flags);

    // Chapter 5 must serve the same requests however the bytes arrive.
    let at_once = event_loop(split(bytes, 0), &limits, peer);
    let in_pieces = event_loop(split(bytes, cut), &limits, peer);
    // 414 and 431 may come earlier from a prefix (a request line longer
    // than any valid one), so they may cut the list short.
    if ![at_once.end, in_pieces.end].iter().any(|s| matches!(s, 414 | 431)) {
        assert_eq!(at_once, in_pieces, "chapter 5 served the same bytes differently depending on the pieces");
    }
});

/// Chapters 2 to 4: one request per connection, read by blocking calls.
fn blocking(bytes: &[u8], cut: u8, limits: &Limits, peer: IpAddr, flags: u8) {
    // Buffered::read_request_head: parse when HeadScan says so, else read.
    let mut client = Buffered::new(Pieces::new(split(bytes, cut)));
    let mut scan = HeadScan::default();
    let (mut head, len) = loop {
        if scan.worth_parsing(&client.buf, limits) {
            match parse_request(&client.buf, limits) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => {}
                Err(e) => return check_refusal(&e),
            }
        }
        if client.fill().expect("reading memory cannot fail") == 0 {
            // Closed in the middle of a head: refused without another parse,
            // so the scan must not have missed a complete one.
            assert!(!matches!(parse_request(&client.buf, limits), Ok(Some(_))), "HeadScan missed a complete head");
            return;
        }
    };
    // However the bytes were cut, the head is the one they hold.
    assert_eq!(parse_request(bytes, limits), Ok(Some((head.clone(), len))), "the head depends on the pieces");
    client.consume(len);

    // reverse.rs, ch03's and ch04's balance(): the request as sent upstream
    // (chapter 4 first finds the client behind trusted proxies).
    let trusted: Vec<Cidr> = ["203.0.113.0/24", "2001:db8::/32"].iter().filter_map(|c| c.parse().ok()).collect();
    let client_addr = client_ip(peer, &head.headers, if flags & 0x10 != 0 { &trusted } else { &[] });
    if let Err(e) = prepare_upstream_request(&mut head, peer, "http") {
        assert!(matches!(e.status, Some(400 | 405)), "{e:?}");
        return;
    }
    if flags & 0x80 != 0 {
        add_forwarded(&mut head.headers, peer, IpAddr::from([127, 0, 0, 1]), "http");
    }
    let router = router(flags & 0x40 != 0);
    let path = head.target.split('?').next().unwrap_or("/").to_string();
    let group = router.route(&path);
    let sticky = group.algorithm.cookie_name().map(str::to_string);
    let cookie_value = sticky.as_deref().and_then(|name| cookie(&head.headers, name)).map(str::to_string);
    let request_id = ensure_request_id(&mut head.headers, &mut Rng::new(u64::from(flags)));
    assert!((1..=128).contains(&request_id.len()) && request_id.bytes().all(|b| b.is_ascii_graphic()));
    let key = if flags & 0x20 != 0 { path.clone() } else { client_addr.to_string() };
    let ctx = Context { client_ip: client_addr, key: &key, cookie: cookie_value.as_deref(), now: Instant::now() };
    let tried = vec![false; group.pool.nodes.len()];
    let node = pick_untried(group.algorithm.as_ref(), &group.pool, &ctx, &tried);
    assert!(node.is_some_and(|i| i < group.pool.nodes.len()), "every node is healthy, yet none was picked");

    // forward_exchange_with: Expect answered by us, Host named if absent.
    head.headers.remove("expect");
    if head.headers.get("host").is_none() {
        head.headers.set("Host", "10.0.0.1:80");
    }
    assert_forwardable(&head.to_bytes(), &head);

    // The body, as copy_body carries it to the backend.
    let rest = bytes.get(len..).unwrap_or_default();
    let mut upstream = Vec::new();
    match copy_body(&mut client, &mut upstream, head.framing) {
        Ok(n) => {
            assert_eq!(n as usize, upstream.len());
            assert!(rest.starts_with(&upstream), "the body was not forwarded unchanged");
            if let Framing::Length(want) = head.framing {
                assert_eq!(n, want);
            }
        }
        Err(BodyError::Malformed(_) | BodyError::Truncated(_)) => {}
        Err(e) => panic!("memory cannot fail: {e}"),
    }
}

/// Chapter 4's router: the default group hashes (or sticks, with
/// `sticky`), `/api/` sticks, `/static/` hashes the client address.
fn router(sticky: bool) -> &'static Router {
    static ROUTERS: OnceLock<[Router; 2]> = OnceLock::new();
    let routers = ROUTERS.get_or_init(|| {
        let group = |name: &str, kind: Kind| {
            let pool = Arc::new(Pool::new((1..=3).map(|i| Backend::new(format!("10.0.0.{i}:80"), i)).collect()));
            let algorithm = algorithm::build(kind, &pool, &algorithm::Options::default());
            Group { name: name.to_string(), pool, algorithm }
        };
        [Kind::Hash, Kind::Sticky].map(|kind| {
            let mut r = Router::new(group("default", kind));
            r.add_route("/api/", group("api", Kind::Sticky));
            r.add_route("/static/", group("static", Kind::Iphash));
            r
        })
    });
    &routers[usize::from(sticky)]
}

/// What chapter 5's connection did with a client's bytes.
#[derive(Debug, PartialEq, Eq)]
struct Served {
    /// Per request: the head sent upstream, then the body bytes sent after it.
    requests: Vec<(Vec<u8>, Vec<u8>)>,
    /// The status of the error response that ended the connection, or 0.
    end: u16,
}

/// Chapter 5's `Conn`, reduced to what it does with the client's bytes:
/// `read_client` (bounded reads), `step` (parse when `HeadScan` says so,
/// 400 at end of stream in the middle of a head), `parse_head`, and the
/// request body fed to a `BodyTracker`; a finished exchange returns to
/// reading heads when the connection is kept alive.
fn event_loop(pieces: Vec<&[u8]>, limits: &Limits, peer: IpAddr) -> Served {
    const BUFFER: usize = 16 * 1024;
    let mut socket = Pieces::new(pieces);
    let mut from_client = Vec::new();
    let mut scan = HeadScan::default();
    let mut served = Served { requests: Vec::new(), end: 0 };
    let mut body: Option<(BodyTracker, bool)> = None;
    let mut eof = false;
    loop {
        match &mut body {
            None => {
                if !from_client.is_empty() && scan.worth_parsing(&from_client, limits) {
                    match parse_head(&mut from_client, limits, peer) {
                        Ok(None) => {}
                        Ok(Some((head, Some(tracker), body_start, keep_alive))) => {
                            served.requests.push((head, body_start));
                            scan = HeadScan::default();
                            body = Some((tracker, keep_alive));
                            continue;
                        }
                        Ok(Some((head, None, _, _))) => {
                            // The body bytes that came with the head are malformed.
                            served.requests.push((head, Vec::new()));
                            served.end = 400;
                            return served;
                        }
                        Err(status) => {
                            served.end = status;
                            return served;
                        }
                    }
                }
                if eof {
                    if !from_client.is_empty() {
                        assert!(
                            !matches!(parse_request(&from_client, limits), Ok(Some(_))),
                            "HeadScan missed a complete head"
                        );
                        served.end = 400;
                    }
                    return served;
                }
                let room = (limits.max_head_bytes + 1).saturating_sub(from_client.len());
                assert!(room > 0, "a full head buffer was neither parsed nor refused: the connection would stall");
                match socket.take(room) {
                    Some(b) => from_client.extend_from_slice(&b),
                    None => eof = true,
                }
            }
            Some((tracker, keep_alive)) => {
                if tracker.is_done() {
                    // The response is not modelled: the exchange ends here.
                    if !*keep_alive || (eof && from_client.is_empty()) {
                        return served;
                    }
                    body = None;
                    continue;
                }
                if eof {
                    return served; // closed in the middle of a body: dropped
                }
                let Some(b) = socket.take(BUFFER) else {
                    eof = true;
                    continue;
                };
                match tracker.feed(&b) {
                    Ok(n) => {
                        let (to_upstream, next) = b.split_at(n);
                        if let Some((_, sent)) = served.requests.last_mut() {
                            sent.extend_from_slice(to_upstream);
                        }
                        from_client.extend_from_slice(next);
                    }
                    Err(_) => {
                        // Refused: what went up before is cut off with the
                        // connection, whether it came in this piece or before.
                        if let Some((_, sent)) = served.requests.last_mut() {
                            sent.clear();
                        }
                        served.end = 400;
                        return served;
                    }
                }
            }
        }
    }
}

/// `parse_head` (`lb/conn/exchange.rs`): `Ok(None)` when more bytes are
/// needed, the status of the refusal, or the head as sent upstream, the body tracker
/// (`None`: the body bytes that came with the head are malformed), the
/// first body bytes and whether the connection is kept alive.
#[allow(clippy::type_complexity)]
fn parse_head(
    from_client: &mut Vec<u8>,
    limits: &Limits,
    peer: IpAddr,
) -> Result<Option<(Vec<u8>, Option<BodyTracker>, Vec<u8>, bool)>, u16> {
    let (mut head, len): (RequestHead, usize) = match parse_request(from_client, limits) {
        Ok(Some(parsed)) => parsed,
        Ok(None) if from_client.len() >= limits.max_head_bytes => return Err(431),
        Ok(None) => return Ok(None),
        Err(e) => {
            check_refusal(&e);
            return Err(e.status().unwrap_or(400));
        }
    };
    from_client.drain(..len);
    let keep_alive = head.version == Version::Http11 && !head.headers.has_token("connection", "close");
    let _client = client_ip(peer, &head.headers, &[]);
    if let Err(e) = prepare_upstream_request(&mut head, peer, "http") {
        return Err(e.status.unwrap_or(400));
    }
    head.headers.remove("expect");
    let _sticky = cookie(&head.headers, "lbs_backend");
    if head.headers.get("host").is_none() {
        head.headers.set("Host", "backend");
    }
    let wire = head.to_bytes();
    assert_forwardable(&wire, &head);
    let mut tracker = BodyTracker::new(head.framing);
    let rest = std::mem::take(from_client);
    match tracker.feed(&rest) {
        Ok(n) => {
            let (body, next) = rest.split_at(n);
            from_client.extend_from_slice(next);
            Ok(Some((wire, Some(tracker), body.to_vec(), keep_alive)))
        }
        Err(_) => Ok(Some((wire, None, Vec::new(), false))),
    }
}
