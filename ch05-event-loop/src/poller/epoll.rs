//! epoll(7): the kernel keeps the interest list, and `epoll_wait` returns
//! only the ready entries, so a wait costs O(ready), not O(registered).

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::{Event, Interest, Selector, Trigger, timeout_ms};

/// Most events taken from the kernel per wait; more stay queued for the next.
const BATCH: usize = 1024;

pub(super) struct EpollPoller {
    epoll: Epoll,
    buf: Vec<EpollEvent>,
}

fn flags(interest: Interest, trigger: Trigger) -> EpollFlags {
    let mut f = EpollFlags::empty();
    if interest.readable {
        // RDHUP: be told when the peer shuts down its sending side. Only
        // while we want to read: a half-close is a condition that stays
        // true, so with level triggering it would be reported on every
        // wait, and for a socket we have deliberately stopped reading
        // (backpressure) the loop would wake at once, do nothing and wait
        // again: a busy loop. (EPOLLHUP and EPOLLERR need no asking; the
        // kernel always reports them.)
        f |= EpollFlags::EPOLLIN;
        // (EPOLLEXCLUSIVE takes no RDHUP: EINVAL. A listening socket is
        // never half-closed anyway.)
        if trigger != Trigger::Exclusive {
            f |= EpollFlags::EPOLLRDHUP;
        }
    }
    if interest.writable {
        f |= EpollFlags::EPOLLOUT;
    }
    match trigger {
        Trigger::Level => {}
        Trigger::Edge => f |= EpollFlags::EPOLLET,
        Trigger::Exclusive => f |= EpollFlags::EPOLLEXCLUSIVE,
    }
    f
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the Poller's contract is that callers keep `fd` open from
    // register to deregister; the borrow is used only for the one
    // epoll_ctl call below, during which the fd is open.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

impl EpollPoller {
    pub(super) fn new() -> io::Result<Self> {
        Ok(Self { epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?, buf: vec![EpollEvent::empty(); BATCH] })
    }
}

impl Selector for EpollPoller {
    fn register(&mut self, fd: RawFd, token: usize, interest: Interest, trigger: Trigger) -> io::Result<()> {
        Ok(self.epoll.add(borrow(fd), EpollEvent::new(flags(interest, trigger), token as u64))?)
    }

    fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest, trigger: Trigger) -> io::Result<()> {
        let mut event = EpollEvent::new(flags(interest, trigger), token as u64);
        Ok(self.epoll.modify(borrow(fd), &mut event)?)
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        Ok(self.epoll.delete(borrow(fd))?)
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<usize> {
        let ms = timeout_ms(timeout);
        let timeout = if ms < 0 {
            EpollTimeout::NONE
        } else {
            EpollTimeout::try_from(Duration::from_millis(ms as u64)).unwrap_or(EpollTimeout::MAX)
        };
        let n = match self.epoll.wait(&mut self.buf, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        for e in &self.buf[..n] {
            let f = e.events();
            events.push(Event {
                token: e.data() as usize,
                readable: f.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR),
                writable: f.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR),
                closed: f.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLRDHUP),
                error: f.contains(EpollFlags::EPOLLERR),
            });
        }
        Ok(n)
    }
}
