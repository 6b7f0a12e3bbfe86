//! The hook that hears about every request when it ends: chapter 8's
//! metrics plug in here.
//!
//! The loop calls it once per request, whatever became of it: answered by
//! a backend, answered by us (an error, or the admission hook's 429), or
//! cut short. It is called on the loop's thread, between two events, so
//! what it does is on every request's path: a few atomic adds, never a
//! lock or a system call. Chapter 5 plugs in nothing.

use std::net::SocketAddr;
use std::time::Duration;

// ANCHOR: finished
/// What the loop knows about a request that has ended.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// The client connection's address.
    pub peer: SocketAddr,
    /// The method and target, as the client sent them (`-` when the head
    /// could not be parsed).
    pub method: &'a str,
    /// The request target.
    pub target: &'a str,
    /// The backend that served it, by key (the same for one backend
    /// across reloads; see `lb::backends`) and address; `None` when no
    /// backend did (we answered it, or none could be reached).
    pub backend: Option<(usize, &'a str)>,
    /// The status the client got; 0 when the response was cut short after
    /// it had begun (the client saw the connection end early).
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// Bytes of the request sent to the backend (head and body).
    pub bytes_up: u64,
    /// Bytes of the response relayed from the backend (head and body).
    pub bytes_down: u64,
    /// How long its phases took.
    pub timings: Timings,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A backend answered, and the answer reached the client's buffer.
    Served,
    /// We answered it ourselves without a backend (the admission hook).
    Answered,
    /// It failed: we answered with an error, or cut the response short.
    Failed,
}

/// Times measured from the moment the request's head was parsed (after
/// any hold by the admission hook).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Until a backend connection was ready to write to (opened, or taken
    /// from the pool); `None` if none was.
    pub connect: Option<Duration>,
    /// Until the first byte of the backend's response; `None` if none came.
    pub first_byte: Option<Duration>,
    /// Until the end.
    pub total: Duration,
}

/// Hears about every request when it ends.
pub trait Observe: std::fmt::Debug {
    /// Called once per request, on the loop's thread.
    fn finished(&mut self, request: &Finished<'_>);
}
// ANCHOR_END: finished
