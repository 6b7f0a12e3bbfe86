//! One timer per connection: its deadline follows from its state, and
//! when it passes, the state says what that means.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use ch02_proxy::proxy::error_response;

use super::{Conn, Flow, Ready, Response, State};
use crate::lb::{Due, Reactor, Stats};

/// After an error response, how long we wait for the client to take it.
const LINGER: Duration = Duration::from_secs(2);

impl Conn {
    /// The current phase's deadline.
    fn deadline(&self, r: &Reactor<'_>) -> Instant {
        let cfg = &r.cur.config;
        let phase = self.phase_deadline(r);
        // A client that stops taking what we send it, whatever the phase.
        match (cfg.write_timeout, self.client_stalled_since) {
            (Some(limit), Some(since)) => phase.min(since + limit),
            _ => phase,
        }
    }

    /// The current phase's own deadline.
    fn phase_deadline(&self, r: &Reactor<'_>) -> Instant {
        let cfg = &r.cur.config;
        match &self.state {
            State::Head { .. } => self.since + cfg.limits.header_timeout,
            State::Held { until, .. } => *until,
            State::Queued { .. } | State::Connecting { .. } => self.since + cfg.timeouts.connect,
            // The whole request is up: the backend has this long to start answering.
            State::Exchange { response: Response::Head { .. }, sent_at: Some(at), .. } => *at + cfg.timeouts.response,
            // A body is moving (either way): each byte restarts the clock.
            State::Exchange { .. } => self.last_active + cfg.timeouts.idle,
            State::Closing { .. } => self.since + LINGER,
        }
    }
}

impl Reactor<'_> {
    // ANCHOR: timers
    /// Makes sure a timer fires no later than the connection's deadline.
    /// An earlier timer is kept: when it fires, the deadline is checked
    /// again and the timer re-armed. So a busy connection does not cancel
    /// and re-insert a timer on every read (lazy re-arming).
    pub(super) fn arm_conn(&mut self, i: usize, c: &mut Conn, _now: Instant) {
        let want = c.deadline(self);
        match c.timer {
            Some((_, at)) if at <= want => {}
            Some((id, _)) => {
                self.timers.cancel(id);
                c.timer = Some((self.timers.insert(want, Due::Conn(i)), want));
            }
            None => c.timer = Some((self.timers.insert(want, Due::Conn(i)), want)),
        }
    }

    /// Arms connection `i`'s timer (right after accepting it).
    pub(crate) fn arm(&mut self, i: usize, now: Instant) {
        let Some(mut c) = self.conns.take(i) else { return };
        self.arm_conn(i, &mut c, now);
        self.conns.put(i, c);
    }

    /// A connection's timer fired: a deadline passed, or it is re-armed.
    pub(crate) fn on_conn_timer(&mut self, i: usize, now: Instant) {
        let Some(c) = self.conns.take(i) else { return };
        self.guarded(i, c, now, |r, c| r.conn_deadline(i, c, now));
    }

    /// What a connection's timer does: `None` when it was only re-armed.
    fn conn_deadline(&mut self, i: usize, c: &mut Conn, now: Instant) -> Option<Flow> {
        c.timer = None;
        if c.deadline(self) > now {
            self.arm_conn(i, c, now);
            return None;
        }
        let cfg = &self.cur.config;
        if let (Some(limit), Some(since)) = (cfg.write_timeout, c.client_stalled_since)
            && since + limit <= now
        {
            // It has not taken a byte for the whole write timeout: no
            // answer can reach it either, so the connection just ends.
            tracing::debug!(peer = %c.peer, ms = limit.as_millis() as u64, "the client stopped reading; closing");
            Stats::add(&self.lb.stats.errors, 1);
            return Some(Flow::Close);
        }
        match &c.state {
            State::Head { .. } if c.from_client.is_empty() && c.served > 0 => {
                // An idle keep-alive connection: close quietly.
                return Some(Flow::Close);
            }
            State::Head { .. } => {
                let t = cfg.limits.header_timeout;
                self.fail(c, 408, &format!("no complete head within {t:?}"));
            }
            State::Held { .. } => {
                // Its wait is over: on to a backend, as if it had just arrived.
                if let State::Held { mut req, .. } = c.take_state() {
                    // Its latency is the backend's: the wait is not counted.
                    req.started = now;
                    c.since = now;
                    self.connect_next(i, c, req, now);
                }
            }
            State::Queued { .. } => {
                let t = cfg.timeouts.connect;
                self.fail(c, 503, &format!("no connection to a backend could be opened within {t:?}"));
            }
            State::Connecting { .. } => {
                let t = cfg.timeouts.connect;
                if let State::Connecting { req, up } = c.take_state() {
                    let key = up.key;
                    self.release_upstream(up, Err("the connect timed out"));
                    self.connect_failed(key, &format!("no connection within {t:?}"));
                    // A retry keeps the failure that started it for the client.
                    let retrying = req.last_error.is_some();
                    self.connect_next(i, c, req, now);
                    if matches!(c.state, State::Closing { .. }) && !c.to_client.is_empty() && !retrying {
                        // All tried: the last failure was a timeout.
                        let detail = format!("no backend accepted a connection within {t:?}");
                        c.to_client.clear();
                        c.to_client.push(&error_response(504, &detail));
                    }
                }
            }
            State::Exchange { req, sent_at, response, .. } => {
                let waiting_head = matches!(response, Response::Head { .. }) && sent_at.is_some();
                let uploading = !req.body.is_done();
                if waiting_head {
                    let t = cfg.timeouts.response;
                    self.retry_or_fail(i, c, 504, &format!("the backend did not answer within {t:?}"), now);
                } else if uploading {
                    let t = cfg.timeouts.idle;
                    self.fail(c, 408, &format!("the request body stalled for {t:?}"));
                } else {
                    let t = cfg.timeouts.idle;
                    self.fail(c, 504, &format!("the response stalled for {t:?}"));
                }
            }
            State::Closing { .. } => return Some(Flow::Close),
        }
        Some(self.step(i, c, Ready::default(), now))
    }
    // ANCHOR_END: timers
}
