//! # Lab 8.1 — idle connection timeouts on the Poller
//!
//! An event loop holds thousands of connections; some clients go quiet
//! and never come back. Track when each connection last did something and
//! close the ones idle too long, without a thread or a timer per connection.
//!
//! - [`IdleTracker::touch`] (re)starts a connection's idle period at `now`:
//!   its deadline becomes `now + idle`. Touching a token twice keeps only
//!   the later deadline.
//! - [`IdleTracker::remove`] forgets a connection (it was closed).
//! - [`IdleTracker::timeout`] is how long the loop may sleep in
//!   `Poller::wait`: until the earliest deadline (zero if one has passed),
//!   `None` when nothing is tracked.
//! - [`IdleTracker::expired`] returns, and forgets, every token whose
//!   deadline is at or before `now`, earliest deadline first.
//! - Hint: [`Timers`](crate::timers::Timers) plus a map from token to
//!   `TimerId` does most of the work.
//!
//! Run it: `cargo test -p ch05-event-loop --no-default-features lab_8_1`.

use std::time::{Duration, Instant};

/// Idle deadlines of the loop's connections.
#[derive(Debug)]
pub struct IdleTracker {
    // TODO: your fields.
}

impl IdleTracker {
    /// Connections idle for `idle` expire.
    pub fn new(idle: Duration) -> Self {
        let _ = idle;
        todo!("lab 8.1: create the tracker")
    }

    /// Connection `token` did something at `now`.
    pub fn touch(&mut self, token: usize, now: Instant) {
        let _ = (token, now);
        todo!("lab 8.1: restart the idle period")
    }

    /// Connection `token` is gone.
    pub fn remove(&mut self, token: usize) {
        let _ = token;
        todo!("lab 8.1: forget a connection")
    }

    /// How long the loop may sleep.
    pub fn timeout(&mut self, now: Instant) -> Option<Duration> {
        let _ = now;
        todo!("lab 8.1: the next deadline")
    }

    /// Tokens idle at `now`, earliest first; they are forgotten.
    pub fn expired(&mut self, now: Instant) -> Vec<usize> {
        let _ = now;
        todo!("lab 8.1: take the expired")
    }

    /// Connections tracked.
    pub fn len(&self) -> usize {
        todo!("lab 8.1: count")
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
