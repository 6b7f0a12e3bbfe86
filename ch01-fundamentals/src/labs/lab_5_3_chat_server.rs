//! # Lab 5.3 — a chat server
//!
//! Every line a client sends goes to every *other* connected client.
//!
//! The protocol, exactly:
//!
//! - Clients are numbered from 1 in the order they connect. When client N
//!   has joined the room, the server sends it `welcome client-N\n`. A client
//!   that has read its welcome line is in the room: every message sent
//!   after that reaches it.
//! - A line `L` from client N reaches every other client as
//!   `client-N: L\n`, in the order client N sent them. The sender gets
//!   nothing back.
//! - A line longer than [`MAX_LINE`](super::MAX_LINE) gets
//!   `ERR line too long\n` back to its sender only.
//! - A client that does not read must not slow anybody down: each client has
//!   a queue of at most [`QUEUE_LEN`] messages waiting to be written to it
//!   (written by a thread of its own); when a message finds a client's queue
//!   full, that client is disconnected and the others carry on.
//! - [`run`] returns once `shutdown` has fired, after every connection has
//!   ended.
//!
//! Build it in steps; each has tests of its own:
//!
//! 1. [`message`]: the line others receive.
//! 2. [`Room`]: the members by id, each with its queue (a bounded
//!    `std::sync::mpsc::sync_channel`) and a handle on its socket.
//!    [`Room::join`] numbers a member from 1, puts its welcome line in its
//!    queue (under the lock, so no message can come before it) and adds
//!    it; [`Room::leave`]
//!    removes it, [`Room::broadcast`] *tries* to queue a message for every
//!    member but the sender (`try_send`, never `send`: a full queue means
//!    that member is too slow, so shut its socket down both ways and remove
//!    it), [`Room::len`] counts members. Keep the map behind a `Mutex`.
//! 3. [`writer_loop`]: one client's writer thread: writes each queued
//!    message to the socket, and returns when the queue is closed or a
//!    write fails.
//! 4. [`handle_client`]: one connection: make its queue, join, start its
//!    writer, then read lines (with
//!    [`BoundedLines`](crate::lines::BoundedLines)) and broadcast them,
//!    answer a long line through its own queue, and at the end leave, drop
//!    its senders and join the writer.
//! 5. [`run`]: [`serve`](crate::server::serve) does the accepting and the
//!    shutting down; its handler is `handle_client` on one shared room.
//!
//! Run it: `cargo test -p ch01-fundamentals --no-default-features lab_5_3`.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use crate::server::Shutdown;

/// Messages waiting for one client before it counts as too slow.
pub const QUEUE_LEN: usize = 256;

/// One message, shared by every queue it is put in.
pub type Message = Arc<[u8]>;

/// Step 1: `client-N: L\n` for line `text` from client `from`.
pub fn message(from: u64, text: &[u8]) -> Message {
    let _ = (from, text);
    todo!("lab 5.3, step 1: the line the others receive")
}

/// Step 2: the clients in the chat, by id.
#[derive(Debug, Default)]
pub struct Room {
    // TODO: a Mutex around the members (id -> queue sender and socket),
    // and the last id given.
}

impl Room {
    /// An empty room.
    pub fn new() -> Self {
        todo!("lab 5.3, step 2: an empty room")
    }

    /// Numbers a new member (1, 2, ...), queues its welcome line, and adds
    /// it with its queue and socket; returns its id.
    pub fn join(&self, queue: SyncSender<Message>, socket: TcpStream) -> u64 {
        let _ = (queue, socket);
        todo!("lab 5.3, step 2: join")
    }

    /// Removes member `id`, if it is still there.
    pub fn leave(&self, id: u64) {
        let _ = id;
        todo!("lab 5.3, step 2: leave")
    }

    /// Queues `msg` for every member but `from`; a member whose queue is
    /// full is shut down and removed.
    pub fn broadcast(&self, from: u64, msg: Message) {
        let _ = (from, msg);
        todo!("lab 5.3, step 2: broadcast")
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        todo!("lab 5.3, step 2: count")
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Step 3: writes queued messages to `socket` until the queue closes or a
/// write fails.
pub fn writer_loop(socket: TcpStream, queue: Receiver<Message>) {
    let _ = (socket, queue);
    todo!("lab 5.3, step 3: one client's writer")
}

/// Step 4: serves one client in `room`.
pub fn handle_client(room: &Room, stream: TcpStream) -> io::Result<()> {
    let _ = (room, stream);
    todo!("lab 5.3, step 4: one connection")
}

/// Step 5: runs the chat server on `listener` until `shutdown` fires.
pub fn run(listener: TcpListener, shutdown: Shutdown) -> io::Result<()> {
    // TODO: one shared room, and handle_client for each connection.
    let _ = (listener, shutdown);
    todo!("lab 5.3, step 5: the chat server")
}
