//! A thread-per-connection TCP server with a clean shutdown.
//!
//! The model is the oldest and simplest one: the main thread sits in
//! `accept()`, and every accepted connection gets a thread of its own that
//! may block as much as it likes. It is easy to reason about, and it costs
//! one thread stack (and one context switch per wake-up) per client, which
//! is what chapter 5 replaces with an event loop.
//!
//! Shutting such a server down is the interesting part: a thread blocked in
//! `accept()` or `read()` only wakes when something happens on its socket.
//! [`Shutdown::trigger`] therefore makes something happen: it connects to
//! the listener once (waking `accept`) and the server shuts down the
//! sockets of every live connection (waking their `read`s with end of
//! stream), then joins all the threads.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown as Direction, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Connections served at once unless configured otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Locks a mutex even if a thread panicked while holding it: the data here
/// (maps of sockets and handles) stays valid whatever a handler did.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ANCHOR: shutdown
/// A cloneable "please stop" signal shared by a server and whoever runs it.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug, Default)]
struct ShutdownInner {
    triggered: AtomicBool,
    /// Listeners to poke so that a blocked `accept()` returns.
    listeners: Mutex<Vec<SocketAddr>>,
    /// Other ways to wake a waiting thread (an event loop's own waker).
    wakers: Mutex<Vec<Waker>>,
    /// Wakes threads sleeping in [`Shutdown::wait_timeout`].
    fired: Condvar,
}

impl Shutdown {
    /// A signal that has not fired yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal and wakes every server waiting on it.
    pub fn trigger(&self) {
        {
            // Under the lock, so a thread about to wait cannot miss it.
            let _guard = lock(&self.inner.listeners);
            self.inner.triggered.store(true, Ordering::SeqCst);
            self.inner.fired.notify_all();
        }
        for waker in lock(&self.inner.wakers).iter() {
            (waker.0)();
        }
        for addr in lock(&self.inner.listeners).iter() {
            // A throwaway connection makes `accept()` return; the server
            // then sees the flag. Failure only means nobody is listening.
            let _ = TcpStream::connect_timeout(&wake_address(*addr), Duration::from_secs(1));
        }
    }

    /// Makes [`trigger`](Self::trigger) call `wake` once, to wake a loop
    /// that has a waker of its own (chapter 5's event loop). Unlike a
    /// connection to the listener, it cannot be answered by another
    /// process that shares the listening socket (chapter 10's upgrade).
    pub fn on_trigger(&self, wake: impl Fn() + Send + Sync + 'static) {
        lock(&self.inner.wakers).push(Waker(Box::new(wake)));
    }

    /// Whether [`trigger`](Self::trigger) has been called.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Sleeps for up to `timeout`, waking early if the signal fires.
    /// Returns whether it has fired: a periodic task's loop condition.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = lock(&self.inner.listeners);
        let _ = self
            .inner
            .fired
            .wait_timeout_while(guard, timeout, |_| !self.is_triggered())
            .unwrap_or_else(PoisonError::into_inner);
        self.is_triggered()
    }

    /// Makes [`trigger`](Self::trigger) connect to `addr` once, to wake a
    /// loop waiting for readiness on the listener there (chapter 5's
    /// event loop registers its listener this way).
    pub fn wake_listener(&self, addr: SocketAddr) {
        self.register(addr);
    }

    fn register(&self, addr: SocketAddr) {
        lock(&self.inner.listeners).push(addr);
    }
}
// ANCHOR_END: shutdown

/// A function that wakes a waiting thread.
struct Waker(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// Where to connect to reach a listener: a wildcard address (0.0.0.0 or
/// ::) is not a destination, so the matching loopback address is used.
fn wake_address(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// Limits of a [`serve`] loop.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Connections handled at once; more are accepted, told `busy_reply`
    /// and closed at once,
    /// so a flood of clients cannot exhaust threads or memory.
    pub max_connections: usize,
    /// On shutdown, how long connections in progress may take to finish
    /// on their own before they are cut (zero: cut at once). The listener
    /// is closed first, so no new connection arrives meanwhile.
    pub drain_timeout: Duration,
    /// What a connection that cannot be served (the limit is reached, or
    /// the process is out of descriptors or threads) is told before it is
    /// closed: an HTTP server says 503 here. Empty: it is just closed.
    pub busy_reply: &'static [u8],
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { max_connections: DEFAULT_MAX_CONNECTIONS, drain_timeout: Duration::ZERO, busy_reply: b"" }
    }
}

/// Refuses a connection we cannot serve: one try at telling it why,
/// never blocking the accept loop, then the close.
fn refuse(stream: TcpStream, reply: &[u8]) {
    if !reply.is_empty() && stream.set_nonblocking(true).is_ok() {
        let _ = (&stream).write(reply);
    }
}

/// What a server did in its life, returned when it stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServeStats {
    /// Connections handed to the handler.
    pub accepted: u64,
    /// Connections refused at once (told `busy_reply`): `max_connections`
    /// was reached, or no descriptor or thread was left for them.
    pub refused: u64,
}

/// The live connections: a clone of each socket, so shutdown can wake the
/// thread that owns it, and the thread's handle, so shutdown can wait for it.
#[derive(Debug, Default)]
struct Connections {
    sockets: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<HashMap<u64, JoinHandle<()>>>,
    /// Signalled whenever a connection ends (for draining).
    ended: Condvar,
}

// ANCHOR: serve
/// Accepts connections on `listener` and runs `handler` for each one on a
/// thread of its own, until `shutdown` fires. Then every connection is
/// shut down and every thread joined before this returns.
pub fn serve<H>(listener: TcpListener, shutdown: Shutdown, config: ServerConfig, handler: H) -> io::Result<ServeStats>
where
    H: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
{
    let local = listener.local_addr()?;
    shutdown.register(local);
    let handler = Arc::new(handler);
    let conns = Arc::new(Connections::default());
    let next_id = AtomicU64::new(0);
    let mut stats = ServeStats::default();

    while !shutdown.is_triggered() {
        let (stream, peer) = match listener.accept() {
            Ok(pair) => pair,
            // EINTR, or a client that gave up while queued: not our problem.
            Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => continue,
            Err(e) => {
                // EMFILE and friends: log, back off a little, keep serving.
                tracing::warn!(error = %e, "accept failed");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shutdown.is_triggered() {
            break; // That was the wake-up connection (or a late client).
        }
        reap_finished(&conns);
        if lock(&conns.sockets).len() >= config.max_connections {
            stats.refused += 1;
            tracing::warn!(%peer, max = config.max_connections, "connection limit reached, closing");
            refuse(stream, config.busy_reply);
            continue;
        }
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = super::net::tune_accepted(&stream) {
            tracing::debug!(%peer, error = %e, "could not set socket options");
        }
        match stream.try_clone() {
            Ok(clone) => lock(&conns.sockets).insert(id, clone),
            Err(e) => {
                stats.refused += 1;
                tracing::warn!(%peer, error = %e, "could not clone socket, closing");
                refuse(stream, config.busy_reply);
                if super::net::is_out_of_descriptors(&e) {
                    // Out of descriptors: accepting more now would only
                    // refuse them too. Back off; the rest wait in the backlog.
                    thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
        };
        stats.accepted += 1;
        tracing::debug!(%peer, id, "accepted");
        let (handler, conns2) = (Arc::clone(&handler), Arc::clone(&conns));
        let spawned = thread::Builder::new().name(format!("conn-{id}")).spawn(move || {
            // Forget our socket clone however the handler ends, panics
            // included: a clone left behind would keep the connection open.
            let _forget = Forget { conns: &conns2, id };
            if let Err(e) = handler(stream) {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
        match spawned {
            Ok(handle) => {
                lock(&conns.threads).insert(id, handle);
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "could not spawn a thread, closing");
                stats.refused += 1;
                if let Some(socket) = lock(&conns.sockets).remove(&id) {
                    refuse(socket, config.busy_reply);
                }
            }
        }
    }

    // Stop accepting: from here on, new clients are refused by the kernel.
    drop(listener);
    if !config.drain_timeout.is_zero() {
        drain(&conns, config.drain_timeout);
    }
    // Wake every connection thread: their blocked reads return 0 (EOF).
    for socket in lock(&conns.sockets).values() {
        let _ = socket.shutdown(Direction::Both);
    }
    let threads: Vec<_> = lock(&conns.threads).drain().map(|(_, h)| h).collect();
    for handle in threads {
        if handle.join().is_err() {
            tracing::error!("a connection handler panicked");
        }
    }
    tracing::info!(addr = %local, accepted = stats.accepted, "server stopped");
    Ok(stats)
}
// ANCHOR_END: serve

/// Removes a connection's socket clone when its thread ends (drop runs
/// during a panic's unwinding too).
struct Forget<'a> {
    conns: &'a Connections,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.conns.sockets).remove(&self.id);
        self.conns.ended.notify_all();
    }
}

// ANCHOR: drain
/// Waits until every connection has ended or `timeout` has passed.
fn drain(conns: &Connections, timeout: Duration) {
    let sockets = lock(&conns.sockets);
    let in_flight = sockets.len();
    if in_flight == 0 {
        return;
    }
    tracing::info!(in_flight, ?timeout, "draining connections");
    let (sockets, waited) =
        conns.ended.wait_timeout_while(sockets, timeout, |s| !s.is_empty()).unwrap_or_else(PoisonError::into_inner);
    if waited.timed_out() {
        tracing::warn!(left = sockets.len(), "drain timeout: closing the connections still open");
    } else {
        tracing::info!("all connections finished");
    }
}
// ANCHOR_END: drain

/// Joins the threads of connections that have ended, so the map of handles
/// does not grow with every connection the server has ever seen.
fn reap_finished(conns: &Connections) {
    let mut threads = lock(&conns.threads);
    let done: Vec<u64> = threads.iter().filter(|(_, h)| h.is_finished()).map(|(id, _)| *id).collect();
    for id in done {
        if let Some(handle) = threads.remove(&id)
            && handle.join().is_err()
        {
            tracing::error!(id, "a connection handler panicked");
        }
    }
}

/// Runs [`serve`] on a background thread; for tests and examples.
///
/// Returns the listener's address, the shutdown signal and the thread to
/// join. The listener is bound before this returns, so clients can connect
/// at once: no sleeping, no retrying.
pub fn spawn_server<H>(addr: SocketAddr, handler: H) -> io::Result<RunningServer>
where
    H: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
{
    let listener = super::net::listen(addr, super::net::DEFAULT_BACKLOG)?;
    let local = listener.local_addr()?;
    let shutdown = Shutdown::new();
    let s2 = shutdown.clone();
    let thread = thread::Builder::new()
        .name(format!("server-{local}"))
        .spawn(move || serve(listener, s2, ServerConfig::default(), handler))?;
    Ok(RunningServer { addr: local, shutdown, thread: Some(thread) })
}

/// A server started by [`spawn_server`]; stops it when dropped.
#[derive(Debug)]
pub struct RunningServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Its shutdown signal.
    pub shutdown: Shutdown,
    thread: Option<JoinHandle<io::Result<ServeStats>>>,
}

impl RunningServer {
    /// Stops the server and waits for every connection thread to end.
    pub fn stop(mut self) -> io::Result<ServeStats> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<ServeStats> {
        self.shutdown.trigger();
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Err(io::Error::other("server thread panicked"))),
            None => Ok(ServeStats::default()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn shutdown_wakes_accept_and_idle_connections() {
        let server = spawn_server("127.0.0.1:0".parse().unwrap(), |mut s: TcpStream| {
            s.write_all(b"!")?; // tells the client it is being served
            let mut buf = [0u8; 16];
            // Blocks until the client writes or the server shuts us down.
            while s.read(&mut buf)? > 0 {}
            Ok(())
        })
        .unwrap();
        let mut idle = TcpStream::connect(server.addr).unwrap();
        let mut hello = [0u8; 1];
        idle.read_exact(&mut hello).unwrap();
        let stats = server.stop().unwrap();
        assert_eq!(stats.accepted, 1);
        // The server closed its side: we read end of stream.
        let mut rest = Vec::new();
        idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);
    }

    #[test]
    fn a_panicking_handler_does_not_take_the_server_down() {
        let server = spawn_server("127.0.0.1:0".parse().unwrap(), |mut s: TcpStream| {
            let mut b = [0u8; 1];
            s.read_exact(&mut b)?;
            if b[0] == b'!' {
                panic!("handler bug");
            }
            s.write_all(&b)
        })
        .unwrap();
        let mut bad = TcpStream::connect(server.addr).unwrap();
        bad.write_all(b"!").unwrap();
        let mut good = TcpStream::connect(server.addr).unwrap();
        good.write_all(b"a").unwrap();
        let mut b = [0u8; 1];
        good.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"a");
        // The panicked connection was closed, not leaked.
        bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(bad.read(&mut b).unwrap(), 0);
    }

    #[test]
    fn connections_over_the_limit_hear_the_busy_reply_then_the_close() {
        let listener = crate::net::listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let s2 = shutdown.clone();
        let config = ServerConfig { max_connections: 1, busy_reply: b"busy\n", ..ServerConfig::default() };
        let t = thread::spawn(move || {
            serve(listener, s2, config, |mut s: TcpStream| {
                let mut buf = [0u8; 16];
                while s.read(&mut buf)? > 0 {}
                Ok(())
            })
        });
        let mut first = TcpStream::connect(addr).unwrap();
        first.write_all(b"hold").unwrap();
        let mut second = TcpStream::connect(addr).unwrap();
        second.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        second.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"busy\n");
        shutdown.trigger();
        assert_eq!(t.join().unwrap().unwrap(), ServeStats { accepted: 1, refused: 1 });
    }

    #[test]
    fn draining_lets_a_connection_in_progress_finish_and_refuses_new_ones() {
        let listener = crate::net::listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let s2 = shutdown.clone();
        let config = ServerConfig { drain_timeout: Duration::from_secs(30), ..ServerConfig::default() };
        let t = thread::spawn(move || {
            serve(listener, s2, config, |mut s: TcpStream| {
                s.write_all(b"1")?; // in progress
                let mut b = [0u8; 1];
                s.read_exact(&mut b)?; // finishes when the client says so
                s.write_all(b"2")
            })
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        shutdown.trigger();
        // New connections are refused once the listener is closed. The
        // trigger's own wake-up connection may be the last one accepted, so
        // try until refused (bounded).
        let refused = (0..100).any(|_| TcpStream::connect(addr).is_err());
        assert!(refused, "the listener was closed");
        // The connection in progress still completes.
        c.write_all(b"x").unwrap();
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"2");
        assert_eq!(t.join().unwrap().unwrap().accepted, 1);
    }

    #[test]
    fn wait_timeout_wakes_when_triggered() {
        let s = Shutdown::new();
        assert!(!s.wait_timeout(Duration::from_millis(1)));
        let s2 = s.clone();
        let t = thread::spawn(move || s2.wait_timeout(Duration::from_secs(60)));
        s.trigger();
        assert!(t.join().unwrap());
    }

    #[test]
    fn wildcard_addresses_are_woken_on_loopback() {
        let a: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(wake_address(a), "127.0.0.1:80".parse().unwrap());
        let b: SocketAddr = "[::]:80".parse().unwrap();
        assert_eq!(wake_address(b), "[::1]:80".parse().unwrap());
    }
}
