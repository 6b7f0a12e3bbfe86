//! The balancer's series: what `metrics_lb` exports.
//!
//! Two kinds, by where the number lives:
//!
//! - **Recorded per request**, by a [`Recorder`] that chapter 5's loop
//!   calls when each request ends (its `Observe` hook):
//!   `lb_requests_total{backend,status}` and the histogram
//!   `lb_request_duration_seconds{backend}`. A backend's series are
//!   resolved the first time it serves, then kept in a vector by the
//!   backend's key (chapter 5's, the same across reloads): after that, recording is a short scan of the few
//!   statuses the backend has answered with, one atomic add and one
//!   histogram observation.
//! - **Read at scrape time** from counters the earlier chapters keep
//!   anyway ([`Scraped`]): each backend's health, open connections,
//!   failures and bytes (chapter 4), the loop's connections (chapter 5),
//!   the pool's counters (chapter 6), the limiter's (chapter 7), and the
//!   process's own.
//!
//! The labels come from small sets the operator decides: backend
//! addresses from the command line, status codes (at most 65 values,
//! see [`status_label`], and a budget over both), limit names, pool eviction reasons. Nothing a
//! client sends (a path, a header, its address) becomes a label.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use ch05_event_loop::app::Running;
use ch05_event_loop::lb::observe::{Finished, Observe};
use ch06_pooling::pool::{Evicted, PoolStats};
use ch07_rate_limit::limiter::LimiterStats;

use crate::access::AccessLog;
use crate::family::{Family, NameError};
use crate::metric::{Counter, Histogram, latency_buckets};
use crate::process;
use crate::registry::Registry;
use crate::scraped::Scraped;

/// The `backend` label of requests no backend served (answered by the
/// balancer itself: a 429, or an error when no backend could be reached).
pub const NO_BACKEND: &str = "none";

/// Series per family at most: backends × statuses. Past it, `__other__`.
const MAX_SERIES: usize = 2_000;

/// Everything `metrics_lb` exports, shared by the loop (through a
/// [`Recorder`]) and the admin listener (which renders it).
#[derive(Debug)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `lb_requests_total{backend,status}`.
    pub requests: Arc<Family<Counter>>,
    /// `lb_request_duration_seconds{backend}`.
    pub duration: Arc<Family<Histogram>>,
    running: OnceLock<Running>,
    /// More paths for the admin listener (chapter 10's `/reload`).
    admin_routes: OnceLock<crate::admin::Routes>,
    /// How to make the admin listener's thread stop taking connections.
    admin_stop: OnceLock<crate::admin::Stop>,
    pool: OnceLock<Arc<PoolStats>>,
    limiter: OnceLock<Arc<LimiterStats>>,
    started: SystemTime,
}

// ANCHOR: status_label
/// A status code as a label value: the code for one in IANA's registry
/// (RFC 9110 and its kin: 200, 404, 503, ...), `none` when the response
/// was cut short, `other` for anything else. A backend that answers 299 or
/// 577 creates no series of its own: at most 65 values, whatever a
/// backend sends.
pub fn status_label(status: u16) -> String {
    let registered = matches!(status,
        100..=103 | 200..=208 | 226 | 300..=308 | 400..=418 | 421..=426 | 428 | 429 | 431 | 451 | 500..=508 | 510 | 511);
    match status {
        0 => "none".to_string(),
        _ if registered => status.to_string(),
        _ => "other".to_string(),
    }
}
// ANCHOR_END: status_label

impl Metrics {
    /// The families, the build's info and the process's series;
    /// `version` goes into `lb_build_info`.
    pub fn new(version: &str) -> Result<Arc<Self>, NameError> {
        let registry = Registry::new();
        let requests = registry.register(Family::new(
            "lb_requests_total",
            "Requests that ended, by the backend that served them (none: answered by the balancer) and the status the client got (none: cut short).",
            &["backend", "status"],
            MAX_SERIES,
            Counter::new,
        )?);
        let duration = registry.register(Family::new(
            "lb_request_duration_seconds",
            "Time from a request's head being read to the end of its response, by backend.",
            &["backend"],
            MAX_SERIES,
            || Histogram::new(&latency_buckets()),
        )?);
        let info = [("version", version.to_string())];
        let build = Scraped::gauge(
            "lb_build_info",
            "Always 1; the labels say which build is running.",
            &["version"],
            move |out| {
                out.push((info.iter().map(|(_, v)| v.clone()).collect(), 1.0));
            },
        )?;
        registry.add(Arc::new(build));
        let started = SystemTime::now();
        process::register(&registry, started)?;
        Ok(Arc::new(Self {
            registry,
            requests,
            duration,
            running: OnceLock::new(),
            admin_routes: OnceLock::new(),
            admin_stop: OnceLock::new(),
            pool: OnceLock::new(),
            limiter: OnceLock::new(),
            started,
        }))
    }

    /// When the program started.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// The running balancer, once [`watch_balancer`](Self::watch_balancer) saw it.
    pub fn running(&self) -> Option<&Running> {
        self.running.get()
    }

    /// Adds paths to the admin listener: `routes` is asked first about
    /// every request (set once; later calls change nothing).
    pub fn add_admin_routes(&self, routes: crate::admin::Routes) {
        let _ = self.admin_routes.set(routes);
    }

    /// The paths added to the admin listener, if any.
    pub fn admin_routes(&self) -> Option<&crate::admin::Routes> {
        self.admin_routes.get()
    }

    /// Makes the admin listener's thread take no more connections (those
    /// it took are answered). For a process that hands its admin socket
    /// to another and stops (chapter 10's upgrade): every new admin client
    /// then reaches the new process. False when there is no admin listener.
    pub fn stop_admin(&self) -> bool {
        let stopped = self.admin_stop.get().is_some_and(crate::admin::Stop::stop);
        if stopped {
            tracing::info!("admin listener: this process takes no more admin connections");
        }
        stopped
    }

    pub(crate) fn set_admin_stop(&self, stop: crate::admin::Stop) {
        let _ = self.admin_stop.set(stop);
    }

    /// The pool's counters, if the balancer has a pool.
    pub fn pool(&self) -> Option<&Arc<PoolStats>> {
        self.pool.get()
    }

    /// The limiter's counters, if the balancer has a limiter.
    pub fn limiter(&self) -> Option<&Arc<LimiterStats>> {
        self.limiter.get()
    }

    // ANCHOR: watch_balancer
    /// Exports the running balancer's own counters, read at each scrape:
    /// every backend's health, open connections, failures and bytes, and
    /// the loop's client connections. Called once (later calls change
    /// nothing).
    pub fn watch_balancer(&self, running: &Running, algorithm: &str) -> Result<(), NameError> {
        // Kept without the listening socket's second descriptor, which
        // would keep a socket open that a reload has closed.
        if self.running.set(Running { listener: None, ..running.clone() }).is_err() {
            return Ok(());
        }
        let per_backend = |name: &str, help: &str, counter: bool, read: fn(&ch04_advanced::node::Node) -> f64| {
            let current = Arc::clone(&running.current);
            // The set in use at the scrape: after a reload, its backends.
            let read = move |out: &mut Vec<(Vec<String>, f64)>| {
                for node in &current.load().pool.nodes {
                    out.push((vec![node.addr().to_string()], read(node)));
                }
            };
            if counter {
                Scraped::counter(name, help, &["backend"], read)
            } else {
                Scraped::gauge(name, help, &["backend"], read)
            }
        };
        let families = [
            per_backend("lb_backend_up", "1 if the backend is taking requests (healthy), 0 if not.", false, |n| {
                f64::from(u8::from(n.is_healthy()))
            })?,
            per_backend("lb_backend_active_connections", "Requests the backend is serving now.", false, |n| {
                n.active() as f64
            })?,
            per_backend(
                "lb_backend_failures_total",
                "Failures charged to the backend (connects, errors, timeouts).",
                true,
                |n| n.backend.failures.load(Ordering::Relaxed) as f64,
            )?,
            per_backend("lb_bytes_sent_total", "Bytes of requests (head and body) sent to the backend.", true, |n| {
                n.backend.bytes_out.load(Ordering::Relaxed) as f64
            })?,
            per_backend(
                "lb_bytes_received_total",
                "Bytes of responses (head and body) passed from the backend to clients.",
                true,
                |n| n.backend.bytes_in.load(Ordering::Relaxed) as f64,
            )?,
        ];
        for f in families {
            self.registry.add(Arc::new(f));
        }
        let stats = Arc::clone(&running.stats);
        self.registry.add(Arc::new(Scraped::gauge(
            "lb_active_connections",
            "Client connections open now.",
            &[],
            move |out| {
                out.push((vec![], stats.open.load(Ordering::Relaxed) as f64));
            },
        )?));
        let stats = Arc::clone(&running.stats);
        self.registry.add(Arc::new(Scraped::counter(
            "lb_connections_accepted_total",
            "Client connections accepted.",
            &[],
            move |out| out.push((vec![], stats.accepted.load(Ordering::Relaxed) as f64)),
        )?));
        let (started_on, started_with) = (running.addr, algorithm.to_string());
        let current = Arc::clone(&running.current);
        self.registry.add(Arc::new(Scraped::gauge(
            "lb_config_info",
            "Always 1; the labels say how the balancer is configured.",
            &["listen", "algorithm", "backends"],
            move |out| {
                // As the set in use says, after any reload.
                let set = current.load();
                let listen = current.listening().unwrap_or(started_on).to_string();
                let algorithm = clap::ValueEnum::to_possible_value(&set.kind)
                    .map_or_else(|| started_with.clone(), |v| v.get_name().to_string());
                out.push((vec![listen, algorithm, set.pool.nodes.len().to_string()], 1.0));
            },
        )?));
        Ok(())
    }
    // ANCHOR_END: watch_balancer

    /// Exports the count of access-log lines dropped because the writer
    /// fell behind.
    pub fn watch_access_log(&self, dropped: &Arc<std::sync::atomic::AtomicU64>) -> Result<(), NameError> {
        let dropped = Arc::clone(dropped);
        self.registry.add(Arc::new(Scraped::counter(
            "lb_access_log_dropped_total",
            "Access-log lines dropped because the file's writer fell behind.",
            &[],
            move |out| out.push((vec![], dropped.load(Ordering::Relaxed) as f64)),
        )?));
        Ok(())
    }

    /// Exports chapter 6's pool counters (called once).
    pub fn watch_pool(&self, stats: &Arc<PoolStats>) -> Result<(), NameError> {
        if self.pool.set(Arc::clone(stats)).is_err() {
            return Ok(());
        }
        let s = Arc::clone(stats);
        let counter = Scraped::counter(
            "lb_pool_checkouts_total",
            "Backend connections taken for requests: created (none was kept) or reused (a kept one).",
            &["result"],
            move |out| {
                let snap = s.snapshot();
                out.push((vec!["created".into()], snap.created as f64));
                out.push((vec!["reused".into()], snap.reused as f64));
            },
        )?;
        let s = Arc::clone(stats);
        let gauge =
            Scraped::gauge("lb_pool_connections", "Backend connections open now, by state.", &["state"], move |out| {
                let snap = s.snapshot();
                out.push((vec!["idle".into()], snap.idle as f64));
                out.push((vec!["in_use".into()], snap.in_use as f64));
            })?;
        let s = Arc::clone(stats);
        let evicted = Scraped::counter(
            "lb_pool_evicted_total",
            "Kept backend connections closed, by reason.",
            &["reason"],
            move |out| {
                let snap = s.snapshot();
                for (reason, n) in Evicted::ALL.iter().zip(snap.evicted) {
                    out.push((vec![reason.name().to_string()], n as f64));
                }
            },
        )?;
        for f in [counter, gauge, evicted] {
            self.registry.add(Arc::new(f));
        }
        Ok(())
    }

    /// Exports chapter 7's limiter counters (called once).
    pub fn watch_limiter(&self, stats: &Arc<LimiterStats>) -> Result<(), NameError> {
        if self.limiter.set(Arc::clone(stats)).is_err() {
            return Ok(());
        }
        let s = Arc::clone(stats);
        let decisions = Scraped::counter(
            "lb_ratelimit_decisions_total",
            "Requests the rate limiter checked, by what it decided (would_refuse: let through by a dry run).",
            &["decision"],
            move |out| {
                for (name, n) in [
                    ("passed", &s.passed),
                    ("delayed", &s.delayed),
                    ("refused", &s.refused),
                    ("would_refuse", &s.would_refuse),
                ] {
                    out.push((vec![name.to_string()], n.load(Ordering::Relaxed) as f64));
                }
            },
        )?;
        let s = Arc::clone(stats);
        let by_limit = Scraped::counter(
            "lb_ratelimit_refused_total",
            "Requests refused (or, in a dry run, that would have been), by the limit that refused them.",
            &["limit"],
            move |out| {
                for p in s.policies() {
                    out.push((vec![p.name.clone()], p.refused.load(Ordering::Relaxed) as f64));
                }
            },
        )?;
        let s = Arc::clone(stats);
        let keys = Scraped::counter(
            "lb_ratelimit_keys_total",
            "What the per-client tables did with a new key: inserted in an empty slot, reclaimed a recovered one, or charged it to the shared overflow.",
            &["event"],
            move |out| {
                for (name, n) in [("inserted", &s.inserted), ("reclaimed", &s.reclaimed), ("overflowed", &s.overflowed)]
                {
                    out.push((vec![name.to_string()], n.load(Ordering::Relaxed) as f64));
                }
            },
        )?;
        for f in [decisions, by_limit, keys] {
            self.registry.add(Arc::new(f));
        }
        Ok(())
    }
}

/// One backend's resolved series.
#[derive(Debug)]
struct Series {
    /// By status, in the order first seen: a backend answers with few.
    by_status: Vec<(u16, Arc<Counter>)>,
    duration: Option<Arc<Histogram>>,
    label: String,
}

impl Series {
    fn new(label: &str) -> Self {
        Self { by_status: Vec::new(), duration: None, label: label.to_string() }
    }

    /// Counts one request with `status`, its counter resolved in `family`
    /// the first time this backend answers with it.
    fn count(&mut self, family: &Family<Counter>, status: u16) {
        if let Some((_, counter)) = self.by_status.iter().find(|(s, _)| *s == status) {
            return counter.inc();
        }
        let counter = family.with(&[&self.label, &status_label(status)]);
        counter.inc();
        self.by_status.push((status, counter));
    }
}

// ANCHOR: recorder
/// Records each request as it ends: the loop's `Observe` hook. Lives on
/// the loop's thread; the numbers it updates are shared with the scrape.
#[derive(Debug)]
pub struct Recorder {
    metrics: Arc<Metrics>,
    /// By the backend's key, resolved on first use.
    backends: Vec<Option<Series>>,
    /// Requests no backend served.
    local: Series,
    /// Where each request is also written, if anywhere.
    access: Option<AccessLog>,
}

impl Recorder {
    /// A recorder for `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics, backends: Vec::new(), local: Series::new(NO_BACKEND), access: None }
    }

    /// Also writes every request to `log`.
    pub fn with_access_log(mut self, log: AccessLog) -> Self {
        self.access = Some(log);
        self
    }

    /// A recorder for another loop of the program (chapter 10's workers):
    /// the same metrics (its counters are the same atomics, found by
    /// their labels) and access log, with request ids of its own.
    pub fn for_worker(&self, index: usize) -> Self {
        let access = self.access.as_ref().map(|log| log.for_worker(index));
        Self { access, ..Self::new(Arc::clone(&self.metrics)) }
    }
}

impl Observe for Recorder {
    fn finished(&mut self, request: &Finished<'_>) {
        let Metrics { requests, duration, .. } = &*self.metrics;
        let series = match request.backend {
            Some((i, addr)) => {
                if self.backends.len() <= i {
                    self.backends.resize_with(i + 1, || None);
                }
                match self.backends.get_mut(i) {
                    Some(slot) => slot.get_or_insert_with(|| Series::new(addr)),
                    None => &mut self.local,
                }
            }
            None => &mut self.local,
        };
        series.count(requests, request.status);
        if request.backend.is_some() {
            let label = &series.label;
            series.duration.get_or_insert_with(|| duration.with(&[label])).observe_duration(request.timings.total);
        }
        if let Some(log) = &mut self.access {
            log.record(request);
        }
    }
}
// ANCHOR_END: recorder

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ch05_event_loop::lb::observe::{Outcome, Timings};

    use super::*;

    fn finished(backend: Option<(usize, &str)>, status: u16, ms: u64) -> Finished<'_> {
        Finished {
            peer: "127.0.0.1:5000".parse().unwrap(),
            method: "GET",
            target: "/",
            backend,
            status,
            outcome: if backend.is_some() { Outcome::Served } else { Outcome::Answered },
            bytes_up: 10,
            bytes_down: 20,
            timings: Timings { total: Duration::from_millis(ms), ..Timings::default() },
        }
    }

    #[test]
    fn requests_are_counted_by_backend_and_status() {
        let metrics = Metrics::new("0.1.0").unwrap();
        let mut r = Recorder::new(Arc::clone(&metrics));
        for _ in 0..3 {
            r.finished(&finished(Some((1, "127.0.0.1:9002")), 200, 4));
        }
        r.finished(&finished(Some((1, "127.0.0.1:9002")), 502, 30));
        r.finished(&finished(None, 429, 0));
        r.finished(&finished(Some((0, "127.0.0.1:9001")), 0, 2));
        let text = metrics.registry.render();
        for line in [
            "lb_requests_total{backend=\"127.0.0.1:9002\",status=\"200\"} 3\n",
            "lb_requests_total{backend=\"127.0.0.1:9002\",status=\"502\"} 1\n",
            "lb_requests_total{backend=\"none\",status=\"429\"} 1\n",
            "lb_requests_total{backend=\"127.0.0.1:9001\",status=\"none\"} 1\n",
            "lb_request_duration_seconds_count{backend=\"127.0.0.1:9002\"} 4\n",
            "lb_request_duration_seconds_bucket{backend=\"127.0.0.1:9002\",le=\"0.005\"} 3\n",
            "lb_build_info{version=\"0.1.0\"} 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        assert!(!text.contains("lb_request_duration_seconds_count{backend=\"none\"}"), "no latency without a backend");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }

    #[test]
    fn status_labels_are_a_small_set() {
        assert_eq!(status_label(200), "200");
        assert_eq!(status_label(0), "none");
        assert_eq!(status_label(999), "other");
        assert_eq!(status_label(42), "other");
        assert_eq!(status_label(299), "other", "unregistered codes share one value");
        assert_eq!(status_label(451), "451");
        let values: std::collections::HashSet<String> = (0..=u16::MAX).map(status_label).collect();
        assert_eq!(values.len(), 65, "63 registered codes, none and other");
    }
}
