//! kqueue(2): the answer of macOS and the BSDs to epoll. As with epoll, the
//! kernel keeps the interest list and a wait costs O(ready), not
//! O(registered).
//!
//! The difference to learn: kqueue does not watch a *descriptor*, it
//! watches (descriptor, filter) pairs. "Readable" is one registration
//! (EVFILT_READ) and "writable" another (EVFILT_WRITE); each is added,
//! deleted and reported on its own. This file hides that behind the
//! Poller's interface: it adds and deletes the filters an `Interest` asks
//! for, and merges the two reports for one socket back into one `Event`.
//!
//! The other mapping: edge triggering is the `EV_CLEAR` flag ("after a
//! report, reset the state, so the next report needs a new change").

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;
use nix::sys::event::{EvFlags, EventFilter, FilterFlag, KEvent, Kqueue};
use nix::sys::time::TimeSpec;

use super::{Event, Interest, Selector, Trigger, timeout_ms};

/// Most reports taken from the kernel per wait; more stay queued for the next.
const BATCH: usize = 1024;

/// Most changes one call can make: reregister with a new trigger deletes
/// both filters and adds both back (see `reregister`).
const MAX_CHANGES: usize = 4;

pub(super) struct KqueuePoller {
    kq: Kqueue,
    /// What each registered fd is watched for. The kernel has no notion of
    /// "this fd is registered", only of filters, and a fd watched for
    /// nothing has none. Keeping the record here is what lets `register`
    /// answer `AlreadyExists` and `reregister`/`deregister` answer
    /// `NotFound` as the other backends do, and lets `reregister` touch
    /// only the filters that change.
    registered: HashMap<RawFd, (Interest, Trigger)>,
    /// Where the kernel writes reports; allocated once.
    buf: Vec<KEvent>,
    /// During one wait: token → its index in the caller's events, so the
    /// READ and WRITE reports for one socket become one `Event`. Reused.
    merged: HashMap<usize, usize>,
}

/// A blank entry for buffers the kernel writes into.
fn blank() -> KEvent {
    KEvent::new(0, EventFilter::EVFILT_READ, EvFlags::empty(), FilterFlag::empty(), 0, 0)
}

/// The two filters, each with whether `interest` asks for it.
fn filters(interest: Interest) -> [(EventFilter, bool); 2] {
    [(EventFilter::EVFILT_READ, interest.readable), (EventFilter::EVFILT_WRITE, interest.writable)]
}

/// Flags that add (or re-add) a filter.
fn add_flags(trigger: Trigger) -> EvFlags {
    let mut f = EvFlags::EV_ADD | EvFlags::EV_ENABLE;
    if trigger == Trigger::Edge {
        // Without EV_CLEAR a filter is level-triggered: reported on every
        // wait while the condition holds.
        f |= EvFlags::EV_CLEAR;
    }
    f
}

/// A short list of changes for one `kevent` call, on the stack: register
/// and reregister run for every connection, often, so they should not
/// allocate.
struct Changes {
    list: [KEvent; MAX_CHANGES],
    len: usize,
}

impl Changes {
    fn new() -> Self {
        Self { list: [blank(); MAX_CHANGES], len: 0 }
    }

    fn push(&mut self, fd: RawFd, filter: EventFilter, flags: EvFlags, token: usize) {
        // EV_RECEIPT: report this change's outcome on its own (see `apply`).
        // udata carries the token through the kernel and back in each
        // report; usize -> isize -> usize gives back the same bits.
        let change =
            KEvent::new(fd as usize, filter, flags | EvFlags::EV_RECEIPT, FilterFlag::empty(), 0, token as isize);
        // Cannot go out of bounds: callers push at most one delete and one
        // add for each of the two filters, which is MAX_CHANGES.
        self.list[self.len] = change;
        self.len += 1;
    }

    fn as_slice(&self) -> &[KEvent] {
        &self.list[..self.len]
    }
}

/// Makes `changes` in one `kevent` call and checks each one's outcome.
fn apply(kq: &Kqueue, changes: &Changes) -> io::Result<()> {
    let changes = changes.as_slice();
    if changes.is_empty() {
        return Ok(());
    }
    // Without EV_RECEIPT, the first failing change would end the call, and
    // the changes after it would silently not be made. With it, the kernel
    // makes every change and writes one receipt for each (EV_ERROR set,
    // `data` = 0 or the errno), then returns at once without waiting for
    // events: the receipts fill the list, and the zero timeout is a second
    // guard against blocking.
    let mut receipts = [blank(); MAX_CHANGES];
    let receipts = &mut receipts[..changes.len()];
    let n = match kq.kevent(changes, receipts, Some(*TimeSpec::from_duration(Duration::ZERO).as_ref())) {
        Ok(n) => n,
        // FreeBSD's kevent(2): "When kevent() call fails with EINTR error,
        // all changes in the changelist have been applied."
        Err(Errno::EINTR) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for r in &receipts[..n] {
        let errno = r.data();
        // ENOENT: deleting a filter that is not there. Only a delete can
        // fail so (an add creates the filter), and the wanted end state,
        // "not watched", holds: the kernel drops a fd's filters by itself
        // when the fd is closed.
        if r.flags().contains(EvFlags::EV_ERROR) && errno != 0 && errno != Errno::ENOENT as isize {
            return Err(io::Error::from_raw_os_error(errno as i32));
        }
    }
    Ok(())
}

impl KqueuePoller {
    pub(super) fn new() -> io::Result<Self> {
        let kq = Kqueue::new()?;
        // Close-on-exec, as std does for every descriptor it opens (and as
        // epoll.rs asks with EPOLL_CLOEXEC): a program this server starts
        // should not inherit its kqueue.
        // SAFETY: fcntl(F_SETFD) on a descriptor we own and that is open
        // (it is borrowed from `kq` for the call); no memory is passed.
        let set = unsafe { libc::fcntl(kq.as_fd().as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Errno::result(set)?;
        Ok(Self { kq, registered: HashMap::new(), buf: vec![blank(); BATCH], merged: HashMap::new() })
    }
}

impl Selector for KqueuePoller {
    fn register(&mut self, fd: RawFd, token: usize, interest: Interest, trigger: Trigger) -> io::Result<()> {
        let Entry::Vacant(slot) = self.registered.entry(fd) else {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "fd is already registered"));
        };
        let mut changes = Changes::new();
        for (filter, wanted) in filters(interest) {
            if wanted {
                changes.push(fd, filter, add_flags(trigger), token);
            }
        }
        if let Err(e) = apply(&self.kq, &changes) {
            // One filter may have been added before the other failed; take
            // it back so a failed register leaves nothing behind. Its own
            // outcome does not matter: the error to report is `e`.
            let mut undo = Changes::new();
            for (filter, wanted) in filters(interest) {
                if wanted {
                    undo.push(fd, filter, EvFlags::EV_DELETE, 0);
                }
            }
            let _ = apply(&self.kq, &undo);
            return Err(e);
        }
        slot.insert((interest, trigger));
        Ok(())
    }

    fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest, trigger: Trigger) -> io::Result<()> {
        let Some(current) = self.registered.get_mut(&fd) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "fd is not registered"));
        };
        let (old_interest, old_trigger) = *current;
        let mut changes = Changes::new();
        for ((filter, had), (_, wants)) in filters(old_interest).into_iter().zip(filters(interest)) {
            // Delete a filter no longer wanted. Also delete one whose
            // trigger changes: re-adding an existing filter updates its
            // udata (the token) and re-checks readiness, but keeps the
            // flags it was first added with (FreeBSD's kqueue_register, for
            // one), EV_CLEAR among them. Changes apply in list order, so
            // the add below then makes it afresh.
            if had && (!wants || trigger != old_trigger) {
                changes.push(fd, filter, EvFlags::EV_DELETE, 0);
            }
            if wants {
                changes.push(fd, filter, add_flags(trigger), token);
            }
        }
        apply(&self.kq, &changes)?;
        *current = (interest, trigger);
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        // Forget the fd first, whatever the kernel answers below: the
        // caller is done with it, and a stale record would make a new
        // socket that reuses the number impossible to register.
        let Some((interest, _)) = self.registered.remove(&fd) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "fd is not registered"));
        };
        let mut changes = Changes::new();
        for (filter, had) in filters(interest) {
            if had {
                changes.push(fd, filter, EvFlags::EV_DELETE, 0);
            }
        }
        apply(&self.kq, &changes)
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<usize> {
        // The same rounding up as the other backends (see `timeout_ms`),
        // which also caps an enormous Duration that a timespec would
        // otherwise turn negative; a negative result means "no limit",
        // which kevent spells as no timespec at all.
        let ms = timeout_ms(timeout);
        let timeout = (ms >= 0).then(|| *TimeSpec::from_duration(Duration::from_millis(ms as u64)).as_ref());
        let n = match self.kq.kevent(&[], &mut self.buf, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        self.merged.clear();
        for report in &self.buf[..n] {
            let token = report.udata() as usize;
            let i = *self.merged.entry(token).or_insert_with(|| {
                events.push(Event { token, ..Event::default() });
                events.len() - 1
            });
            // `i` came from pushing onto `events` in this loop, and nothing
            // shrinks `events` here: the index is in bounds.
            let event = &mut events[i];
            match report.filter() {
                Ok(EventFilter::EVFILT_READ) => event.readable = true,
                Ok(EventFilter::EVFILT_WRITE) => event.writable = true,
                // We add no other filter, so no other can report.
                _ => {}
            }
            // (nix's `flags()` and `fflags()` panic on bits it has no name
            // for; for these filters the kernel sets only named flags, and
            // the fflags hold an errno, below 128, whose bits all have
            // names.)
            let flags = report.flags();
            if flags.contains(EvFlags::EV_EOF) {
                // On EVFILT_READ: the peer will send no more (a read returns
                // 0 once the buffer is drained). On EVFILT_WRITE: it will
                // take no more. With EOF, fflags holds the socket's pending
                // error, if any (a reset, say).
                event.closed = true;
                if !report.fflags().is_empty() {
                    event.error = true;
                }
            }
            if flags.contains(EvFlags::EV_ERROR) {
                event.error = true;
            }
        }
        Ok(events.len())
    }
}
