//! The chapter 3 load balancer over real sockets, with real backends.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backends::client;
use backends::{BackendConfig, BackendHandle, spawn, spawn_many};
use ch01_fundamentals::server::{RunningServer, spawn_server};
use ch03_load_balancer::backend::Backend;
use ch03_load_balancer::balancer::{LbConfig, LoadBalancer, handle_client};
use ch03_load_balancer::stats::report;

fn start(backends: Vec<Backend>, config: LbConfig) -> (Arc<LoadBalancer>, RunningServer) {
    let lb = LoadBalancer::new(backends, config);
    let lb2 = Arc::clone(&lb);
    let server = spawn_server("127.0.0.1:0".parse().unwrap(), move |s| handle_client(s, &lb2)).unwrap();
    (lb, server)
}

fn over(handles: &[BackendHandle]) -> Vec<Backend> {
    handles.iter().map(|h| Backend::new(h.addr().to_string(), 1)).collect()
}

fn body(addr: SocketAddr) -> String {
    client::get(addr, "/").unwrap().text()
}

#[test]
fn round_robin_visits_the_backends_in_turn() {
    let handles = spawn_many(3).unwrap();
    let (_lb, server) = start(over(&handles), LbConfig::default());
    let answers: Vec<String> = (0..6).map(|_| body(server.addr)).collect();
    let expected: Vec<String> =
        [1, 2, 3, 1, 2, 3].iter().map(|i| format!("Hello from backend-{i} (GET /)\n")).collect();
    assert_eq!(answers, expected);
}

#[test]
fn a_refusing_backend_is_failed_over_marked_down_and_counted() {
    let handles = spawn_many(3).unwrap();
    let mut backends = over(&handles);
    let dead = {
        let h = spawn(BackendConfig::named("dead")).unwrap();
        h.addr()
    };
    backends.insert(1, Backend::new(dead.to_string(), 1));
    let (lb, server) = start(backends, LbConfig::default());
    for _ in 0..8 {
        assert_eq!(client::get(server.addr, "/").unwrap().status, 200, "every request still succeeds");
    }
    let dead_backend = &lb.backends.all()[1];
    assert!(!dead_backend.is_up());
    assert_eq!(dead_backend.failures.load(Ordering::SeqCst), 1, "skipped after the first refusal");
    assert_eq!(dead_backend.requests.load(Ordering::SeqCst), 0);
    let served: u64 = handles.iter().map(|h| h.stats().requests_served.load(Ordering::SeqCst)).sum();
    assert_eq!(served, 8);
    let text = report(&lb);
    assert!(text.contains(&format!("{dead} ")) && text.contains("DOWN"), "{text}");
    assert!(text.contains("total requests:   8"), "{text}");
}

#[test]
fn with_every_backend_down_the_answer_is_503() {
    let dead: Vec<Backend> = (0..2)
        .map(|_| {
            let h = spawn(BackendConfig::named("dead")).unwrap();
            Backend::new(h.addr().to_string(), 1)
        })
        .collect();
    let (lb, server) = start(dead, LbConfig::default());
    let r = client::get(server.addr, "/").unwrap();
    assert_eq!(r.status, 503);
    assert!(r.text().contains("no backend could be reached"), "{}", r.text());
    // Both are down now and inside their retry time: nothing is tried.
    let r = client::get(server.addr, "/").unwrap();
    assert_eq!(r.status, 503);
    assert!(r.text().contains("no backend is available"), "{}", r.text());
    assert_eq!(lb.unavailable.load(Ordering::SeqCst), 2);
}

#[test]
fn a_backend_that_comes_back_is_used_again() {
    let stable = spawn(BackendConfig::named("stable")).unwrap();
    let flaky = spawn(BackendConfig::named("flaky")).unwrap();
    let flaky_addr = flaky.addr();
    drop(flaky);
    // retry_after zero: a down backend is offered again at its next turn.
    let config = LbConfig { retry_after: Duration::ZERO, ..LbConfig::default() };
    let (lb, server) =
        start(vec![Backend::new(stable.addr().to_string(), 1), Backend::new(flaky_addr.to_string(), 1)], config);
    for _ in 0..4 {
        assert_eq!(body(server.addr), "Hello from stable (GET /)\n");
    }
    assert!(!lb.backends.all()[1].is_up());
    // The same address comes back to life.
    let _revived = spawn(BackendConfig { addr: flaky_addr, ..BackendConfig::named("flaky") }).unwrap();
    let answers: Vec<String> = (0..4).map(|_| body(server.addr)).collect();
    assert!(answers.contains(&"Hello from flaky (GET /)\n".to_string()), "{answers:?}");
    assert!(lb.backends.all()[1].is_up());
}

#[test]
fn forwarding_headers_reach_the_backend_and_bytes_are_counted() {
    let handles = spawn_many(1).unwrap();
    let (lb, server) = start(over(&handles), LbConfig::default());
    // Read to the end of the connection: the balancer has then finished
    // the exchange, counters included.
    let mut s = client::connect(server.addr).unwrap();
    std::io::Write::write_all(&mut s, b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut all = String::new();
    std::io::Read::read_to_string(&mut s, &mut all).unwrap();
    assert!(all.contains("X-Forwarded-For: 127.0.0.1\r\n"), "{all}");
    let b = &lb.backends.all()[0];
    assert!(b.bytes_out.load(Ordering::SeqCst) > 0 && b.bytes_in.load(Ordering::SeqCst) > 0);
}

#[test]
fn bad_requests_never_reach_a_backend() {
    let handles = spawn_many(1).unwrap();
    let (lb, server) = start(over(&handles), LbConfig::default());
    let r = client::send(server.addr, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(lb.backends.all()[0].requests.load(Ordering::SeqCst), 0);
}
