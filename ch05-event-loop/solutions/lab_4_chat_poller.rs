//! # Lab 4 — a chat server on the Poller (reference solution)
//!
//! Broadcasting appends to each recipient's `owed` buffer and tries to
//! flush it at once; whatever the socket cannot take waits for a writable
//! event. A recipient whose buffer passes the limit is closed, so one slow
//! reader costs at most `MAX_OWED` bytes and never delays anyone. The task
//! is in `src/labs/lab_4_chat_poller.rs`.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};

use ch01_fundamentals::server::Shutdown;

use crate::poller::{Event, Interest, Mechanism, Poller, Trigger};

/// Longest line relayed, in bytes.
pub const MAX_LINE: usize = 1024;
/// Most bytes owed to one client before it is disconnected.
pub const MAX_OWED: usize = 64 * 1024;

const LISTENER: usize = usize::MAX;

struct Client {
    stream: TcpStream,
    id: u64,
    /// The line being received.
    line: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    owed: Vec<u8>,
    writable_interest: bool,
}

impl Client {
    /// Queues bytes; false if that passes the limit.
    fn queue(&mut self, bytes: &[u8]) -> bool {
        if self.owed.len() + bytes.len() > MAX_OWED {
            return false;
        }
        self.owed.extend_from_slice(bytes);
        true
    }

    /// Writes owed bytes until WouldBlock; false if the socket failed.
    fn flush(&mut self) -> bool {
        while !self.owed.is_empty() {
            match self.stream.write(&self.owed) {
                Ok(0) => return false,
                Ok(n) => {
                    self.owed.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// Reads what is available; returns complete lines (or `None` for an
/// over-long one) and whether the client is still there.
fn read_lines(c: &mut Client) -> (Vec<Option<Vec<u8>>>, bool) {
    let mut lines = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match c.stream.read(&mut buf) {
            Ok(0) => return (lines, false),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (lines, true),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return (lines, false),
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                if c.skipping {
                    c.skipping = false;
                } else {
                    if c.line.last() == Some(&b'\r') {
                        c.line.pop();
                    }
                    lines.push(Some(std::mem::take(&mut c.line)));
                }
            } else if !c.skipping {
                c.line.push(b);
                // One byte of slack for a CR before the newline.
                if c.line.len() > MAX_LINE + 1 {
                    c.line.clear();
                    c.skipping = true;
                    lines.push(None);
                }
            }
        }
    }
}

/// Runs the chat server until `shutdown` fires.
pub fn run(listener: TcpListener, backend: Mechanism, shutdown: Shutdown) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    shutdown.wake_listener(listener.local_addr()?);
    let mut poller = Poller::new(backend)?;
    poller.register(&listener, LISTENER, Interest::READABLE, Trigger::Level)?;
    // Token = client id: ids are never reused, so a late event for a
    // closed client cannot reach a new one.
    let mut clients: BTreeMap<usize, Client> = BTreeMap::new();
    let mut next_id = 0u64;
    let mut events: Vec<Event> = Vec::new();

    while !shutdown.is_triggered() {
        poller.wait(&mut events, None)?;
        if shutdown.is_triggered() {
            break;
        }
        let mut gone: Vec<usize> = Vec::new();
        for event in &events {
            if event.token == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            // Small writes go out at once: Nagle's algorithm and the
                            // reader's delayed ACK would add ~40 ms per message.
                            if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                                continue;
                            }
                            next_id += 1;
                            let token = next_id as usize;
                            let mut c = Client {
                                stream,
                                id: next_id,
                                line: Vec::new(),
                                skipping: false,
                                owed: format!("welcome client-{next_id}\n").into_bytes(),
                                writable_interest: true,
                            };
                            if poller.register(&c.stream, token, Interest::BOTH, Trigger::Level).is_ok() && c.flush() {
                                clients.insert(token, c);
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                continue;
            }
            let Some(c) = clients.get_mut(&event.token) else { continue };
            if event.writable && !c.flush() {
                gone.push(event.token);
                continue;
            }
            if !event.readable {
                continue;
            }
            let (lines, alive) = read_lines(c);
            let sender = c.id;
            for line in lines {
                match line {
                    None => {
                        if let Some(c) = clients.get_mut(&event.token)
                            && !c.queue(b"ERR line too long\n")
                        {
                            gone.push(event.token);
                        }
                    }
                    Some(text) if text.starts_with(b"/msg ") => {
                        // To one client, or an error to the sender alone.
                        let (to, msg) = match private(&text, sender) {
                            Ok((id, msg)) if clients.contains_key(&(id as usize)) => (id as usize, msg),
                            Ok((id, _)) => (event.token, format!("ERR no such client: client-{id}\n").into_bytes()),
                            Err(usage) => (event.token, usage.to_vec()),
                        };
                        if let Some(c) = clients.get_mut(&to)
                            && !(c.queue(&msg) && c.flush())
                        {
                            gone.push(to);
                        }
                    }
                    Some(text) => {
                        let mut msg = format!("client-{sender}: ").into_bytes();
                        msg.extend_from_slice(&text);
                        msg.push(b'\n');
                        for (&token, other) in clients.iter_mut() {
                            if token != event.token && !(other.queue(&msg) && other.flush()) {
                                gone.push(token);
                            }
                        }
                    }
                }
            }
            if !alive {
                gone.push(event.token);
            }
        }
        for token in gone {
            if let Some(c) = clients.remove(&token) {
                let _ = poller.deregister(&c.stream);
            }
        }
        // Ask for writability only where bytes are owed.
        for (&token, c) in clients.iter_mut() {
            let want = !c.owed.is_empty();
            if want != c.writable_interest {
                let interest = if want { Interest::BOTH } else { Interest::READABLE };
                if poller.reregister(&c.stream, token, interest, Trigger::Level).is_ok() {
                    c.writable_interest = want;
                }
            }
        }
    }
    Ok(())
}

/// `/msg client-M TEXT` from `sender`: M and the line M gets, or the usage error.
fn private(line: &[u8], sender: u64) -> Result<(u64, Vec<u8>), &'static [u8]> {
    const USAGE: &[u8] = b"ERR usage: /msg client-N text\n";
    let rest = line.strip_prefix(b"/msg client-").ok_or(USAGE)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, text) = (rest.get(..digits).ok_or(USAGE)?, rest.get(digits..).ok_or(USAGE)?);
    let text = text.strip_prefix(b" ").filter(|t| !t.is_empty()).ok_or(USAGE)?;
    let id: u64 = std::str::from_utf8(number).ok().and_then(|n| n.parse().ok()).ok_or(USAGE)?;
    let mut msg = format!("client-{sender} (private): ").into_bytes();
    msg.extend_from_slice(text);
    msg.push(b'\n');
    Ok((id, msg))
}
