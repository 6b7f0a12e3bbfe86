//! Choosing a backend and moving on from one that fails: failover across
//! refused connects, the retry of a request the backend dropped, and the
//! line of requests waiting for a file descriptor to connect with.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::sync::atomic::Ordering;
use std::time::Instant;

use ch04_advanced::algorithm::{Context, pick_untried};
use ch04_advanced::health::record_request;

use super::sockets::{connect_result, start_connect};
use super::{Conn, Request, Response, State, Upstream};
use crate::lb::{Reactor, Token};
use crate::poller::{Interest, Trigger};

impl Reactor<'_> {
    // ANCHOR: failover
    /// Connects to the next backend the algorithm picks among those not
    /// tried yet, for `req` (which the state no longer holds). A refusal
    /// (at once or later) tries the next one: nothing has been sent, so
    /// any request may be retried.
    pub(super) fn connect_next(&mut self, i: usize, c: &mut Conn, mut req: Request, now: Instant) {
        let pool = &self.lb.pool;
        loop {
            let ctx = Context { client_ip: req.client, key: &req.key, cookie: req.cookie.as_deref(), now };
            let Some(node) = pick_untried(self.lb.algorithm.as_ref(), pool, &ctx, &req.tried) else {
                // A retry that found nobody left: the client hears the
                // backend's failure that started it.
                if let Some((status, detail)) = req.last_error.take() {
                    return self.fail_with(c, Some(req), None, false, status, &detail);
                }
                let tried: Vec<&str> =
                    pool.nodes.iter().zip(&req.tried).filter(|&(_, &t)| t).map(|(n, _)| n.addr()).collect();
                let detail = if tried.is_empty() {
                    "no healthy backend".to_string()
                } else {
                    format!("no backend could be reached (tried {})", tried.join(", "))
                };
                // Every backend refused: 503, as every balancer answers
                // (each refusal was charged to its backend already).
                return self.fail_with(c, Some(req), None, false, 503, &detail);
            };
            let (Some(seen), Some(&addr), Some(n)) =
                (req.tried.get_mut(node), self.lb.addrs.get(node), pool.nodes.get(node))
            else {
                let detail = "the algorithm picked a backend that does not exist";
                return self.fail_with(c, Some(req), None, false, 500, detail);
            };
            *seen = true;
            match start_connect(addr) {
                Ok(stream) => {
                    let token = Token::Upstream(i).encode();
                    if let Err(e) = self.poller.register(&stream, token, Interest::WRITABLE, Trigger::Level) {
                        let detail = format!("cannot watch the backend socket: {e}");
                        return self.fail_with(c, Some(req), None, false, 500, &detail);
                    }
                    n.backend.requests.fetch_add(1, Ordering::Relaxed);
                    n.backend.active.fetch_add(1, Ordering::Relaxed);
                    let sticky = self.lb.algorithm.cookie_name();
                    req.set_cookie = match sticky {
                        Some(name) if req.cookie.as_deref() != Some(n.id.as_str()) => {
                            Some(format!("{name}={}; Path=/; HttpOnly", n.id))
                        }
                        _ => None,
                    };
                    let up = Upstream { stream, node, eof: false, interest: Interest::WRITABLE };
                    c.state = State::Connecting { req, up };
                    c.since = now;
                    return;
                }
                Err(e) if ch01_fundamentals::net::is_out_of_descriptors(&e) => {
                    // Every descriptor is in use: wait in line until one
                    // is released (`drop_upstream`), up to the connect timeout.
                    if let Some(seen) = req.tried.get_mut(node) {
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
                    // Our shortage (ports, descriptors, memory), not the
                    // backend's fault: no passive-health mark against it.
                    let detail = format!("cannot open a connection to a backend: {e}");
                    return self.fail_with(c, Some(req), None, false, 503, &detail);
                }
                Err(e) => self.connect_failed(node, &e.to_string()),
            }
        }
    }

    /// Counts a failed connect against the node (passive health).
    pub(super) fn connect_failed(&mut self, node: usize, why: &str) {
        let n = self.lb.node(node);
        tracing::debug!(backend = %n.addr(), error = why, "connect failed; trying the next backend");
        n.backend.failures.fetch_add(1, Ordering::Relaxed);
        record_request(n, false, &self.lb.config.health, Instant::now());
    }

    /// The connect finished (writable): did it work?
    pub(super) fn finish_connect(&mut self, i: usize, c: &mut Conn, now: Instant) {
        let (req, up) = match c.take_state() {
            State::Connecting { req, up } => (req, up),
            other => {
                c.state = other;
                return;
            }
        };
        match connect_result(&up.stream) {
            Ok(()) => {
                let response = Response::Head { bytes: Vec::new() };
                c.state = State::Exchange { req, up, sent_at: None, response };
                c.since = now;
                c.last_active = now;
            }
            Err(e) => {
                let node = up.node;
                self.drop_upstream(up);
                self.connect_failed(node, &e.to_string());
                self.connect_next(i, c, req, now);
            }
        }
    }
    // ANCHOR_END: failover

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
        let node = self.lb.node(up.node);
        node.backend.failures.fetch_add(1, Ordering::Relaxed);
        record_request(node, false, &self.lb.config.health, now);
        tracing::info!(peer = %c.peer, backend = %node.addr(), error = detail, "no response; retrying on another backend");
        self.drop_upstream(up);
        self.connect_next(i, c, req, now);
    }
    // ANCHOR_END: retry

    /// Stops watching an upstream socket and closes it.
    pub(super) fn drop_upstream(&mut self, up: Upstream) {
        let _ = self.poller.deregister(&up.stream);
        self.lb.node(up.node).backend.active.fetch_sub(1, Ordering::Relaxed);
        drop(up); // closes the socket: one descriptor free
        self.resume_one_waiting();
    }

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
