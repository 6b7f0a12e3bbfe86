//! The limiter on parsed requests and an injected time.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ch02_proxy::http::{Limits, RequestHead, parse_request};
use ch05_event_loop::lb::admit::{Admission, Arrival, Verdict as Admit};

use super::*;
use crate::clock::SECOND;

fn head(target: &str, headers: &str) -> RequestHead {
    let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    parse_request(raw.as_bytes(), &Limits::default()).unwrap().unwrap().0
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn q(rate: f64, burst: u32) -> Quota {
    Quota::new(rate, burst).unwrap()
}

fn limiter(settings: Settings) -> RateLimiter {
    RateLimiter::new(&settings)
}

/// How many of `n` requests at `now` pass.
fn passes(l: &mut RateLimiter, from: IpAddr, h: &RequestHead, n: usize, now: Nanos) -> usize {
    (0..n).filter(|_| l.decide(from, from, h, now) == Outcome::Pass).count()
}

#[test]
fn each_client_has_its_own_allowance() {
    let mut l = limiter(Settings { per_key: Some(q(1.0, 5)), ..Settings::default() });
    let h = head("/", "");
    assert_eq!(passes(&mut l, ip(2), &h, 10, SECOND), 5);
    assert_eq!(passes(&mut l, ip(3), &h, 1, SECOND), 1);
    // One second later, one more for the first client.
    assert_eq!(passes(&mut l, ip(2), &h, 3, 2 * SECOND), 1);
}

#[test]
fn a_global_refusal_does_not_use_up_the_clients_allowance() {
    let mut l = limiter(Settings { per_key: Some(q(1.0, 3)), global: Some(q(1.0, 2)), ..Settings::default() });
    let h = head("/", "");
    assert_eq!(passes(&mut l, ip(2), &h, 2, 0), 2);
    // The global allowance is gone: client 3 is refused by it...
    match l.decide(ip(3), ip(3), &h, 0) {
        Outcome::Refuse { policy, applied, .. } => {
            assert_eq!(l.policy_names().get(policy), Some(&"global"));
            assert_eq!(applied.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    // ...and when the global one has room again (2 s), client 2 has one
    // left of 3 (it was not charged for what global refused) plus refill.
    assert_eq!(passes(&mut l, ip(3), &h, 1, 2 * SECOND), 1);
}

#[test]
fn the_longest_route_prefix_applies_per_client() {
    let routes = vec![
        RouteLimit { prefix: "/api".into(), quota: q(1.0, 2) },
        RouteLimit { prefix: "/api/login".into(), quota: q(1.0, 1) },
    ];
    let mut l = limiter(Settings { routes, ..Settings::default() });
    assert_eq!(passes(&mut l, ip(2), &head("/api/login?u=1", ""), 5, 0), 1);
    assert_eq!(passes(&mut l, ip(2), &head("/api/items", ""), 5, 0), 2);
    assert_eq!(passes(&mut l, ip(2), &head("/static/a.css", ""), 50, 0), 50);
    assert_eq!(passes(&mut l, ip(2), &head("http://example.com/api/x", ""), 5, 0), 0);
    assert_eq!(passes(&mut l, ip(3), &head("/api/items", ""), 5, 0), 2);
}

#[test]
fn keys_can_be_a_header_the_forwarded_client_or_the_route() {
    let s = |key| Settings { per_key: Some(q(1.0, 2)), key, ..Settings::default() };
    // An API key shared by two addresses is one client...
    let mut l = limiter(s(KeyBy::Header("x-api-key".into())));
    let keyed = head("/", "X-Api-Key: abc\r\n");
    assert_eq!(passes(&mut l, ip(2), &keyed, 1, 0) + passes(&mut l, ip(3), &keyed, 5, 0), 2);
    // ...and leaving the header out falls back to the address.
    assert_eq!(passes(&mut l, ip(4), &head("/", ""), 5, 0), 2);
    // Behind a proxy: the forwarded client is the key, not the proxy.
    let mut l = limiter(s(KeyBy::Xff));
    let h = head("/", "");
    let via = |l: &mut RateLimiter, client: u8| l.decide(ip(1), ip(client), &h, 0) == Outcome::Pass;
    assert_eq!((0..5).filter(|_| via(&mut l, 7)).count(), 2);
    assert_eq!((0..5).filter(|_| via(&mut l, 8)).count(), 2);
    // By route: everyone shares /a's allowance; /b has its own.
    let mut l = limiter(s(KeyBy::Route));
    assert_eq!(passes(&mut l, ip(2), &head("/a/1", ""), 1, 0) + passes(&mut l, ip(3), &head("/a/2", ""), 5, 0), 2);
    assert_eq!(passes(&mut l, ip(2), &head("/b", ""), 5, 0), 2);
}

#[test]
fn delay_mode_holds_the_burst_in_line() {
    let mut l = limiter(Settings { per_key: Some(q(2.0, 3)), mode: Mode::Delay, ..Settings::default() });
    let h = head("/", "");
    let got: Vec<Outcome> = (0..4).map(|_| l.decide(ip(2), ip(2), &h, 0)).collect();
    assert_eq!(got.first(), Some(&Outcome::Pass));
    assert_eq!(got.get(1), Some(&Outcome::Hold(SECOND / 2)));
    assert_eq!(got.get(2), Some(&Outcome::Hold(SECOND)));
    assert!(matches!(got.get(3), Some(Outcome::Refuse { .. })), "{got:?}");
}

#[test]
fn a_refusal_is_a_429_with_retry_after_and_ratelimit_fields() {
    let mut l = limiter(Settings { per_key: Some(q(0.5, 1)), global: Some(q(100.0, 100)), ..Settings::default() });
    let h = head("/", "");
    let start = Instant::now();
    let arrival = Arrival { peer: ip(2), client: ip(2), head: &h };
    assert_eq!(l.admit(&arrival, start), Admit::Pass);
    let Admit::Answer { status, headers, body } = l.admit(&arrival, start + Duration::from_millis(300)) else {
        panic!("not refused")
    };
    assert_eq!(status, 429);
    let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    // 2 s per request, 0.3 s gone: 1.7 s left, rounded up.
    assert_eq!(get("Retry-After"), Some("2"));
    assert_eq!(get("RateLimit-Policy"), Some("\"client\";q=1;w=2, \"global\";q=100;w=1"));
    assert_eq!(get("RateLimit"), Some("\"client\";r=0;t=2"));
    assert!(body.contains("client limit"), "{body}");
    let stats = l.shared_stats();
    assert!(
        stats.report().contains("2 requests checked: 1 passed at once, 0 delayed, 1 refused"),
        "{}",
        stats.report()
    );
}

#[test]
fn a_dry_run_counts_and_lets_everything_through() {
    let mut l = limiter(Settings { per_key: Some(q(1.0, 1)), dry_run: true, ..Settings::default() });
    let h = head("/", "");
    let now = Instant::now();
    for _ in 0..5 {
        assert_eq!(l.admit(&Arrival { peer: ip(2), client: ip(2), head: &h }, now), Admit::Pass);
    }
    let report = l.shared_stats().report();
    assert!(report.contains("4 let through by the dry run"), "{report}");
}

#[test]
fn paths_and_first_segments() {
    assert_eq!(path_of("/a/b?q=1"), "/a/b");
    assert_eq!(path_of("http://h:80/a#x"), "/a");
    assert_eq!(path_of("http://h"), "/");
    assert_eq!(path_of("*"), "*");
    assert_eq!(first_segment("/api/users/7"), "/api");
    assert_eq!(first_segment("/"), "/");
    assert_eq!(first_segment("/x"), "/x");
}

#[test]
fn memory_is_fixed_by_the_capacity() {
    let l = limiter(Settings { per_key: Some(q(1.0, 1)), max_keys: 1_000_000, ..Settings::default() });
    let per_key = l.memory_bytes() as f64 / 1e6;
    assert!(per_key <= 64.0, "{per_key} bytes per key");
}

#[test]
fn expecting_a_client_changes_no_decision() {
    let mut l = limiter(Settings { per_key: Some(q(1.0, 3)), ..Settings::default() });
    let h = head("/", "");
    let now = Instant::now();
    let mut passed = 0;
    for _ in 0..6 {
        // The loop calls `expect` when the client's socket is readable.
        l.expect(ip(2));
        l.expect(ip(7));
        if l.admit(&Arrival { peer: ip(2), client: ip(2), head: &h }, now) == Admit::Pass {
            passed += 1;
        }
    }
    assert_eq!(passed, 3);
    let t = l.clock.at(now);
    assert_eq!(passes(&mut l, ip(7), &h, 5, t), 3, "a client only expected was not charged");
}

#[test]
fn a_retune_keeps_the_limits_that_did_not_change_and_starts_the_others_afresh() {
    let mut l = limiter(Settings { per_key: Some(q(1.0, 2)), global: Some(q(100.0, 100)), ..Settings::default() });
    let h = head("/", "");
    assert_eq!(passes(&mut l, ip(2), &h, 5, 0), 2);
    assert_eq!(passes(&mut l, ip(3), &h, 5, 0), 2);
    // Only the global limit changes: client 2 has not been given a fresh burst.
    l.retune(&Settings { per_key: Some(q(1.0, 2)), global: Some(q(50.0, 50)), ..Settings::default() });
    assert_eq!(passes(&mut l, ip(2), &h, 5, 0), 0);
    // The client limit changes: every client starts with the new burst.
    l.retune(&Settings { per_key: Some(q(1.0, 4)), global: Some(q(50.0, 50)), ..Settings::default() });
    assert_eq!(passes(&mut l, ip(2), &h, 5, 0), 4);
    // No limit at all: everything passes.
    l.retune(&Settings::default());
    assert_eq!(passes(&mut l, ip(2), &h, 50, 0), 50);
    assert!(l.policy_names().is_empty());
}

#[test]
fn settings_posted_from_another_thread_apply_to_the_next_request_and_counts_carry_on() {
    let mut l = limiter(Settings { per_key: Some(q(1.0, 1)), ..Settings::default() });
    let stats = l.shared_stats();
    let retuner = l.retuner();
    let h = head("/", "");
    let t0 = Instant::now();
    let admit = |l: &mut RateLimiter| l.admit(&Arrival { peer: ip(2), client: ip(2), head: &h }, t0);
    assert_eq!(admit(&mut l), Admit::Pass);
    assert!(matches!(admit(&mut l), Admit::Answer { status: 429, .. }));
    std::thread::scope(|s| {
        s.spawn(|| retuner.post(Settings { per_key: Some(q(1.0, 3)), ..Settings::default() }));
    });
    // A new burst of 3, taken on the loop's next call.
    assert_eq!((0..5).filter(|_| admit(&mut l) == Admit::Pass).count(), 3);
    // Refusals before and after the reload are counted under the same limit.
    let client = stats.policies().into_iter().find(|p| p.name == "client").unwrap();
    assert_eq!(client.refused.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(stats.refused.load(std::sync::atomic::Ordering::Relaxed), 3);
    // A limit removed keeps its counts; the report still lists it.
    retuner.post(Settings::default());
    assert_eq!(admit(&mut l), Admit::Pass);
    assert!(stats.report().contains("client limit: 3 refused"), "{}", stats.report());
}
