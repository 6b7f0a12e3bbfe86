//! One direction of a TCP relay, and a whole connection pair.
//!
//! A [`Direction`] moves bytes from one socket to another, as far as the
//! sockets allow without blocking, and says what it waits for next. Two
//! ways to move them:
//!
//! - **[`Kind::Splice`]** (Linux): `splice` from the source socket into a
//!   pipe, then from the pipe into the destination. The bytes stay in the
//!   kernel: pages are passed along, not copied through our memory.
//! - **[`Kind::Copy`]** (everywhere): `read` into a buffer, `write` it out:
//!   two copies through user space. The comparison, and the fallback.
//! - **[`Kind::Auto`]**: copy for the first [`CUTOVER`] bytes, then splice.
//!   A pipe costs two descriptors and three system calls before its first
//!   byte; a connection that carries a few kilobytes is done sooner
//!   without one (the measurements in chapter 9 find where the two
//!   cross).
//!
//! Both follow one rule that keeps the hard cases simple: **empty the
//! buffer before filling it.** `splice` answers `EAGAIN` both when the
//! source has nothing and when the pipe has no room (a pipe counts pages,
//! not bytes: sixteen 1-byte splices fill sixteen slots), and the two
//! need opposite waits. Filling only an empty pipe means an `EAGAIN` from
//! the source always means "no data": wait until it is readable. An
//! `EAGAIN` while draining always means "destination full": wait until
//! it is writable. The end of the source (a read of 0 bytes) is passed on
//! only after the buffer is drained, as a half-close of the destination's
//! sending side.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

#[cfg(target_os = "linux")]
use crate::pipe::Pipe;

/// How a direction moves its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Through a pipe of about this many bytes, with `splice` (Linux);
    /// elsewhere the same as `Copy` with a buffer of that size.
    Splice(usize),
    /// Through a buffer of this many bytes, with `read` and `write`.
    Copy(usize),
    /// Through a small buffer until the direction has moved [`CUTOVER`]
    /// bytes, then through a pipe of about this many bytes (Linux).
    Auto(usize),
}

/// Bytes a [`Kind::Auto`] direction copies before it switches to splice.
/// Below this size, `cargo xtask bench --l4` measured copying as fast or
/// faster: the pipe's set-up is not paid back.
pub const CUTOVER: u64 = 64 * 1024;

/// The buffer a [`Kind::Auto`] direction copies through.
const AUTO_BUFFER: usize = 16 * 1024;

/// Bytes one call to [`Direction::pump`] moves at most before it returns,
/// so that one busy connection cannot keep a loop from the others.
pub const BUDGET: usize = 4 << 20;

/// What a direction waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The source to be readable.
    Readable,
    /// The destination to be writable.
    Writable,
    /// Nothing: it moved its budget and can go on at once.
    More,
    /// Nothing ever again: the source ended and everything was passed on.
    Done,
}

/// Where a direction's bytes wait between the two sockets.
#[derive(Debug)]
enum Buffer {
    #[cfg(target_os = "linux")]
    Pipe {
        pipe: Pipe,
        held: usize,
    },
    Memory {
        bytes: Vec<u8>,
        start: usize,
        end: usize,
    },
}

// ANCHOR: direction
/// One direction of a relay.
#[derive(Debug)]
pub struct Direction {
    buffer: Buffer,
    /// The source has ended (read returned 0).
    eof: bool,
    /// Bytes passed on so far.
    moved: u64,
    /// For [`Kind::Auto`]: the pipe size to switch to after [`CUTOVER`]
    /// (always `None` off Linux, where there is no splice to switch to).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    switch_to: Option<usize>,
}
// ANCHOR_END: direction

impl Direction {
    /// A direction that moves bytes the `kind` way.
    pub fn new(kind: Kind) -> io::Result<Direction> {
        let buffer = match kind {
            #[cfg(target_os = "linux")]
            Kind::Splice(size) => Buffer::Pipe { pipe: spare_pipe(size)?, held: 0 },
            #[cfg(not(target_os = "linux"))]
            Kind::Splice(size) => Buffer::Memory { bytes: vec![0; size.max(1)], start: 0, end: 0 },
            Kind::Copy(size) => Buffer::Memory { bytes: spare_buffer(size.max(1)), start: 0, end: 0 },
            Kind::Auto(size) => Buffer::Memory { bytes: spare_buffer(AUTO_BUFFER.min(size.max(1))), start: 0, end: 0 },
        };
        let switch_to = match kind {
            Kind::Auto(size) if cfg!(target_os = "linux") => Some(size),
            _ => None,
        };
        Ok(Direction { buffer, eof: false, moved: 0, switch_to })
    }

    /// Whether bytes move by splice now.
    pub fn splicing(&self) -> bool {
        match &self.buffer {
            #[cfg(target_os = "linux")]
            Buffer::Pipe { .. } => true,
            Buffer::Memory { .. } => false,
        }
    }

    // ANCHOR: maybe_switch
    /// A [`Kind::Auto`] direction past [`CUTOVER`] with an empty buffer
    /// trades its buffer for a pipe. Failing to get one (out of
    /// descriptors) only means it goes on copying.
    fn maybe_switch(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(size) = self.switch_to
            && self.moved >= CUTOVER
            && self.held() == 0
        {
            self.switch_to = None;
            if let Ok(pipe) = spare_pipe(size) {
                self.buffer = Buffer::Pipe { pipe, held: 0 };
            }
        }
    }
    // ANCHOR_END: maybe_switch

    /// Bytes passed on to the destination so far.
    pub fn moved(&self) -> u64 {
        self.moved
    }

    /// Bytes taken from the source and not yet passed on.
    pub fn held(&self) -> usize {
        match &self.buffer {
            #[cfg(target_os = "linux")]
            Buffer::Pipe { held, .. } => *held,
            Buffer::Memory { start, end, .. } => end.saturating_sub(*start),
        }
    }

    // ANCHOR: pump
    /// Moves bytes from `from` to `to` (both non-blocking) until one of
    /// them would block, the source ends, or [`BUDGET`] bytes have moved.
    /// An error is the connection's end: a reset, a broken pipe.
    pub fn pump(&mut self, from: &TcpStream, to: &TcpStream) -> io::Result<Wait> {
        let mut budget = BUDGET;
        loop {
            // Empty the buffer first...
            while self.held() > 0 {
                match self.write_out(to) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        self.moved += n as u64;
                        budget = budget.saturating_sub(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Wait::Writable),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.eof {
                return Ok(Wait::Done);
            }
            if budget == 0 {
                return Ok(Wait::More);
            }
            self.maybe_switch();
            // ...then fill it: the buffer is empty, so "would block" can
            // only mean the source has nothing for now.
            match self.read_in(from) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Wait::Readable),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    // ANCHOR_END: pump

    /// Takes bytes from the source into the (empty) buffer.
    fn read_in(&mut self, from: &TcpStream) -> io::Result<usize> {
        match &mut self.buffer {
            #[cfg(target_os = "linux")]
            Buffer::Pipe { pipe, held } => {
                use nix::fcntl::{SpliceFFlags, splice};
                let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
                let n = splice(from, None, pipe.writer(), None, pipe.capacity(), flags)?;
                *held += n;
                Ok(n)
            }
            Buffer::Memory { bytes, start, end } => {
                let n = (&*from).read(bytes)?;
                (*start, *end) = (0, n);
                Ok(n)
            }
        }
    }

    /// Passes buffered bytes on to the destination.
    fn write_out(&mut self, to: &TcpStream) -> io::Result<usize> {
        match &mut self.buffer {
            #[cfg(target_os = "linux")]
            Buffer::Pipe { pipe, held } => {
                use nix::fcntl::{SpliceFFlags, splice};
                let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
                let n = splice(pipe.reader(), None, to, None, *held, flags)?;
                *held = held.saturating_sub(n);
                Ok(n)
            }
            Buffer::Memory { bytes, start, end } => {
                let pending = bytes.get(*start..*end).unwrap_or_default();
                let n = (&*to).write(pending)?;
                *start += n;
                Ok(n)
            }
        }
    }
}

thread_local! {
    /// Buffers of directions that ended, for the next ones on this thread.
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Empty pipes of directions that ended (HAProxy keeps a pool of pipes
    /// for the same reason): a new one costs three system calls.
    #[cfg(target_os = "linux")]
    static SPARE_PIPES: std::cell::RefCell<Vec<Pipe>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A pipe of about `size` bytes, reused when an empty one is spare.
#[cfg(target_os = "linux")]
fn spare_pipe(size: usize) -> io::Result<Pipe> {
    let wanted = size.clamp(4096, crate::pipe::max_size());
    let reused = SPARE_PIPES.with(|spare| {
        let mut spare = spare.borrow_mut();
        let at = spare.iter().position(|p| p.capacity() >= wanted && p.capacity() < wanted * 2)?;
        Some(spare.swap_remove(at))
    });
    match reused {
        Some(pipe) => Ok(pipe),
        None => Pipe::new(size),
    }
}

/// Buffers kept for reuse per thread, at most.
const SPARE_MAX: usize = 64;

/// A zeroed buffer of `size` bytes, reused when one is spare. A fresh
/// 256 KiB buffer costs its page faults and its zeroing on every
/// connection: without reuse, a copying relay of short connections spends
/// most of its time there, not copying.
fn spare_buffer(size: usize) -> Vec<u8> {
    SPARE
        .with(|spare| {
            let mut spare = spare.borrow_mut();
            let at = spare.iter().position(|b| b.len() == size)?;
            Some(spare.swap_remove(at))
        })
        .unwrap_or_else(|| vec![0; size])
}

impl Drop for Direction {
    fn drop(&mut self) {
        let buffer = std::mem::replace(&mut self.buffer, Buffer::Memory { bytes: Vec::new(), start: 0, end: 0 });
        match buffer {
            // Old bytes stay in it: every read overwrites what it returns.
            Buffer::Memory { bytes, .. } => keep(&SPARE, bytes),
            // A pipe still holding bytes (the connection broke) is closed:
            // those bytes must never reach another connection.
            #[cfg(target_os = "linux")]
            Buffer::Pipe { pipe, held: 0 } => keep(&SPARE_PIPES, pipe),
            #[cfg(target_os = "linux")]
            Buffer::Pipe { .. } => {}
        }
    }
}

/// Puts `item` in this thread's `spare` list, unless it is full.
fn keep<T: 'static>(spare: &'static std::thread::LocalKey<std::cell::RefCell<Vec<T>>>, item: T) {
    let _ = spare.try_with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut()
            && spare.len() < SPARE_MAX
        {
            spare.push(item);
        }
    });
}

/// What a relayed connection pair carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Bytes from the first socket to the second.
    pub a_to_b: u64,
    /// Bytes from the second socket to the first.
    pub b_to_a: u64,
}

// ANCHOR: relay_pair
/// Relays `a` and `b` both ways until both directions have ended, on the
/// calling thread, waiting with `poll(2)`. When one side stops sending,
/// the other side's sending half is shut down once everything before has
/// been passed on (a half-close travels through, as it would without us);
/// when both have, the relay ends. No byte moves for `idle`: an error
/// (`TimedOut`). A reset or a broken pipe ends it with that error. Both
/// sockets are left non-blocking; the caller closes them.
pub fn relay_pair(a: &TcpStream, b: &TcpStream, kind: Kind, idle: Duration) -> io::Result<Totals> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;

    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    let (mut ab, mut ba) = (Direction::new(kind)?, Direction::new(kind)?);
    let (mut ab_wait, mut ba_wait) = (Wait::More, Wait::More);
    let timeout = PollTimeout::try_from(idle).unwrap_or(PollTimeout::MAX);
    loop {
        if ab_wait != Wait::Done {
            ab_wait = ab.pump(a, b)?;
            if ab_wait == Wait::Done {
                half_close(b)?;
            }
        }
        if ba_wait != Wait::Done {
            ba_wait = ba.pump(b, a)?;
            if ba_wait == Wait::Done {
                half_close(a)?;
            }
        }
        if ab_wait == Wait::Done && ba_wait == Wait::Done {
            return Ok(Totals { a_to_b: ab.moved(), b_to_a: ba.moved() });
        }
        if ab_wait == Wait::More || ba_wait == Wait::More {
            continue;
        }
        // What each socket is waited for: read as a source, written as a
        // destination.
        let wants = |src: Wait, dst: Wait| {
            let mut flags = PollFlags::empty();
            if src == Wait::Readable {
                flags |= PollFlags::POLLIN;
            }
            if dst == Wait::Writable {
                flags |= PollFlags::POLLOUT;
            }
            flags
        };
        let mut fds =
            [PollFd::new(a.as_fd(), wants(ab_wait, ba_wait)), PollFd::new(b.as_fd(), wants(ba_wait, ab_wait))];
        if poll(&mut fds, timeout)? == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no byte moved for {idle:?}")));
        }
    }
}
// ANCHOR_END: relay_pair

/// Shuts down the sending half of `to`; a peer that has already gone is
/// not an error here (the other direction will find out).
fn half_close(to: &TcpStream) -> io::Result<()> {
    match to.shutdown(Shutdown::Write) {
        Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
        _ => Ok(()),
    }
}
