//! The echo server again, on one thread, with the `Poller`: the smallest
//! complete event loop, before the load balancer.
//!
//! Compare with chapter 1: there, each client had a thread that could block.
//! Here one thread owns every socket, every socket is non-blocking, and each
//! connection is a small record of where it stands: what it owes its client
//! (bytes read but not yet echoed) and whether the client has finished
//! sending. The loop:
//!
//! 1. sleep in `Poller::wait` until a socket is ready or the next timer is due;
//! 2. for the listener: accept until `WouldBlock`;
//! 3. for a client: read until `WouldBlock` *or the buffer is full*, write
//!    until `WouldBlock` or the buffer is empty, then choose what to wait
//!    for next: readable only while there is room (backpressure: a client
//!    that does not read its echo stops being read), writable only while
//!    bytes are owed;
//! 4. close connections whose idle timer fired.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ch01_fundamentals::server::Shutdown;

use crate::poller::{Event, Interest, Mechanism, Poller, Trigger};
use crate::timers::{TimerId, Timers};

/// How the event-loop echo server behaves.
#[derive(Debug, Clone, Copy)]
pub struct EchoConfig {
    /// Which readiness system call to use.
    pub backend: Mechanism,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more are closed on arrival.
    pub max_connections: usize,
    /// Bytes owed to one client before we stop reading from it.
    pub buffer: usize,
}

impl Default for EchoConfig {
    fn default() -> Self {
        Self {
            backend: Mechanism::best(),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            buffer: 16 * 1024,
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EchoStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed because they were idle.
    pub idle_closed: u64,
    /// Bytes echoed.
    pub bytes: u64,
}

/// One client.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet written back.
    owed: Vec<u8>,
    /// The client has finished sending.
    read_done: bool,
    idle: TimerId,
    interest: Interest,
}

const LISTENER: usize = usize::MAX;

// ANCHOR: echo_loop
/// Runs the single-threaded echo server until `shutdown` fires.
pub fn run(listener: TcpListener, config: EchoConfig, shutdown: Shutdown) -> io::Result<EchoStats> {
    listener.set_nonblocking(true)?;
    shutdown.wake_listener(listener.local_addr()?);
    let mut poller = Poller::new(config.backend)?;
    poller.register(&listener, LISTENER, Interest::READABLE, Trigger::Level)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut timers: Timers<usize> = Timers::new();
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let mut stats = EchoStats::default();
    let mut live = 0usize;

    while !shutdown.is_triggered() {
        let timeout = timers.timeout(Instant::now());
        poller.wait(&mut events, timeout)?;
        if shutdown.is_triggered() {
            break; // the wake-up connection, or a client that came too late
        }
        let now = Instant::now();
        for event in &events {
            if event.token == LISTENER {
                accept_all(
                    &listener,
                    &mut poller,
                    &mut conns,
                    &mut free,
                    &mut timers,
                    &mut live,
                    &mut stats,
                    &config,
                    now,
                );
                continue;
            }
            let Some(conn) = conns.get_mut(event.token).and_then(Option::as_mut) else { continue };
            let keep = serve(conn, &config, &mut stats);
            if keep {
                // Activity: push the idle deadline back.
                timers.cancel(conn.idle);
                conn.idle = timers.insert(now + config.idle_timeout, event.token);
                let wanted = interest(conn, &config);
                if wanted != conn.interest
                    && poller.reregister(&conn.stream, event.token, wanted, Trigger::Level).is_ok()
                {
                    conn.interest = wanted;
                }
            }
            if !keep {
                close(event.token, &mut poller, &mut conns, &mut free, &mut timers, &mut live);
            }
        }
        while let Some((_, token)) = timers.pop_expired(now) {
            stats.idle_closed += 1;
            tracing::debug!(token, "idle connection closed");
            close(token, &mut poller, &mut conns, &mut free, &mut timers, &mut live);
        }
    }
    Ok(stats)
}
// ANCHOR_END: echo_loop

/// Readable while there is room and the client still sends; writable while
/// bytes are owed. (Never neither: then the connection is finished.)
fn interest(conn: &Conn, config: &EchoConfig) -> Interest {
    Interest { readable: !conn.read_done && conn.owed.len() < config.buffer, writable: !conn.owed.is_empty() }
}

#[allow(clippy::too_many_arguments)] // the loop's state, passed explicitly so each piece can be read alone
fn accept_all(
    listener: &TcpListener,
    poller: &mut Poller,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
    timers: &mut Timers<usize>,
    live: &mut usize,
    stats: &mut EchoStats,
    config: &EchoConfig,
    now: Instant,
) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and the like: leave the rest queued for later.
                tracing::warn!(error = %e, "accept failed");
                return;
            }
        };
        if *live >= config.max_connections
            || stream.set_nonblocking(true).is_err()
            || ch01_fundamentals::net::tune_accepted(&stream).is_err()
        {
            continue; // dropped: closed
        }
        let token = free.pop().unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        if poller.register(&stream, token, Interest::READABLE, Trigger::Level).is_err() {
            free.push(token);
            continue;
        }
        let idle = timers.insert(now + config.idle_timeout, token);
        conns[token] = Some(Conn { stream, owed: Vec::new(), read_done: false, idle, interest: Interest::READABLE });
        *live += 1;
        stats.accepted += 1;
    }
}

// ANCHOR: serve_conn
/// Moves as many bytes as the sockets allow. Returns false when the
/// connection is finished (or broken) and should be closed.
fn serve(conn: &mut Conn, config: &EchoConfig, stats: &mut EchoStats) -> bool {
    let mut chunk = [0u8; 4096];
    // Read until WouldBlock, end of stream, or no more room.
    while !conn.read_done && conn.owed.len() < config.buffer {
        let room = (config.buffer - conn.owed.len()).min(chunk.len());
        match conn.stream.read(&mut chunk[..room]) {
            Ok(0) => conn.read_done = true,
            Ok(n) => conn.owed.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    // Write until WouldBlock or nothing is owed.
    while !conn.owed.is_empty() {
        match conn.stream.write(&conn.owed) {
            Ok(0) => return false,
            Ok(n) => {
                conn.owed.drain(..n);
                stats.bytes += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    if conn.read_done && conn.owed.is_empty() {
        // Everything echoed: pass the half-close on, and finish.
        let _ = conn.stream.shutdown(Direction::Write);
        return false;
    }
    true
}
// ANCHOR_END: serve_conn

fn close(
    token: usize,
    poller: &mut Poller,
    conns: &mut [Option<Conn>],
    free: &mut Vec<usize>,
    timers: &mut Timers<usize>,
    live: &mut usize,
) {
    if let Some(conn) = conns.get_mut(token).and_then(Option::take) {
        let _ = poller.deregister(&conn.stream);
        timers.cancel(conn.idle);
        free.push(token);
        *live -= 1;
    }
}
