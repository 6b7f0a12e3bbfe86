//! A `Poller`: "tell me which of these sockets can make progress".
//!
//! A non-blocking socket answers `WouldBlock` instead of waiting. A server
//! with ten thousand of them needs one call that sleeps until *any* of them
//! is ready. Each system has its own, and this module has a backend for
//! each (see [`Mechanism`]):
//!
//! - `epoll` (Linux, `epoll.rs`) and `kqueue` (macOS and the BSDs,
//!   `kqueue.rs`): the kernel keeps the interest list, so a wait costs
//!   O(ready);
//! - `poll(2)` (every Unix, `poll.rs`): the older, portable call; the list
//!   is handed over whole on every wait, O(registered).
//!
//! One small interface sits over them, the way mio does under tokio:
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
//! `Trigger::Edge` and treat it as level. (`high_perf_lb`, which registers
//! level-triggered only, takes one liberty with it: it stops at a short read
//! or when its buffer is full, because a level-triggered poller reports the
//! socket again if anything is left. Edge-triggered code may not.)

#[cfg(target_os = "linux")]
mod epoll;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
mod kqueue;
mod poll;

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::str::FromStr;
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
    /// Once per change to ready (epoll's EPOLLET, kqueue's EV_CLEAR); poll(2)
    /// treats it as level.
    Edge,
    /// Level, for a socket that several pollers watch (one listening
    /// socket, a loop per thread): epoll's EPOLLEXCLUSIVE wakes only one of
    /// them per event, not all. Only at registration: such a socket cannot
    /// be re-registered, only deregistered and registered again. kqueue and
    /// poll(2) treat it as level (every watcher wakes; all but one find
    /// nothing to accept).
    Exclusive,
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
///
/// Every variant exists on every system, so a command line can name any of
/// them (`--poller epoll|poll|kqueue`, parsed with [`FromStr`]); asking
/// [`Poller::new`] for one this system lacks is an `Unsupported` error.
/// [`Mechanism::available`] lists the ones it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// epoll(7): O(ready) per wait, edge triggering (Linux).
    Epoll,
    /// poll(2): O(registered) per wait, level only, portable.
    Poll,
    /// kqueue(2): O(ready) per wait, edge triggering with EV_CLEAR (macOS,
    /// iOS, FreeBSD, NetBSD, OpenBSD, DragonFly).
    Kqueue,
}

impl Mechanism {
    /// The backends this system has, best first.
    pub fn available() -> &'static [Mechanism] {
        if cfg!(target_os = "linux") {
            &[Mechanism::Epoll, Mechanism::Poll]
        } else if cfg!(any(
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "dragonfly"
        )) {
            &[Mechanism::Kqueue, Mechanism::Poll]
        } else {
            &[Mechanism::Poll]
        }
    }

    /// The best backend for this system: epoll on Linux, kqueue on macOS
    /// and the BSDs, poll(2) elsewhere.
    pub fn best() -> Mechanism {
        // Every list above holds at least Poll; the fallback is never used.
        Mechanism::available().first().copied().unwrap_or(Mechanism::Poll)
    }

    /// The name used on command lines and in logs: `epoll`, `poll` or
    /// `kqueue`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Epoll => "epoll",
            Mechanism::Poll => "poll",
            Mechanism::Kqueue => "kqueue",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`, so `{:>6}` and friends line names up.
        f.pad(self.name())
    }
}

/// A name that is not a [`Mechanism`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMechanism(pub String);

impl fmt::Display for UnknownMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown poller `{}`: expected epoll, poll or kqueue", self.0)
    }
}

impl std::error::Error for UnknownMechanism {}

impl FromStr for Mechanism {
    type Err = UnknownMechanism;

    /// Parses a [`Mechanism::name`], ignoring ASCII case (`EPOLL` works too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Mechanism::Epoll, Mechanism::Poll, Mechanism::Kqueue]
            .into_iter()
            .find(|b| s.eq_ignore_ascii_case(b.name()))
            .ok_or_else(|| UnknownMechanism(s.to_owned()))
    }
}

/// What each backend implements; `Poller` holds one behind a pointer, so
/// the choice of system call is made once, at `Poller::new`, and nowhere
/// else (one indirect call per operation costs nothing next to the system
/// call behind it).
pub(crate) trait Selector {
    fn register(&mut self, fd: RawFd, token: usize, interest: Interest, trigger: Trigger) -> io::Result<()>;
    fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest, trigger: Trigger) -> io::Result<()>;
    fn deregister(&mut self, fd: RawFd) -> io::Result<()>;
    /// Appends the ready events to `events` (already cleared).
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<usize>;
}

/// The readiness multiplexer.
pub struct Poller {
    backend: Mechanism,
    selector: Box<dyn Selector>,
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
    /// A poller using `backend`; `Unsupported` if this system lacks it.
    pub fn new(backend: Mechanism) -> io::Result<Self> {
        let unsupported = |what| io::Error::new(io::ErrorKind::Unsupported, what);
        let selector: Box<dyn Selector> = match backend {
            #[cfg(target_os = "linux")]
            Mechanism::Epoll => Box::new(epoll::EpollPoller::new()?),
            #[cfg(not(target_os = "linux"))]
            Mechanism::Epoll => return Err(unsupported("epoll is Linux-only")),
            #[cfg(any(
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "openbsd",
                target_os = "dragonfly"
            ))]
            Mechanism::Kqueue => Box::new(kqueue::KqueuePoller::new()?),
            #[cfg(not(any(
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "openbsd",
                target_os = "dragonfly"
            )))]
            Mechanism::Kqueue => return Err(unsupported("kqueue is only on macOS and the BSDs")),
            Mechanism::Poll => Box::new(poll::PollPoller::default()),
        };
        Ok(Self { backend, selector })
    }

    /// Which backend this poller uses.
    pub fn backend(&self) -> Mechanism {
        self.backend
    }

    /// Starts watching `fd`. The caller keeps `fd` open until `deregister`.
    pub fn register(
        &mut self,
        fd: &impl AsRawFd,
        token: usize,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.selector.register(fd.as_raw_fd(), token, interest, trigger)
    }

    /// Changes what `fd` is watched for (and its token).
    pub fn reregister(
        &mut self,
        fd: &impl AsRawFd,
        token: usize,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.selector.reregister(fd.as_raw_fd(), token, interest, trigger)
    }

    /// Stops watching `fd`. Do this before closing it.
    pub fn deregister(&mut self, fd: &impl AsRawFd) -> io::Result<()> {
        self.selector.deregister(fd.as_raw_fd())
    }

    /// Waits until at least one watched fd is ready or `timeout` passes
    /// (`None`: no limit). Replaces `events` with what is ready; returns
    /// how many. A signal interrupting the wait counts as zero events.
    pub fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        self.selector.wait(events, timeout)
    }
}
// ANCHOR_END: poller_api

#[cfg(test)]
mod tests {
    use super::{Mechanism, timeout_ms};
    use std::time::Duration;

    #[test]
    fn backend_names_round_trip() {
        for b in [Mechanism::Epoll, Mechanism::Poll, Mechanism::Kqueue] {
            assert_eq!(b.to_string().parse::<Mechanism>(), Ok(b));
        }
        assert_eq!(Mechanism::Kqueue.to_string(), "kqueue");
        assert_eq!(format!("{:>7}|", Mechanism::Poll), "   poll|");
    }

    #[test]
    fn backend_names_ignore_case_and_unknown_ones_list_the_valid() {
        assert_eq!("EPoll".parse::<Mechanism>(), Ok(Mechanism::Epoll));
        assert_eq!("POLL".parse::<Mechanism>(), Ok(Mechanism::Poll));
        let err = "select".parse::<Mechanism>().unwrap_err();
        assert_eq!(err.to_string(), "unknown poller `select`: expected epoll, poll or kqueue");
        assert!("".parse::<Mechanism>().is_err());
    }

    #[test]
    fn the_best_backend_is_the_first_available() {
        assert_eq!(Mechanism::best(), Mechanism::available()[0]);
        assert!(Mechanism::available().contains(&Mechanism::Poll), "poll(2) is everywhere");
        if cfg!(target_os = "linux") {
            assert_eq!(Mechanism::available(), [Mechanism::Epoll, Mechanism::Poll]);
        }
    }

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1_500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), i32::MAX);
    }
}
