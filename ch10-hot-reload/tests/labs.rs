//! Graded tests for the chapter 10 labs. Every test name starts with its
//! lab's id: `cargo test -p ch10-hot-reload --no-default-features lab_14_1`
//! grades your lab 14.1 (plain `cargo test` here grades the reference).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use backends::client::{connect, get, read_response};
use backends::{BackendConfig, spawn};
use ch01_fundamentals::server::{ServerConfig, Shutdown, serve};
use ch04_advanced::algorithm::Kind;
use ch04_advanced::health::{HealthConfig, Probe};
use ch04_advanced::node::Backend;
use ch05_event_loop::lb::{Config as LbConfig, Lb, run};
use ch10_hot_reload::config::{Config, Format, parse};
use ch10_hot_reload::labs::RolloutError;
use ch10_hot_reload::labs::lab_9_swap::Swap;
use ch10_hot_reload::labs::lab_14_1_canary::{canary, switch};

/// A small deterministic generator (a 64-bit LCG), so a failure repeats.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn yaml(text: &str) -> Config {
    parse(text, Format::Yaml, Path::new("lab.yaml")).unwrap()
}

/// A configuration of `weights`, backends 10.0.0.1:9001, :9002, ...
fn weighted(weights: &[u32]) -> Config {
    let mut text = String::from("algorithm: wrr\nbackends:\n");
    for (i, w) in weights.iter().enumerate() {
        text.push_str(&format!("  - \"10.0.0.1:{}:{w}\"\n", 9001 + i));
    }
    yaml(&text)
}

/// Whether some factor k and canary weight c meet the rules (the spec's search).
fn reachable(others: &[u32], percent: u32) -> bool {
    let largest = u64::from(*others.iter().max().unwrap());
    let sum: u64 = others.iter().map(|&w| u64::from(w)).sum();
    (1..=1000 / largest).any(|k| {
        (1..=1000u64).any(|c| (100.0 * c as f64 / (c + k * sum) as f64 - f64::from(percent)).abs() <= 0.5 + 1e-9)
    })
}

/// Checks a canary result against the rules; panics with the case on a breach.
fn check_canary(config: &Config, at: usize, percent: u32, out: &Config) {
    let case = format!(
        "weights {:?}, canary #{at}, {percent} %",
        config.backends.iter().map(|b| b.weight).collect::<Vec<_>>()
    );
    assert_eq!(out.backends.len(), config.backends.len(), "{case}");
    let mut factor = None;
    let (mut c, mut sum) = (0u64, 0u64);
    for (i, (old, new)) in config.backends.iter().zip(&out.backends).enumerate() {
        assert_eq!((&old.host, old.port), (&new.host, new.port), "{case}: the backends keep their order");
        assert!((1..=1000).contains(&new.weight), "{case}: weight {} out of 1..=1000", new.weight);
        if i == at {
            c = u64::from(new.weight);
            continue;
        }
        assert_eq!(new.weight % old.weight, 0, "{case}: the others are scaled by a whole factor");
        let k = new.weight / old.weight;
        assert!(k >= 1, "{case}");
        assert_eq!(*factor.get_or_insert(k), k, "{case}: the same factor for every other backend");
        sum += u64::from(new.weight);
    }
    let share = 100.0 * c as f64 / (c + sum) as f64;
    assert!((share - f64::from(percent)).abs() <= 0.5 + 1e-9, "{case}: the canary's share is {share:.3} %");
    let mut rest_old = config.clone();
    let mut rest_new = out.clone();
    rest_old.backends.clear();
    rest_new.backends.clear();
    assert_eq!(rest_old, rest_new, "{case}: nothing else changes");
}

#[test]
fn lab_14_1_canary_takes_the_share_asked_for() {
    let config = weighted(&[1, 1]);
    let out = canary(&config, "10.0.0.1:9002", 20).unwrap();
    check_canary(&config, 1, 20, &out);
    let config = weighted(&[3, 2, 1]);
    let out = canary(&config, "10.0.0.1:9001", 50).unwrap();
    check_canary(&config, 0, 50, &out);
}

#[test]
fn lab_14_1_canary_refuses_what_cannot_be() {
    let config = weighted(&[1, 1]);
    assert_eq!(canary(&config, "10.0.0.1:9999", 10), Err(RolloutError::NotABackend));
    assert_eq!(canary(&config, "10.0.0.1:9999", 0), Err(RolloutError::NotABackend), "the backend is checked first");
    assert_eq!(canary(&config, "10.0.0.1:9001", 0), Err(RolloutError::BadPercent));
    assert_eq!(canary(&config, "10.0.0.1:9001", 100), Err(RolloutError::BadPercent));
    assert_eq!(canary(&weighted(&[4]), "10.0.0.1:9001", 10), Err(RolloutError::Alone));
    // Three backends at 1000: half the traffic would need a weight of 3000.
    assert_eq!(canary(&weighted(&[1000, 1000, 1000, 5]), "10.0.0.1:9004", 50), Err(RolloutError::OutOfRange));
}

#[test]
fn lab_14_1_canary_follows_the_rules_on_generated_configurations() {
    let mut rng = Lcg(0x14_01);
    for _ in 0..3_000 {
        let n = 1 + rng.below(5) as usize;
        let big = rng.below(4) == 0;
        let weights: Vec<u32> = (0..n).map(|_| 1 + rng.below(if big { 1000 } else { 20 }) as u32).collect();
        let config = weighted(&weights);
        let percent = rng.below(102) as u32;
        let at = rng.below(n as u64 + 1) as usize; // n: a backend that is not there
        let addr = format!("10.0.0.1:{}", 9001 + at);
        let got = canary(&config, &addr, percent);
        let others: Vec<u32> = weights.iter().enumerate().filter(|&(i, _)| i != at).map(|(_, &w)| w).collect();
        let want_err = if at >= n {
            Some(RolloutError::NotABackend)
        } else if !(1..=99).contains(&percent) {
            Some(RolloutError::BadPercent)
        } else if n == 1 {
            Some(RolloutError::Alone)
        } else if !reachable(&others, percent) {
            Some(RolloutError::OutOfRange)
        } else {
            None
        };
        match (want_err, got) {
            (Some(e), got) => assert_eq!(got, Err(e), "weights {weights:?}, canary #{at}, {percent} %"),
            (None, Ok(out)) => check_canary(&config, at, percent, &out),
            (None, Err(e)) => panic!("weights {weights:?}, canary #{at}, {percent} %: {e:?}, but it can be done"),
        }
    }
}

#[test]
fn lab_14_1_switch_keeps_the_green_set_in_order() {
    let config = weighted(&[3, 2, 1, 5]);
    let out = switch(&config, &["10.0.0.1:9004", "10.0.0.1:9002"]).unwrap();
    let kept: Vec<(u16, u32)> = out.backends.iter().map(|b| (b.port, b.weight)).collect();
    assert_eq!(kept, vec![(9002, 2), (9004, 5)], "config's order, weights kept");
    assert_eq!(out.algorithm, config.algorithm);
    assert_eq!(switch(&config, &[]), Err(RolloutError::Empty));
    assert_eq!(switch(&config, &["10.0.0.1:9001", "10.0.0.9:1"]), Err(RolloutError::NotABackend));
    assert_eq!(switch(&config, &["10.0.0.1:9001"]).unwrap().backends.len(), 1);
}

/// Chapter 5's loop over `backends` with chapter 4's smooth weighted
/// round robin, no probes; its address.
fn balancer(backends: Vec<Backend>) -> (SocketAddr, Shutdown) {
    let config =
        LbConfig { health: HealthConfig { probe: Probe::Off, ..HealthConfig::default() }, ..LbConfig::default() };
    let lb = Lb::new(backends, Kind::Wrr, config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    thread::spawn(move || run(listener, &lb, stop).unwrap());
    (addr, shutdown)
}

#[test]
fn lab_14_1_a_canary_takes_its_share_of_real_requests() {
    let handles: Vec<_> =
        ["blue-1", "blue-2", "canary"].iter().map(|n| spawn(BackendConfig::named(*n)).unwrap()).collect();
    let text = format!(
        "algorithm: wrr\nbackends:\n{}",
        handles.iter().map(|h| format!("  - \"{}:1\"\n", h.addr())).collect::<String>()
    );
    let config = yaml(&text);
    let out = canary(&config, &handles[2].addr().to_string(), 20).unwrap();
    check_canary(&config, 2, 20, &out);
    let cycle: u32 = out.backends.iter().map(|b| b.weight).sum();
    let canary_weight = out.backends[2].weight;
    let backends = out.backends.iter().map(|b| Backend::new(b.addr(), b.weight)).collect();
    let (addr, shutdown) = balancer(backends);
    let n = cycle * 10;
    let hits = (0..n).filter(|_| get(addr, "/").unwrap().text().contains("canary")).count() as u32;
    assert_eq!(
        hits,
        canary_weight * 10,
        "{n} requests, ten whole cycles of weights {:?}",
        out.backends.iter().map(|b| b.weight).collect::<Vec<_>>()
    );
    shutdown.trigger();
}

#[test]
fn lab_9_a_swap_holds_a_value_and_counts_generations() {
    let swap = Swap::new(String::from("blue"));
    assert_eq!(swap.generation(), 1);
    assert_eq!(*swap.load(), "blue");
    let held = swap.load();
    assert_eq!(swap.publish(String::from("green")), 2);
    assert_eq!(*held, "blue", "a value already loaded stays whole");
    assert_eq!(*swap.load(), "green");
    assert_eq!(swap.generation(), 2);
    let (g, v) = swap.load_with_generation();
    assert_eq!((g, v.as_str()), (2, "green"));
    assert_eq!(swap.publish(String::from("blue")), 3);
}

#[test]
fn lab_9_readers_see_whole_values_and_generations_never_go_back() {
    // Each value says which generation it should be: a mix would show.
    let swap = Arc::new(Swap::new(vec![1u64; 64]));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (swap, done) = (Arc::clone(&swap), Arc::clone(&done));
            thread::spawn(move || {
                let (mut last, mut reads) = (0, 0u64);
                while !done.load(Ordering::Relaxed) || reads < 1000 {
                    let (g, v) = swap.load_with_generation();
                    assert!(v.iter().all(|&x| x == g), "generation {g} came with a value of generation {}", v[0]);
                    assert!(g >= last, "generation went back from {last} to {g}");
                    let now = swap.generation();
                    assert!(now >= g, "generation() {now} behind a pair already seen ({g})");
                    last = g;
                    reads += 1;
                }
                // One more look, after the last publish.
                swap.load_with_generation().0
            })
        })
        .collect();
    // One writer, so it knows the generation each value will get.
    for expected in 2..=2001 {
        assert_eq!(swap.publish(vec![expected; 64]), expected);
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert_eq!(r.join().unwrap(), 2001, "every reader ends on the last value");
    }
}

#[test]
fn lab_9_writers_at_once_each_get_a_generation_of_their_own() {
    let swap = Arc::new(Swap::new(0u32));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let swap = Arc::clone(&swap);
            thread::spawn(move || (0..500).map(|_| swap.publish(w)).collect::<Vec<u64>>())
        })
        .collect();
    let mut all: Vec<u64> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (2..=2001).collect::<Vec<_>>(), "every publish got its own generation, none skipped");
    assert_eq!(swap.generation(), 2001);
}

#[test]
fn lab_9_a_real_server_reloads_a_hundred_times_under_keep_alive_clients() {
    // The "configuration" is a name; each request is answered with the
    // generation and the name it loaded, whole.
    let swap = Arc::new(Swap::new(String::from("config-1")));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let (stop, cell) = (shutdown.clone(), Arc::clone(&swap));
    let server = thread::spawn(move || {
        serve(listener, stop, ServerConfig::default(), move |stream: TcpStream| {
            let mut reader = BufReader::new(stream.try_clone()?);
            let mut writer = stream;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line != "\r\n" {
                    continue;
                }
                let (g, name) = cell.load_with_generation();
                let body = format!("{g} {name}");
                write!(writer, "HTTP/1.1 200 OK\r\nX-Gen: {g}\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
            }
        })
    });
    let done = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut conn = BufReader::new(connect(addr).unwrap());
                let (mut last, mut answers) = (0u64, 0u32);
                let mut finished = false;
                // Until the publishes are over, then once more: that answer is the last value's.
                while !finished {
                    finished = done.load(Ordering::Relaxed) && answers >= 50;
                    conn.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    let r = read_response(&mut conn, false).unwrap();
                    let g: u64 = r.header("x-gen").unwrap().parse().unwrap();
                    assert_eq!(r.text(), format!("{g} config-{g}"), "the name and the generation are one pair");
                    assert!(g >= last, "generation went back on one connection: {last} then {g}");
                    last = g;
                    answers += 1;
                }
                last
            })
        })
        .collect();
    for i in 2..=101 {
        assert_eq!(swap.publish(format!("config-{i}")), i);
        thread::yield_now();
    }
    done.store(true, Ordering::Relaxed);
    for c in clients {
        assert_eq!(c.join().unwrap(), 101, "after the last publish, every client sees it");
    }
    shutdown.trigger();
    server.join().unwrap().unwrap();
}
