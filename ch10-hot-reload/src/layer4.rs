//! Layer 4 mode (`mode: tcp`): chapter 9's relay, started from the same
//! file as the HTTP balancer and reloaded the same way.
//!
//! The loop is chapter 9's `l4::run` over chapter 5's [`Current`], the
//! backend set the HTTP loops use too. So the reload is the same in both
//! modes: the file is read and checked, a new set is published, and the
//! loop takes it before its next client; a connection under way keeps
//! the backend it has, and a backend that stays keeps its health and
//! counters. What this module adds: the health checks, which follow the
//! set in use; and what the admin listener shows of a relay (`/lb-stats`
//! and the metrics), since a relay has no requests to count.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ch01_fundamentals::server::Shutdown;
use ch04_advanced::health::{HealthChecker, Probe};
use ch04_advanced::node::Node;
use ch05_event_loop::lb::backends::{Backends, Current};
use ch05_event_loop::lb::handoff::Handoff;
use ch08_metrics::admin::Answer;
use ch08_metrics::balancer::Metrics;
use ch08_metrics::scraped::Scraped;
use ch09_zero_copy::l4::L4Stats;
use serde_json::json;

// ANCHOR: probes
/// Probes the backends of the set in use, one round every interval, on a
/// thread of its own until `shutdown`. Each round takes the newest set and
/// its health settings, so a reload that adds a backend or changes the
/// interval is followed from the next round; nodes that stay keep their
/// streaks, since they are the same nodes.
pub fn probe_current(current: Arc<Current>, shutdown: Shutdown) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("health".into()).spawn(move || {
        loop {
            let set = current.load();
            let config = set.config.health.clone();
            let interval = config.interval.max(Duration::from_millis(10));
            if config.probe != Probe::Off {
                HealthChecker::new(Arc::clone(&set.pool), config).run_round();
            }
            drop(set);
            if shutdown.wait_timeout(interval) {
                return;
            }
        }
    })
}
// ANCHOR_END: probes

// ANCHOR: shown
/// The backends a relay's figures show: those of `set`, and after them
/// any that a reload removed but that still relay connections (which go
/// on until their client or backend closes them). Without the second
/// kind an operator who removed a backend could not see when its last
/// connection ended, which is when it may be stopped. With whether each
/// is in the set.
pub fn shown(set: &Backends) -> Vec<(&Arc<Node>, bool)> {
    let mut out: Vec<(&Arc<Node>, bool)> = set.pool.nodes.iter().map(|n| (n, true)).collect();
    let removed = set.registry.nodes.iter().enumerate().filter(|(key, n)| !set.contains(*key) && n.active() > 0);
    out.extend(removed.map(|(_, n)| (n, false)));
    out
}
// ANCHOR_END: shown

/// `GET /lb-stats`: the relay's counters, each backend shown (see
/// [`shown`]) and, with several loops, each loop's connections, as JSON.
pub fn stats(current: &Current, stats: &L4Stats, handoff: &Handoff) -> Answer {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let set = current.load();
    let backends: Vec<_> = shown(&set)
        .into_iter()
        .map(|(n, in_set)| {
            json!({
                "addr": n.addr(),
                "in_set": in_set,
                "healthy": n.is_healthy(),
                "weight": n.weight(),
                "connections": get(&n.backend.requests),
                "open": n.active(),
                "failed_connects": get(&n.backend.failures),
            })
        })
        .collect();
    // One loop has no hand-off: its count is everything open.
    let loops = match handoff.loads() {
        loads if loads.is_empty() => vec![get(&stats.open) as usize],
        loads => loads,
    };
    let body = json!({
        "mode": "tcp",
        "generation": set.generation,
        "algorithm": set.algorithm.name(),
        "accepted": get(&stats.accepted),
        "open": get(&stats.open),
        "refused": get(&stats.refused),
        "failed": get(&stats.failed),
        "bytes_up": get(&stats.bytes_up),
        "bytes_down": get(&stats.bytes_down),
        "backends": backends,
        "loops": loops,
    });
    let body = serde_json::to_string_pretty(&body).unwrap_or_default() + "\n";
    Answer { status: 200, content_type: "application/json", body, allow: None, then: None }
}

// ANCHOR: export
/// The relay's counters as metrics, read when scraped: connections by
/// how they ended, those open now, bytes each way, and per backend shown
/// (see [`shown`]) its connections and those open; whether it is up, for
/// the backends of the set in use.
pub fn export(current: &Arc<Current>, stats: &Arc<L4Stats>, metrics: &Metrics) -> Result<(), String> {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
    let s = Arc::clone(stats);
    let connections = Scraped::counter(
        "lb_l4_connections_total",
        "Client connections: accepted counts every one; refused, those closed at once (over the limit, or no backend could be reached); failed, those ended by an error or the idle timeout.",
        &["outcome"],
        move |out| {
            for (label, c) in [("accepted", &s.accepted), ("refused", &s.refused), ("failed", &s.failed)] {
                out.push((vec![label.to_string()], get(c)));
            }
        },
    );
    let s = Arc::clone(stats);
    let open = Scraped::gauge("lb_l4_open_connections", "Client connections relayed now.", &[], move |out| {
        out.push((vec![], get(&s.open)));
    });
    let s = Arc::clone(stats);
    let bytes = Scraped::counter(
        "lb_l4_bytes_total",
        "Bytes relayed: up (client to backend) and down (backend to client).",
        &["direction"],
        move |out| {
            out.push((vec!["up".to_string()], get(&s.bytes_up)));
            out.push((vec!["down".to_string()], get(&s.bytes_down)));
        },
    );
    let c = Arc::clone(current);
    let per_backend = Scraped::counter(
        "lb_l4_backend_connections_total",
        "Connections sent to each backend of the set in use, and to each removed one that still relays some.",
        &["backend"],
        move |out| {
            for (n, _) in shown(&c.load()) {
                out.push((vec![n.addr().to_string()], get(&n.backend.requests)));
            }
        },
    );
    let c = Arc::clone(current);
    let per_backend_open = Scraped::gauge(
        "lb_l4_backend_open_connections",
        "Connections each backend relays now: those of the set in use, and each removed backend's until its last one ends.",
        &["backend"],
        move |out| {
            for (n, _) in shown(&c.load()) {
                out.push((vec![n.addr().to_string()], n.active() as f64));
            }
        },
    );
    let c = Arc::clone(current);
    let up = Scraped::gauge(
        "lb_backend_up",
        "1 when the backend is in rotation, 0 when health checks or failed connects took it out.",
        &["backend"],
        move |out| {
            for n in &c.load().pool.nodes {
                out.push((vec![n.addr().to_string()], if n.is_healthy() { 1.0 } else { 0.0 }));
            }
        },
    );
    for family in [connections, open, bytes, per_backend, per_backend_open, up] {
        metrics.registry.add(Arc::new(family.map_err(|e| e.to_string())?));
    }
    Ok(())
}
// ANCHOR_END: export
