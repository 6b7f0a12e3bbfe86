//! Active health checks inside the event loop.
//!
//! Chapter 4 probes from a thread that may block for the probe's timeout.
//! Here a blocking probe would stop every client, so a probe is one more
//! non-blocking socket in the same loop, with its own tiny state machine:
//! connecting → (HTTP only) request sent, reading the status line → done.
//! Its deadline is a timer like any other; the verdict goes through
//! chapter 4's `record_probe`, so rise/fall thresholds work the same.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use ch04_advanced::health::{Probe, probe_verdict, record_probe};

use super::{Due, Reactor, Token};
use crate::poller::{Event, Interest, Trigger};
use crate::timers::TimerId;

/// Most bytes of an answer read before giving a verdict.
const MAX_ANSWER: usize = 4096;

/// One probe in flight.
#[derive(Debug)]
pub struct ProbeConn {
    node: usize,
    stream: TcpStream,
    connected: bool,
    answer: Vec<u8>,
    timer: Option<TimerId>,
}

impl Reactor<'_> {
    // ANCHOR: start_probes
    /// Starts one probe per node of the set in use (unless its previous
    /// probe is still out). A node is known by its key here.
    pub(crate) fn start_probes(&mut self) {
        let now = Instant::now();
        let timeout = self.cur.config.health.timeout;
        let backends = std::sync::Arc::clone(&self.cur);
        for &node in backends.keys() {
            let Some(addr) = backends.addr(node) else { continue };
            if self.probing.get(node).copied().unwrap_or(true) {
                continue;
            }
            let stream = match super::conn::start_connect(addr) {
                Ok(s) => s,
                Err(e) => {
                    let n = self.node(node);
                    record_probe(n, false, &self.cur.config.health, now, &format!("connect: {e}"));
                    self.check_node_health(node);
                    continue;
                }
            };
            let slot =
                self.probes.insert(ProbeConn { node, stream, connected: false, answer: Vec::new(), timer: None });
            let Some(p) = self.probes.get_mut(slot) else { continue };
            if self.poller.register(&p.stream, Token::Probe(slot).encode(), Interest::WRITABLE, Trigger::Level).is_err()
            {
                self.probes.remove(slot);
                continue;
            }
            p.timer = Some(self.timers.insert(now + timeout, Due::Probe(slot)));
            if let Some(probing) = self.probing.get_mut(node) {
                *probing = true;
            }
        }
    }
    // ANCHOR_END: start_probes

    /// Readiness on a probe's socket.
    pub(crate) fn on_probe_event(&mut self, i: usize, event: &Event) {
        let Some(p) = self.probes.get_mut(i) else { return };
        let path = match &self.cur.config.health.probe {
            Probe::Http(path) => Some(path.clone()),
            Probe::Tcp | Probe::Off => None,
        };
        if !p.connected {
            if !(event.writable || event.error) {
                return;
            }
            if let Err(e) = p.stream.take_error().and_then(|err| err.map_or(Ok(()), Err)) {
                return self.finish_probe(i, Err(format!("connect: {e}")));
            }
            p.connected = true;
            let Some(path) = path else { return self.finish_probe(i, Ok(())) };
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: lbs-health\r\nUser-Agent: lbs-health\r\nConnection: close\r\n\r\n"
            );
            // A fresh socket's send buffer takes a hundred bytes at once; a
            // partial write here would mean something is badly wrong.
            match p.stream.write(request.as_bytes()) {
                Ok(n) if n == request.len() => {}
                Ok(_) => return self.finish_probe(i, Err("could not send the probe at once".into())),
                Err(e) => return self.finish_probe(i, Err(format!("send: {e}"))),
            }
            let token = Token::Probe(i).encode();
            if self.poller.reregister(&p.stream, token, Interest::READABLE, Trigger::Level).is_err() {
                return self.finish_probe(i, Err("cannot watch the probe".into()));
            }
            return;
        }
        if !event.readable {
            return;
        }
        let mut buf = [0u8; 1024];
        loop {
            match p.stream.read(&mut buf) {
                Ok(0) => {
                    let verdict = probe_verdict(&p.answer).map_err(|e| format!("closed early: {e}"));
                    return self.finish_probe(i, verdict);
                }
                Ok(n) => {
                    p.answer.extend_from_slice(buf.get(..n).unwrap_or_default());
                    if p.answer.windows(2).any(|w| w == b"\r\n") || p.answer.len() >= MAX_ANSWER {
                        let verdict = probe_verdict(&p.answer);
                        return self.finish_probe(i, verdict);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.finish_probe(i, Err(format!("read: {e}"))),
            }
        }
    }

    /// A probe's deadline passed.
    pub(crate) fn on_probe_timeout(&mut self, i: usize) {
        if let Some(p) = self.probes.get_mut(i) {
            p.timer = None;
            let t = self.cur.config.health.timeout;
            self.finish_probe(i, Err(format!("no answer within {t:?}")));
        }
    }

    fn finish_probe(&mut self, i: usize, verdict: Result<(), String>) {
        let Some(p) = self.probes.remove(i) else { return };
        if let Some(id) = p.timer {
            self.timers.cancel(id);
        }
        let _ = self.poller.deregister(&p.stream);
        if let Some(probing) = self.probing.get_mut(p.node) {
            *probing = false;
        }
        let node = self.node(p.node);
        let why = verdict.as_ref().err().cloned().unwrap_or_default();
        record_probe(node, verdict.is_ok(), &self.cur.config.health, Instant::now(), &why);
        self.check_node_health(p.node);
    }
}
