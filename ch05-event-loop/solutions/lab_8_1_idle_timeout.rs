//! # Lab 8.1 — idle connection timeouts on the Poller (reference solution)
//!
//! The task is in `src/labs/lab_8_1_idle_timeout.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::timers::{TimerId, Timers};

/// Idle deadlines of the loop's connections.
#[derive(Debug)]
pub struct IdleTracker {
    idle: Duration,
    timers: Timers<usize>,
    by_token: HashMap<usize, TimerId>,
}

impl IdleTracker {
    /// Connections idle for `idle` expire.
    pub fn new(idle: Duration) -> Self {
        Self { idle, timers: Timers::new(), by_token: HashMap::new() }
    }

    /// Connection `token` did something at `now`.
    pub fn touch(&mut self, token: usize, now: Instant) {
        // Cancelling is O(1) (the heap entry is skipped later), so touching
        // on every read stays cheap.
        if let Some(old) = self.by_token.remove(&token) {
            self.timers.cancel(old);
        }
        let id = self.timers.insert(now + self.idle, token);
        self.by_token.insert(token, id);
    }

    /// Connection `token` is gone.
    pub fn remove(&mut self, token: usize) {
        if let Some(id) = self.by_token.remove(&token) {
            self.timers.cancel(id);
        }
    }

    /// How long the loop may sleep.
    pub fn timeout(&mut self, now: Instant) -> Option<Duration> {
        self.timers.timeout(now)
    }

    /// Tokens idle at `now`, earliest first; they are forgotten.
    pub fn expired(&mut self, now: Instant) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some((_, token)) = self.timers.pop_expired(now) {
            self.by_token.remove(&token);
            out.push(token);
        }
        out
    }

    /// Connections tracked.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
