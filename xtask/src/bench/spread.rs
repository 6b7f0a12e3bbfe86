//! How new connections are spread over several event loops, the choice
//! behind chapter 10's workers: one listening socket that every loop
//! watches with `EPOLLEXCLUSIVE` (what `hot_reload_lb --workers` does),
//! against a socket per loop bound with `SO_REUSEPORT`.
//!
//! Each loop is chapter 5's poller on a thread of its own; it accepts
//! what its poller reports, spends `WORK` on each connection (standing
//! in for serving it), writes a byte and closes it. The clients connect
//! one after another (light load: one client) or many at once (heavy
//! load), and wait for the byte, so every connection is counted once by
//! the loop that accepted it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ch05_event_loop::poller::{Event, Interest, Mechanism, Poller, Trigger};

/// Time a loop spends on each connection it accepts.
const WORK: Duration = Duration::from_micros(50);

/// How the loops listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// One socket, a descriptor per loop, registered with `EPOLLEXCLUSIVE`.
    Exclusive,
    /// A socket per loop on the same port, with `SO_REUSEPORT`.
    ReusePort,
}

fn bound(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener> {
    let listener = super::handover::listener(addr, reuse_port)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// One loop: accepts until `stop`, returns how many it accepted.
fn serve(listener: TcpListener, trigger: Trigger, stop: Arc<AtomicBool>) -> Result<usize> {
    let mut poller = Poller::new(Mechanism::best())?;
    poller.register(&listener, 0, Interest::READABLE, trigger)?;
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let mut accepted = 0;
    while !stop.load(Ordering::Relaxed) {
        poller.wait(&mut events, Some(Duration::from_millis(10)))?;
        if events.is_empty() {
            continue;
        }
        loop {
            match listener.accept() {
                Ok((mut s, _)) => {
                    accepted += 1;
                    let until = Instant::now() + WORK;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    let _ = s.write_all(b"x");
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(accepted)
}

/// `total` connections from `clients` clients at once, over `loops`
/// loops listening `way`: how many each loop accepted.
pub fn spread(way: Way, loops: usize, clients: usize, total: usize) -> Result<Vec<usize>> {
    let first = bound("127.0.0.1:0".parse()?, way == Way::ReusePort)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..loops {
        listeners.push(match way {
            Way::Exclusive => listeners.first().context("a listener")?.try_clone()?,
            Way::ReusePort => bound(addr, true)?,
        });
    }
    let trigger = if way == Way::Exclusive { Trigger::Exclusive } else { Trigger::Level };
    let stop = Arc::new(AtomicBool::new(false));
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|l| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || serve(l, trigger, stop))
        })
        .collect();
    let each = total / clients.max(1);
    let callers: Vec<_> = (0..clients)
        .map(|_| {
            thread::spawn(move || -> Result<()> {
                for _ in 0..each {
                    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                    c.set_read_timeout(Some(Duration::from_secs(5)))?;
                    let mut b = [0u8; 1];
                    c.read_exact(&mut b)?;
                }
                Ok(())
            })
        })
        .collect();
    let mut failed = None;
    for c in callers {
        if let Err(e) = c.join().map_err(|_| anyhow::anyhow!("a client panicked")).and_then(|r| r) {
            failed.get_or_insert(e);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut counts = Vec::new();
    for s in servers {
        counts.push(s.join().map_err(|_| anyhow::anyhow!("a loop panicked"))??);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(counts),
    }
}

/// The table `cargo xtask bench --spread` prints: both ways, light and
/// heavy load, two loops.
pub fn report() -> Result<String> {
    const TOTAL: usize = 4000;
    let mut out = String::new();
    for (way, name) in
        [(Way::Exclusive, "one socket, EPOLLEXCLUSIVE"), (Way::ReusePort, "a socket per loop, SO_REUSEPORT")]
    {
        for (clients, load) in [(1, "1 client, one connection after another"), (16, "16 clients at once")] {
            let counts = spread(way, 2, clients, TOTAL)?;
            let shares: Vec<String> = counts
                .iter()
                .enumerate()
                .map(|(i, n)| format!("loop {i} {n} ({:.0} %)", *n as f64 * 100.0 / TOTAL as f64))
                .collect();
            out.push_str(&format!("  {name:<34} {load:<40} {}\n", shares.join(", ")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_is_accepted_once_by_some_loop_either_way() {
        for way in [Way::Exclusive, Way::ReusePort] {
            let counts = spread(way, 2, 4, 200).unwrap();
            assert_eq!(counts.len(), 2);
            assert_eq!(counts.iter().sum::<usize>(), 200, "{way:?}: {counts:?}");
        }
    }
}
