//! poll(2): the portable fallback. The interest list lives in our memory
//! and is handed to the kernel whole on every call, so a wait costs
//! O(registered): fine for hundreds of sockets, slow for tens of thousands.
//! Level-triggered only.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{Event, Interest, timeout_ms};

#[derive(Default)]
pub(super) struct PollPoller {
    /// (fd, token, interest), in registration order.
    entries: Vec<(RawFd, usize, Interest)>,
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

impl PollPoller {
    pub(super) fn register(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        if self.entries.iter().any(|e| e.0 == fd) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "fd is already registered"));
        }
        self.entries.push((fd, token, interest));
        Ok(())
    }

    pub(super) fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        match self.entries.iter_mut().find(|e| e.0 == fd) {
            Some(e) => {
                *e = (fd, token, interest);
                Ok(())
            }
            None => Err(io::Error::new(io::ErrorKind::NotFound, "fd is not registered")),
        }
    }

    pub(super) fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.0 != fd);
        if self.entries.len() == before {
            return Err(io::Error::new(io::ErrorKind::NotFound, "fd is not registered"));
        }
        Ok(())
    }

    pub(super) fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<usize> {
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
