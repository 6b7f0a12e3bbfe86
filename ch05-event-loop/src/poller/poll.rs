//! poll(2): the portable fallback. The interest list lives in our memory
//! and is handed to the kernel whole on every call, so a wait costs
//! O(registered): fine for hundreds of sockets, slow for tens of thousands.
//! Level-triggered only.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{Event, Interest, Selector, Trigger, timeout_ms};

#[derive(Default)]
pub(super) struct PollPoller {
    /// (fd, token, interest): the list handed to poll(2), in no particular
    /// order (deregister moves the last entry into the hole).
    entries: Vec<(RawFd, usize, Interest)>,
    /// fd → its index in `entries`. A server with 10,000 connections
    /// registers and deregisters all the time (every accept, every close,
    /// every backpressure pause); a linear search of `entries` would make
    /// each of those O(connections). With this map they are O(1), and only
    /// the wait itself pays O(registered), which poll(2) cannot avoid.
    index: HashMap<RawFd, usize>,
}

fn flags(interest: Interest) -> PollFlags {
    let mut f = PollFlags::empty();
    if interest.readable {
        f |= PollFlags::POLLIN;
    }
    if interest.writable {
        f |= PollFlags::POLLOUT;
    }
    f
}

/// poll(2) knows only level triggering; `Trigger::Edge` is served as
/// level, which is correct for code that follows the drain rule.
impl Selector for PollPoller {
    fn register(&mut self, fd: RawFd, token: usize, interest: Interest, _trigger: Trigger) -> io::Result<()> {
        match self.index.entry(fd) {
            Entry::Occupied(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, "fd is already registered")),
            Entry::Vacant(slot) => {
                slot.insert(self.entries.len());
                self.entries.push((fd, token, interest));
                Ok(())
            }
        }
    }

    fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest, _trigger: Trigger) -> io::Result<()> {
        let Some(&i) = self.index.get(&fd) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "fd is not registered"));
        };
        // In bounds: `index` holds exactly the positions of `entries`;
        // register and deregister update both together.
        self.entries[i] = (fd, token, interest);
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(i) = self.index.remove(&fd) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "fd is not registered"));
        };
        // `swap_remove` fills the hole with the last entry instead of
        // shifting everything after it down: O(1), at the cost of order,
        // which poll(2) does not care about. The moved entry (if the hole
        // was not itself the last) must be told its new index.
        self.entries.swap_remove(i);
        if let Some(&(moved, _, _)) = self.entries.get(i) {
            self.index.insert(moved, i);
        }
        Ok(())
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<usize> {
        let mut fds: Vec<PollFd<'_>> = self
            .entries
            .iter()
            .map(|&(fd, _, interest)| {
                // SAFETY: callers keep every registered fd open until they
                // deregister it, and these borrows end with this call.
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                PollFd::new(fd, flags(interest))
            })
            .collect();
        let ms = timeout_ms(timeout);
        let timeout = if ms < 0 {
            PollTimeout::NONE
        } else {
            PollTimeout::try_from(Duration::from_millis(ms as u64)).unwrap_or(PollTimeout::MAX)
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
        for (pfd, &(_, token, _)) in fds.iter().zip(&self.entries) {
            let Some(r) = pfd.revents() else { continue };
            if r.is_empty() {
                continue;
            }
            events.push(Event {
                token,
                readable: r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR),
                writable: r.intersects(PollFlags::POLLOUT | PollFlags::POLLERR),
                closed: r.contains(PollFlags::POLLHUP),
                error: r.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL),
            });
        }
        Ok(events.len())
    }
}
