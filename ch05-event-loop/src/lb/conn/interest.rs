//! What each socket of a connection is watched for, computed from its
//! state and its buffers after every turn: this is where backpressure
//! happens.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Conn, State};
use crate::lb::{Reactor, Token};
use crate::poller::{Interest, Trigger};

impl Reactor<'_> {
    // ANCHOR: backpressure
    /// Tells the poller what each socket should be watched for now. This is
    /// where backpressure happens: a full buffer takes away the read
    /// interest of the side that fills it, so the kernel's buffers fill,
    /// TCP's window closes, and the sender slows down.
    pub(crate) fn sync(&mut self, i: usize, c: &mut Conn, now: Instant) {
        let buffer = self.cur.config.buffer_size;
        let limits = self.cur.config.limits;
        let client = Interest {
            readable: !c.client_eof
                && match &c.state {
                    State::Head { .. } => true,
                    // While the body comes, read it as far as the buffer
                    // allows; after it, keep watching (a pipelined request, or
                    // the client hanging up) unless a whole head is waiting.
                    // Keeping the interest unchanged saves two epoll_ctl calls
                    // per request.
                    State::Held { req, .. }
                    | State::Queued { req }
                    | State::Connecting { req, .. }
                    | State::Exchange { req, .. } => {
                        if req.body.is_done() {
                            c.from_client.len() <= limits.max_head_bytes
                        } else {
                            c.to_upstream.len() < buffer
                        }
                    }
                    State::Closing { .. } => c.to_client.is_empty(),
                },
            writable: !c.to_client.is_empty(),
        };
        if client != c.client_interest
            && self.poller.reregister(&c.client, Token::Client(i).encode(), client, Trigger::Level).is_ok()
        {
            c.client_interest = client;
        }
        let upstream = match &mut c.state {
            // A connect in progress: writable says it finished.
            State::Connecting { up, .. } => Some((up, Interest::WRITABLE)),
            State::Exchange { up, response, .. } => {
                let want = Interest {
                    readable: !up.eof && !response.is_done() && c.to_client.len() < buffer,
                    writable: !c.to_upstream.is_empty(),
                };
                Some((up, want))
            }
            State::Head { .. } | State::Held { .. } | State::Queued { .. } | State::Closing { .. } => None,
        };
        if let Some((up, want)) = upstream
            && want != up.interest
            && self.poller.reregister(&up.stream, Token::Upstream(up.slot).encode(), want, Trigger::Level).is_ok()
        {
            up.interest = want;
        }
        let held = c.from_client.len() + c.to_upstream.len() + c.to_client.len();
        let stats = &self.lb.stats;
        if held > c.buffered {
            stats.buffered.fetch_add((held - c.buffered) as u64, Ordering::Relaxed);
        } else {
            stats.buffered.fetch_sub((c.buffered - held) as u64, Ordering::Relaxed);
        }
        c.buffered = held;
        stats.peak_per_connection.fetch_max(held as u64, Ordering::Relaxed);
        self.arm_conn(i, c, now);
    }
    // ANCHOR_END: backpressure
}
