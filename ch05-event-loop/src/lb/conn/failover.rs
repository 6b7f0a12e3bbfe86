//! Choosing a backend and moving on from one that fails: failover across
//! refused connects, the retry of a request the backend dropped, and the
//! line of requests waiting for a file descriptor to connect with.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ch04_advanced::algorithm::{Context, pick_untried};
use ch04_advanced::health::record_request;

use super::sockets::{connect_result, start_connect};
use super::{Conn, Request, Response, State, Upstream};
use crate::lb::{Reactor, Stats, Token, Uplink};
use crate::poller::{Interest, Trigger};

impl Reactor<'_> {
    // ANCHOR: failover
    /// Connects to the next backend the algorithm picks among those not
    /// tried yet, for `req` (which the state no longer holds). A refusal
    /// (at once or later) tries the next one: nothing has been sent, so
    /// any request may be retried.
    pub(super) fn connect_next(&mut self, i: usize, c: &mut Conn, mut req: Box<Request>, now: Instant) {
        let backends = Arc::clone(&req.backends);
        let group = backends.group(req.route);
        let pool = group.pool;
        loop {
            let ctx = Context { client_ip: req.client, key: &req.key, cookie: req.cookie.as_deref(), now };
            let Some(index) = pick_untried(group.algorithm, pool, &ctx, &req.tried) else {
                // A retry that found nobody left: the client hears the
                // backend's failure that started it.
                if let Some((status, detail)) = req.last_error.take() {
                    return self.fail_with(c, Some(req), None, false, status, &detail);
                }
                let tried: Vec<&str> =
                    pool.nodes.iter().zip(&req.tried).filter(|&(_, &t)| t).map(|(n, _)| n.addr()).collect();
                let detail = if tried.is_empty() && pool.nodes.iter().any(|n| n.is_full()) {
                    "every backend that is up serves as many requests as its max_connections allows".to_string()
                } else if tried.is_empty() {
                    "no healthy backend".to_string()
                } else {
                    format!("no backend could be reached (tried {})", tried.join(", "))
                };
                // Every backend refused: 503, as every balancer answers
                // (each refusal was charged to its backend already).
                return self.fail_with(c, Some(req), None, false, 503, &detail);
            };
            let (Some(seen), Some(key), Some(n)) = (req.tried.get_mut(index), group.key(index), pool.nodes.get(index))
            else {
                let detail = "the algorithm picked a backend that does not exist";
                return self.fail_with(c, Some(req), None, false, 500, detail);
            };
            let Some(addr) = backends.addr(key) else {
                return self.fail_with(c, Some(req), None, false, 500, "a backend without an address");
            };
            *seen = true;
            let sticky = group.algorithm.cookie_name();
            req.set_cookie = match sticky {
                Some(name) if req.cookie.as_deref() != Some(n.id.as_str()) => {
                    Some(format!("{name}={}; Path=/; HttpOnly", n.id))
                }
                _ => None,
            };
            // Its place is taken in one atomic step: another loop (chapter
            // 10's workers) may have taken the last one since the pick.
            if !n.try_begin() {
                continue;
            }
            // A kept connection skips the handshake: straight to the exchange.
            if !req.fresh_only
                && let Some(up) = self.take_kept(i, (key, index), now)
            {
                n.backend.requests.fetch_add(1, Ordering::Relaxed);
                let response = Response::Head { bytes: Vec::new() };
                req.connected = Some(now);
                c.state = State::Exchange { req, up, sent_at: None, response };
                c.since = now;
                c.last_active = now;
                return;
            }
            match start_connect(addr) {
                Ok(stream) => {
                    let slot = self.uplinks.insert(Uplink::Conn(i));
                    let token = Token::Upstream(slot).encode();
                    if let Err(e) = self.poller.register(&stream, token, Interest::WRITABLE, Trigger::Level) {
                        self.uplinks.remove(slot);
                        n.backend.active.fetch_sub(1, Ordering::Relaxed);
                        let detail = format!("cannot watch the backend socket: {e}");
                        return self.fail_with(c, Some(req), None, false, 500, &detail);
                    }
                    n.backend.requests.fetch_add(1, Ordering::Relaxed);
                    self.note_opened(key);
                    c.state = State::Connecting { req, up: Upstream::fresh(stream, (key, index), slot) };
                    c.since = now;
                    return;
                }
                Err(e) if ch01_fundamentals::net::is_out_of_descriptors(&e) => {
                    n.backend.active.fetch_sub(1, Ordering::Relaxed);
                    // Every descriptor is in use: wait in line until one
                    // is released (`release_upstream`), up to the connect timeout.
                    if let Some(seen) = req.tried.get_mut(index) {
                        *seen = false;
                    }
                    tracing::debug!(peer = %c.peer, waiting = self.waiting.len() + 1,
                        "all descriptors in use; the request waits in line");
                    c.state = State::Queued { req };
                    c.since = now;
                    self.waiting.push_back(i);
                    return;
                }
                Err(e) if ch01_fundamentals::net::is_local_shortage(&e) => {
                    n.backend.active.fetch_sub(1, Ordering::Relaxed);
                    // Our shortage (ports, descriptors, memory), not the
                    // backend's fault: no passive-health mark against it.
                    let detail = format!("cannot open a connection to a backend: {e}");
                    return self.fail_with(c, Some(req), None, false, 503, &detail);
                }
                Err(e) => {
                    n.backend.active.fetch_sub(1, Ordering::Relaxed);
                    self.connect_failed(key, &e.to_string());
                }
            }
        }
    }

    /// Counts a failed connect against the node filed under `key` (passive health).
    pub(super) fn connect_failed(&mut self, key: usize, why: &str) {
        let n = self.node(key);
        tracing::debug!(backend = %n.addr(), error = why, "connect failed; trying the next backend");
        n.backend.failures.fetch_add(1, Ordering::Relaxed);
        record_request(n, false, &self.cur.config.health, Instant::now());
        self.check_node_health(key);
    }

    /// The connect finished (writable): did it work?
    pub(super) fn finish_connect(&mut self, i: usize, c: &mut Conn, now: Instant) {
        let (mut req, up) = match c.take_state() {
            State::Connecting { req, up } => (req, up),
            other => {
                c.state = other;
                return;
            }
        };
        match connect_result(&up.stream) {
            Ok(()) => {
                let response = Response::Head { bytes: Vec::new() };
                req.connected = Some(now);
                c.state = State::Exchange { req, up, sent_at: None, response };
                c.since = now;
                c.last_active = now;
            }
            Err(e) => {
                let key = up.key;
                self.release_upstream(up, Err("the connect failed"));
                self.connect_failed(key, &e.to_string());
                self.connect_next(i, c, req, now);
            }
        }
    }
    // ANCHOR_END: failover

    // ANCHOR: stale
    /// The backend's connection failed (reset, closed, a write refused)
    /// before any byte of the response arrived.
    ///
    /// On a connection kept from an earlier request this is the race every
    /// pool lives with: the backend closed it, idle, just as we sent. The
    /// backend is not at fault, and the request goes again, once, on a
    /// freshly opened connection, when that cannot do harm: when not one
    /// byte of it left (any method), or when it may be retried anyway
    /// (idempotent, no body). A POST whose bytes went out is never sent
    /// twice: the backend may have acted on it.
    pub(super) fn connection_lost(&mut self, i: usize, c: &mut Conn, detail: &str, now: Instant) {
        let (mut req, up) = match c.take_state() {
            State::Exchange { req, up, response, .. }
                if response.nothing_received()
                    && up.was_kept()
                    && !req.fresh_only
                    && (up.sent == 0 || req.replay.is_some()) =>
            {
                (req, up)
            }
            // The same race, but the request's bytes left and it may not be
            // sent twice (a POST): 502. The backend only closed an idle
            // connection, as it may: not charged against its health.
            State::Exchange { req, up, response, .. } if response.nothing_received() && up.was_kept() => {
                self.release_upstream(up, Err("closed by the backend while carrying a request"));
                return self.fail_with(c, Some(req), None, false, 502, detail);
            }
            other => {
                c.state = other;
                return self.retry_or_fail(i, c, 502, detail, now);
            }
        };
        if up.sent > 0 {
            c.to_upstream.clear();
            if let Some(replay) = &req.replay {
                c.to_upstream.push(replay);
            }
        }
        Stats::add(&self.lb.stats.stale_retries, 1);
        tracing::debug!(peer = %c.peer, backend = %self.node(up.key).addr(), error = detail, served = up.served,
            "a kept backend connection was closed under the request; sending it on a fresh one");
        if let Some(seen) = req.tried.get_mut(up.index) {
            *seen = false;
        }
        req.fresh_only = true;
        self.release_upstream(up, Err("closed by the backend while carrying a request"));
        self.connect_next(i, c, req, now);
    }
    // ANCHOR_END: stale

    // ANCHOR: retry
    /// The backend failed before any byte of its response arrived. The
    /// retry rule (chapter 2's `ProxyError::may_retry`): an idempotent
    /// request without a body goes to the next untried backend, the failed
    /// one charged; anything else is answered with `status`.
    pub(super) fn retry_or_fail(&mut self, i: usize, c: &mut Conn, status: u16, detail: &str, now: Instant) {
        let (mut req, up) = match c.take_state() {
            State::Exchange { req, up, response, .. } if response.nothing_received() && req.replay.is_some() => {
                (req, up)
            }
            other => {
                c.state = other;
                return self.fail(c, status, detail);
            }
        };
        c.to_upstream.clear();
        if let Some(replay) = &req.replay {
            c.to_upstream.push(replay);
        }
        req.last_error = Some((status, detail.to_string()));
        let node = self.node(up.key);
        node.backend.failures.fetch_add(1, Ordering::Relaxed);
        record_request(node, false, &self.cur.config.health, now);
        tracing::info!(peer = %c.peer, backend = %node.addr(), error = detail, "no response; retrying on another backend");
        let failed = up.key;
        self.release_upstream(up, Err("the backend failed the request"));
        self.check_node_health(failed);
        self.connect_next(i, c, req, now);
    }
    // ANCHOR_END: retry

    /// Gives a freed descriptor to the request that has waited longest.
    pub(super) fn resume_one_waiting(&mut self) {
        while let Some(i) = self.waiting.pop_front() {
            // The connection in hand is out of the table (`take` says None);
            // a closed one is gone. Either way, try the next in line.
            let Some(mut c) = self.conns.take(i) else { continue };
            let req = match c.take_state() {
                State::Queued { req } => req,
                other => {
                    c.state = other;
                    self.conns.put(i, c);
                    continue;
                }
            };
            let now = Instant::now();
            let queued_since = c.since;
            self.connect_next(i, &mut c, req, now);
            if matches!(c.state, State::Queued { .. }) {
                // Still no descriptor: back in line, its wait counted
                // from when it first queued.
                c.since = queued_since;
            }
            self.sync(i, &mut c, now);
            self.conns.put(i, c);
            return;
        }
    }
}
