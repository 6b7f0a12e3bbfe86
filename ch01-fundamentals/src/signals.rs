//! Signals for a threaded server, the simple and safe way: block them in
//! every thread and let one dedicated thread receive them with `sigwait`.
//!
//! A classic signal handler runs in the middle of whatever some thread was
//! doing, where almost nothing (no lock, no allocation, no print) is safe.
//! With the signals blocked, the kernel instead queues them until the
//! signal thread asks for the next one, and that thread may do anything.

use std::io;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

use crate::server::Shutdown;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGUSR1: print the statistics.
    Report,
    /// SIGHUP: reload (used by later chapters).
    Reload,
    /// SIGINT or SIGTERM: stop.
    Stop,
}

// ANCHOR: signal_thread
/// Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in the calling thread (and so
/// in every thread it spawns later: call this first), then starts a thread
/// that calls `on_signal` for each one, until `on_signal` returns false.
pub fn spawn<F>(mut on_signal: F) -> io::Result<JoinHandle<()>>
where
    F: FnMut(Request) -> bool + Send + 'static,
{
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGUSR1] {
        set.add(s);
    }
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(io::Error::from)?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        loop {
            let request = match set.wait() {
                Ok(Signal::SIGUSR1) => Request::Report,
                Ok(Signal::SIGHUP) => Request::Reload,
                Ok(_) => Request::Stop,
                Err(_) => continue, // EINTR: wait again
            };
            // A bug in the callback must not kill this thread: with the
            // signals blocked everywhere else, Ctrl-C would then do nothing.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on_signal(request))) {
                Ok(true) => {}
                Ok(false) => return,
                Err(_) => tracing::error!(?request, "the signal handler panicked; still listening for signals"),
            }
        }
    })
}
// ANCHOR_END: signal_thread

/// Starts a thread named `name` that never takes a server signal (SIGINT,
/// SIGTERM, SIGHUP, SIGUSR1, SIGUSR2): they are blocked in it from its
/// first instruction, and the calling thread's mask is put back once it
/// has started. For a thread started before [`spawn`] (which blocks them
/// in the threads started after it): a signal the kernel gave such a
/// thread would take its default action and end the process. Blocking
/// them inside the new thread instead leaves a window before it runs, which
/// a loaded machine can stretch to milliseconds.
pub fn spawn_masked<F, T>(name: &str, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2] {
        set.add(s);
    }
    let mut before = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut before)).map_err(io::Error::from)?;
    let spawned = std::thread::Builder::new().name(name.into()).spawn(f);
    let restored = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None).map_err(io::Error::from);
    let handle = spawned?;
    restored?;
    Ok(handle)
}

// ANCHOR: on_signals
/// What a server's log says when SIGINT or SIGTERM stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopping {
    /// Everything closes now (chapter 1's echo server, chapter 3).
    Now,
    /// No new connections; those in progress may finish (chapter 4 on).
    Draining,
}

/// The signal thread of every server in the workspace, on top of
/// [`spawn`]: SIGUSR1 calls `report`, SIGHUP calls `reload`, and SIGINT or
/// SIGTERM log that the server is stopping and fire `shutdown`, which ends
/// the thread. Like [`spawn`], call it before starting other threads.
pub fn on_signals(
    shutdown: Shutdown,
    stopping: Stopping,
    report: impl Fn() + Send + 'static,
    reload: impl Fn() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    spawn(move |request| match request {
        Request::Report => {
            report();
            true
        }
        Request::Reload => {
            reload();
            true
        }
        Request::Stop => {
            match stopping {
                Stopping::Now => tracing::info!("stopping"),
                Stopping::Draining => tracing::info!("stopping: no new connections; draining those in progress"),
            }
            shutdown.trigger();
            false
        }
    })
}
// ANCHOR_END: on_signals

/// [`on_signals`] for a server that does not exist yet (the signal thread
/// must start first): returns the slot to put it in once it has started.
/// Then SIGUSR1 prints `report(server)` and SIGHUP calls `reload(server)`;
/// a signal that comes before says so and does nothing else.
pub fn for_server<T: Send + Sync + 'static>(
    shutdown: &Shutdown,
    stopping: Stopping,
    report: impl Fn(&T) -> String + Send + 'static,
    reload: impl Fn(&T) + Send + 'static,
) -> io::Result<Arc<OnceLock<T>>> {
    let slot: Arc<OnceLock<T>> = Arc::default();
    let (for_report, for_reload) = (Arc::clone(&slot), Arc::clone(&slot));
    let on_report = move || match for_report.get() {
        Some(server) => eprint!("{}", report(server)),
        None => tracing::info!("SIGUSR1 before the server started: nothing to report yet"),
    };
    let on_reload = move || match for_reload.get() {
        Some(server) => reload(server),
        None => tracing::warn!("SIGHUP before the server started: nothing reloaded"),
    };
    on_signals(shutdown.clone(), stopping, on_report, on_reload)?;
    Ok(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: [Signal; 5] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2];

    /// The calling thread's signal mask.
    fn mask() -> SigSet {
        let mut now = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut now)).unwrap();
        now
    }

    #[test]
    fn a_masked_thread_is_born_with_the_server_signals_blocked_and_the_caller_keeps_its_mask() {
        let before = mask();
        let inside = spawn_masked("masked", || SERVER.map(|s| mask().contains(s))).unwrap().join().unwrap();
        assert_eq!(inside, [true; 5], "blocked in the new thread");
        let after = mask();
        for s in SERVER {
            assert_eq!(after.contains(s), before.contains(s), "{s:?} in the caller's mask, as it was");
        }
    }
}
