//! A pipe used as a buffer that stays in the kernel.
//!
//! `splice` moves bytes between a descriptor and a pipe, never between two
//! sockets directly, so a socket-to-socket relay goes through a pipe: in
//! from one socket, out to the other. The pipe is the relay's buffer, and
//! its size decides how much one direction holds while the reader is
//! slow. Linux lets a program grow a pipe (`F_SETPIPE_SZ`) up to
//! `/proc/sys/fs/pipe-max-size` (1 MiB by default); the kernel rounds the
//! size up to a power of two pages.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// The largest pipe an unprivileged process may ask for, from
/// `/proc/sys/fs/pipe-max-size` (1 MiB when it cannot be read), read once.
pub fn max_size() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    })
}

// ANCHOR: pipe
/// Both ends of a non-blocking pipe, and how many bytes it holds.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A pipe of about `size` bytes: within what the system allows, and
    /// never below one page (what a new pipe has, 64 KiB, if resizing is
    /// refused).
    pub fn new(size: usize) -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let wanted = size.clamp(4096, max_size());
        let wanted = i32::try_from(wanted).unwrap_or(i32::MAX);
        // Refused (EPERM above the limit, say): the default size stays.
        let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(wanted));
        let capacity = fcntl(&write, FcntlArg::F_GETPIPE_SZ)?;
        Ok(Pipe { read, write, capacity: usize::try_from(capacity).unwrap_or(4096) })
    }
    // ANCHOR_END: pipe

    /// How many bytes the pipe holds when full.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The end bytes come out of.
    pub fn reader(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The end bytes go into.
    pub fn writer(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }
}
