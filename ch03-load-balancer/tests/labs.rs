//! Graded tests for the chapter 3 labs. Every test name starts with its
//! lab's id, so `cargo test -p ch03-load-balancer lab_4_2` runs one lab.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use backends::{client, spawn_many};
use ch01_fundamentals::server::spawn_server;
use ch03_load_balancer::backend::Backend;
use ch03_load_balancer::balancer::{LbConfig, LoadBalancer, Strategy, handle_client};
use ch03_load_balancer::labs::Rng;
use ch03_load_balancer::labs::lab_4_1_random_selection::RandomSelector;
use ch03_load_balancer::labs::lab_4_2_weighted_selection::WeightedSelector;

fn backends(weights: &[u32]) -> Vec<Arc<Backend>> {
    weights.iter().enumerate().map(|(i, &w)| Arc::new(Backend::new(format!("10.0.0.{i}:80"), w))).collect()
}

fn counts(picks: impl Iterator<Item = Option<usize>>, n: usize) -> Vec<usize> {
    let mut c = vec![0; n];
    for p in picks {
        c[p.expect("a backend is available")] += 1;
    }
    c
}

// ---------------------------------------------------------------- lab 4.1

#[test]
fn lab_4_1_spreads_evenly() {
    let set = backends(&[1, 1, 1]);
    let now = Instant::now();
    let s = RandomSelector::new(42);
    let c = counts((0..30_000).map(|_| s.pick(&set, now)), 3);
    for n in c {
        assert!((9_500..=10_500).contains(&n), "{n} of 30000 is not about a third");
    }
}

#[test]
fn lab_4_1_follows_the_seed_exactly() {
    let set = backends(&[1, 1, 1, 1]);
    let now = Instant::now();
    let s = RandomSelector::new(7);
    let mut rng = Rng::new(7);
    for _ in 0..100 {
        assert_eq!(s.pick(&set, now), Some(rng.below(4) as usize));
    }
}

#[test]
fn lab_4_1_never_picks_an_unavailable_backend() {
    let set = backends(&[1, 1, 1]);
    set[1].mark_down(Duration::from_secs(60));
    let now = Instant::now();
    let s = RandomSelector::new(1);
    let c = counts((0..3_000).map(|_| s.pick(&set, now)), 3);
    assert_eq!(c[1], 0);
    assert!(c[0] > 1_300 && c[2] > 1_300, "{c:?}");
    // The draw counts only available backends: replay it.
    let s = RandomSelector::new(9);
    let mut rng = Rng::new(9);
    for _ in 0..50 {
        let expected = [0, 2][rng.below(2) as usize];
        assert_eq!(s.pick(&set, now), Some(expected));
    }
}

#[test]
fn lab_4_1_none_when_nothing_is_available() {
    let set = backends(&[1, 1]);
    for b in &set {
        b.mark_down(Duration::from_secs(60));
    }
    assert_eq!(RandomSelector::new(3).pick(&set, Instant::now()), None);
    assert_eq!(RandomSelector::new(3).pick(&[], Instant::now()), None);
}

// ---------------------------------------------------------------- lab 4.2

#[test]
fn lab_4_2_shares_match_weights_exactly() {
    let set = backends(&[3, 2, 1]);
    let now = Instant::now();
    let s = WeightedSelector::new();
    assert_eq!(counts((0..600).map(|_| s.pick(&set, now)), 3), [300, 200, 100]);
    // Every window of one cycle (6 picks) holds exactly the weights.
    let s = WeightedSelector::new();
    for _ in 0..10 {
        assert_eq!(counts((0..6).map(|_| s.pick(&set, now)), 3), [3, 2, 1]);
    }
}

#[test]
fn lab_4_2_equal_weights_are_round_robin_like() {
    let set = backends(&[1, 1, 1, 1]);
    let s = WeightedSelector::new();
    assert_eq!(counts((0..400).map(|_| s.pick(&set, Instant::now())), 4), [100; 4]);
}

#[test]
fn lab_4_2_a_down_backend_gets_no_share() {
    let set = backends(&[3, 2, 1]);
    set[0].mark_down(Duration::from_secs(60));
    let now = Instant::now();
    let s = WeightedSelector::new();
    assert_eq!(counts((0..300).map(|_| s.pick(&set, now)), 3), [0, 200, 100]);
}

#[test]
fn lab_4_2_none_when_nothing_is_available() {
    let set = backends(&[2]);
    set[0].mark_down(Duration::from_secs(60));
    assert_eq!(WeightedSelector::new().pick(&set, Instant::now()), None);
}

#[test]
fn lab_4_2_the_load_balancer_sends_traffic_in_proportion() {
    let handles = spawn_many(3).unwrap();
    let backends: Vec<Backend> =
        handles.iter().zip([3, 2, 1]).map(|(h, w)| Backend::new(h.addr().to_string(), w)).collect();
    let config = LbConfig { strategy: Strategy::Select(Box::new(WeightedSelector::new())), ..LbConfig::default() };
    let lb = LoadBalancer::new(backends, config);
    let lb2 = Arc::clone(&lb);
    let server = spawn_server("127.0.0.1:0".parse().unwrap(), move |s| handle_client(s, &lb2)).unwrap();
    for _ in 0..60 {
        assert_eq!(client::get(server.addr, "/").unwrap().status, 200);
    }
    let counts: Vec<u64> = lb.backends.all().iter().map(|b| b.requests.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [30, 20, 10]);
}
