//! The two checks beside the load runs: many connections held at once,
//! and the memory an idle connection costs.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::load::read_response;
use super::servers::rss_bytes;

/// Client threads that open and drive the connections of a check.
const THREADS: usize = 8;
/// How long one connect may take. A full accept queue makes the client
/// resend its SYN after 1 s, then 3 s, so this is generous.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Each phase of a check (connecting, answering) ends by then at the latest.
const PHASE_LIMIT: Duration = Duration::from_secs(60);

/// What the many-connections check saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldResult {
    /// Connections asked for.
    pub target: usize,
    /// Connections open at once (all threads wait until every connect is done).
    pub held: usize,
    /// Requests answered 200.
    pub ok: usize,
    /// Failed connects, writes and reads, and answers other than 200.
    pub errors: usize,
    /// The first error, to say what went wrong.
    pub first_error: Option<String>,
    /// How long opening every connection took.
    pub open_time: Duration,
}

impl HeldResult {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn add(&mut self, other: HeldResult) {
        self.held += other.held;
        self.ok += other.ok;
        self.errors += other.errors;
        self.open_time = self.open_time.max(other.open_time);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Opens `target` connections, holds them all open at once, then sends one
/// `GET /` with `Connection: close` on every one and reads every answer.
///
/// Blocking sockets on a few threads: each thread connects its share, all
/// wait for each other (so every connection is open at the same moment),
/// then each writes all its requests and reads the answers in order, with a
/// deadline so a server that stops answering cannot hang the bench.
pub fn hold_many(addr: SocketAddr, target: usize) -> HeldResult {
    let threads = THREADS.min(target.max(1));
    let all_open = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let share = target / threads + usize::from(t < target % threads);
            let all_open = Arc::clone(&all_open);
            thread::spawn(move || hold_share(addr, share, &all_open))
        })
        .collect();
    let mut total = HeldResult { target, ..HeldResult::default() };
    for handle in handles {
        match handle.join() {
            Ok(part) => total.add(part),
            // A panic here is a bug in this file; say so rather than hide it.
            Err(_) => total.error("a client thread panicked".to_string()),
        }
    }
    total
}

fn hold_share(addr: SocketAddr, share: usize, all_open: &Barrier) -> HeldResult {
    let mut result = HeldResult::default();
    let started = Instant::now();
    let mut streams = Vec::with_capacity(share);
    for _ in 0..share {
        if started.elapsed() > PHASE_LIMIT {
            result.error(format!("connect: not all connections were open after {PHASE_LIMIT:?}"));
            continue;
        }
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => streams.push(s),
            Err(e) => result.error(format!("connect: {e}")),
        }
    }
    result.held = streams.len();
    // Every thread's connections are open now, all at the same time.
    all_open.wait();
    result.open_time = started.elapsed();

    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut sent = Vec::with_capacity(streams.len());
    for mut stream in streams {
        match stream.write_all(request.as_bytes()) {
            Ok(()) => sent.push(stream),
            Err(e) => result.error(format!("write: {e}")),
        }
    }
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut buf = Vec::new();
    for mut stream in sent {
        buf.clear();
        match read_response(&mut stream, &mut buf, deadline) {
            Ok(r) if r.status == 200 => result.ok += 1,
            Ok(r) => result.error(format!("answered {}", r.status)),
            Err(e) => result.error(format!("read: {e}")),
        }
    }
    result
}

/// What the idle-memory check saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleResult {
    /// Connections opened.
    pub opened: usize,
    /// Of those, still open when memory was read (a server with a
    /// connection cap closes the rest at once).
    pub held: usize,
    /// Resident memory before, in bytes.
    pub before: u64,
    /// Resident memory with the connections open.
    pub after: u64,
    /// From the first connect until memory was read the second time: a
    /// server that closes connections idle for longer has closed some.
    pub took: Duration,
}

impl IdleResult {
    /// Bytes of resident memory per connection held; `None` when none was.
    pub fn per_connection(&self) -> Option<u64> {
        (self.held > 0).then(|| self.after.saturating_sub(self.before) / self.held as u64)
    }
}

/// Reads `pid`'s resident memory, opens `count` connections to `addr` that
/// send nothing, waits until the memory stops growing (a read every 100 ms,
/// done after three equal reads in a row or 5 s), reads it again, counts
/// the connections the server kept, and closes them all.
pub fn idle_memory(addr: SocketAddr, pid: u32, count: usize) -> Result<IdleResult> {
    let before = rss_bytes(pid)?;
    let started = Instant::now();
    let threads = THREADS.min(count.max(1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let share = count / threads + usize::from(t < count % threads);
            thread::spawn(move || {
                (0..share).filter_map(|_| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).ok()).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(count);
    for handle in handles {
        // A connect thread has nothing that can panic; if one did, its
        // connections are simply not counted.
        if let Ok(part) = handle.join() {
            streams.extend(part);
        }
    }

    let after = settled_rss(pid)?;
    let took = started.elapsed();
    let held = streams.iter().filter(|s| still_open(s)).count();
    let opened = streams.len();
    drop(streams);
    Ok(IdleResult { opened, held, before, after, took })
}

/// `pid`'s resident memory once it stops growing: a read every 100 ms,
/// done after three equal reads in a row or 5 s.
pub fn settled_rss(pid: u32) -> Result<u64> {
    let mut after = rss_bytes(pid)?;
    let mut same = 0;
    let settle = Instant::now();
    while same < 3 && settle.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(100));
        let now = rss_bytes(pid)?;
        same = if now == after { same + 1 } else { 0 };
        after = now;
    }
    Ok(after)
}

/// What the idle-pooled-connection check saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PooledMemory {
    /// Backend connections the pooled process kept idle.
    pub kept: u64,
    /// Resident memory of the process with the pool, and of the one without.
    pub with_pool: u64,
    /// The same without the pool.
    pub without_pool: u64,
}

impl PooledMemory {
    /// Bytes of resident memory per idle pooled backend connection.
    pub fn per_connection(&self) -> Option<u64> {
        (self.kept > 0).then(|| self.with_pool.saturating_sub(self.without_pool) / self.kept)
    }
}

/// The memory an idle pooled backend connection costs `pooled_lb`: two
/// processes, one with the pool and one with `--no-pool`, each serve
/// `count` requests at once (`/slow`, so all are in flight together and
/// the pooled one opens `count` backend connections), their clients stay
/// connected; the difference of the two resident sizes, divided by the
/// backend connections kept, is what the pool holds per connection.
/// `start` runs the program with or without `--no-pool` and returns it
/// with its address and pid.
pub fn pooled_memory(
    mut start: impl FnMut(bool) -> Result<(super::servers::Server, SocketAddr)>,
    backend: SocketAddr,
    count: usize,
) -> Result<PooledMemory> {
    let mut rss = [0u64; 2];
    let mut kept = 0;
    for (i, pooled) in [true, false].into_iter().enumerate() {
        let (server, addr) = start(pooled)?;
        let before = super::load::backend_counters(backend, CONNECT_TIMEOUT)?;
        let threads = THREADS.min(count.max(1));
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let share = count / threads + usize::from(t < count % threads);
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || slow_requests(addr, share, &barrier))
            })
            .collect();
        let mut clients = Vec::new();
        for handle in handles {
            if let Ok(part) = handle.join() {
                clients.extend(part?);
            }
        }
        let after = settled_rss(server.pid())?;
        if let Some(slot) = rss.get_mut(i) {
            *slot = after;
        }
        if pooled {
            let now = super::load::backend_counters(backend, CONNECT_TIMEOUT)?;
            kept = now.accepted.saturating_sub(before.accepted);
        }
        drop(clients);
        server.stop()?;
    }
    let [with_pool, without_pool] = rss;
    Ok(PooledMemory { kept, with_pool, without_pool })
}

/// Opens `n` keep-alive connections, sends `GET /slow?ms=1000` on each
/// (all sent before the first answer can come back), reads every answer,
/// and returns the connections, still open.
fn slow_requests(addr: SocketAddr, n: usize, start: &Barrier) -> Result<Vec<TcpStream>> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        streams.push(TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?);
    }
    start.wait();
    let request = format!("GET /slow?ms=1000 HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    for s in &mut streams {
        s.write_all(request.as_bytes())?;
    }
    let deadline = Instant::now() + PHASE_LIMIT;
    for s in &mut streams {
        let mut buf = Vec::new();
        let r = read_response(s, &mut buf, deadline)?;
        if r.status != 200 {
            anyhow::bail!("GET /slow answered {}", r.status);
        }
    }
    Ok(streams)
}

/// Whether the server has not closed this connection: a non-blocking peek
/// finds no data and no end of stream.
fn still_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte) {
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        // 0: the server closed it; data: something unexpected (an error page).
        Ok(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn holds_connections_and_counts_answers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers the first 20 connections with 200 and the rest with 503,
        // each once, then closes it.
        thread::spawn(move || {
            for (i, stream) in listener.incoming().flatten().enumerate() {
                thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let status = if i < 20 { "200 OK" } else { "503 Busy" };
                    let _ = stream.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
                });
            }
        });
        let r = hold_many(addr, 25);
        assert_eq!((r.target, r.held, r.ok, r.errors), (25, 25, 20, 5), "{r:?}");
        assert_eq!(r.first_error.as_deref(), Some("answered 503"));
    }
}
