//! A `Poller`: "tell me which of these sockets can make progress".
//!
//! A non-blocking socket answers `WouldBlock` instead of waiting. A server
//! with ten thousand of them needs one call that sleeps until *any* of them
//! is ready; that call is `epoll_wait` on Linux, `kevent` on the BSDs, and
//! the older, portable `poll(2)` everywhere. This module puts one small
//! interface over them, the way mio does under tokio:
//!
//! - `register(fd, token, interest, trigger)`: watch `fd` for readability
//!   and/or writability; events for it carry `token` (an index into your
//!   table of connections);
//! - `reregister` changes the interest (stop reading a client whose backend
//!   cannot take more bytes: backpressure); `deregister` stops watching;
//! - `wait(events, timeout)` sleeps until something is ready or the timeout
//!   (the next timer) expires.
//!
//! **Level- vs edge-triggered.** Level-triggered: an event is reported on
//! every `wait` while the socket *is* ready. Edge-triggered: only when it
//! *becomes* ready. With edge triggering, a handler that reads once and
//! returns may never hear about the rest of the data. The rule this crate
//! follows everywhere: **on an event, read (or write) until `WouldBlock`.**
//! Code that follows the rule is correct in both modes, which is why the
//! poll(2) backend, which only knows level triggering, can accept
//! `Trigger::Edge` and treat it as level.

#[cfg(target_os = "linux")]
mod epoll;
mod poll;

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// Which readiness to watch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Data (or end of stream, or a new connection) can be read.
    pub readable: bool,
    /// Bytes can be written (or a non-blocking connect has finished).
    pub writable: bool,
}

impl Interest {
    /// Readable only.
    pub const READABLE: Interest = Interest { readable: true, writable: false };
    /// Writable only.
    pub const WRITABLE: Interest = Interest { readable: false, writable: true };
    /// Both.
    pub const BOTH: Interest = Interest { readable: true, writable: true };
}

/// When readiness is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// On every wait while ready.
    Level,
    /// Once per change to ready (epoll's EPOLLET); poll(2) treats it as level.
    Edge,
}

/// One readiness report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Event {
    /// The token given at registration.
    pub token: usize,
    /// Reading will make progress (data, end of stream or an error).
    pub readable: bool,
    /// Writing will make progress.
    pub writable: bool,
    /// The peer closed (hang-up) or shut down its sending side.
    pub closed: bool,
    /// The socket has an error pending (read it with SO_ERROR).
    pub error: bool,
}

/// Which system call does the waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// epoll(7): O(ready) per wait, edge triggering (Linux).
    Epoll,
    /// poll(2): O(registered) per wait, level only, portable.
    Poll,
}

impl Backend {
    /// The best backend for this system.
    pub fn best() -> Backend {
        if cfg!(target_os = "linux") { Backend::Epoll } else { Backend::Poll }
    }
}

enum Inner {
    #[cfg(target_os = "linux")]
    Epoll(epoll::EpollPoller),
    Poll(poll::PollPoller),
}

/// The readiness multiplexer.
pub struct Poller {
    inner: Inner,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("backend", &self.backend()).finish()
    }
}

/// Milliseconds for a wait, rounded *up*: rounding down would wake a loop
/// just before its timer is due, again and again, spinning.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(i32::MAX as u128) as i32
        }
    }
}

// ANCHOR: poller_api
impl Poller {
    /// A poller using `backend`.
    pub fn new(backend: Backend) -> io::Result<Self> {
        let inner = match backend {
            #[cfg(target_os = "linux")]
            Backend::Epoll => Inner::Epoll(epoll::EpollPoller::new()?),
            #[cfg(not(target_os = "linux"))]
            Backend::Epoll => return Err(io::Error::new(io::ErrorKind::Unsupported, "epoll is Linux-only")),
            Backend::Poll => Inner::Poll(poll::PollPoller::default()),
        };
        Ok(Self { inner })
    }

    /// Which backend this poller uses.
    pub fn backend(&self) -> Backend {
        match self.inner {
            #[cfg(target_os = "linux")]
            Inner::Epoll(_) => Backend::Epoll,
            Inner::Poll(_) => Backend::Poll,
        }
    }

    /// Starts watching `fd`. The caller keeps `fd` open until `deregister`.
    pub fn register(
        &mut self,
        fd: &impl AsRawFd,
        token: usize,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let fd: RawFd = fd.as_raw_fd();
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::Epoll(p) => p.register(fd, token, interest, trigger),
            Inner::Poll(p) => p.register(fd, token, interest),
        }
    }

    /// Changes what `fd` is watched for (and its token).
    pub fn reregister(
        &mut self,
        fd: &impl AsRawFd,
        token: usize,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let fd: RawFd = fd.as_raw_fd();
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::Epoll(p) => p.reregister(fd, token, interest, trigger),
            Inner::Poll(p) => p.reregister(fd, token, interest),
        }
    }

    /// Stops watching `fd`. Do this before closing it.
    pub fn deregister(&mut self, fd: &impl AsRawFd) -> io::Result<()> {
        let fd: RawFd = fd.as_raw_fd();
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::Epoll(p) => p.deregister(fd),
            Inner::Poll(p) => p.deregister(fd),
        }
    }

    /// Waits until at least one watched fd is ready or `timeout` passes
    /// (`None`: no limit). Replaces `events` with what is ready; returns
    /// how many. A signal interrupting the wait counts as zero events.
    pub fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::Epoll(p) => p.wait(events, timeout),
            Inner::Poll(p) => p.wait(events, timeout),
        }
    }
}
// ANCHOR_END: poller_api

#[cfg(test)]
mod tests {
    use super::timeout_ms;
    use std::time::Duration;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1_500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), i32::MAX);
    }
}
