//! `headers`: the request headers the load balancers read and write:
//! `X-Forwarded-For` and friends (chapter 2's `forwarding.rs`), the RFC
//! 7239 `Forwarded` chain (lab 6.3), the client behind trusted proxies,
//! the sticky-session cookie and `X-Request-ID` (chapter 4's
//! `headers.rs`), and the keys chapter 4's algorithms hash (consistent
//! hashing by path or client address, sticky sessions by cookie), and the
//! keys chapter 7's rate limiter takes from a request, and chapter 8's
//! admin listener, metrics and access log.
//!
//! Input: a flags byte, a path up to the first `\n`, then header lines.
//! They become `GET <path> HTTP/1.1` and that header section, and go
//! through `parse_request`, so every value is one a client can really
//! send (no control characters, no bare CR, at most one Host, ...).
//!
//! Checked besides "never panics": the client found behind trusted proxies
//! is the peer or an address of the `X-Forwarded-For` chain, one
//! `X-Forwarded-For` that keeps the chain and ends with the client, one
//! `Forwarded` that ends with our
//! element, a request id that is 1 to 128 visible ASCII characters and
//! the client's own when that was valid, a cookie value that appears in a
//! `Cookie` header, hashing that picks a node and the same one every time,
//! and a head that still parses back with the same framing.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, UNIX_EPOCH};

use ch02_proxy::forwarding::add_forwarding_headers;
use ch02_proxy::http::{Headers, RequestHead, parse_request};
use ch02_proxy::labs::lab_6_3_forwarding_chain::{add_forwarded, forwarded_element};
use ch03_load_balancer::rng::Rng;
use ch04_advanced::algorithm::consistent_hash::ConsistentHash;
use ch04_advanced::algorithm::sticky::Sticky;
use ch04_advanced::algorithm::{Algorithm, Context};
use ch04_advanced::headers::{Cidr, MAX_REQUEST_ID, client_ip, cookie, ensure_request_id};
use ch04_advanced::node::{Backend, Pool};
use ch01_fundamentals::logging::LogFormat;
use ch05_event_loop::lb::admit::Verdict;
use ch05_event_loop::lb::observe::{Finished, Observe, Outcome as Ended, Timings};
use ch07_rate_limit::limiter::{KeyBy, Outcome, RateLimiter, RouteLimit, Settings};
use ch07_rate_limit::quota::Quota;
use ch08_metrics::access;
use ch08_metrics::admin;
use ch08_metrics::balancer::{Metrics, Recorder, status_label};
use lbs_fuzz::{Input, WRITTEN_LIMITS, assert_forwardable, peer_ip};
use libfuzzer_sys::fuzz_target;

const COOKIE: &str = "lbs_backend";

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let rest = input.rest();
    let (path, section) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b"/"[..], rest),
    };
    let section = section.strip_suffix(b"\r\n").unwrap_or(section);
    let raw = [b"GET ", path, b" HTTP/1.1\r\n", section, b"\r\n\r\n"].concat();
    let Ok(Some((mut head, _))) = parse_request(&raw, &WRITTEN_LIMITS) else { return };
    let client = peer_ip(flags);

    // What the client sent, before we touch it.
    let chain: Vec<String> = head.headers.tokens("x-forwarded-for").collect();
    let ids: Vec<Vec<u8>> = head.headers.get_all("x-request-id").map(<[u8]>::to_vec).collect();
    let cookie_headers: Vec<String> =
        head.headers.get_all("cookie").map(|v| String::from_utf8_lossy(v).into_owned()).collect();
    let host = head.headers.get("host").map(<[u8]>::to_vec);

    // Chapter 4 and 5 (--trusted-proxy): the client behind our proxies,
    // read before we add ourselves; it is what IP hashing hashes.
    let trusted: Vec<Cidr> = if flags & 0x20 != 0 { trusted() } else { Vec::new() };
    let hashed_ip = client_ip(client, &head.headers, &trusted);
    let hops: Vec<IpAddr> = chain.iter().filter_map(|hop| hop.parse().ok()).collect();
    assert!(hashed_ip == client || hops.contains(&hashed_ip), "{hashed_ip} is neither the peer nor in {chain:?}");
    if trusted.is_empty() {
        assert_eq!(hashed_ip, client, "without trusted proxies the peer is the client");
    }

    // Chapter 7: every key a rate limiter takes from a request (the
    // address, the forwarded client, a header's value, the route), and
    // the 429 it writes.
    rate_limit(&head, client, hashed_ip);

    // Chapter 2: X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host.
    add_forwarding_headers(&mut head.headers, client, "http");
    let xff: Vec<&[u8]> = head.headers.get_all("x-forwarded-for").collect();
    assert_eq!(xff.len(), 1, "one X-Forwarded-For");
    let expected = chain.iter().map(String::as_str).chain([client.to_string().as_str()]).collect::<Vec<_>>().join(", ");
    assert_eq!(xff[0], expected.as_bytes(), "the chain is kept and the client appended");
    assert_eq!(head.headers.get("x-real-ip"), Some(client.to_string().as_bytes()));
    assert_eq!(head.headers.get("x-forwarded-host").map(<[u8]>::to_vec), host);
    assert_single(&head.headers, "x-real-ip");
    assert_single(&head.headers, "x-forwarded-proto");

    // Lab 6.3: the Forwarded chain.
    let by = IpAddr::from([192, 0, 2, 1]);
    if flags & 0x80 != 0 {
        add_forwarded(&mut head.headers, client, by, "http");
        assert_single(&head.headers, "forwarded");
        let ours = forwarded_element(client, by, head.headers.get_str("host"), "http");
        let value = head.headers.get("forwarded").expect("one Forwarded");
        assert!(value.ends_with(ours.as_bytes()), "{:?}", String::from_utf8_lossy(value));
    }

    // Chapter 4: the sticky cookie, as balance() and chapter 5 read it.
    let sticky_value = cookie(&head.headers, COOKIE);
    if let Some(v) = sticky_value {
        assert!(cookie_headers.iter().any(|h| h.contains(v)), "{v:?} is not in {cookie_headers:?}");
        assert!(!v.contains(';') && v.trim() == v, "{v:?}");
    }
    let sticky_value = sticky_value.map(str::to_string);

    // Chapter 4: X-Request-ID.
    let id = ensure_request_id(&mut head.headers, &mut Rng::new(u64::from(flags)));
    assert!((1..=MAX_REQUEST_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()), "{id:?}");
    assert_single(&head.headers, "x-request-id");
    assert_eq!(head.headers.get("x-request-id"), Some(id.as_bytes()));
    if let [sent] = ids.as_slice()
        && !sent.is_empty()
        && sent.len() <= MAX_REQUEST_ID
        && sent.iter().all(u8::is_ascii_graphic)
    {
        assert_eq!(id.as_bytes(), sent.as_slice(), "a valid client id is kept");
    }

    // Chapter 4's hashing and stickiness: the key is the path or the
    // client address (--hash-key), the cookie names a node.
    let pool = pool();
    let path = head.target.split('?').next().unwrap_or("/").to_string();
    let key = if flags & 0x40 != 0 { path } else { hashed_ip.to_string() };
    let ctx = Context { client_ip: hashed_ip, key: &key, cookie: sticky_value.as_deref(), now: Instant::now() };
    let ring = ConsistentHash::new(&pool, 8);
    let picked = ring.pick(&pool, &ctx);
    assert!(picked.is_some_and(|i| i < pool.nodes.len()));
    assert_eq!(ring.pick(&pool, &ctx), picked, "the same key hashes to the same node");
    assert_eq!(ring.owner(&key), picked, "all nodes are healthy: the owner is picked");
    let sticky = Sticky::new(COOKIE);
    let stuck = sticky.pick(&pool, &ctx);
    assert!(stuck.is_some_and(|i| i < pool.nodes.len()));
    if let Some(known) = pool.nodes.iter().position(|n| Some(n.id.as_str()) == sticky_value.as_deref()) {
        assert_eq!(stuck, Some(known), "a node's own cookie sticks to it");
    }

    observe(&head, flags);

    assert_forwardable(&head.to_bytes(), &head);
});

/// Chapter 8: the admin listener's answer to this head (the `Accept`
/// header chooses the format of `/metrics`), the metrics and the access
/// log's line for it as a finished request. The line is one line whatever
/// the target holds, and its JSON form is valid.
fn observe(head: &RequestHead, flags: u8) {
    static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();
    let metrics = METRICS.get_or_init(|| Metrics::new("fuzz").unwrap_or_else(|e| panic!("{e}")));
    let accept = head.headers.get("accept").map(String::from_utf8_lossy);
    // `/metrics` reads /proc on every call: only now and then.
    if head.target != "/metrics" || flags & 0x0F == 0 {
        let answer = admin::route(metrics, &head.method, &head.target, accept.as_deref());
        assert!(matches!(answer.status, 200 | 404 | 405 | 503), "{}", answer.status);
    }
    let status = u16::from_le_bytes([flags, flags.rotate_left(3)]);
    let finished = Finished {
        peer: "127.0.0.1:40000".parse().unwrap_or_else(|e| panic!("{e}")),
        method: &head.method,
        target: &head.target,
        backend: (flags & 1 == 0).then_some((usize::from(flags >> 5), "127.0.0.1:9001")),
        status,
        outcome: Ended::Served,
        bytes_up: 1,
        bytes_down: 2,
        timings: Timings::default(),
    };
    let mut recorder = Recorder::new(Arc::clone(metrics));
    recorder.finished(&finished);
    assert!(!status_label(status).is_empty());
    for format in [LogFormat::Text, LogFormat::Json] {
        let line = access::line(format, "0123456789abcdef", &finished, UNIX_EPOCH);
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
    }
}

/// A fresh limiter of burst 2 allows exactly two requests at one moment,
/// whatever the request looks like, and refuses the third with header
/// values a response may carry.
fn rate_limit(head: &RequestHead, peer: IpAddr, client: IpAddr) {
    let quota = |burst| Quota::new(1.0, burst).expect("a valid quota");
    for key in [KeyBy::Ip, KeyBy::Xff, KeyBy::Header("x-api-key".into()), KeyBy::Route] {
        let settings = Settings {
            per_key: Some(quota(2)),
            global: Some(quota(100)),
            routes: vec![RouteLimit { prefix: "/a".into(), quota: quota(3) }],
            key,
            max_keys: 8,
            ..Settings::default()
        };
        let mut limiter = RateLimiter::new(&settings);
        assert_eq!(limiter.decide(peer, client, head, 0), Outcome::Pass);
        assert_eq!(limiter.decide(peer, client, head, 0), Outcome::Pass);
        let Outcome::Refuse { policy, wait, applied, .. } = limiter.decide(peer, client, head, 0) else {
            panic!("a third request at once is refused")
        };
        let Verdict::Answer { status, headers, body } = limiter.refusal(policy, wait, &applied) else {
            panic!("a refusal is answered")
        };
        assert_eq!(status, 429);
        for (name, value) in &headers {
            assert!(value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()), "{name}: {value:?}");
        }
        assert!(body.ends_with('\n'));
    }
}

fn assert_single(headers: &Headers, name: &str) {
    assert_eq!(headers.get_all(name).count(), 1, "exactly one {name}");
}

/// Proxies in front of us: those `peer_ip` makes up, and others.
fn trusted() -> Vec<Cidr> {
    ["203.0.113.0/24", "2001:db8::/32", "10.0.0.0/8"].iter().filter_map(|c| c.parse().ok()).collect()
}

fn pool() -> Arc<Pool> {
    Arc::new(Pool::new((1..=3).map(|i| Backend::new(format!("10.0.0.{i}:80"), 1)).collect()))
}
