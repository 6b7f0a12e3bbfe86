//! The exchange: the client's bytes read as a head and a body, the
//! backend's as a head (checked and edited) and a body, and the two ways an
//! exchange ends: a complete response, or an error answered with a status.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ch02_proxy::http::{Framing, HeadScan, RequestHead, Version, parse_request, parse_response, remove_hop_by_hop};
use ch02_proxy::proxy::{Fault, error_response, prepare_upstream_request};
use ch04_advanced::headers::{client_ip, cookie};
use ch04_advanced::health::record_request;
use socket2::SockRef;

use super::buffer::split;
use super::sockets::read_some;
use super::{Conn, Flow, Request, Response, State, Upstream};
use crate::framing::BodyTracker;
use crate::lb::admit::{Arrival, Verdict, answer_bytes};
use crate::lb::observe::{Finished, Outcome, Timings};
use crate::lb::reuse::persistence;
use crate::lb::{Reactor, Stats};

impl Reactor<'_> {
    /// Reads what the client sent, as far as the state wants it.
    pub(super) fn read_client(&mut self, c: &mut Conn, now: Instant) -> Flow {
        let limits = self.cur.config.limits;
        let buffer = self.cur.config.buffer_size;
        let scratch = &mut self.scratch;
        let result = match &mut c.state {
            State::Head { .. } => {
                let room = (limits.max_head_bytes + 1).saturating_sub(c.from_client.len());
                let from = &mut c.from_client;
                read_some(&mut c.client, scratch, room, |b| {
                    from.push(b);
                    Ok(())
                })
            }
            State::Held { req, .. }
            | State::Queued { req }
            | State::Connecting { req, .. }
            | State::Exchange { req, .. } => {
                // Body bytes go up (bounded by the buffer); once the body is
                // complete, what comes is the next request (bounded like a head).
                let room = if req.body.is_done() {
                    (limits.max_head_bytes + 1).saturating_sub(c.from_client.len())
                } else {
                    buffer.saturating_sub(c.to_upstream.len())
                };
                let (up, rest) = (&mut c.to_upstream, &mut c.from_client);
                read_some(&mut c.client, scratch, room, |b| {
                    let n = req.body.feed(b).map_err(|why| (400, why))?;
                    let (body, next) = split(b, n);
                    up.push(body);
                    req.bytes_up += n as u64;
                    // Bytes after the body are the next request: keep them.
                    rest.push(next);
                    Ok(())
                })
            }
            State::Closing { .. } => {
                // Lingering: read and drop what the client still sends.
                read_some(&mut c.client, scratch, 64 * 1024, |_| Ok(()))
            }
        };
        match result {
            Err(e) => {
                tracing::debug!(peer = %c.peer, error = %e, "client connection failed");
                Flow::Close
            }
            Ok(Err((status, why))) => {
                self.fail(c, status, &format!("malformed request body: {why}"));
                Flow::Go
            }
            Ok(Ok(got)) => {
                if got.bytes > 0 {
                    c.last_active = now;
                }
                if got.eof {
                    // A half-close: the client has sent everything it will
                    // send. Requests already received are still answered.
                    c.client_eof = true;
                    if c.state.request().is_some_and(|r| !r.body.is_done()) {
                        tracing::debug!(peer = %c.peer, "client closed in the middle of a request body");
                        return Flow::Close;
                    }
                }
                Flow::Go
            }
        }
    }

    /// Parses the head in `from_client`; a complete one starts the request.
    /// Returns whether anything changed.
    pub(super) fn parse_head(&mut self, i: usize, c: &mut Conn, now: Instant) -> bool {
        let limits = &self.cur.config.limits;
        let (mut head, len) = match parse_request(c.from_client.bytes(), limits) {
            Ok(Some(parsed)) => parsed,
            Ok(None) if c.from_client.len() >= limits.max_head_bytes => {
                self.fail(c, 431, &format!("header section larger than {} bytes", limits.max_head_bytes));
                return true;
            }
            Ok(None) => return false,
            Err(e) => {
                let status = e.status().unwrap_or(400);
                self.fail(c, status, &e.to_string());
                return true;
            }
        };
        c.from_client.consume(len);
        Stats::add(&self.lb.stats.requests, 1);
        // Shutting down: this is the connection's last request.
        let keep_alive = head.version == Version::Http11
            && !head.headers.has_token("connection", "close")
            && !self.shutdown.is_triggered();
        // The client behind our trusted proxies, before we add ourselves.
        let client = client_ip(c.peer.ip(), &head.headers, &self.cur.config.trusted_proxies);
        // ANCHOR: admit
        // May it reach a backend at all? (Chapter 7's rate limiter.)
        let mut hold_until = None;
        if let Some(admission) = self.admission.as_deref_mut() {
            let arrival = Arrival { peer: c.peer.ip(), client, head: &head };
            match admission.admit(&arrival, now) {
                Verdict::Pass => {}
                Verdict::Hold(wait) => hold_until = Some(now + wait),
                Verdict::Answer { status, headers, body } => {
                    let keep = keep_alive && head.framing == Framing::Empty;
                    self.answer_locally(c, &head, keep, (status, &headers, &body), now);
                    return true;
                }
            }
        }
        // ANCHOR_END: admit
        if let Err(e) = prepare_upstream_request(&mut head, c.peer.ip(), "http") {
            self.fail(c, e.status.unwrap_or(400), &e.detail);
            return true;
        }
        // We answer `Expect: 100-continue` ourselves, as chapter 2 does.
        if head.headers.has_token("expect", "100-continue") && head.framing != Framing::Empty {
            c.to_client.push(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        head.headers.remove("expect");
        let backends = Arc::clone(&self.cur);
        let route = backends.route(&head.target);
        let group = backends.group(route);
        let cookie_value =
            group.algorithm.cookie_name().and_then(|name| cookie(&head.headers, name)).map(str::to_string);
        let tried = vec![false; group.pool.nodes.len()];
        let mut req = Box::new(Request {
            method: head.method.clone(),
            target: head.target.clone(),
            body: BodyTracker::new(head.framing),
            keep_alive,
            started: now,
            tried,
            backends,
            route,
            replay: None,
            last_error: None,
            fresh_only: false,
            client,
            key: client.to_string(),
            cookie: cookie_value,
            set_cookie: None,
            bytes_up: 0,
            bytes_down: 0,
            connected: None,
            first_byte: None,
        });
        if head.headers.get("host").is_none() {
            head.headers.set("Host", "backend");
        }
        // ANCHOR: persistent_request
        if self.reuse.is_some() {
            // The connection to the backend outlives this request: HTTP/1.1
            // persists unless someone says close.
            head.headers.remove("connection");
        }
        let bytes = head.to_bytes();
        // ANCHOR_END: persistent_request
        req.bytes_up = bytes.len() as u64;
        c.to_upstream.push(&bytes);
        if head.is_idempotent() && head.framing == Framing::Empty {
            req.replay = Some(bytes);
        }
        // Body bytes that came with the head go up too; bytes after the
        // body stay for the next request.
        let rest = c.from_client.take_all();
        match req.body.feed(&rest) {
            Ok(n) => {
                let (body, next) = split(&rest, n);
                c.to_upstream.push(body);
                req.bytes_up += n as u64;
                c.from_client.push(next);
            }
            Err(why) => {
                self.fail_with(c, Some(req), None, false, 400, &format!("malformed request body: {why}"));
                return true;
            }
        }
        // The state leaves Head: Held (its turn comes later), or
        // Connecting, Queued, or Closing with an error.
        match hold_until {
            Some(until) => {
                c.state = State::Held { req, until };
                c.since = now;
            }
            None => self.connect_next(i, c, req, now),
        }
        true
    }

    /// Answers a request ourselves (the admission hook said so): the
    /// connection goes on to the next request when `keep` allows, as
    /// after any complete response. A request with a body is answered
    /// and the connection closed: its body is never read as a request.
    fn answer_locally(
        &mut self,
        c: &mut Conn,
        head: &RequestHead,
        keep: bool,
        (status, headers, body): (u16, &[(&'static str, String)], &str),
        now: Instant,
    ) {
        let keep = keep && !(c.client_eof && c.from_client.is_empty());
        c.to_client.push(&answer_bytes(status, headers, body, keep));
        tracing::debug!(peer = %c.peer, method = %head.method, target = %head.target, status, "answered without a backend");
        if let Some(observe) = self.observe.as_deref_mut() {
            observe.finished(&Finished {
                peer: c.peer,
                method: &head.method,
                target: &head.target,
                backend: None,
                status,
                outcome: Outcome::Answered,
                bytes_up: 0,
                bytes_down: 0,
                timings: Timings::default(),
            });
        }
        c.served += 1;
        c.since = now;
        c.state = if keep { State::Head { scan: HeadScan::default() } } else { State::Closing { shut_down: false } };
    }

    /// Reads the backend's answer: first its head (checked, edited), then
    /// its body, as far as the client's buffer has room.
    pub(super) fn read_upstream(&mut self, i: usize, c: &mut Conn, now: Instant) {
        let limits = self.cur.config.limits;
        let buffer = self.cur.config.buffer_size;
        let State::Exchange { req, up, response, .. } = &mut c.state else { return };
        let scratch = &mut self.scratch;
        let result = match response {
            Response::Head { bytes: head } => {
                let room = (limits.max_head_bytes + 1).saturating_sub(head.len());
                let first_byte = &mut req.first_byte;
                read_some(&mut up.stream, scratch, room, |b| {
                    if !b.is_empty() {
                        first_byte.get_or_insert(now);
                    }
                    head.extend_from_slice(b);
                    Ok(())
                })
            }
            Response::Body { body, .. } => {
                let room = buffer.saturating_sub(c.to_client.len());
                let (to_client, down) = (&mut c.to_client, &mut req.bytes_down);
                read_some(&mut up.stream, scratch, room, |b| {
                    let n = body.feed(b).map_err(|why| (502, why))?;
                    to_client.push(split(b, n).0);
                    *down += n as u64;
                    Ok(())
                })
            }
        };
        let got = match result {
            Ok(Ok(got)) => got,
            Ok(Err((_, why))) => {
                self.fail(c, 502, &format!("the backend sent a malformed body: {why}"));
                return;
            }
            Err(e) => {
                self.connection_lost(i, c, &format!("reading from the backend failed: {e}"), now);
                return;
            }
        };
        if got.bytes > 0 {
            c.last_active = now;
        }
        if got.eof {
            up.eof = true;
        }
        if let Response::Head { .. } = response {
            self.parse_response_head(i, c, got.eof, now);
        }
        let State::Exchange { req, up, response: Response::Body { body, done, .. }, .. } = &mut c.state else {
            return;
        };
        if !*done {
            if body.is_done() {
                *done = true;
            } else if up.eof {
                if !body.until_close() {
                    // Cut short: the head is out, so all we can do is end
                    // the connection, which tells the client.
                    tracing::warn!(peer = %c.peer, target = %req.target, "response body cut short by the backend");
                    req.keep_alive = false;
                }
                *done = true;
            }
        }
    }

    /// Turns the backend's response head, once complete, into ours.
    fn parse_response_head(&mut self, i: usize, c: &mut Conn, eof: bool, now: Instant) {
        let limits = self.cur.config.limits;
        let State::Exchange { req, response, .. } = &mut c.state else { return };
        let Response::Head { bytes: so_far } = response else { return };
        loop {
            let parsed = match parse_response(so_far, &limits, &req.method) {
                Ok(Some(parsed)) => parsed,
                Ok(None) if eof && so_far.is_empty() => {
                    return self.connection_lost(i, c, "the backend closed the connection without answering", now);
                }
                Ok(None) if eof => {
                    return self.fail(c, 502, "the backend closed the connection in the middle of a head");
                }
                Ok(None) if so_far.len() > limits.max_head_bytes => {
                    return self.fail(c, 502, "the backend's response head is too large");
                }
                Ok(None) => return,
                Err(e) => return self.fail(c, 502, &format!("the backend sent an invalid response: {e}")),
            };
            let (mut head, len) = parsed;
            let rest = so_far.split_off(len);
            if (100..200).contains(&head.status) {
                // 100 Continue and friends: the real response follows.
                *so_far = rest;
                continue;
            }
            // ANCHOR: persist
            // Read before the hop-by-hop headers go: they are about our
            // connection to the backend, which may carry the next request.
            let persist = persistence(&head);
            remove_hop_by_hop(&mut head.headers);
            // ANCHOR_END: persist
            // Keep the client's connection only when the response has an
            // end of its own, the whole request went up (a backend may
            // answer early; the rest of the body must not be read as the
            // next request), and the client has not left.
            // And not when shutting down: the answer tells the client so.
            if head.framing == Framing::UntilClose
                || !req.body.is_done()
                || (c.client_eof && c.from_client.is_empty())
                || self.shutdown.is_triggered()
            {
                req.keep_alive = false;
            }
            head.headers.set("Connection", if req.keep_alive { "keep-alive" } else { "close" });
            if let Some(value) = &req.set_cookie {
                head.headers.push("Set-Cookie", value.clone());
            }
            if self.cur.config.generation_header {
                head.headers.set("X-LB-Config-Gen", req.backends.generation.to_string());
            }
            let bytes = head.to_bytes();
            req.bytes_down = bytes.len() as u64;
            c.to_client.push(&bytes);
            let mut body = BodyTracker::new(head.framing);
            let fed = body.feed(&rest);
            // From here on the response has started: an error can only cut it short.
            *response = Response::Body { body, status: head.status, done: false, persist };
            match fed {
                Ok(n) => {
                    c.to_client.push(split(&rest, n).0);
                    req.bytes_down += n as u64;
                }
                Err(why) => return self.fail(c, 502, &format!("the backend sent a malformed body: {why}")),
            }
            return;
        }
    }

    /// The response is complete and sent: log, count, and wait for the
    /// next request or close.
    pub(super) fn end_exchange(&mut self, c: &mut Conn, now: Instant) {
        let (req, up, response) = match c.take_state() {
            State::Exchange { req, up, response, .. } => (req, up, response),
            other => {
                c.state = other;
                return;
            }
        };
        let (status, persist) = match response {
            Response::Body { status, persist, .. } => (status, persist),
            Response::Head { .. } => (0, Err("no response")),
        };
        let node = self.node(up.key);
        let latency = now.saturating_duration_since(req.started);
        node.latency.record(latency);
        req.backends.group(req.route).algorithm.on_response(up.index, latency);
        node.backend.bytes_out.fetch_add(req.bytes_up, Ordering::Relaxed);
        node.backend.bytes_in.fetch_add(req.bytes_down, Ordering::Relaxed);
        record_request(node, true, &self.cur.config.health, now);
        let mut up = up;
        // ANCHOR: reusable
        // May the backend connection carry another request? Only if the
        // backend says so, has not closed it, and both messages ended
        // exactly where their framing said (a backend that answered before
        // the whole request body arrived would read the rest as a request).
        let reusable = match persist {
            Ok(_) if up.eof => Err("the backend closed the connection"),
            Ok(_) if !req.body.is_done() || !c.to_upstream.is_empty() => Err("the request body was not all sent"),
            Ok(promise) => {
                up.served += 1;
                up.promise = promise;
                Ok(())
            }
            Err(why) => Err(why),
        };
        if (self.reuse.is_none() || reusable.is_err()) && !up.eof {
            // Closing (chapter 5 always does; with a pool, when the
            // connection cannot be kept). The backend has not closed yet, so closing now would make
            // us the side that closes first, and that side keeps the
            // connection in TIME_WAIT for a minute. A load balancer
            // opening thousands of connections a second to one backend
            // would soon hold all ~28,000 local ports that way, and
            // connect() would fail with EADDRNOTAVAIL. The response is
            // complete, so end with a reset instead: no TIME_WAIT.
            let _ = SockRef::from(&up.stream).set_linger(Some(Duration::ZERO));
        }
        // ANCHOR_END: reusable
        tracing::info!(peer = %c.peer, method = %req.method, target = %req.target, backend = %node.addr(),
            status, ms = latency.as_millis() as u64, "request");
        self.observed(c, &req, Some(up.key), status, Outcome::Served, now);
        self.release_upstream(up, reusable);
        c.served += 1;
        c.to_upstream.clear();
        c.since = now;
        if req.keep_alive && !(c.client_eof && c.from_client.is_empty()) {
            c.state = State::Head { scan: HeadScan::default() };
            c.to_upstream.shrink();
            c.to_client.shrink();
            c.from_client.shrink();
        } else {
            c.state = State::Closing { shut_down: false };
        }
    }

    // ANCHOR: observed
    /// Tells the observer (chapter 8's metrics), if any, how `req` ended.
    fn observed(&mut self, c: &Conn, req: &Request, node: Option<usize>, status: u16, outcome: Outcome, now: Instant) {
        let Some(observe) = self.observe.as_deref_mut() else { return };
        let registry = &self.cur.registry;
        observe.finished(&Finished {
            peer: c.peer,
            method: &req.method,
            target: &req.target,
            backend: node.and_then(|key| Some((key, registry.nodes.get(key)?.addr()))),
            status,
            outcome,
            bytes_up: req.bytes_up,
            bytes_down: req.bytes_down,
            timings: req.timings(now),
        });
    }
    // ANCHOR_END: observed

    /// [`observed`](Self::observed) for a head refused before it parsed.
    fn observed_unparsed(&mut self, c: &Conn, status: u16) {
        let Some(observe) = self.observe.as_deref_mut() else { return };
        observe.finished(&Finished {
            peer: c.peer,
            method: "-",
            target: "-",
            backend: None,
            status,
            outcome: Outcome::Failed,
            bytes_up: 0,
            bytes_down: 0,
            timings: Timings::default(),
        });
    }

    /// Answers the client with an error (when nothing of a response has
    /// been sent yet) and ends the connection.
    pub(super) fn fail(&mut self, c: &mut Conn, status: u16, detail: &str) {
        let (req, up, started_response) = match c.take_state() {
            State::Held { req, .. } | State::Queued { req } => (Some(req), None, false),
            State::Connecting { req, up } => (Some(req), Some(up), false),
            State::Exchange { req, up, response, .. } => {
                let started = response.started();
                (Some(req), Some(up), started)
            }
            State::Head { .. } | State::Closing { .. } => (None, None, false),
        };
        self.fail_with(c, req, up, started_response, status, detail);
    }

    /// [`fail`](Self::fail) for a state already taken apart: the request
    /// (for the log), the backend (charged when the failure is its fault)
    /// and whether the response had started.
    pub(super) fn fail_with(
        &mut self,
        c: &mut Conn,
        req: Option<Box<Request>>,
        up: Option<Upstream>,
        started_response: bool,
        status: u16,
        detail: &str,
    ) {
        let method = req.as_ref().map_or("-", |r| r.method.as_str());
        let target = req.as_ref().map_or("-", |r| r.target.as_str());
        let served_by = up.as_ref().map(|up| up.key);
        if let Some(up) = up {
            // The backend's failures count against it (passive health);
            // the rule is chapter 2's `Fault`, the same in every balancer.
            if Fault::of_status(status) == Fault::Backend {
                let node = self.node(up.key);
                node.backend.failures.fetch_add(1, Ordering::Relaxed);
                record_request(node, false, &self.cur.config.health, Instant::now());
                let failed = up.key;
                self.release_upstream(up, Err("the exchange failed"));
                self.check_node_health(failed);
            } else {
                self.release_upstream(up, Err("the exchange failed"));
            }
        }
        c.to_upstream.clear();
        c.state = State::Closing { shut_down: false };
        let now = Instant::now();
        c.since = now;
        let seen = if started_response { 0 } else { status };
        match &req {
            Some(req) => self.observed(c, req, served_by, seen, Outcome::Failed, now),
            None => self.observed_unparsed(c, seen),
        }
        if started_response {
            tracing::warn!(peer = %c.peer, %method, %target, error = detail, "response cut short");
            // The client sees the connection end early; that is all we can say.
            c.to_client.clear();
            c.client_eof = true;
            return;
        }
        Stats::add(&self.lb.stats.errors, 1);
        tracing::warn!(peer = %c.peer, %method, %target, status, error = detail, "request failed");
        c.to_client.clear();
        c.to_client.push(&error_response(status, detail));
    }
}
