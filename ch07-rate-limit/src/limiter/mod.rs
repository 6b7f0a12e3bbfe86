//! `rate_limited_lb`'s limiter: which limits apply to a request, checked
//! together, and what the client is told. It is chapter 5's
//! [`Admission`] hook, so the loop asks it about every request before a
//! backend is picked.
//!
//! Up to three limits apply to a request, each a GCRA state ([`Gcra`]: 8
//! bytes per key, integer arithmetic, and nginx's delay for free):
//!
//! - the **route** limit of the longest `--rate-route` prefix the path
//!   starts with, per key;
//! - the **client** limit (`--rate`), per key;
//! - the **global** limit (`--rate-global`), one state for everyone.
//!
//! A request is charged to all of them only if all allow it (as nginx
//! does with several `limit_req`): a request refused by the global limit
//! does not also use up its client's allowance.

mod log;
mod response;
mod stats;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ch02_proxy::http::RequestHead;
use ch05_event_loop::lb::admit::{Admission, Arrival, Verdict as Admit};
use ch05_event_loop::lb::mailbox::{Mailbox, Reader};

use crate::algorithm::{Algorithm, Decision, Gcra, Verdict};
use crate::clock::{MonotonicClock, Nanos, nanos};
use crate::keyed::{Charge, Key, KeyHasher, Keyed};
use crate::quota::Quota;
pub use log::{LimitLog, Line};
pub use response::{limit_item, policy_item, retry_after_secs};
pub use stats::{LimiterStats, PolicyStats};

/// What identifies a client for the per-key limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBy {
    /// The address the connection comes from (the default).
    Ip,
    /// The client behind our trusted proxies (`--trusted-proxy`), read
    /// from `X-Forwarded-For` from the right.
    Xff,
    /// A header's value (an API key, say); a request without it is keyed
    /// by its address, so leaving the header out does not escape the limit.
    Header(String),
    /// The route: the matching `--rate-route` prefix, or the path's first
    /// segment. Every client of a route shares one allowance.
    Route,
}

/// Refuse what is over the limit, or hold it until its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// 429 at once (nginx's `nodelay`).
    #[default]
    Reject,
    /// Within the burst, wait (nginx without `nodelay`); beyond it, 429.
    Delay,
}

/// A limit on requests whose path starts with `prefix`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteLimit {
    /// The path prefix (`/api`).
    pub prefix: String,
    /// Its quota, per key.
    pub quota: Quota,
}

/// Everything the limiter is told at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Per key (`--rate`, `--burst`), if any.
    pub per_key: Option<Quota>,
    /// For everyone together (`--rate-global`), if any.
    pub global: Option<Quota>,
    /// Per route and key (`--rate-route`).
    pub routes: Vec<RouteLimit>,
    /// What a key is.
    pub key: KeyBy,
    /// Refuse or delay.
    pub mode: Mode,
    /// Count what would be limited, limit nothing.
    pub dry_run: bool,
    /// Keys each per-key table holds (memory is fixed by this).
    pub max_keys: usize,
    /// How often refusals are summed up in the log.
    pub log_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            per_key: None,
            global: None,
            routes: Vec::new(),
            key: KeyBy::Ip,
            mode: Mode::Reject,
            dry_run: false,
            max_keys: 100_000,
            log_interval: Duration::from_secs(10),
        }
    }
}

/// Where a policy keeps its state.
#[derive(Debug)]
enum Store {
    /// One state for everyone (the global limit).
    One(Nanos),
    /// One state per key.
    Keyed(Keyed<Gcra>),
}

#[derive(Debug)]
struct Policy {
    /// The name clients see in `RateLimit-Policy` and the log shows.
    name: String,
    quota: Quota,
    algorithm: Gcra,
    store: Store,
    /// The route prefix, for route policies.
    prefix: Option<String>,
    /// Its refusals, counted.
    stats: Arc<PolicyStats>,
}

impl Policy {
    fn new(
        name: String,
        quota: Quota,
        mode: Mode,
        keyed: Option<usize>,
        prefix: Option<String>,
        stats: &LimiterStats,
    ) -> Self {
        let algorithm = match mode {
            Mode::Reject => Gcra::new(quota),
            Mode::Delay => Gcra::delaying(quota, 0),
        };
        let store = match keyed {
            Some(capacity) => Store::Keyed(Keyed::new(algorithm, capacity)),
            None => Store::One(algorithm.fresh()),
        };
        let stats = stats.policy(&name);
        Self { name, quota, algorithm, store, prefix, stats }
    }

    fn check(&mut self, key: Key, now: Nanos, charge: Charge) -> Decision {
        match &mut self.store {
            Store::Keyed(table) => table.check(key, now, charge),
            Store::One(state) => crate::keyed::decide(&self.algorithm, state, now, charge),
        }
    }
}

/// What the limiter decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// On to a backend.
    Pass,
    /// On to a backend after this long.
    Hold(Nanos),
    /// Refused by the policy at this index, for this long.
    Refuse {
        /// The policy that refused (an index into [`RateLimiter::policy_names`]).
        policy: usize,
        /// Until a retry would be allowed.
        wait: Nanos,
        /// The policies that applied, as `RateLimit-Policy` items.
        applied: Vec<usize>,
        /// The request's key.
        key: Key,
    },
}

/// The limits of `rate_limited_lb`, checked for every request.
#[derive(Debug)]
pub struct RateLimiter {
    policies: Vec<Policy>,
    /// Index of the client policy, and of the global one.
    client: Option<usize>,
    global: Option<usize>,
    /// Route policies, longest prefix first.
    routes: Vec<usize>,
    key_by: KeyBy,
    dry_run: bool,
    hasher: KeyHasher,
    clock: MonotonicClock,
    log: LimitLog,
    log_interval: Duration,
    stats: Arc<LimiterStats>,
    /// What made it, to compare a reload's settings with.
    settings: Settings,
    /// New settings posted by a reload (chapter 10), taken by the loop.
    retune: Option<(Arc<Mailbox<Settings>>, Reader<Settings>)>,
}

impl RateLimiter {
    /// A limiter for `settings`, its tables allocated now.
    pub fn new(settings: &Settings) -> Self {
        Self::counting_into(settings, Arc::new(LimiterStats::default()))
    }

    /// A limiter for `settings` whose counts go to `stats`.
    fn counting_into(settings: &Settings, stats: Arc<LimiterStats>) -> Self {
        let mut policies = Vec::new();
        let per_key = Some(settings.max_keys);
        let mut routes: Vec<&RouteLimit> = settings.routes.iter().collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        let mut route_ids = Vec::new();
        for r in routes {
            route_ids.push(policies.len());
            let name = format!("route {}", r.prefix);
            policies.push(Policy::new(name, r.quota, settings.mode, per_key, Some(r.prefix.clone()), &stats));
        }
        let client = settings.per_key.map(|q| {
            policies.push(Policy::new("client".into(), q, settings.mode, per_key, None, &stats));
            policies.len() - 1
        });
        let global = settings.global.map(|q| {
            policies.push(Policy::new("global".into(), q, settings.mode, None, None, &stats));
            policies.len() - 1
        });
        Self {
            policies,
            client,
            global,
            routes: route_ids,
            key_by: settings.key.clone(),
            dry_run: settings.dry_run,
            hasher: KeyHasher::new(),
            clock: MonotonicClock::new(),
            log: LimitLog::new(nanos(settings.log_interval)),
            log_interval: settings.log_interval,
            stats,
            settings: settings.clone(),
            retune: None,
        }
    }

    // ANCHOR: retune
    /// Where another thread posts new settings (chapter 10's reload). The
    /// limiter takes them before it decides about the next request.
    pub fn retuner(&mut self) -> Arc<Mailbox<Settings>> {
        let (mailbox, _) = self.retune.get_or_insert_with(|| {
            let mailbox = Mailbox::shared();
            let reader = mailbox.reader();
            (mailbox, reader)
        });
        Arc::clone(mailbox)
    }

    /// Becomes the limiter `settings` describe. A limit that is the same
    /// before and after (name, quota, mode, table size) keeps its state, so
    /// a reload that changes another limit does not hand every client a
    /// fresh burst; a changed limit starts empty, as at start-up. The
    /// clock and the key hasher stay: kept states are measured on them.
    pub fn retune(&mut self, settings: &Settings) {
        if *settings == self.settings {
            return;
        }
        self.flush_log();
        let mut next = Self::counting_into(settings, Arc::clone(&self.stats));
        let same_tables = settings.mode == self.settings.mode && settings.max_keys == self.settings.max_keys;
        if same_tables {
            for policy in &mut next.policies {
                let old = self.policies.iter_mut().find(|o| o.name == policy.name && o.quota == policy.quota);
                if let Some(old) = old {
                    std::mem::swap(&mut policy.store, &mut old.store);
                }
            }
        }
        next.clock = self.clock;
        next.hasher = std::mem::take(&mut self.hasher);
        next.retune = self.retune.take();
        *self = next;
        let limits = self.describe();
        tracing::info!(
            limits = if limits.is_empty() { "none".to_string() } else { limits.join("; ") },
            "rate limits changed"
        );
    }
    // ANCHOR_END: retune

    /// The counters, shared with the thread that prints reports.
    pub fn shared_stats(&self) -> Arc<LimiterStats> {
        Arc::clone(&self.stats)
    }

    /// Bytes held by the per-key tables (fixed at start-up).
    pub fn memory_bytes(&self) -> usize {
        self.policies.iter().map(|p| if let Store::Keyed(t) = &p.store { t.memory_bytes() } else { 0 }).sum()
    }

    /// One line per limit, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        let key = match &self.key_by {
            KeyBy::Ip => "per client address".to_string(),
            KeyBy::Xff => "per client (X-Forwarded-For from trusted proxies)".to_string(),
            KeyBy::Header(h) => format!("per {h} header (address when absent)"),
            KeyBy::Route => "per route".to_string(),
        };
        self.policies
            .iter()
            .map(|p| {
                let scope = if matches!(p.store, Store::One(_)) { "for everyone together" } else { key.as_str() };
                format!("{}: {} {scope}", p.name, p.quota)
            })
            .collect()
    }

    // ANCHOR: decide
    /// Decides about a request at `now`: which limits apply, whether all
    /// allow it, and if so charges them all.
    pub fn decide(&mut self, peer: IpAddr, client: IpAddr, head: &RequestHead, now: Nanos) -> Outcome {
        let path = path_of(&head.target);
        let route = self.routes.iter().copied().find(|&i| {
            self.policies.get(i).and_then(|p| p.prefix.as_deref()).is_some_and(|prefix| path.starts_with(prefix))
        });
        let key = self.key(peer, client, head, path, route);
        // At most three limits apply: a fixed array, no allocation per request.
        let mut applied = [0; 3];
        let mut n = 0;
        for i in [route, self.client, self.global].into_iter().flatten() {
            if let Some(slot) = applied.get_mut(n) {
                *slot = i;
                n += 1;
            }
        }
        let Some((&last, first)) = applied.get(..n).and_then(<[usize]>::split_last) else { return Outcome::Pass };
        // Ask all but the last; charge the last; then charge the others.
        // Nothing is charged unless every limit allows the request.
        let mut hold = 0;
        for &i in first.iter().chain(std::iter::once(&last)) {
            let charge = if i == last { Charge::Yes } else { Charge::No };
            let Some(policy) = self.policies.get_mut(i) else { continue };
            let decision = policy.check(key, now, charge);
            match decision.verdict {
                Verdict::Allow => {}
                Verdict::Delay(wait) => hold = hold.max(wait),
                Verdict::Deny(wait) => {
                    let applied = first.iter().chain(std::iter::once(&last)).copied().collect();
                    return Outcome::Refuse { policy: i, wait, applied, key };
                }
            }
        }
        for &i in first {
            if let Some(policy) = self.policies.get_mut(i) {
                policy.check(key, now, Charge::Yes);
            }
        }
        if hold > 0 { Outcome::Hold(hold) } else { Outcome::Pass }
    }
    // ANCHOR_END: decide

    /// The key of a request, as `--rate-key` says.
    fn key(&self, peer: IpAddr, client: IpAddr, head: &RequestHead, path: &str, route: Option<usize>) -> Key {
        match &self.key_by {
            KeyBy::Ip => Key::ip(peer),
            KeyBy::Xff => Key::ip(client),
            KeyBy::Header(name) => match head.headers.get(name) {
                Some(value) => self.hasher.key(value),
                None => Key::ip(peer),
            },
            KeyBy::Route => match route.and_then(|i| self.policies.get(i)).and_then(|p| p.prefix.as_deref()) {
                Some(prefix) => self.hasher.key(prefix.as_bytes()),
                None => self.hasher.key(first_segment(path).as_bytes()),
            },
        }
    }

    /// Prints what the log has to say at `now` (or everything, at exit).
    fn emit(lines: Vec<Line>, interval: Duration, dry_run: bool) {
        let (limited, refused) = if dry_run {
            ("would rate limit", "would have been refused (dry run: let through)")
        } else {
            ("rate limited", "refused")
        };
        let secs = interval.as_secs();
        for line in lines {
            match line {
                Line::First { label } => tracing::warn!(
                    "{limited} {label} (further refusals of this key are counted, and summed up within {secs}s)"
                ),
                Line::More { label, count } => tracing::warn!("{limited} {label}: {count} more {refused} since"),
                Line::Others { count } => tracing::warn!("{limited} {count} more requests from other keys: {refused}"),
            }
        }
    }

    /// The log's last summary (at exit).
    pub fn flush_log(&mut self) {
        let interval = self.log_interval();
        Self::emit(self.log.flush(), interval, self.dry_run);
    }

    fn log_interval(&self) -> Duration {
        self.log_interval
    }

    /// Names of the policies, in index order.
    pub fn policy_names(&self) -> Vec<&str> {
        self.policies.iter().map(|p| p.name.as_str()).collect()
    }

    /// The 429 for a refusal: `Retry-After`, `RateLimit-Policy` listing
    /// every limit that applied, `RateLimit` for the one that refused.
    pub fn refusal(&self, policy: usize, wait: Nanos, applied: &[usize]) -> Admit {
        let secs = retry_after_secs(wait);
        let items: Vec<String> =
            applied.iter().filter_map(|&i| self.policies.get(i)).map(|q| policy_item(&q.name, &q.quota)).collect();
        let mut headers = vec![("Retry-After", secs.to_string())];
        // (The policy always exists: its index came from `decide`.)
        let body = match self.policies.get(policy) {
            Some(p) => {
                headers.push(("RateLimit-Policy", items.join(", ")));
                headers.push(("RateLimit", limit_item(&p.name, 0, secs)));
                format!("429 Too Many Requests: over the {} limit of {}; retry after {secs} s\n", p.name, p.quota)
            }
            None => format!("429 Too Many Requests: retry after {secs} s\n"),
        };
        Admit::Answer { status: 429, headers, body }
    }
}

impl Admission for RateLimiter {
    fn admit(&mut self, arrival: &Arrival<'_>, now: Instant) -> Admit {
        if let Some(settings) = self.retune.as_mut().and_then(|(_, reader)| reader.take()) {
            self.retune(&settings);
        }
        let t = self.clock.at(now);
        let interval = self.log_interval();
        Self::emit(self.log.tick(t), interval, self.dry_run);
        let Arrival { peer, client, head } = *arrival;
        let outcome = self.decide(peer, client, head, t);
        self.stats.record(&outcome, self.dry_run);
        if let Outcome::Refuse { policy, .. } = &outcome
            && let Some(p) = self.policies.get(*policy)
        {
            p.stats.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.stats.tables(self.policies.iter().filter_map(|p| match &p.store {
            Store::Keyed(t) => Some(t.stats()),
            Store::One(_) => None,
        }));
        match outcome {
            Outcome::Pass => Admit::Pass,
            Outcome::Hold(_) if self.dry_run => Admit::Pass,
            Outcome::Hold(wait) => Admit::Hold(Duration::from_nanos(wait)),
            Outcome::Refuse { policy, wait, applied, key } => {
                let (policies, key_by, routes) = (&self.policies, &self.key_by, &self.routes);
                let lines = self.log.refused(policy, key, t, || {
                    let name = policies.get(policy).map_or("", |p| p.name.as_str());
                    let path = path_of(&head.target);
                    let route = routes
                        .iter()
                        .filter_map(|&i| policies.get(i)?.prefix.as_deref())
                        .find(|prefix| path.starts_with(prefix));
                    format!("{} by the {name} limit", label(key_by, peer, client, head, route))
                });
                Self::emit(lines, interval, self.dry_run);
                if self.dry_run { Admit::Pass } else { self.refusal(policy, wait, &applied) }
            }
        }
    }

    // ANCHOR: expect
    fn expect(&mut self, peer: IpAddr) {
        // Only a key known before the head is read can be fetched early:
        // the client's address (the default). The per-client table is
        // the big one; a global limit is one state, always in cache.
        if self.key_by == KeyBy::Ip
            && let Some(Policy { store: Store::Keyed(table), .. }) = self.client.and_then(|i| self.policies.get(i))
        {
            table.prefetch(Key::ip(peer));
        }
    }
    // ANCHOR_END: expect

    fn stopped(&mut self) {
        self.flush_log();
    }
}

/// The key as the log names it (only built for a key's first refusal).
fn label(key_by: &KeyBy, peer: IpAddr, client: IpAddr, head: &RequestHead, route: Option<&str>) -> String {
    match key_by {
        KeyBy::Ip => peer.to_string(),
        KeyBy::Xff => client.to_string(),
        KeyBy::Header(name) => match head.headers.get(name) {
            // A header value is the client's bytes: escaped and cut short.
            Some(v) => format!("{name}: {}", v.escape_ascii().to_string().chars().take(64).collect::<String>()),
            None => peer.to_string(),
        },
        // The route the key was made from: the matching prefix, or the
        // path's first segment.
        KeyBy::Route => route.unwrap_or_else(|| first_segment(path_of(&head.target))).escape_default().to_string(),
    }
}

/// The path of a request target: `/a/b` of `/a/b?q` or
/// `http://host/a/b?q`; `/` when there is none.
pub fn path_of(target: &str) -> &str {
    let rest = match target.split_once("://") {
        Some((_, after)) => after.find('/').and_then(|i| after.get(i..)).unwrap_or("/"),
        None => target,
    };
    rest.split(['?', '#']).next().unwrap_or("/")
}

/// `/api` of `/api/users/7`; `/` of `/`.
fn first_segment(path: &str) -> &str {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    match trimmed.find('/') {
        Some(i) => path.get(..i + 1).unwrap_or(path),
        None => path,
    }
}

#[cfg(test)]
mod tests;
