//! The loop's side of keeping backend connections (when a [`Reuse`] is
//! plugged in): taking a kept connection for a request, handing one back
//! when its exchange ends, watching the idle ones, and expiring them.
//!
//! [`Reuse`]: crate::lb::reuse::Reuse
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Upstream;
use crate::lb::reuse::Socket;
use crate::lb::{Due, Reactor, Token, Uplink};
use crate::poller::{Interest, Trigger};

impl Reactor<'_> {
    // ANCHOR: checkout
    /// A kept connection to node `(key, index)` for connection `i`'s request, its
    /// events now routed to `i` (its token names its own slot in
    /// `uplinks`, which now says `Conn(i)`), or `None` (nothing kept, or
    /// chapter 5's loop with no [`Reuse`](crate::lb::reuse::Reuse)).
    pub(super) fn take_kept(&mut self, i: usize, node: (usize, usize), now: Instant) -> Option<Upstream> {
        let reuse = self.reuse.as_deref_mut()?;
        let mut closed = Vec::new();
        let kept = reuse.get(node.0, now, &mut closed);
        self.forget_streams(closed);
        let kept = kept?;
        // From now on its events are connection `i`'s: one entry changes,
        // the poller is not told. It stays watched for readability: the
        // request is written at once (a connected socket with an empty
        // send buffer takes it), and the answer is what we wait for.
        self.uplinks.put(kept.socket.slot, Uplink::Conn(i));
        Some(Upstream::kept(kept, node))
    }
    // ANCHOR_END: checkout

    /// Tells the [`Reuse`](crate::lb::reuse::Reuse), if any, that a fresh
    /// connection to the backend filed under `key` was opened because none was kept.
    pub(super) fn note_opened(&mut self, key: usize) {
        if let Some(reuse) = self.reuse.as_deref_mut() {
            reuse.opened(key);
        }
    }

    // ANCHOR: release
    /// The exchange on `up` is over. With a [`Reuse`](crate::lb::reuse::Reuse)
    /// and `reusable` Ok, the connection may be kept (and watched, idle,
    /// for the backend closing it); otherwise it is closed.
    pub(crate) fn release_upstream(&mut self, up: Upstream, reusable: Result<(), &'static str>) {
        let key = up.key;
        self.node(key).backend.active.fetch_sub(1, Ordering::Relaxed);
        // A backend a reload removed while this request was under way: its
        // connections are not kept (the set that removed it closed the rest).
        let reusable = reusable
            .and_then(|()| if self.cur.contains(key) { Ok(()) } else { Err("its backend left the configuration") });
        let now = Instant::now();
        let Some(reuse) = self.reuse.as_deref_mut() else {
            // Chapter 5 keeps nothing.
            let _ = reusable;
            let _ = self.poller.deregister(&up.stream);
            self.uplinks.remove(up.slot);
            drop(up); // closes the socket: one descriptor free
            return self.resume_one_waiting();
        };
        // Idle, it must be watched for readability (a close by the backend)
        // and nothing else; usually it already is.
        let (slot, interest) = (up.slot, up.interest);
        if reusable.is_ok()
            && interest != Interest::READABLE
            && self
                .poller
                .reregister(&up.stream, Token::Upstream(slot).encode(), Interest::READABLE, Trigger::Level)
                .is_err()
        {
            let _ = self.poller.deregister(&up.stream);
            self.uplinks.remove(slot);
            return self.resume_one_waiting();
        }
        let mut closed = Vec::new();
        if let Some((id, expires)) = reuse.put(key, up.into_kept(), reusable, now, &mut closed) {
            self.uplinks.put(slot, Uplink::Idle(id));
            self.arm_reuse(expires);
        }
        let freed = !closed.is_empty();
        self.forget_streams(closed);
        if freed {
            self.resume_one_waiting();
        }
    }
    // ANCHOR_END: release

    /// Stops watching sockets the [`Reuse`](crate::lb::reuse::Reuse) gave
    /// up, and closes them.
    pub(crate) fn forget_streams(&mut self, closed: Vec<Socket>) {
        for socket in closed {
            let _ = self.poller.deregister(&socket.stream);
            self.uplinks.remove(socket.slot);
        }
    }

    // ANCHOR: idle_event
    /// An idle kept connection became readable: the backend closed it, or
    /// sent bytes nobody asked for. Either way it must not carry a request.
    pub(crate) fn on_idle_readable(&mut self, id: usize) {
        let Some(reuse) = self.reuse.as_deref_mut() else { return };
        let mut closed = Vec::new();
        reuse.readable(id, &mut closed);
        self.forget_streams(closed);
    }
    // ANCHOR_END: idle_event

    /// Makes sure the expiry timer fires no later than `at`.
    fn arm_reuse(&mut self, at: Instant) {
        match self.reuse_timer {
            Some((_, armed)) if armed <= at => {}
            Some((id, _)) => {
                self.timers.cancel(id);
                self.reuse_timer = Some((self.timers.insert(at, Due::Reuse), at));
            }
            None => self.reuse_timer = Some((self.timers.insert(at, Due::Reuse), at)),
        }
    }

    /// The expiry timer fired: evict what expired, re-arm for the next.
    pub(crate) fn expire_kept(&mut self, now: Instant) {
        self.reuse_timer = None;
        let Some(reuse) = self.reuse.as_deref_mut() else { return };
        let mut closed = Vec::new();
        let next = reuse.expire(now, &mut closed);
        self.forget_streams(closed);
        if let Some(at) = next {
            self.arm_reuse(at);
        }
    }

    // ANCHOR: node_down
    /// The backend filed under `key` may just have been marked down: a down backend's
    /// kept connections are closed (a request must not reach it through
    /// one).
    pub(crate) fn check_node_health(&mut self, key: usize) {
        if self.node(key).is_healthy() {
            return;
        }
        let Some(reuse) = self.reuse.as_deref_mut() else { return };
        let mut closed = Vec::new();
        reuse.node_down(key, &mut closed);
        self.forget_streams(closed);
    }
    // ANCHOR_END: node_down
}
