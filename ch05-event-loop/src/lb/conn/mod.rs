//! One client connection as a state machine.
//!
//! A thread-per-connection server keeps its place in the code: "I am
//! blocked in `read_request_head`", and the stack holds the rest. An event
//! loop serves thousands of connections with one stack, so each one keeps
//! its place in data instead:
//!
//! ```text
//!   Head ──head ok──▶ Connecting ──connected──▶ Exchange ──response done──▶ Head (keep-alive)
//!    │                    │ refused: next backend          │                  or Closing
//!    └─ bad head / 408 ───┴─────────── 502 / 503 / 504 ────┴──────────────▶ Closing ──▶ closed
//! ```
//!
//! Each [`State`] owns what only it needs: the request exists from
//! `Queued` on, the backend socket only while `Connecting` or in the
//! `Exchange`, the response only in the `Exchange`. So "a backend socket
//! with no request" or "a response before the connect finished" cannot be
//! written down, and leaving a state drops what it held.
//!
//! Every event for the connection calls [`Reactor::drive`], which moves
//! as far as the sockets allow and stops at the first `WouldBlock`. Three
//! bounded buffers hold what is in flight: the head so far (`from_client`),
//! bytes for the backend (`to_upstream`) and bytes for the client
//! (`to_client`). A full buffer stops the reads that fill it:
//! backpressure, so a client that reads slowly holds a few KiB here, not
//! the whole response.
//!
//! | concern | file |
//! |---|---|
//! | the states, `drive`, the backstop | `conn/mod.rs` |
//! | `Buf`, the bounded buffers | `conn/buffer.rs` |
//! | reading, writing, the non-blocking connect | `conn/sockets.rs` |
//! | the request and response heads, the bodies, the end of an exchange | `conn/exchange.rs` |
//! | picking, failing over, retrying, waiting for a descriptor | `conn/failover.rs` |
//! | what each socket is watched for (backpressure) | `conn/interest.rs` |
//! | the connection's timer and what a deadline means | `conn/deadlines.rs` |
//! | kept backend connections: checkout, release, idle events, expiry | `conn/keep.rs` |
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

mod buffer;
mod deadlines;
mod exchange;
mod failover;
mod interest;
mod keep;
mod sockets;

use std::net::{Shutdown as Half, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ch02_proxy::http::HeadScan;

use super::backends::Backends;
use super::{Reactor, Stats};
use crate::framing::BodyTracker;
use crate::lb::reuse::{Kept, Promise, Socket};
use crate::poller::{Event, Interest};
use crate::timers::TimerId;
pub use buffer::Buf;
use sockets::flush;
pub(crate) use sockets::start_connect;

/// Where a connection is, and what it holds there.
#[derive(Debug)]
pub enum State {
    /// Waiting for (the rest of) a request head.
    Head {
        /// How far the head so far has been looked at.
        scan: HeadScan,
    },
    /// Held back by the admission hook (chapter 7's rate limiter in delay
    /// mode) until `until`, then on to a backend like any other request.
    Held {
        /// The request (boxed: an idle connection, in `Head`, should not
        /// pay for the size of one under way).
        req: Box<Request>,
        /// When it may go.
        until: Instant,
    },
    /// Waiting for a file descriptor to connect with (all in use): the
    /// request waits in line, as in HAProxy's queue, rather than failing.
    Queued {
        /// The request (boxed: an idle connection, in `Head`, should not
        /// pay for the size of one under way).
        req: Box<Request>,
    },
    /// A non-blocking connect to a backend is in progress.
    Connecting {
        /// The request (boxed: an idle connection, in `Head`, should not
        /// pay for the size of one under way).
        req: Box<Request>,
        /// The socket being connected.
        up: Upstream,
    },
    /// The request goes up, the response comes down.
    Exchange {
        /// The request (boxed: an idle connection, in `Head`, should not
        /// pay for the size of one under way).
        req: Box<Request>,
        /// The connected backend.
        up: Upstream,
        /// When the last request byte went to the backend.
        sent_at: Option<Instant>,
        /// The response so far.
        response: Response,
    },
    /// Sending the last bytes, then closing.
    Closing {
        /// Our sending side is shut.
        shut_down: bool,
    },
}

impl State {
    /// The request being served, from `Queued` to the end of the exchange.
    fn request(&self) -> Option<&Request> {
        match self {
            State::Held { req, .. }
            | State::Queued { req }
            | State::Connecting { req, .. }
            | State::Exchange { req, .. } => Some(req),
            State::Head { .. } | State::Closing { .. } => None,
        }
    }
}

/// The backend's answer during an exchange.
#[derive(Debug)]
pub enum Response {
    /// Its head has not all arrived.
    Head {
        /// The bytes so far.
        bytes: Vec<u8>,
    },
    /// Our edited head has gone into `to_client`; the body streams through.
    Body {
        /// Where the body ends.
        body: BodyTracker,
        /// The status, for the log.
        status: u16,
        /// The whole body has been read (or the backend closed).
        done: bool,
        /// Whether the backend's head lets the connection carry another
        /// request, and what it promised (see [`persistence`](crate::lb::reuse::persistence)).
        persist: Result<Promise, &'static str>,
    },
}

impl Response {
    /// Not one byte of a response yet: the request may be retried.
    fn nothing_received(&self) -> bool {
        matches!(self, Response::Head { bytes } if bytes.is_empty())
    }

    /// The client may have seen part of it: an error can no longer be sent.
    fn started(&self) -> bool {
        matches!(self, Response::Body { .. })
    }

    /// The body has been read to its end.
    fn is_done(&self) -> bool {
        matches!(self, Response::Body { done: true, .. })
    }
}

/// The backend side of a connection.
#[derive(Debug)]
pub struct Upstream {
    /// The socket (non-blocking).
    pub stream: TcpStream,
    /// Which backend: its key (see [`backends`](crate::lb::backends)).
    pub key: usize,
    /// Which node of the request's backend set.
    pub index: usize,
    /// Its slot in the reactor's `uplinks`, which its token names.
    slot: usize,
    eof: bool,
    interest: Interest,
    /// Requests this connection carried to their end before this one
    /// (0: opened for this request).
    served: u32,
    /// What the backend last promised about the connection's life.
    promise: Promise,
    /// Bytes written to it for the current request: 0 means the request
    /// never left, so it may be sent anywhere else, whatever its method.
    sent: u64,
}

impl Upstream {
    /// A connection being opened for this request.
    fn fresh(stream: TcpStream, (key, index): (usize, usize), slot: usize) -> Self {
        let promise = Promise::default();
        Self { stream, key, index, slot, eof: false, interest: Interest::WRITABLE, served: 0, promise, sent: 0 }
    }

    /// A kept connection taken for this request (watched for readability).
    fn kept(kept: Kept, (key, index): (usize, usize)) -> Self {
        let Kept { socket: Socket { stream, slot }, served, promise } = kept;
        Self { stream, key, index, slot, eof: false, interest: Interest::READABLE, served, promise, sent: 0 }
    }

    /// What a [`Reuse`](crate::lb::reuse::Reuse) keeps of it.
    fn into_kept(self) -> Kept {
        Kept { socket: Socket { stream: self.stream, slot: self.slot }, served: self.served, promise: self.promise }
    }

    /// It carried requests before this one (it came from the pool).
    fn was_kept(&self) -> bool {
        self.served > 0
    }
}

/// The request being served.
#[derive(Debug)]
pub struct Request {
    method: String,
    target: String,
    /// Where the request body ends in the client's bytes.
    body: BodyTracker,
    /// The client's connection may serve another request after this one.
    keep_alive: bool,
    /// When the head arrived; the latency is measured from here.
    started: Instant,
    /// The backend set in use when the head arrived: the request is
    /// served by it to the end, whatever a reload does meanwhile.
    backends: Arc<Backends>,
    /// The route of that set that serves it (`None`: the whole set).
    route: Option<usize>,
    /// Nodes of that group tried so far (failover tries each at most once).
    tried: Vec<bool>,
    /// The request head as sent, kept while the request may be retried
    /// (idempotent, no body): `None` otherwise.
    replay: Option<Vec<u8>>,
    /// The failure that started a retry, answered if no backend is left.
    last_error: Option<(u16, String)>,
    /// Only a freshly opened connection will do: a kept one already
    /// failed this request once.
    fresh_only: bool,
    /// The client (behind trusted proxies), the hashing key and the
    /// sticky cookie, to pick again on failover.
    client: std::net::IpAddr,
    key: String,
    cookie: Option<String>,
    set_cookie: Option<String>,
    bytes_up: u64,
    bytes_down: u64,
    /// When a backend connection was ready for it (opened or taken from
    /// the pool), and when the response's first byte came: for the
    /// observer's timings.
    connected: Option<Instant>,
    first_byte: Option<Instant>,
}

impl Request {
    /// The timings of the request, ended at `now`.
    fn timings(&self, now: Instant) -> crate::lb::observe::Timings {
        let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(self.started));
        crate::lb::observe::Timings {
            connect: since(self.connected),
            first_byte: since(self.first_byte),
            total: now.saturating_duration_since(self.started),
        }
    }
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    /// The client's socket (non-blocking).
    pub client: TcpStream,
    peer: SocketAddr,
    state: State,
    from_client: Buf,
    to_upstream: Buf,
    to_client: Buf,
    /// The armed timer and when it fires.
    pub timer: Option<(TimerId, Instant)>,
    /// When the current phase began.
    since: Instant,
    last_active: Instant,
    /// What the poller watches the client socket for.
    pub client_interest: Interest,
    client_eof: bool,
    /// Since when bytes have waited for the client without one going
    /// out (`None`: nothing waits, or the last write made progress).
    client_stalled_since: Option<Instant>,
    served: u32,
    /// Bytes in the three buffers, as last counted in the stats.
    pub buffered: usize,
}

impl Conn {
    /// A connection that has just been accepted.
    pub fn new(client: TcpStream, peer: SocketAddr, now: Instant) -> Self {
        Self {
            client,
            peer,
            state: State::Head { scan: HeadScan::default() },
            from_client: Buf::default(),
            to_upstream: Buf::default(),
            to_client: Buf::default(),
            timer: None,
            since: now,
            last_active: now,
            client_interest: Interest::READABLE,
            client_eof: false,
            client_stalled_since: None,
            served: 0,
            buffered: 0,
        }
    }

    /// Where the connection is.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// From when shutdown may close it, if it is waiting for a request
    /// with nothing of it received (`None`: a request is under way):
    /// `grace` after it was accepted or its last response ended. A client
    /// that has just connected, or just had an answer on a kept-alive
    /// connection, may have its next request on the way: closing now would
    /// cross it, and the client would see its request fail. Given the
    /// grace, the request arrives and is served, its answer saying
    /// `Connection: close`. A client quiet for longer is really idle.
    pub fn idle_from(&self, grace: Duration) -> Option<Instant> {
        let waiting = matches!(self.state, State::Head { .. }) && self.from_client.is_empty();
        waiting.then(|| self.since + grace)
    }

    /// Takes the state out to move on from it, leaving `Closing` behind:
    /// the caller puts the next state in its place.
    fn take_state(&mut self) -> State {
        std::mem::replace(&mut self.state, State::Closing { shut_down: false })
    }
}

/// What the poller said, from the point of view of one connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    client_read: bool,
    client_gone: bool,
    up_read: bool,
    up_write: bool,
}

impl Ready {
    /// An event on the client socket.
    pub fn client(e: &Event) -> Self {
        Self { client_read: e.readable, client_gone: e.error || e.closed, ..Self::default() }
    }

    /// An event on the upstream socket.
    pub fn upstream(e: &Event) -> Self {
        Self { up_read: e.readable, up_write: e.writable || e.error, ..Self::default() }
    }
}

/// What a step decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Go,
    Close,
}

impl Reactor<'_> {
    // ANCHOR: drive
    /// Moves connection `i` forward as far as its sockets allow.
    pub(crate) fn drive(&mut self, i: usize, ready: Ready) {
        // The connection is taken out of the table while we work on it, so
        // the rest of the reactor (poller, timers) can be borrowed freely.
        let Some(c) = self.conns.take(i) else { return };
        let now = Instant::now();
        self.guarded(i, c, now, |r, c| Some(r.step(i, c, ready, now)));
    }

    fn step(&mut self, i: usize, c: &mut Conn, ready: Ready, now: Instant) -> Flow {
        if ready.client_read {
            if c.client_interest.readable {
                if matches!(c.state, State::Head { .. })
                    && let Some(admission) = self.admission.as_deref_mut()
                {
                    admission.expect(c.peer.ip());
                }
                if self.read_client(c, now) == Flow::Close {
                    return Flow::Close;
                }
            } else if ready.client_gone {
                // Not reading it, yet told it hung up or failed: the client
                // is gone; nobody is left to answer.
                return Flow::Close;
            }
        }
        if ready.up_write && matches!(c.state, State::Connecting { .. }) {
            self.finish_connect(i, c, now);
        }
        if ready.up_read && matches!(c.state, State::Exchange { .. }) {
            self.read_upstream(i, c, now);
        }
        // Now make every move the buffers allow, until nothing changes.
        for _ in 0..64 {
            let mut moved = false;
            if let State::Head { scan } = &mut c.state
                && !c.from_client.is_empty()
                && scan.worth_parsing(c.from_client.bytes(), &self.cur.config.limits)
            {
                moved |= self.parse_head(i, c, now);
            }
            if matches!(c.state, State::Head { .. }) && c.client_eof {
                if c.from_client.is_empty() {
                    return Flow::Close;
                }
                // Whatever could be parsed has been: the rest is half a head.
                self.fail(c, 400, "connection closed in the middle of a head");
                moved = true;
            }
            if let State::Exchange { up, .. } = &mut c.state
                && !c.to_upstream.is_empty()
            {
                let before = c.to_upstream.len();
                match flush(&mut up.stream, &mut c.to_upstream) {
                    Ok(wrote) => {
                        up.sent += (before - c.to_upstream.len()) as u64;
                        moved |= wrote;
                    }
                    Err(e) => {
                        self.connection_lost(i, c, &format!("sending the request to the backend failed: {e}"), now);
                        moved = true;
                    }
                }
            }
            if let State::Exchange { req, sent_at, .. } = &mut c.state
                && sent_at.is_none()
                && req.body.is_done()
                && c.to_upstream.is_empty()
            {
                *sent_at = Some(now);
            }
            if !c.to_client.is_empty() {
                match flush(&mut c.client, &mut c.to_client) {
                    Ok(wrote) => {
                        if wrote {
                            c.last_active = now;
                            moved = true;
                        }
                        // The write timeout's clock: from the last byte the client took.
                        c.client_stalled_since = match (c.to_client.is_empty(), wrote, c.client_stalled_since) {
                            (true, _, _) => None,
                            (false, true, _) | (false, false, None) => Some(now),
                            (false, false, since) => since,
                        };
                    }
                    Err(_) => return Flow::Close,
                }
            } else {
                c.client_stalled_since = None;
            }
            if c.to_client.is_empty() {
                if let State::Closing { shut_down } = &mut c.state {
                    // Tell the client we are done, then close once it has
                    // read (or after LINGER): closing with unread bytes in
                    // our receive queue would send RST, and RST can destroy
                    // the error response before the client reads it.
                    if !*shut_down {
                        let _ = c.client.shutdown(Half::Write);
                        *shut_down = true;
                    }
                    if c.client_eof {
                        return Flow::Close;
                    }
                }
                if let State::Exchange { response, .. } = &c.state
                    && response.is_done()
                {
                    self.end_exchange(c, now);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        Flow::Go
    }
    // ANCHOR_END: drive

    // ANCHOR: backstop
    /// Runs `work` on connection `i` (taken out of the table), then puts it
    /// back, syncs its interest and timer, or closes it, as `work` says
    /// (`None`: put back untouched).
    ///
    /// The backstop: a panic inside `work` is a bug in our code, and one
    /// connection's bug must not end every other connection this thread
    /// serves. The panic is caught here, the connection is closed, logged
    /// with its slot and peer, and counted; the loop goes on. This is not
    /// error handling: errors are values, answered with a status. Only a
    /// bug lands here, and the log line is there so it gets fixed.
    pub(crate) fn guarded(
        &mut self,
        i: usize,
        mut c: Conn,
        now: Instant,
        work: impl FnOnce(&mut Self, &mut Conn) -> Option<Flow>,
    ) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let flow = work(self, &mut c);
            if flow == Some(Flow::Go) {
                self.sync(i, &mut c, now);
            }
            flow
        }));
        match outcome {
            Ok(None | Some(Flow::Go)) => self.conns.put(i, c),
            Ok(Some(Flow::Close)) => self.dispose(i, c),
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Stats::add(&self.lb.stats.panics, 1);
                tracing::error!(conn = i, peer = %c.peer, panic = %what, "a bug panicked while serving this connection: closed it; the loop goes on");
                self.dispose(i, c);
            }
        }
    }
    // ANCHOR_END: backstop

    /// Closes a connection that has been taken out of the table.
    pub(crate) fn dispose(&mut self, i: usize, mut c: Conn) {
        if let Some((id, _)) = c.timer.take() {
            self.timers.cancel(id);
        }
        let _ = self.poller.deregister(&c.client);
        if let State::Connecting { up, .. } | State::Exchange { up, .. } = c.take_state() {
            self.release_upstream(up, Err("the client connection closed"));
        }
        let stats = &self.lb.stats;
        stats.open.fetch_sub(1, Ordering::Relaxed);
        stats.buffered.fetch_sub(c.buffered as u64, Ordering::Relaxed);
        self.conns.release(i);
        self.client_left();
        // Dropping `c` closes the client socket: one descriptor free for a
        // request waiting in line.
        drop(c);
        if !self.waiting.is_empty() {
            self.resume_one_waiting();
        }
    }
}
#[cfg(test)]
mod size {
    /// Every connection, idle ones too, is a `Conn` in the slab: what a
    /// request under way needs lives in a `Box` only while it is under
    /// way, so that ten thousand idle clients do not each pay for one.
    #[test]
    fn an_idle_connection_does_not_carry_the_size_of_a_request() {
        assert!(std::mem::size_of::<super::Request>() > 300);
        assert!(std::mem::size_of::<super::Conn>() <= 400, "{}", std::mem::size_of::<super::Conn>());
    }
}
