//! Reload: the file read and checked again, then swapped in whole, or
//! not at all.
//!
//! A reload (SIGHUP, `POST /reload` on the admin listener, or the file
//! watcher) goes through one function, [`Reloader::reload`]:
//!
//! 1. Read and check the whole file. Any problem: nothing changes, and
//!    every problem is logged with its position.
//! 2. Compare it with the running configuration ([`compare`]). Everything
//!    can change while running but the admin listener (`metrics`), and a
//!    pool where the balancer started without one; a change of those is
//!    named and nothing is applied: half a configuration is worse than the
//!    old one whole.
//! 3. Make everything that can fail first: resolve the backends, bind the
//!    new listening socket. A failure: nothing changes.
//! 4. Publish the new backend set ([`Current::replace`]). The loop adopts
//!    it before serving its next events: requests read from then on are
//!    served by it, requests already under way finish on the set they
//!    started with, and a backend that stays keeps its health, counters and
//!    kept connections. Then post the new rate limits and pool settings
//!    to the loop's limiter and pool ([`Tuning`]), which take them at
//!    their next use, on the loop's thread.
//!
//! Every outcome is counted (`lb_config_reloads_total{result}`) and the
//! last one is shown on the admin listener with the running file's
//! generation and hash (`GET /config`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ch04_advanced::algorithm::{self, Kind};
use ch04_advanced::node::Backend;
use ch05_event_loop::lb::Config as LoopConfig;
use ch05_event_loop::lb::backends::{Current, Replacement};
use ch06_pooling::pool::PoolConfig;
use ch07_rate_limit::limiter::Settings as Limits;
use ch08_metrics::serve::Handles;

use crate::config::{self, Config};

/// What the running balancer is made of, as the file and the command line
/// together say: the part a reload can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// `host:port` and weight of each backend, in order.
    pub backends: Vec<(String, u32)>,
    /// `host:port` and limit of each backend whose requests at once are limited.
    pub max_connections: Vec<(String, u32)>,
    /// Path prefixes and the backends (`host:port`) that serve them, from the file.
    pub routes: Vec<(String, Vec<String>)>,
    /// The algorithm.
    pub kind: Kind,
    /// The sticky cookie's name.
    pub cookie_name: String,
    /// Where clients connect.
    pub listen: SocketAddr,
}

/// The settings of the loop and of its hooks, as a configuration and the
/// command line say them.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Timeouts, head limits, health checks, drain timeout.
    pub loop_config: LoopConfig,
    /// Chapter 7's limits.
    pub limits: Limits,
    /// Chapter 6's pool, or `None` for none.
    pub pool: Option<PoolConfig>,
}

/// Turns a configuration into what runs: the file's settings, overridden
/// by the command line's flags (the binary knows its flags), and the
/// settings of the loop and its hooks.
pub type Derive = Box<dyn Fn(&Config) -> Result<(Derived, Tuning), String> + Send + Sync>;

/// How one reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file says what is running already.
    Unchanged,
    /// A new backend set serves from generation `generation` on.
    Applied {
        /// The new generation.
        generation: u64,
        /// What changed: `backends`, `weights`, `max_connections`, `routes`, `algorithm`, `cookie_name`, `listen`.
        changed: Vec<&'static str>,
    },
    /// The file has problems, each `FILE:LINE:COL: message`.
    Invalid(String),
    /// The file is good, but changes settings a running balancer keeps.
    NeedsRestart(Vec<&'static str>),
    /// Applying it failed (a backend that does not resolve, an address
    /// that cannot be listened on): the running configuration stays.
    Failed(String),
}

impl Outcome {
    /// Every outcome's label, in [`Outcome::label`]'s order.
    pub const LABELS: [&'static str; 5] = ["applied", "unchanged", "invalid", "restart_needed", "failed"];

    /// The `result` label of `lb_config_reloads_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Applied { .. } => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Invalid(_) => "invalid",
            Outcome::NeedsRestart(_) => "restart_needed",
            Outcome::Failed(_) => "failed",
        }
    }

    /// One line (or more, for problems) for people.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Unchanged => "unchanged".into(),
            Outcome::Applied { generation, changed } => {
                format!("applied: generation {generation} ({} changed)", changed.join(", "))
            }
            Outcome::Invalid(problems) => format!("refused; the running configuration stays:\n{problems}"),
            Outcome::NeedsRestart(what) => {
                format!("not applied: {} cannot change while running; restart to apply", what.join(", "))
            }
            Outcome::Failed(why) => format!("not applied: {why}"),
        }
    }
}

/// How long a reload waits for every loop to serve its set: a loop takes
/// it between two rounds of events, so well within a millisecond unless
/// the machine is starved; the answer does not wait longer than this.
const SERVED_WITHIN: Duration = Duration::from_secs(1);

/// Settings a reload applies to the running balancer.
pub const LIVE: [&str; 11] = [
    "backends",
    "weights",
    "listen",
    "algorithm",
    "cookie_name",
    "routes",
    "timeouts",
    "health_check",
    "drain_timeout",
    "pool",
    "rate_limit",
];
// (`backends` covers each backend's `max_connections` too.)

// ANCHOR: compare
/// The sections of the configuration that differ between `old` and
/// `new`: `backends` (a backend added, removed or moved), `weights`, and
/// each other top-level setting by name.
pub fn compare(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let same_set = old.backends.len() == new.backends.len()
        && old
            .backends
            .iter()
            .zip(&new.backends)
            .all(|(a, b)| a.addr() == b.addr() && a.max_connections == b.max_connections);
    if !same_set {
        changed.push("backends");
    } else if old.backends.iter().zip(&new.backends).any(|(a, b)| a.weight != b.weight) {
        changed.push("weights");
    }
    let checks: [(&'static str, bool); 11] = [
        ("mode", old.mode != new.mode),
        ("listen", old.listen != new.listen),
        ("algorithm", old.algorithm != new.algorithm),
        ("cookie_name", old.cookie_name != new.cookie_name),
        ("health_check", old.health_check != new.health_check),
        ("timeouts", old.timeouts != new.timeouts),
        ("pool", old.pool != new.pool),
        ("rate_limit", old.rate_limit != new.rate_limit),
        ("routes", old.routes != new.routes),
        ("drain_timeout", old.drain_timeout != new.drain_timeout),
        ("metrics", old.metrics != new.metrics),
    ];
    changed.extend(checks.iter().filter(|(_, differs)| *differs).map(|(name, _)| *name));
    changed
}
// ANCHOR_END: compare

/// What changed between two derived states.
fn differences(old: &Derived, new: &Derived) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let addrs = |d: &Derived| d.backends.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>();
    if addrs(old) != addrs(new) {
        changed.push("backends");
    } else if old.backends != new.backends {
        changed.push("weights");
    }
    if old.max_connections != new.max_connections {
        changed.push("max_connections");
    }
    if old.routes != new.routes {
        changed.push("routes");
    }
    if old.kind != new.kind {
        changed.push("algorithm");
    }
    if old.cookie_name != new.cookie_name {
        changed.push("cookie_name");
    }
    if old.listen != new.listen {
        changed.push("listen");
    }
    changed
}

/// Sets each backend's limit of requests at once (none when not listed).
/// A new set's nodes take it just after the swap: for that moment a
/// backend new to the balancer has no limit yet.
fn limit(current: &Current, limits: &[(String, u32)]) {
    for node in &current.load().pool.nodes {
        let max = limits.iter().find(|(addr, _)| addr == node.addr()).map_or(0, |&(_, m)| m);
        node.set_max_active(u64::from(max));
    }
}

/// The configuration in use.
#[derive(Debug)]
struct Running {
    config: Config,
    derived: Derived,
    /// The limits and the pool, as applied (the flags may override the file).
    limits: Limits,
    pool: Option<PoolConfig>,
    hash: u64,
}

/// The last reload, for `GET /config`.
#[derive(Debug, Clone)]
struct Last {
    at: SystemTime,
    outcome: Outcome,
    took: Duration,
}

/// Where a reload's new backend sets go, known once the balancer runs.
#[derive(Debug)]
struct Target {
    current: Arc<Current>,
    options: algorithm::Options,
    handles: Handles,
}

// ANCHOR: reloader
/// Reloads one file into one running balancer.
pub struct Reloader {
    path: PathBuf,
    derive: Derive,
    /// One reload at a time, and what it compares with.
    running: Mutex<Running>,
    target: OnceLock<Target>,
    /// Signalled once `target` is set: a reload asked for while the
    /// balancer is still starting waits for it.
    attached: Condvar,
    wait: Mutex<()>,
    /// By [`Outcome::LABELS`].
    counts: [AtomicU64; 5],
    last: Mutex<Option<Last>>,
    /// Told of each new listening socket a reload applied.
    on_listen: OnceLock<ListenHook>,
}
// ANCHOR_END: reloader

/// Called with a second descriptor for each listening socket a reload
/// moves the balancer to (chapter 10's upgrade keeps it to hand over).
pub type ListenHook = Box<dyn Fn(std::net::TcpListener) + Send + Sync>;

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").field("path", &self.path).field("running", &self.running).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Reloader {
    /// A reloader for `path`, whose contents (hashed `hash`) were read as
    /// `config` and started the balancer.
    pub fn new(path: &Path, config: Config, hash: u64, derive: Derive) -> Result<Self, String> {
        let (derived, tuning) = derive(&config)?;
        Ok(Self {
            path: path.to_path_buf(),
            derive,
            running: Mutex::new(Running { config, derived, limits: tuning.limits, pool: tuning.pool, hash }),
            target: OnceLock::new(),
            attached: Condvar::new(),
            wait: Mutex::new(()),
            counts: Default::default(),
            last: Mutex::new(None),
            on_listen: OnceLock::new(),
        })
    }

    /// Calls `hook` with a second descriptor for each listening socket a
    /// reload moves the balancer to (once set, it stays).
    pub fn on_new_listener(&self, hook: ListenHook) {
        let _ = self.on_listen.set(hook);
    }

    /// The running balancer's backend set, the algorithm options it was
    /// started with (a reload keeps them, with the new cookie name), and
    /// where its limiter and pool take new settings.
    pub fn attach(&self, current: Arc<Current>, options: algorithm::Options, handles: Handles) {
        // What the command line could not say: the routes, into the first set.
        let routes = lock(&self.running).derived.routes.clone();
        if !routes.is_empty() {
            let running = lock(&self.running);
            let d = &running.derived;
            let amended = current.amend(Replacement {
                backends: d.backends.iter().map(|(addr, weight)| Backend::new(addr.clone(), *weight)).collect(),
                routes,
                kind: d.kind,
                options: algorithm::Options { cookie_name: d.cookie_name.clone(), ..options.clone() },
                slow_start: Duration::ZERO,
                listener: None,
                config: None,
                asked: Instant::now(),
            });
            if let Err(e) = amended {
                tracing::error!(error = %e, "the routes are not applied");
            }
        }
        {
            let _waiting = lock(&self.wait);
            let _ = self.target.set(Target { current: Arc::clone(&current), options, handles });
            self.attached.notify_all();
        }
        // After any reload that was waiting for the target: its limits are the newest.
        limit(&current, &lock(&self.running).derived.max_connections);
    }

    /// Reloads the file (see the module's text), logs and counts how it
    /// went. `asked` is when the reload was asked for.
    pub fn reload(&self, asked: Instant) -> Outcome {
        // A signal can come between the balancer's listening and its
        // attaching: wait for it first, holding nothing (attaching takes
        // the running configuration's lock).
        let target = self.target();
        let outcome = match target {
            Some(target) => {
                let mut running = lock(&self.running);
                self.attempt(target, &mut running, asked)
            }
            None => Outcome::Failed("the balancer did not finish starting".into()),
        };
        // Applied means served: the answer (and the log line) waits until
        // every loop serves the new set and listens where it says.
        if let (Some(target), Outcome::Applied { generation, .. }) = (target, &outcome) {
            if !target.current.wait_served(*generation, SERVED_WITHIN) {
                tracing::warn!(
                    generation,
                    within_ms = SERVED_WITHIN.as_millis(),
                    "not every loop serves the new set yet; it will at its next round of events"
                );
            }
        }
        let running = lock(&self.running);
        let file = self.path.display();
        match &outcome {
            Outcome::Unchanged => tracing::info!(%file, "configuration unchanged"),
            Outcome::Applied { generation, changed } => {
                let ms = asked.elapsed().as_secs_f64() * 1e3;
                tracing::info!(%file, generation, changed = changed.join(", "), backends = running.derived.backends.len(),
                    ms = format!("{ms:.2}"), "configuration reloaded");
            }
            Outcome::Invalid(problems) => {
                for problem in problems.lines() {
                    tracing::error!(problem, "configuration problem");
                }
                tracing::error!(%file, problems = problems.lines().count(), "configuration refused; the running one stays");
            }
            Outcome::NeedsRestart(what) => {
                tracing::warn!(%file, changed = what.join(", "),
                    "configuration valid, but these settings cannot change while running; restart to apply it; the running one stays");
            }
            Outcome::Failed(why) => {
                tracing::error!(%file, error = why, "configuration not applied; the running one stays");
            }
        }
        if let Some(count) = Outcome::LABELS.iter().position(|l| *l == outcome.label()).and_then(|i| self.counts.get(i))
        {
            count.fetch_add(1, Ordering::Relaxed);
        }
        *lock(&self.last) = Some(Last { at: SystemTime::now(), outcome: outcome.clone(), took: asked.elapsed() });
        outcome
    }

    // ANCHOR: attempt
    fn attempt(&self, target: &Target, running: &mut Running, asked: Instant) -> Outcome {
        let (new, hash) = match config::read(&self.path) {
            Ok(read) => read,
            Err(e) => return Outcome::Invalid(e.to_string()),
        };
        let fixed: Vec<&'static str> =
            compare(&running.config, &new).into_iter().filter(|c| !LIVE.contains(c)).collect();
        if !fixed.is_empty() {
            return Outcome::NeedsRestart(fixed);
        }
        let (derived, tuning) = match (self.derive)(&new) {
            Ok(both) => both,
            Err(e) => return Outcome::Invalid(e),
        };
        // A pool cannot be added to a loop that started without one.
        if tuning.pool.is_some() && target.handles.pool.is_none() {
            return Outcome::NeedsRestart(vec!["pool (the balancer started without one)"]);
        }
        let mut changed = differences(&running.derived, &derived);
        // The loop's settings, as the file says them (compared there).
        let loop_settings = ["timeouts", "health_check", "drain_timeout"];
        changed.extend(compare(&running.config, &new).into_iter().filter(|c| loop_settings.contains(c)));
        // The hooks' settings, as applied: flags may override the file's.
        if tuning.pool != running.pool {
            changed.push("pool");
        }
        if tuning.limits != running.limits {
            changed.push("rate_limit");
        }
        let Tuning { loop_config: settings, limits, pool } = tuning;
        if changed.is_empty() {
            // What changed in the file (if anything) the command line overrides.
            *running = Running { config: new, derived, limits, pool, hash };
            return Outcome::Unchanged;
        }
        // Everything that can fail, before anything changes.
        let listener = if derived.listen == running.derived.listen {
            None
        } else {
            match ch01_fundamentals::net::listen(derived.listen, 4096) {
                Ok(l) => Some(l),
                Err(e) => return Outcome::Failed(format!("cannot listen on {}: {e}", derived.listen)),
            }
        };
        let listener_copy = listener.as_ref().and_then(|l| l.try_clone().ok());
        let backends = derived.backends.iter().map(|(addr, weight)| Backend::new(addr.clone(), *weight)).collect();
        let options = algorithm::Options { cookie_name: derived.cookie_name.clone(), ..target.options.clone() };
        let replacement = Replacement {
            backends,
            routes: derived.routes.clone(),
            config: Some(settings),
            kind: derived.kind,
            options,
            slow_start: Duration::ZERO,
            listener,
            asked,
        };
        match target.current.replace(replacement) {
            Ok(generation) => {
                if let (Some(copy), Some(hook)) = (listener_copy, self.on_listen.get()) {
                    hook(copy);
                }
                limit(&target.current, &derived.max_connections);
                // Taken by the limiter before its next decision, by the
                // pool at its next use; posted even when unchanged, which
                // costs them one comparison.
                target.handles.limits.post(limits.clone());
                if let Some(tuner) = &target.handles.pool {
                    // No pool in the new file: keep nothing from now on.
                    let keep_nothing = PoolConfig { max_idle: 0, max_idle_total: 0, ..PoolConfig::default() };
                    tuner.post(pool.unwrap_or(keep_nothing));
                }
                *running = Running { config: new, derived, limits, pool, hash };
                Outcome::Applied { generation, changed }
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
    // ANCHOR_END: attempt

    /// Where new sets go; waits (up to 10 s) while the balancer is still
    /// starting: a signal can come between its listening and its attaching.
    fn target(&self) -> Option<&Target> {
        if let Some(t) = self.target.get() {
            return Some(t);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut guard = lock(&self.wait);
        while self.target.get().is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = self.attached.wait_timeout(guard, left).map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        self.target.get()
    }

    /// Reloads by outcome so far, by [`Outcome::LABELS`].
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        Outcome::LABELS.iter().zip(&self.counts).map(|(l, c)| (*l, c.load(Ordering::Relaxed))).collect()
    }

    /// The running configuration's generation (the backend set's) and
    /// the hash of its file's bytes.
    pub fn version(&self) -> (u64, u64) {
        let generation = self.target.get().map_or(1, |t| t.current.generation());
        (generation, lock(&self.running).hash)
    }

    /// What `GET /config` shows: the file, the generation and hash in
    /// use, the reloads by outcome, and how the last one went.
    pub fn status(&self) -> serde_json::Value {
        let (generation, hash) = self.version();
        let running = lock(&self.running);
        let backends: Vec<String> = running.derived.backends.iter().map(|(a, w)| format!("{a}:{w}")).collect();
        let counts: serde_json::Map<String, serde_json::Value> =
            self.counts().into_iter().map(|(l, n)| (l.to_string(), n.into())).collect();
        let last = lock(&self.last).clone().map(|last| {
            serde_json::json!({
                "result": last.outcome.label(),
                "detail": last.outcome.describe(),
                "ms": (last.took.as_secs_f64() * 1e6).round() / 1e3,
                "at_unix": last.at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            })
        });
        serde_json::json!({
            "file": self.path.display().to_string(),
            "pid": std::process::id(),
            "generation": generation,
            "hash": format!("{hash:016x}"),
            "listen": running.derived.listen.to_string(),
            "algorithm": clap::ValueEnum::to_possible_value(&running.derived.kind).map(|v| v.get_name().to_string()),
            "backends": backends,
            "rate_limit": running.limits.per_key.map(|q| serde_json::json!({"per_ip": q.rate, "burst": q.burst})),
            "pool": running.pool.map(|p| serde_json::json!({
                "max_size": p.max_idle,
                "ttl_ms": u64::try_from(p.idle_timeout.as_millis()).unwrap_or(u64::MAX),
            })),
            "reloads": counts,
            "last": last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, parse};

    fn yaml(text: &str) -> Config {
        parse(text, Format::Yaml, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn compare_names_each_section_that_changed() {
        let base = yaml("backends: [\"a:1:1\", \"b:2:1\"]\n");
        assert!(compare(&base, &base).is_empty());
        assert_eq!(compare(&base, &yaml("backends: [\"a:1:1\", \"b:2:5\"]\n")), vec!["weights"]);
        assert_eq!(compare(&base, &yaml("backends: [\"a:1\", \"c:3\"]\n")), vec!["backends"]);
        let moved = yaml("listen: {port: 9999}\nalgorithm: lc\nbackends: [\"a:1:1\", \"b:2:7\"]\n");
        assert_eq!(compare(&base, &moved), vec!["weights", "listen", "algorithm"]);
        let slower = yaml("timeouts: {connect: 9s}\nbackends: [\"a:1:1\", \"b:2:1\"]\n");
        assert_eq!(compare(&base, &slower), vec!["timeouts"]);
    }

    #[test]
    fn differences_between_derived_states() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let base = Derived {
            backends: vec![("a:1".into(), 1), ("b:2".into(), 1)],
            max_connections: Vec::new(),
            routes: Vec::new(),
            kind: Kind::Rr,
            cookie_name: "c".into(),
            listen,
        };
        assert!(differences(&base, &base).is_empty());
        let heavier = Derived { backends: vec![("a:1".into(), 1), ("b:2".into(), 3)], ..base.clone() };
        assert_eq!(differences(&base, &heavier), vec!["weights"]);
        let other = Derived { backends: vec![("a:1".into(), 1)], kind: Kind::Lc, ..base.clone() };
        assert_eq!(differences(&base, &other), vec!["backends", "algorithm"]);
    }

    #[test]
    fn every_outcome_has_a_label_in_the_list() {
        let all = [
            Outcome::Unchanged,
            Outcome::Applied { generation: 2, changed: vec!["weights"] },
            Outcome::Invalid("f:1:1: x".into()),
            Outcome::NeedsRestart(vec!["pool"]),
            Outcome::Failed("no".into()),
        ];
        for o in &all {
            assert!(Outcome::LABELS.contains(&o.label()), "{o:?}");
            assert!(!o.describe().is_empty());
        }
    }
}
