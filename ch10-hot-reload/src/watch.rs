//! `-w/--watch`: reload when the file's contents change.
//!
//! Watch the *directory*, not the file. An editor that saves by writing a
//! new file and renaming it over the old one, and Kubernetes, which
//! updates a mounted ConfigMap by swapping a symlink (`..data`) to a new
//! directory, both leave a watch on the old file's inode looking at a
//! file nobody will write again. A watch on the directory sees the rename
//! and the swap.
//!
//! On Linux the directory is watched with inotify: the thread sleeps in
//! `poll` until something in the directory is written, created, moved
//! or deleted, waits until it has been quiet for a moment (an editor's
//! save is several events), then reads the file. Elsewhere, and as a
//! safety net on Linux, the file is also read every `interval`. Either
//! way the decision is made on the *contents*: a reload happens when the
//! bytes differ from the last ones applied, never on times or inodes, and
//! a file whose contents are still changing (caught half-written) is read
//! again until two looks agree.

use std::path::Path;
use std::time::Duration;

/// How long the directory must be quiet after an event before the file
/// is read.
pub const QUIET: Duration = Duration::from_millis(20);

// ANCHOR: watching
/// Watches `path` until the process ends, calling `reload` when its
/// contents changed and then stayed the same for one more look.
pub fn watching(path: &Path, interval: Duration, reload: &dyn Fn()) {
    let mut events = Events::new(path);
    // With inotify, an event says when to look, so a short pause is
    // enough to see whether the writer has finished.
    let settle = if events.live() { QUIET } else { interval };
    let mut applied = std::fs::read(path).ok();
    // Said once the watch is in place: a change from now on is seen.
    tracing::info!(file = %path.display(), interval_ms = interval.as_millis() as u64, inotify = events.live(),
        "watching the configuration file");
    loop {
        events.wait(interval);
        let mut now = std::fs::read(path).ok();
        if now == applied {
            continue;
        }
        // Changed: go ahead once two looks agree (the writer finished).
        loop {
            events.wait(settle);
            let again = std::fs::read(path).ok();
            if again == now {
                break;
            }
            now = again;
        }
        applied = now;
        reload();
    }
}
// ANCHOR_END: watching

/// What wakes the watcher: inotify on the directory (Linux), or nothing
/// but the interval.
struct Events {
    #[cfg(target_os = "linux")]
    inotify: Option<nix::sys::inotify::Inotify>,
}

impl Events {
    #[cfg(target_os = "linux")]
    fn new(path: &Path) -> Self {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let flags = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MODIFY;
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .and_then(|i| i.add_watch(dir, flags).map(|_| i));
        match inotify {
            Ok(i) => {
                tracing::debug!(dir = %dir.display(), "watching the directory with inotify");
                Self { inotify: Some(i) }
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the directory with inotify; reading the file every interval only");
                Self { inotify: None }
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn new(_path: &Path) -> Self {
        Self {}
    }

    /// Whether events wake the watcher (or only the interval).
    fn live(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.inotify.is_some();
        #[cfg(not(target_os = "linux"))]
        return false;
    }

    /// Sleeps until something happens in the directory (true) or
    /// `timeout` passes (false). Events that come meanwhile are consumed:
    /// what matters is only that something happened.
    #[cfg(target_os = "linux")]
    fn wait(&mut self, timeout: Duration) -> bool {
        use std::os::fd::AsFd;

        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let Some(inotify) = &self.inotify else {
            std::thread::sleep(timeout);
            return false;
        };
        let limit = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        let woken = matches!(poll(&mut fds, limit), Ok(n) if n > 0);
        if woken {
            // Drain what is there; the contents decide, not the events.
            while matches!(inotify.read_events(), Ok(events) if !events.is_empty()) {}
        }
        woken
    }

    #[cfg(not(target_os = "linux"))]
    fn wait(&mut self, timeout: Duration) -> bool {
        std::thread::sleep(timeout);
        false
    }
}
