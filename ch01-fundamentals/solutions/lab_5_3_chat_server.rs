//! # Lab 5.3 — a chat server (reference solution)
//!
//! One reader (the connection's handler thread) and one writer thread per
//! client, joined by a bounded queue. Broadcasting only ever *tries* to
//! enqueue, so a client that stops reading fills its own queue and is cut
//! off, instead of blocking the sender and, through it, everybody. The
//! task is in `src/labs/lab_5_3_chat_server.rs`.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown as Both, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::io::write_all;
use crate::lines::{BoundedLines, Line};
use crate::server::{ServerConfig, Shutdown, serve};

/// Messages waiting for one client before it counts as too slow.
pub const QUEUE_LEN: usize = 256;

/// One message, shared by every queue it is put in.
pub type Message = Arc<[u8]>;

/// Step 1: `client-N: L\n` for line `text` from client `from`.
pub fn message(from: u64, text: &[u8]) -> Message {
    let mut msg = format!("client-{from}: ").into_bytes();
    msg.extend_from_slice(text);
    msg.push(b'\n');
    msg.into()
}

/// A member of the room: its queue and a handle to cut it off.
#[derive(Debug)]
struct Member {
    queue: SyncSender<Message>,
    socket: TcpStream,
}

#[derive(Debug, Default)]
struct Members {
    by_id: HashMap<u64, Member>,
    last_id: u64,
}

/// Step 2: the clients in the chat, by id.
#[derive(Debug, Default)]
pub struct Room {
    members: Mutex<Members>,
}

impl Room {
    /// An empty room.
    pub fn new() -> Self {
        Self::default()
    }

    fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers a new member (1, 2, ...), queues its welcome line, and adds
    /// it with its queue and socket; returns its id.
    pub fn join(&self, queue: SyncSender<Message>, socket: TcpStream) -> u64 {
        let mut members = self.members();
        members.last_id += 1;
        let id = members.last_id;
        // Under the lock, before it is a member: no broadcast can come first.
        let _ = queue.try_send(format!("welcome client-{id}\n").into_bytes().into());
        members.by_id.insert(id, Member { queue, socket });
        id
    }

    /// Removes member `id`, if it is still there.
    pub fn leave(&self, id: u64) {
        self.members().by_id.remove(&id);
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members().by_id.len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `msg` for everyone but `from`; drops members that are too slow.
    pub fn broadcast(&self, from: u64, msg: Message) {
        let mut guard = self.members();
        let members = &mut guard.by_id;
        let mut gone = Vec::new();
        for (&id, member) in members.iter() {
            if id == from {
                continue;
            }
            match member.queue.try_send(Arc::clone(&msg)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(client = id, "queue full, disconnecting slow client");
                    let _ = member.socket.shutdown(Both::Both);
                    gone.push(id);
                }
                Err(TrySendError::Disconnected(_)) => gone.push(id),
            }
        }
        for id in gone {
            members.remove(&id);
        }
    }
}

/// Step 3: writes queued messages to `socket` until the queue closes or a
/// write fails.
pub fn writer_loop(mut socket: TcpStream, queue: Receiver<Message>) {
    for msg in queue {
        if write_all(&mut socket, &msg).is_err() {
            return; // Gone: the reader side will notice and leave.
        }
    }
}

/// Step 4: serves one client in `room`.
pub fn handle_client(room: &Room, stream: TcpStream) -> io::Result<()> {
    let (tx, rx) = sync_channel::<Message>(QUEUE_LEN);
    let own = tx.clone();
    // Joining queues the welcome first, so it is the first thing the client
    // reads, and a client that has read it is sure to be in the room.
    let id = room.join(tx, stream.try_clone()?);
    let writer_socket = stream.try_clone()?;
    let writer =
        thread::Builder::new().name(format!("chat-writer-{id}")).spawn(move || writer_loop(writer_socket, rx))?;

    let mut lines = BoundedLines::new(stream, super::MAX_LINE);
    let result = loop {
        match lines.read_line() {
            Ok(Line::Text(text)) => room.broadcast(id, message(id, &text)),
            Ok(Line::TooLong) => {
                if own.try_send(Arc::from(&b"ERR line too long\n"[..])).is_err() {
                    break Ok(());
                }
            }
            Ok(Line::Eof) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // Leave: dropping both senders ends the writer once it has flushed.
    room.leave(id);
    drop(own);
    let _ = writer.join();
    result
}

/// Step 5: runs the chat server on `listener` until `shutdown` fires.
pub fn run(listener: TcpListener, shutdown: Shutdown) -> io::Result<()> {
    let room = Arc::new(Room::default());
    serve(listener, shutdown, ServerConfig::default(), move |stream| handle_client(&room, stream))?;
    Ok(())
}
