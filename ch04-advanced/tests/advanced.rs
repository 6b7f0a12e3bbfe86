//! The advanced load balancer over real sockets: algorithms end to end,
//! health checks, slow start, headers, routing, statistics.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use backends::client::{self, HttpResponse};
use backends::{BackendConfig, BackendHandle, spawn};
use ch01_fundamentals::server::{RunningServer, spawn_server};
use ch04_advanced::algorithm::{self, Kind};
use ch04_advanced::balancer::{AdvancedLb, HashKey, Options, handle_client};
use ch04_advanced::health::{HealthChecker, HealthConfig, Probe};
use ch04_advanced::node::{Backend, Pool};
use ch04_advanced::routing::{Group, Router};

fn backends(names: &[&str]) -> Vec<BackendHandle> {
    names.iter().map(|n| spawn(BackendConfig::named(*n)).unwrap()).collect()
}

fn group(name: &str, handles: &[&BackendHandle], weights: &[u32], kind: Kind, slow_start: Duration) -> Group {
    let list = handles.iter().zip(weights).map(|(h, &w)| Backend::new(h.addr().to_string(), w)).collect();
    let pool = Pool { slow_start, ..Pool::new(list) };
    let algorithm = algorithm::build(kind, &pool, &algorithm::Options::default());
    Group { name: name.into(), pool: Arc::new(pool), algorithm }
}

fn no_probes() -> Options {
    let mut o = Options::default();
    o.health.probe = Probe::Off;
    o
}

fn start(router: Router, options: Options) -> (Arc<AdvancedLb>, RunningServer) {
    let lb = AdvancedLb::new(router, options);
    let lb2 = Arc::clone(&lb);
    let server = spawn_server("127.0.0.1:0".parse().unwrap(), move |s| handle_client(s, &lb2)).unwrap();
    (lb, server)
}

fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    client::get(addr, path).unwrap()
}

/// Which backend answered, from the body "Hello from NAME (...)".
fn who(r: &HttpResponse) -> String {
    r.text().trim_start_matches("Hello from ").split(' ').next().unwrap_or("").to_string()
}

fn served(h: &BackendHandle) -> u64 {
    h.stats().requests_served.load(Ordering::SeqCst)
}

#[test]
fn smooth_weighted_round_robin_sends_exactly_300_200_100_of_600() {
    let hs = backends(&["a", "b", "c"]);
    let g = group("default", &[&hs[0], &hs[1], &hs[2]], &[3, 2, 1], Kind::Wrr, Duration::ZERO);
    let (lb, server) = start(Router::new(g), no_probes());
    let first: String = (0..6).map(|_| who(&get(server.addr, "/"))).collect::<Vec<_>>().join(" ");
    assert_eq!(first, "a b a c b a", "smooth: interleaved, not aaabbc");
    for _ in 0..594 {
        assert_eq!(get(server.addr, "/").status, 200);
    }
    assert_eq!([served(&hs[0]), served(&hs[1]), served(&hs[2])], [300, 200, 100]);
    let stats = ch04_advanced::stats::report(&lb);
    assert!(stats.contains("p99 ms") && stats.contains("600 requests"), "{stats}");
}

#[test]
fn every_algorithm_serves_through_the_balancer() {
    let hs = backends(&["a", "b", "c"]);
    for kind in [Kind::Rr, Kind::Lc, Kind::Iphash, Kind::Random, Kind::Wrandom, Kind::Hash, Kind::Sticky] {
        let g = group("default", &[&hs[0], &hs[1], &hs[2]], &[1, 1, 1], kind, Duration::ZERO);
        let pool = Arc::clone(&g.pool);
        let (_lb, server) = start(Router::new(g), no_probes());
        let names: Vec<String> = (0..30)
            .map(|_| {
                // The client has its answer a moment before the balancer's
                // thread counts the backend free again; least connections
                // would (rightly) pass over one still counted busy.
                let deadline = Instant::now() + Duration::from_secs(10);
                while pool.nodes.iter().any(|n| n.active() > 0) {
                    assert!(Instant::now() < deadline, "a backend stayed counted busy");
                    std::thread::yield_now();
                }
                who(&get(server.addr, "/"))
            })
            .collect();
        assert!(names.iter().all(|n| ["a", "b", "c"].contains(&n.as_str())), "{kind:?}: {names:?}");
        match kind {
            // One client address, no cookie kept by this client: one backend.
            Kind::Iphash | Kind::Hash => assert!(names.iter().all(|n| *n == names[0]), "{kind:?}: {names:?}"),
            Kind::Rr | Kind::Lc | Kind::Sticky => {
                for n in ["a", "b", "c"] {
                    assert_eq!(names.iter().filter(|x| *x == n).count(), 10, "{kind:?}: {names:?}");
                }
            }
            _ => assert!(["a", "b", "c"].iter().all(|n| names.contains(&n.to_string())), "{kind:?}: {names:?}"),
        }
    }
}

#[test]
fn consistent_hashing_by_path_keeps_each_path_on_one_backend() {
    let hs = backends(&["a", "b", "c"]);
    let g = group("default", &[&hs[0], &hs[1], &hs[2]], &[1, 1, 1], Kind::Hash, Duration::ZERO);
    let (_lb, server) = start(Router::new(g), Options { hash_key: HashKey::Path, ..no_probes() });
    let mut owners = std::collections::HashSet::new();
    for i in 0..30 {
        let path = format!("/objects/{i}");
        let first = who(&get(server.addr, &path));
        assert_eq!(who(&get(server.addr, &path)), first);
        owners.insert(first);
    }
    assert_eq!(owners.len(), 3, "paths spread over every backend");
}

#[test]
fn sticky_sessions_stay_put_and_a_stale_cookie_picks_again() {
    let hs = backends(&["a", "b", "c"]);
    let g = group("default", &[&hs[0], &hs[1], &hs[2]], &[1, 1, 1], Kind::Sticky, Duration::ZERO);
    let (_lb, server) = start(Router::new(g), no_probes());
    let first = get(server.addr, "/");
    let set = first.header("set-cookie").expect("a new client gets a cookie").to_string();
    assert!(set.starts_with("lbs_backend=") && set.contains("Path=/"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    for _ in 0..10 {
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: theme=dark; {cookie}\r\n\r\n");
        let r = client::send(server.addr, raw.as_bytes()).unwrap();
        assert_eq!(who(&r), who(&first), "the session stays on its backend");
        assert_eq!(r.header("set-cookie"), None, "a valid cookie is not set again");
    }
    let r = client::send(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\nCookie: lbs_backend=0000dead\r\n\r\n").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_some(), "a stale cookie is replaced");
}

#[test]
fn forwarding_headers_and_request_ids_reach_the_backend() {
    let hs = backends(&["a"]);
    let g = group("default", &[&hs[0]], &[1], Kind::Rr, Duration::ZERO);
    let (_lb, server) = start(Router::new(g), no_probes());
    let r = get(server.addr, "/echo");
    let seen = r.text();
    for h in ["X-Forwarded-For: 127.0.0.1\r\n", "X-Real-IP: 127.0.0.1\r\n", "X-Forwarded-Proto: http\r\n"] {
        assert!(seen.contains(h), "{h:?} missing in {seen}");
    }
    assert!(seen.contains(&format!("X-Forwarded-Host: {}\r\n", server.addr)), "{seen}");
    let id = r.header("x-request-id").expect("the client sees the id").to_string();
    assert_eq!(id.len(), 32);
    assert!(seen.contains(&format!("X-Request-ID: {id}\r\n")), "{seen}");
    let r = client::send(server.addr, b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Request-ID: trace-42\r\n\r\n").unwrap();
    assert_eq!(r.header("x-request-id"), Some("trace-42"));
    assert!(r.text().contains("X-Request-ID: trace-42\r\n"));
}

#[test]
fn path_prefixes_route_to_their_groups() {
    let hs = backends(&["web", "api", "static"]);
    let mut router = Router::new(group("default", &[&hs[0]], &[1], Kind::Rr, Duration::ZERO));
    router.add_route("/api/", group("/api/", &[&hs[1]], &[1], Kind::Rr, Duration::ZERO));
    router.add_route("/static/", group("/static/", &[&hs[2]], &[1], Kind::Rr, Duration::ZERO));
    let (_lb, server) = start(router, no_probes());
    assert_eq!(who(&get(server.addr, "/api/users?id=1")), "api");
    assert_eq!(who(&get(server.addr, "/static/app.css")), "static");
    assert_eq!(who(&get(server.addr, "/")), "web");
    assert_eq!(who(&get(server.addr, "/apiary")), "web");
}

#[test]
fn a_stopped_backend_is_marked_down_by_probes_skipped_and_comes_back() {
    let hs = backends(&["a", "b", "c"]);
    let b_addr = hs[1].addr();
    let g = group("default", &[&hs[0], &hs[1], &hs[2]], &[1, 1, 1], Kind::Rr, Duration::ZERO);
    let health = HealthConfig { probe: Probe::Http("/health".into()), rise: 2, fall: 3, ..HealthConfig::default() };
    let options = Options { health, ..Options::default() };
    let (lb, server) = start(Router::new(g), options.clone());
    let checker = HealthChecker::new(Arc::clone(lb.default_pool()), options.health.clone());
    let node_b = Arc::clone(&lb.default_pool().nodes[1]);

    let mut hs = hs;
    drop(hs.remove(1)); // backend b stops
    checker.run_round();
    checker.run_round();
    assert!(node_b.is_healthy(), "two failed probes are below the threshold of three");
    checker.run_round();
    assert!(!node_b.is_healthy(), "three failed probes take it down");
    let names: Vec<String> = (0..20).map(|_| who(&get(server.addr, "/"))).collect();
    assert!(!names.contains(&"b".to_string()), "{names:?}");
    assert!(names.iter().all(|n| n == "a" || n == "c"), "{names:?}");

    // b starts again on the same address.
    let _b = spawn(BackendConfig { addr: b_addr, ..BackendConfig::named("b") }).unwrap();
    checker.run_round();
    assert!(!node_b.is_healthy(), "one good probe is below the threshold of two");
    checker.run_round();
    assert!(node_b.is_healthy());
    let names: Vec<String> = (0..30).map(|_| who(&get(server.addr, "/"))).collect();
    assert_eq!(names.iter().filter(|n| *n == "b").count(), 10, "{names:?}");
}

#[test]
fn an_unhealthy_answer_takes_a_backend_out_too() {
    let hs = backends(&["a", "b"]);
    let g = group("default", &[&hs[0], &hs[1]], &[1, 1], Kind::Rr, Duration::ZERO);
    let mut options = Options::default();
    options.health.fall = 1;
    let (lb, server) = start(Router::new(g), options.clone());
    let checker = HealthChecker::new(Arc::clone(lb.default_pool()), options.health);
    hs[0].set_healthy(false); // /health answers 503 but / still works
    checker.run_round();
    assert!(!lb.default_pool().nodes[0].is_healthy());
    assert!((0..6).all(|_| who(&get(server.addr, "/")) == "b"));
}

#[test]
fn passive_checks_take_a_refusing_backend_down_after_max_fails() {
    let hs = backends(&["a", "b"]);
    let dead = {
        let h = spawn(BackendConfig::named("dead")).unwrap();
        h.addr()
    };
    let list = vec![
        Backend::new(hs[0].addr().to_string(), 1),
        Backend::new(dead.to_string(), 1),
        Backend::new(hs[1].addr().to_string(), 1),
    ];
    let pool = Pool::new(list);
    let algorithm = algorithm::build(Kind::Rr, &pool, &algorithm::Options::default());
    let g = Group { name: "default".into(), pool: Arc::new(pool), algorithm };
    let (lb, server) = start(Router::new(g), no_probes());
    for _ in 0..12 {
        assert_eq!(get(server.addr, "/").status, 200, "failover hides the dead backend from clients");
    }
    let node = &lb.default_pool().nodes[1];
    assert!(!node.is_healthy());
    assert_eq!(node.backend.failures.load(Ordering::SeqCst), 3, "down after max_fails = 3, then skipped");
}

#[test]
fn slow_start_gives_a_recovered_backend_a_small_share_at_first() {
    let hs = backends(&["a", "b"]);
    let g = group("default", &[&hs[0], &hs[1]], &[1, 1], Kind::Wrr, Duration::from_secs(3600));
    let mut options = Options::default();
    options.health.fall = 1;
    options.health.rise = 1;
    let (lb, server) = start(Router::new(g), options.clone());
    let checker = HealthChecker::new(Arc::clone(lb.default_pool()), options.health);
    hs[1].set_healthy(false);
    checker.run_round();
    hs[1].set_healthy(true);
    checker.run_round(); // b is back, ramping up over an hour
    assert!(lb.default_pool().nodes[1].is_healthy());
    let to_b = (0..100).filter(|_| who(&get(server.addr, "/")) == "b").count();
    assert!(to_b <= 2, "b got {to_b} of 100 right after recovering");
}

#[test]
fn no_healthy_backend_is_a_503_naming_the_group() {
    let dead = {
        let h = spawn(BackendConfig::named("dead")).unwrap();
        h.addr()
    };
    let pool = Pool::new(vec![Backend::new(dead.to_string(), 1)]);
    let algorithm = algorithm::build(Kind::Rr, &pool, &algorithm::Options::default());
    let g = Group { name: "default".into(), pool: Arc::new(pool), algorithm };
    let (_lb, server) = start(Router::new(g), no_probes());
    let r = get(server.addr, "/");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("group default"), "{}", r.text());
}
