//! Replacing the running binary without refusing a connection.
//!
//! The old process starts the new binary (same path, same arguments) and
//! hands it its listening sockets, the balancer's and the admin
//! listener's, over a Unix socket pair: a message whose ancillary data is
//! `SCM_RIGHTS`, so the kernel installs a new descriptor for the *same*
//! socket in the new process. The queue of connections waiting to be
//! accepted belongs to the socket, not to a process: nothing in it is lost
//! when the old process stops accepting. (Binding a second socket with
//! `SO_REUSEPORT` instead would give the new process a queue of its own,
//! and closing the old socket resets every connection still queued in it.)
//!
//! Then the new process loads its configuration, starts serving on the
//! sockets it was given, and writes `ready` back. Only then does the old
//! one stop accepting and drain: requests under way finish, idle
//! keep-alive clients are closed between requests, all within the drain
//! timeout. If the new process exits or stays silent, the old one kills
//! it and keeps serving, and says why.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::unistd::Pid;

/// The environment variable that tells a new process which descriptor is
/// its end of the socket pair.
pub const ENV: &str = "LBS_UPGRADE_FD";

/// How long the old process waits for the new one to say it is ready.
pub const READY_WITHIN: Duration = Duration::from_secs(10);

/// What a new process received from the old one.
#[derive(Debug)]
pub struct Handover {
    /// How to tell the old process this one serves.
    pub ready: Ready,
    /// The balancer's listening socket.
    pub listener: TcpListener,
    /// The admin listener's socket, if the old process had one.
    pub admin: Option<TcpListener>,
}

impl Handover {
    /// The sockets to serve on, for a balancer told to listen at `listen`:
    /// the handed-over listener when it is there (any, for port 0), else
    /// `None` and a warning (the file moved it since the old process
    /// started: listen anew); then the admin socket, and `ready`.
    pub fn take(self, listen: std::net::SocketAddr) -> (Option<TcpListener>, Option<TcpListener>, Ready) {
        let same = self.listener.local_addr().is_ok_and(|a| listen.port() == 0 || a == listen);
        if !same {
            tracing::warn!(%listen, "the file names another address than the socket handed over; listening anew");
        }
        (same.then_some(self.listener), self.admin, self.ready)
    }
}

/// The new process's end of the socket pair.
#[derive(Debug)]
pub struct Ready(UnixStream);

impl Ready {
    /// Tells the old process that this one serves now: it may stop
    /// accepting and drain.
    pub fn send(mut self) -> std::io::Result<()> {
        writeln!(self.0, "ready {}", std::process::id())
    }
}

// ANCHOR: inherited
/// In a process started for an upgrade (`LBS_UPGRADE_FD` set): the
/// sockets the old process sent. `Ok(None)` in a process started anew.
pub fn inherited() -> Result<Option<Handover>, String> {
    let Some(value) = std::env::var_os(ENV) else { return Ok(None) };
    // Ours alone: a process this one starts must not read it again.
    // SAFETY: called at the start of `main`, before any other thread runs.
    unsafe { std::env::remove_var(ENV) };
    let fd: RawFd = value
        .to_str()
        .and_then(|v| v.parse().ok())
        .filter(|fd| *fd > 2)
        .ok_or_else(|| format!("{ENV}={value:?} is not a descriptor number"))?;
    // Only a Unix socket is taken over: anything else in the variable is
    // a mistake, and owning (and later closing) it would be a second one.
    let is_unix_socket = nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(fd).is_ok();
    if !is_unix_socket {
        return Err(format!("{ENV}={fd} is not a Unix socket"));
    }
    // SAFETY: the old process left this descriptor open for us alone and
    // named it in the variable, which no one reads after us (removed above).
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut tag = [0u8; 2];
    let mut iov = [IoSliceMut::new(&mut tag)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| format!("cannot receive the sockets: {e}"))?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for cmsg in msg.cmsgs().map_err(|e| format!("cannot read the message: {e}"))? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel just installed these descriptors in this
            // process for this message; nothing else knows them.
            fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    let mut fds = fds.into_iter();
    let listener = fds.next().map(TcpListener::from).ok_or("the old process sent no listening socket")?;
    let admin = fds.next().map(TcpListener::from);
    Ok(Some(Handover { ready: Ready(stream), listener, admin }))
}
// ANCHOR_END: inherited

// ANCHOR: start_new
/// In the running process: starts `argv` (the program's own path and
/// arguments), hands it `listener` and `admin`, and waits until it says it
/// is ready. On success the caller stops accepting and drains; on failure
/// the new process is gone and the caller serves on.
pub fn start_new(argv: &[String], listener: &TcpListener, admin: Option<&TcpListener>) -> Result<u32, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the running binary: {e}"))?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("cannot make a socket pair: {e}"))?;
    // The new process's end must survive exec; ours must not.
    fcntl(theirs.as_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
        .map_err(|e| format!("cannot pass the socket to the new process: {e}"))?;
    let mut child = Command::new(&exe)
        .args(argv.iter().skip(1))
        .env(ENV, theirs.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    drop(theirs);
    let sent = send(&ours, listener, admin).and_then(|()| wait_ready(&ours, &mut child));
    match sent {
        Ok(()) => Ok(child.id()),
        Err(why) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(why)
        }
    }
}
// ANCHOR_END: start_new

/// The sockets a running process would hand over: the balancer's and
/// the admin listener's, known once it listens, and the balancer's
/// replaced when a reload moves it (a second descriptor for a socket the
/// loop has closed would keep the old port open).
#[derive(Debug, Default)]
pub struct Sockets {
    now: Mutex<Option<Pair>>,
}

/// The balancer's socket and the admin listener's, if any.
type Pair = (Arc<TcpListener>, Option<Arc<TcpListener>>);

impl Sockets {
    /// The sockets the balancer started with.
    pub fn set(&self, listener: Arc<TcpListener>, admin: Option<Arc<TcpListener>>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = Some((listener, admin));
    }

    /// A reload moved the balancer to `listener`.
    pub fn moved(&self, listener: TcpListener) {
        if let Some(now) = self.now.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            now.0 = Arc::new(listener);
        }
    }

    /// Lets go of the sockets: the process is stopping, and a socket kept
    /// open here would go on taking clients that nobody serves (they would
    /// wait for the drain, then be reset). An upgrade after this has
    /// nothing to hand over.
    pub fn clear(&self) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn get(&self) -> Option<Pair> {
        self.now.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

// ANCHOR: upgrader
/// Upgrades the running process: on SIGUSR2 and on the admin API's
/// `POST /upgrade`, one at a time.
#[derive(Debug)]
pub struct Upgrader {
    argv: Vec<String>,
    sockets: Arc<Sockets>,
    busy: Mutex<()>,
    /// What to do once the new process serves, before draining.
    handed_over: OnceLock<HandedOver>,
}

/// Called once the new process serves: this one shares its admin socket
/// with it, and stops taking admin connections, so that every new admin
/// client (a reload, a scrape) reaches the process that stays.
pub struct HandedOver(pub Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for HandedOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandedOver(..)")
    }
}

impl Upgrader {
    /// Upgrades to `argv` (this program's own command line), handing over
    /// `sockets`.
    pub fn new(argv: Vec<String>, sockets: Arc<Sockets>) -> Self {
        Self { argv, sockets, busy: Mutex::new(()), handed_over: OnceLock::new() }
    }

    /// Sets what to do once a new process serves (set once).
    pub fn on_handed_over(&self, then: HandedOver) {
        let _ = self.handed_over.set(then);
    }

    /// Starts the new process and hands it the sockets; `Ok` with its
    /// pid once it serves. The caller then stops this process
    /// ([`stop_this`](Self::stop_this)). `by` names what asked, for the log.
    pub fn upgrade(&self, by: &str) -> Result<u32, String> {
        let started = self.start(by);
        match &started {
            Ok(pid) => {
                tracing::info!(pid, "upgrade: the new process serves; this one stops accepting and drains");
                if let Some(then) = self.handed_over.get() {
                    (then.0)();
                }
            }
            Err(why) => tracing::error!(by, error = %why, "upgrade failed; this process serves on"),
        }
        started
    }

    fn start(&self, by: &str) -> Result<u32, String> {
        let Ok(_one) = self.busy.try_lock() else {
            return Err("an upgrade is already under way".into());
        };
        let Some((listener, admin)) = self.sockets.get() else {
            return Err("nothing to upgrade (no configuration file, or not listening yet)".into());
        };
        tracing::info!(by, "upgrade: starting the new binary and handing it the listening sockets");
        start_new(&self.argv, &listener, admin.as_deref())
    }

    /// Stops accepting and drains, as SIGTERM does (it is SIGTERM).
    pub fn stop_this(&self) {
        let _ = kill(Pid::this(), Signal::SIGTERM);
    }
}
// ANCHOR_END: upgrader

// ANCHOR: on_sigusr2
/// Blocks SIGUSR2 (call it first in `main`, before any other thread
/// starts, so that every thread inherits the mask) and starts the thread
/// that waits for it. Each SIGUSR2 upgrades; once the new process serves,
/// this one stops accepting and drains. If the upgrade fails, this
/// process serves on and the log says why.
pub fn on_sigusr2(upgrader: Arc<Upgrader>) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR2);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(std::io::Error::from)?;
    // This thread starts before the signal thread blocks the server's
    // signals; it must not take them either (SIGTERM would then end the
    // process at once instead of draining it), not even before it runs.
    ch01_fundamentals::signals::spawn_masked("upgrade", move || {
        loop {
            if set.wait().is_err() {
                continue; // EINTR: wait again
            }
            if upgrader.upgrade("SIGUSR2").is_ok() {
                upgrader.stop_this();
                return;
            }
        }
    })?;
    Ok(())
}
// ANCHOR_END: on_sigusr2

/// One message: a tag, and the descriptors as `SCM_RIGHTS`.
fn send(stream: &UnixStream, listener: &TcpListener, admin: Option<&TcpListener>) -> Result<(), String> {
    let mut fds = vec![listener.as_raw_fd()];
    fds.extend(admin.map(AsRawFd::as_raw_fd));
    let tag: &[u8] = if admin.is_some() { b"LA" } else { b"L-" };
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(stream.as_raw_fd(), &[IoSlice::new(tag)], &cmsg, MsgFlags::empty(), None)
        .map_err(|e| format!("cannot send the sockets to the new process: {e}"))?;
    Ok(())
}

/// Reads the new process's `ready PID` line, checking every 100 ms that
/// it still runs, for at most [`READY_WITHIN`].
fn wait_ready(stream: &UnixStream, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + READY_WITHIN;
    stream.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => {
                let status = child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
                return Err(format!("the new process exited before it was ready ({status})"));
            }
            Ok(_) if line.starts_with("ready") => return Ok(()),
            Ok(_) => return Err(format!("the new process said {:?}, not ready", line.trim_end())),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("cannot hear from the new process: {e}")),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the new process exited before it was ready ({status})"));
        }
        if Instant::now() >= deadline {
            return Err(format!("the new process was not ready within {} s", READY_WITHIN.as_secs()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_sockets_arrive_through_scm_rights() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        send(&ours, &listener, Some(&admin)).unwrap();
        // Received in this process, as the new one would: new descriptors
        // for the same sockets (same addresses, one accept queue).
        let mut tag = [0u8; 2];
        let mut iov = [IoSliceMut::new(&mut tag)];
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let msg = recvmsg::<()>(theirs.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let fds: Vec<RawFd> = msg
            .cmsgs()
            .unwrap()
            .flat_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds,
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(fds.len(), 2);
        // SAFETY: just received, owned by nobody else.
        let got: Vec<TcpListener> =
            fds.into_iter().map(|fd| TcpListener::from(unsafe { OwnedFd::from_raw_fd(fd) })).collect();
        assert_ne!(got[0].as_raw_fd(), listener.as_raw_fd());
        assert_eq!(got[0].local_addr().unwrap(), listener.local_addr().unwrap());
        assert_eq!(got[1].local_addr().unwrap(), admin.local_addr().unwrap());
        // A connection queued before the old descriptor closes is accepted through the new one.
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        drop(listener);
        let (_, peer) = got[0].accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
    }
}
